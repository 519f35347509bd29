-- ListFindings (Inspector's API, and later the console) filters and sorts findings on what
-- their detail holds. The detail is JSON owned by the scanner and lives apart
-- (finding_details); what the queries need of it is copied here, written with the detail by
-- the scanning writers (scanning.go, indexFindingColumns and indexFindingPackages, the same
-- statements as below) and backfilled here for the rows written before.
ALTER TABLE findings ADD COLUMN title           TEXT NOT NULL DEFAULT '';
ALTER TABLE findings ADD COLUMN source          TEXT NOT NULL DEFAULT '';
ALTER TABLE findings ADD COLUMN vendor_severity TEXT NOT NULL DEFAULT '';
ALTER TABLE findings ADD COLUMN fix_available   TEXT NOT NULL DEFAULT 'NO';  -- YES, NO or PARTIAL
ALTER TABLE findings ADD COLUMN aliases         TEXT NOT NULL DEFAULT '[]';  -- JSON array: the KEV catalogue is matched on them too
ALTER TABLE findings ADD COLUMN related         TEXT NOT NULL DEFAULT '[]';  -- JSON array

-- A finding's vulnerable packages, one row each, for vulnerablePackages filters.
CREATE TABLE finding_packages (
    finding_id        INTEGER NOT NULL REFERENCES findings(id) ON DELETE CASCADE,
    seq               INTEGER NOT NULL,
    name              TEXT    NOT NULL,
    version           TEXT    NOT NULL,
    epoch             INTEGER NOT NULL,
    release           TEXT    NOT NULL,
    arch              TEXT    NOT NULL,
    file_path         TEXT    NOT NULL,
    source_layer_hash TEXT    NOT NULL,
    PRIMARY KEY (finding_id, seq)
) WITHOUT ROWID;

-- BatchGetFindingDetails and findingArn filters look findings up by ARN.
CREATE INDEX findings_arn ON findings(arn);
-- A vulnerabilityId filter (the commonest) reads the findings of one vulnerability in the
-- default order (repository, image), so a first page stops after a page of rows.
CREATE INDEX findings_vulnerability ON findings(vulnerability_id, scan_type, repository, image_digest);

UPDATE findings SET
    title           = coalesce(json_extract(d.detail, '$.finding.title'), ''),
    source          = coalesce(json_extract(d.detail, '$.finding.source'), ''),
    vendor_severity = coalesce(json_extract(d.detail, '$.finding.vendorSeverity'), ''),
    aliases         = coalesce(json_extract(d.detail, '$.finding.aliases'), '[]'),
    related         = coalesce(json_extract(d.detail, '$.finding.related'), '[]'),
    fix_available   = (SELECT CASE
            WHEN count(*) = 0 OR total(coalesce(json_extract(p.value, '$.fixedInVersion'), '') != '') = 0 THEN 'NO'
            WHEN total(coalesce(json_extract(p.value, '$.fixedInVersion'), '') != '') = count(*) THEN 'YES'
            ELSE 'PARTIAL' END
        FROM json_each(d.detail, '$.finding.vulnerablePackages') p)
    FROM finding_details d WHERE d.finding_id = findings.id;

INSERT INTO finding_packages(finding_id, seq, name, version, epoch, release, arch, file_path, source_layer_hash)
    SELECT d.finding_id, p.key, coalesce(json_extract(p.value, '$.name'), ''), coalesce(json_extract(p.value, '$.version'), ''),
        coalesce(json_extract(p.value, '$.epoch'), 0), coalesce(json_extract(p.value, '$.release'), ''),
        coalesce(json_extract(p.value, '$.arch'), ''), coalesce(json_extract(p.value, '$.filePath'), ''),
        coalesce(json_extract(p.value, '$.sourceLayerHash'), '')
    FROM finding_details d, json_each(d.detail, '$.finding.vulnerablePackages') p;
