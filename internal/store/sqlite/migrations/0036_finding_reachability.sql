-- A vulnerable Go package's reachability (match.ReachPresent, ReachAbsent, ReachUnknown; ''
-- for other packages) is queried as a Lading member of vulnerablePackages filters, so it is
-- copied beside the package's other queried fields, as indexFindingPackages now does. Only
-- details that mention it are read: the rest keep ''.
ALTER TABLE finding_packages ADD COLUMN reachability TEXT NOT NULL DEFAULT '';

UPDATE finding_packages SET reachability = coalesce((
        SELECT json_extract(CASE WHEN d.head_id IS NULL THEN json_extract(d.detail, '$.finding.vulnerablePackages') ELSE d.detail END,
            '$[' || finding_packages.seq || '].reachability')
        FROM finding_details d WHERE d.finding_id = finding_packages.finding_id), '')
    WHERE finding_id IN (SELECT finding_id FROM finding_details WHERE instr(detail, '"reachability":') > 0);
