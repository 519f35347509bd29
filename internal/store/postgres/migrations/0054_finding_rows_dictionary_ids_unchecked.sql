-- finding_rows' dictionary ids unchecked by foreign keys, as its text, set and layer ids (0052)
-- and SQLite's rows already are: every id is one the store looked up or wrote in the same
-- transaction (findingRefs, finding_*_ref), and no dictionary row is ever deleted. Each key
-- cost a lookup per row written (five a finding, as much as the insert itself), which a
-- re-evaluation pays for every image that gains a finding.
ALTER TABLE finding_rows DROP CONSTRAINT IF EXISTS finding_rows_target_id_fkey,
    DROP CONSTRAINT IF EXISTS finding_rows_vulnerability_fkey,
    DROP CONSTRAINT IF EXISTS finding_rows_arn_prefix_fkey,
    DROP CONSTRAINT IF EXISTS finding_rows_package_keys_fkey,
    DROP CONSTRAINT IF EXISTS finding_rows_facts_fkey;
