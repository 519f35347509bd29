-- Findings looked up by ARN through findings_key (0048) instead of a hash index of every ARN
-- (issue 15 point 5: the store within 2x of SQLite's; findings_arn was 24 MiB at 10,000
-- images). An ARN the scanner makes ends with the hex of the finding's key
-- (scanning.FindingARN: the first 16 bytes of the SHA-256 of its image and vulnerability, which
-- finding_key computes), so the key found from the ARN's last 32 characters finds the row, and
-- the ARN is then compared whole. The other ARNs (any a writer gave) keep an index of their
-- own, which holds none of the scanner's: a B-tree, as a hash index is made with buckets for
-- every row of the table whatever its predicate keeps (20 MiB at 10,000 images, empty).
--
-- finding_arn_derived tells the two apart. The queries name it exactly as the index predicate
-- does, so the planner uses the partial index (findings_query.go's arnLookup). Its body repeats
-- finding_key's rather than call it: a function named in a SQL function's body is looked up in
-- the search path of the session evaluating it, which may not hold this schema.
CREATE FUNCTION finding_arn_derived(arn TEXT, repository TEXT, image_digest TEXT, scan_type TEXT, vulnerability_id TEXT) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT right(arn, 32) = encode(substring(sha256(convert_to(repository, 'UTF8') || '\x00'::bytea || convert_to(image_digest, 'UTF8')
        || '\x00'::bytea || convert_to(scan_type, 'UTF8') || '\x00'::bytea || convert_to(vulnerability_id, 'UTF8')) FROM 1 FOR 16), 'hex')
$$;

CREATE INDEX findings_arn_other ON findings (arn)
    WHERE NOT finding_arn_derived(arn, repository, image_digest, scan_type, vulnerability_id);
DROP INDEX findings_arn;
