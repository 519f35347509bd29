-- Findings stored compactly (issue 15: a store ten times smaller). The findings table repeated
-- the repository, digest, scan type, vulnerability id and ARN (about 200 bytes) in the table and
-- in four indexes, and the vulnerability's title, source, aliases and related ids in every row:
-- 1.1 KB of indexes and row per finding, three quarters of which were those strings.
--
-- Now a finding is a row of finding_rows, clustered by its image (WITHOUT ROWID: the table is
-- the index of an image's findings that 0024 added as a covering index), naming by integer
-- its scan target (repository, digest, scan type), its vulnerability id, its ARN's prefix (the
-- ARN is prefix || hex(arn_key), the key 16 bytes) and its vulnerability's facts, each stored
-- once in a table of its own. `findings` is a view with the old table's columns, in the old
-- order, so that every query reads findings as before; INSTEAD OF triggers write through it
-- (tests, rare statements), while the scanner's hot writes go to finding_rows directly
-- (scanning.go). Dictionary rows (targets, vulnerabilities, prefixes, facts) are never
-- updated, so an id names the same strings for as long as a finding uses it.

CREATE TABLE scan_targets (
    id           INTEGER PRIMARY KEY,
    repository   TEXT    NOT NULL,
    image_digest TEXT    NOT NULL,
    scan_type    TEXT    NOT NULL,
    UNIQUE (repository, image_digest, scan_type)
);

CREATE TABLE finding_vulnerabilities (
    id               INTEGER PRIMARY KEY,
    vulnerability_id TEXT    NOT NULL UNIQUE
);

CREATE TABLE finding_arn_prefixes (
    id     INTEGER PRIMARY KEY,
    prefix TEXT    NOT NULL UNIQUE
);

CREATE TABLE finding_facts (
    id              INTEGER PRIMARY KEY,
    title           TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    vendor_severity TEXT    NOT NULL,
    aliases         TEXT    NOT NULL,
    related         TEXT    NOT NULL,
    UNIQUE (title, source, vendor_severity, aliases, related)
);

CREATE TABLE finding_rows (
    target_id         INTEGER NOT NULL REFERENCES scan_targets(id),
    vulnerability     INTEGER NOT NULL REFERENCES finding_vulnerabilities(id),
    id                INTEGER NOT NULL UNIQUE,
    arn_prefix        INTEGER NOT NULL REFERENCES finding_arn_prefixes(id),
    arn_key           BLOB    NOT NULL,  -- the ARN's last 32 hex digits as 16 bytes; X'' when it has none (prefix is the ARN)
    status            TEXT    NOT NULL,
    severity          TEXT    NOT NULL,
    score             REAL    NOT NULL,
    fingerprint       TEXT    NOT NULL,
    package_keys      TEXT,
    first_observed_at INTEGER NOT NULL,
    last_observed_at  INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    facts             INTEGER NOT NULL REFERENCES finding_facts(id),
    fix_available     TEXT    NOT NULL,
    suppressed        INTEGER NOT NULL,
    PRIMARY KEY (target_id, vulnerability)
) WITHOUT ROWID;

-- How an ARN splits: its last 32 characters when they are lowercase hex (every ARN
-- scanning.FindingARN makes), else nothing (the prefix is the whole ARN).
CREATE TEMP VIEW finding_arn_split AS
    SELECT id, CASE WHEN ok THEN substr(arn, 1, length(arn) - 32) ELSE arn END AS prefix,
        CASE WHEN ok THEN unhex(substr(arn, -32)) ELSE X'' END AS arn_key
    FROM (SELECT id, arn, length(arn) > 32 AND coalesce(lower(hex(unhex(substr(arn, -32)))) = substr(arn, -32), 0) AS ok FROM findings);

INSERT INTO scan_targets(repository, image_digest, scan_type)
    SELECT DISTINCT repository, image_digest, scan_type FROM findings ORDER BY 1, 2, 3;
INSERT INTO finding_vulnerabilities(vulnerability_id) SELECT DISTINCT vulnerability_id FROM findings ORDER BY 1;
INSERT INTO finding_arn_prefixes(prefix) SELECT DISTINCT prefix FROM temp.finding_arn_split ORDER BY 1;
INSERT INTO finding_facts(title, source, vendor_severity, aliases, related)
    SELECT DISTINCT title, source, vendor_severity, aliases, related FROM findings ORDER BY 1, 2, 3, 4, 5;

INSERT INTO finding_rows
    SELECT t.id, v.id, f.id, p.id, s.arn_key, f.status, f.severity, f.score, f.fingerprint, f.package_keys,
        f.first_observed_at, f.last_observed_at, f.updated_at, x.id, f.fix_available, f.suppressed
    FROM findings f
    JOIN temp.finding_arn_split s ON s.id = f.id
    JOIN scan_targets t ON t.repository = f.repository AND t.image_digest = f.image_digest AND t.scan_type = f.scan_type
    JOIN finding_vulnerabilities v ON v.vulnerability_id = f.vulnerability_id
    JOIN finding_arn_prefixes p ON p.prefix = s.prefix
    JOIN finding_facts x ON x.title = f.title AND x.source = f.source AND x.vendor_severity = f.vendor_severity
        AND x.aliases = f.aliases AND x.related = f.related
    ORDER BY t.id, v.id;
DROP VIEW temp.finding_arn_split;

-- The tables naming a finding by id now name finding_rows: made anew (SQLite cannot change a
-- foreign key in place), children before the parent they leave.
DROP VIEW finding_detail_view;

CREATE TABLE finding_details_new (
    finding_id INTEGER PRIMARY KEY REFERENCES finding_rows(id) ON DELETE CASCADE,
    head_id    INTEGER REFERENCES finding_texts(id),  -- NULL: detail is the whole detail
    tail_id    INTEGER REFERENCES finding_texts(id),
    detail     TEXT    NOT NULL
);
INSERT INTO finding_details_new SELECT finding_id, head_id, tail_id, detail FROM finding_details ORDER BY finding_id;
DROP TABLE finding_details;
ALTER TABLE finding_details_new RENAME TO finding_details;

CREATE TABLE finding_packages_new (
    finding_id        INTEGER NOT NULL REFERENCES finding_rows(id) ON DELETE CASCADE,
    seq               INTEGER NOT NULL,
    name              TEXT    NOT NULL,
    version           TEXT    NOT NULL,
    epoch             INTEGER NOT NULL,
    release           TEXT    NOT NULL,
    arch              TEXT    NOT NULL,
    file_path         TEXT    NOT NULL,
    source_layer_hash TEXT    NOT NULL,
    reachability      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (finding_id, seq)
) WITHOUT ROWID;
INSERT INTO finding_packages_new
    SELECT finding_id, seq, name, version, epoch, release, arch, file_path, source_layer_hash, reachability FROM finding_packages ORDER BY finding_id, seq;
DROP TABLE finding_packages;
ALTER TABLE finding_packages_new RENAME TO finding_packages;

-- Its triggers and indexes go with it (the counts they kept are already right).
DROP TABLE findings;

CREATE INDEX finding_rows_vulnerability ON finding_rows(vulnerability, target_id);
CREATE INDEX finding_rows_arn ON finding_rows(arn_key);
CREATE INDEX finding_rows_suppressed ON finding_rows(id) WHERE suppressed = 1;

CREATE VIEW finding_detail_view(finding_id, detail) AS
    SELECT d.finding_id, CASE WHEN d.head_id IS NULL THEN d.detail
        ELSE '{"finding":{' || h.text || ',"vulnerablePackages":' || d.detail || '},"image":' || t.text || '}' END
    FROM finding_details d LEFT JOIN finding_texts h ON h.id = d.head_id LEFT JOIN finding_texts t ON t.id = d.tail_id;

CREATE VIEW findings(id, repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score, fingerprint,
        package_keys, first_observed_at, last_observed_at, updated_at, title, source, vendor_severity, fix_available, aliases,
        related, suppressed) AS
    SELECT f.id, t.repository, t.image_digest, t.scan_type, v.vulnerability_id, p.prefix || lower(hex(f.arn_key)), f.status,
        f.severity, f.score, f.fingerprint, f.package_keys, f.first_observed_at, f.last_observed_at, f.updated_at, x.title,
        x.source, x.vendor_severity, f.fix_available, x.aliases, x.related, f.suppressed
    FROM finding_rows f
    JOIN scan_targets t ON t.id = f.target_id
    JOIN finding_vulnerabilities v ON v.id = f.vulnerability
    JOIN finding_arn_prefixes p ON p.id = f.arn_prefix
    JOIN finding_facts x ON x.id = f.facts;

-- Writing through the view: each column as the old table took it (the defaults it had for the
-- columns a statement leaves out).
CREATE TRIGGER findings_insert INSTEAD OF INSERT ON findings
BEGIN
    INSERT INTO scan_targets(repository, image_digest, scan_type) VALUES (NEW.repository, NEW.image_digest, NEW.scan_type)
        ON CONFLICT DO NOTHING;
    INSERT INTO finding_vulnerabilities(vulnerability_id) VALUES (NEW.vulnerability_id) ON CONFLICT DO NOTHING;
    INSERT INTO finding_arn_prefixes(prefix)
        SELECT CASE WHEN length(NEW.arn) > 32 AND coalesce(lower(hex(unhex(substr(NEW.arn, -32)))) = substr(NEW.arn, -32), 0)
            THEN substr(NEW.arn, 1, length(NEW.arn) - 32) ELSE NEW.arn END WHERE true
        ON CONFLICT DO NOTHING;
    INSERT INTO finding_facts(title, source, vendor_severity, aliases, related)
        VALUES (coalesce(NEW.title, ''), coalesce(NEW.source, ''), coalesce(NEW.vendor_severity, ''), coalesce(NEW.aliases, '[]'),
            coalesce(NEW.related, '[]'))
        ON CONFLICT DO NOTHING;
    INSERT INTO finding_rows
        SELECT t.id, v.id, coalesce(NEW.id, (SELECT max(id) FROM finding_rows) + 1, 1), p.id,
            CASE WHEN length(NEW.arn) > 32 AND coalesce(lower(hex(unhex(substr(NEW.arn, -32)))) = substr(NEW.arn, -32), 0)
                THEN unhex(substr(NEW.arn, -32)) ELSE X'' END,
            NEW.status, NEW.severity, coalesce(NEW.score, 0), NEW.fingerprint, NEW.package_keys, NEW.first_observed_at,
            NEW.last_observed_at, NEW.updated_at, x.id, coalesce(NEW.fix_available, 'NO'), coalesce(NEW.suppressed, 0)
        FROM scan_targets t, finding_vulnerabilities v, finding_arn_prefixes p, finding_facts x
        WHERE t.repository = NEW.repository AND t.image_digest = NEW.image_digest AND t.scan_type = NEW.scan_type
            AND v.vulnerability_id = NEW.vulnerability_id
            AND p.prefix = CASE WHEN length(NEW.arn) > 32 AND coalesce(lower(hex(unhex(substr(NEW.arn, -32)))) = substr(NEW.arn, -32), 0)
                THEN substr(NEW.arn, 1, length(NEW.arn) - 32) ELSE NEW.arn END
            AND x.title = coalesce(NEW.title, '') AND x.source = coalesce(NEW.source, '')
            AND x.vendor_severity = coalesce(NEW.vendor_severity, '') AND x.aliases = coalesce(NEW.aliases, '[]')
            AND x.related = coalesce(NEW.related, '[]');
END;

CREATE TRIGGER findings_update INSTEAD OF UPDATE ON findings
BEGIN
    INSERT INTO scan_targets(repository, image_digest, scan_type) VALUES (NEW.repository, NEW.image_digest, NEW.scan_type)
        ON CONFLICT DO NOTHING;
    INSERT INTO finding_vulnerabilities(vulnerability_id) VALUES (NEW.vulnerability_id) ON CONFLICT DO NOTHING;
    INSERT INTO finding_arn_prefixes(prefix)
        SELECT CASE WHEN length(NEW.arn) > 32 AND coalesce(lower(hex(unhex(substr(NEW.arn, -32)))) = substr(NEW.arn, -32), 0)
            THEN substr(NEW.arn, 1, length(NEW.arn) - 32) ELSE NEW.arn END WHERE true
        ON CONFLICT DO NOTHING;
    INSERT INTO finding_facts(title, source, vendor_severity, aliases, related)
        VALUES (NEW.title, NEW.source, NEW.vendor_severity, NEW.aliases, NEW.related) ON CONFLICT DO NOTHING;
    UPDATE finding_rows SET
        target_id = (SELECT id FROM scan_targets WHERE repository = NEW.repository AND image_digest = NEW.image_digest
            AND scan_type = NEW.scan_type),
        vulnerability = (SELECT id FROM finding_vulnerabilities WHERE vulnerability_id = NEW.vulnerability_id),
        id = NEW.id,
        arn_prefix = (SELECT id FROM finding_arn_prefixes WHERE prefix =
            CASE WHEN length(NEW.arn) > 32 AND coalesce(lower(hex(unhex(substr(NEW.arn, -32)))) = substr(NEW.arn, -32), 0)
                THEN substr(NEW.arn, 1, length(NEW.arn) - 32) ELSE NEW.arn END),
        arn_key = CASE WHEN length(NEW.arn) > 32 AND coalesce(lower(hex(unhex(substr(NEW.arn, -32)))) = substr(NEW.arn, -32), 0)
            THEN unhex(substr(NEW.arn, -32)) ELSE X'' END,
        status = NEW.status, severity = NEW.severity, score = NEW.score, fingerprint = NEW.fingerprint,
        package_keys = NEW.package_keys, first_observed_at = NEW.first_observed_at, last_observed_at = NEW.last_observed_at,
        updated_at = NEW.updated_at,
        facts = (SELECT id FROM finding_facts WHERE title = NEW.title AND source = NEW.source AND vendor_severity = NEW.vendor_severity
            AND aliases = NEW.aliases AND related = NEW.related),
        fix_available = NEW.fix_available, suppressed = NEW.suppressed
    WHERE id = OLD.id;
END;

CREATE TRIGGER findings_delete INSTEAD OF DELETE ON findings
BEGIN
    DELETE FROM finding_rows WHERE id = OLD.id;
END;

-- The aggregates of 0033, 0034 and 0035, kept as before from finding_rows: the strings they are
-- keyed by are read from the dictionaries.
CREATE TRIGGER finding_rows_count_insert AFTER INSERT ON finding_rows WHEN NEW.status = 'ACTIVE' AND NEW.suppressed = 0
BEGIN
    INSERT INTO image_finding_counts SELECT t.repository, t.image_digest, t.scan_type, 1, NEW.severity = 'CRITICAL',
        NEW.severity = 'HIGH', NEW.severity = 'MEDIUM', NEW.severity = 'LOW', NEW.severity = 'INFORMATIONAL',
        NEW.severity NOT IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL')
    FROM scan_targets t WHERE t.id = NEW.target_id
    ON CONFLICT(repository, image_digest, scan_type) DO UPDATE SET n_all = n_all + 1, n_critical = n_critical + excluded.n_critical,
        n_high = n_high + excluded.n_high, n_medium = n_medium + excluded.n_medium, n_low = n_low + excluded.n_low,
        n_informational = n_informational + excluded.n_informational, n_undefined = n_undefined + excluded.n_undefined;
END;

CREATE TRIGGER finding_rows_count_delete AFTER DELETE ON finding_rows WHEN OLD.status = 'ACTIVE' AND OLD.suppressed = 0
BEGIN
    UPDATE image_finding_counts SET n_all = n_all - 1, n_critical = n_critical - (OLD.severity = 'CRITICAL'),
        n_high = n_high - (OLD.severity = 'HIGH'), n_medium = n_medium - (OLD.severity = 'MEDIUM'), n_low = n_low - (OLD.severity = 'LOW'),
        n_informational = n_informational - (OLD.severity = 'INFORMATIONAL'),
        n_undefined = n_undefined - (OLD.severity NOT IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL'))
    WHERE (repository, image_digest, scan_type) = (SELECT repository, image_digest, scan_type FROM scan_targets WHERE id = OLD.target_id);
    DELETE FROM image_finding_counts
    WHERE (repository, image_digest, scan_type) = (SELECT repository, image_digest, scan_type FROM scan_targets WHERE id = OLD.target_id)
        AND n_all = 0;
END;

CREATE TRIGGER finding_rows_count_update AFTER UPDATE OF target_id, status, severity, suppressed ON finding_rows
WHEN (OLD.status = 'ACTIVE' AND OLD.suppressed = 0 OR NEW.status = 'ACTIVE' AND NEW.suppressed = 0)
    AND (OLD.status IS NOT NEW.status OR OLD.suppressed IS NOT NEW.suppressed OR OLD.severity IS NOT NEW.severity
        OR OLD.target_id IS NOT NEW.target_id)
BEGIN
    UPDATE image_finding_counts SET n_all = n_all - 1, n_critical = n_critical - (OLD.severity = 'CRITICAL'),
        n_high = n_high - (OLD.severity = 'HIGH'), n_medium = n_medium - (OLD.severity = 'MEDIUM'), n_low = n_low - (OLD.severity = 'LOW'),
        n_informational = n_informational - (OLD.severity = 'INFORMATIONAL'),
        n_undefined = n_undefined - (OLD.severity NOT IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL'))
    WHERE (repository, image_digest, scan_type) = (SELECT repository, image_digest, scan_type FROM scan_targets WHERE id = OLD.target_id)
        AND OLD.status = 'ACTIVE' AND OLD.suppressed = 0;
    INSERT INTO image_finding_counts SELECT t.repository, t.image_digest, t.scan_type, 1, NEW.severity = 'CRITICAL',
        NEW.severity = 'HIGH', NEW.severity = 'MEDIUM', NEW.severity = 'LOW', NEW.severity = 'INFORMATIONAL',
        NEW.severity NOT IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL')
    FROM scan_targets t WHERE t.id = NEW.target_id AND NEW.status = 'ACTIVE' AND NEW.suppressed = 0
    ON CONFLICT(repository, image_digest, scan_type) DO UPDATE SET n_all = n_all + 1, n_critical = n_critical + excluded.n_critical,
        n_high = n_high + excluded.n_high, n_medium = n_medium + excluded.n_medium, n_low = n_low + excluded.n_low,
        n_informational = n_informational + excluded.n_informational, n_undefined = n_undefined + excluded.n_undefined;
END;

CREATE TRIGGER finding_rows_vulnerability_count_insert AFTER INSERT ON finding_rows WHEN NEW.status = 'ACTIVE' AND NEW.suppressed = 0
BEGIN
    INSERT INTO vulnerability_finding_counts SELECT t.scan_type, x.title, v.vulnerability_id, x.aliases, 1,
        NEW.severity = 'CRITICAL', NEW.severity = 'HIGH', NEW.severity = 'MEDIUM', NEW.fix_available IN ('YES', 'PARTIAL')
    FROM scan_targets t, finding_vulnerabilities v, finding_facts x
    WHERE t.id = NEW.target_id AND v.id = NEW.vulnerability AND x.id = NEW.facts
    ON CONFLICT(scan_type, title, vulnerability_id, aliases) DO UPDATE SET n_all = n_all + 1, n_critical = n_critical + excluded.n_critical,
        n_high = n_high + excluded.n_high, n_medium = n_medium + excluded.n_medium, n_fix = n_fix + excluded.n_fix;
END;

CREATE TRIGGER finding_rows_vulnerability_count_delete AFTER DELETE ON finding_rows WHEN OLD.status = 'ACTIVE' AND OLD.suppressed = 0
BEGIN
    UPDATE vulnerability_finding_counts SET n_all = n_all - 1, n_critical = n_critical - (OLD.severity = 'CRITICAL'),
        n_high = n_high - (OLD.severity = 'HIGH'), n_medium = n_medium - (OLD.severity = 'MEDIUM'),
        n_fix = n_fix - (OLD.fix_available IN ('YES', 'PARTIAL'))
    WHERE (scan_type, title, vulnerability_id, aliases) = (SELECT t.scan_type, x.title, v.vulnerability_id, x.aliases
        FROM scan_targets t, finding_vulnerabilities v, finding_facts x
        WHERE t.id = OLD.target_id AND v.id = OLD.vulnerability AND x.id = OLD.facts);
END;

CREATE TRIGGER finding_rows_vulnerability_count_update AFTER UPDATE OF target_id, vulnerability, facts, status, severity,
    fix_available, suppressed ON finding_rows
WHEN (OLD.status = 'ACTIVE' AND OLD.suppressed = 0 OR NEW.status = 'ACTIVE' AND NEW.suppressed = 0)
    AND (OLD.status IS NOT NEW.status OR OLD.suppressed IS NOT NEW.suppressed OR OLD.severity IS NOT NEW.severity
        OR OLD.target_id IS NOT NEW.target_id OR OLD.vulnerability IS NOT NEW.vulnerability OR OLD.facts IS NOT NEW.facts
        OR OLD.fix_available IS NOT NEW.fix_available)
BEGIN
    UPDATE vulnerability_finding_counts SET n_all = n_all - 1, n_critical = n_critical - (OLD.severity = 'CRITICAL'),
        n_high = n_high - (OLD.severity = 'HIGH'), n_medium = n_medium - (OLD.severity = 'MEDIUM'),
        n_fix = n_fix - (OLD.fix_available IN ('YES', 'PARTIAL'))
    WHERE (scan_type, title, vulnerability_id, aliases) = (SELECT t.scan_type, x.title, v.vulnerability_id, x.aliases
        FROM scan_targets t, finding_vulnerabilities v, finding_facts x
        WHERE t.id = OLD.target_id AND v.id = OLD.vulnerability AND x.id = OLD.facts)
        AND OLD.status = 'ACTIVE' AND OLD.suppressed = 0;
    INSERT INTO vulnerability_finding_counts SELECT t.scan_type, x.title, v.vulnerability_id, x.aliases, 1,
        NEW.severity = 'CRITICAL', NEW.severity = 'HIGH', NEW.severity = 'MEDIUM', NEW.fix_available IN ('YES', 'PARTIAL')
    FROM scan_targets t, finding_vulnerabilities v, finding_facts x
    WHERE t.id = NEW.target_id AND v.id = NEW.vulnerability AND x.id = NEW.facts AND NEW.status = 'ACTIVE' AND NEW.suppressed = 0
    ON CONFLICT(scan_type, title, vulnerability_id, aliases) DO UPDATE SET n_all = n_all + 1, n_critical = n_critical + excluded.n_critical,
        n_high = n_high + excluded.n_high, n_medium = n_medium + excluded.n_medium, n_fix = n_fix + excluded.n_fix;
END;

CREATE TRIGGER finding_rows_days_insert AFTER INSERT ON finding_rows
BEGIN
    INSERT INTO finding_days SELECT scan_type, NEW.first_observed_at / 86400000, 1, 0 FROM scan_targets WHERE id = NEW.target_id
    ON CONFLICT(scan_type, day) DO UPDATE SET opened = opened + 1;
    INSERT INTO finding_days SELECT scan_type, NEW.updated_at / 86400000, 0, 1 FROM scan_targets
    WHERE id = NEW.target_id AND NEW.status = 'CLOSED'
    ON CONFLICT(scan_type, day) DO UPDATE SET closed = closed + 1;
END;

CREATE TRIGGER finding_rows_days_delete AFTER DELETE ON finding_rows
BEGIN
    UPDATE finding_days SET opened = opened - 1
    WHERE scan_type = (SELECT scan_type FROM scan_targets WHERE id = OLD.target_id) AND day = OLD.first_observed_at / 86400000;
    UPDATE finding_days SET closed = closed - 1
    WHERE scan_type = (SELECT scan_type FROM scan_targets WHERE id = OLD.target_id) AND day = OLD.updated_at / 86400000
        AND OLD.status = 'CLOSED';
END;

CREATE TRIGGER finding_rows_days_opened_update AFTER UPDATE OF target_id, first_observed_at ON finding_rows
WHEN OLD.target_id IS NOT NEW.target_id OR OLD.first_observed_at / 86400000 IS NOT NEW.first_observed_at / 86400000
BEGIN
    UPDATE finding_days SET opened = opened - 1
    WHERE scan_type = (SELECT scan_type FROM scan_targets WHERE id = OLD.target_id) AND day = OLD.first_observed_at / 86400000;
    INSERT INTO finding_days SELECT scan_type, NEW.first_observed_at / 86400000, 1, 0 FROM scan_targets WHERE id = NEW.target_id
    ON CONFLICT(scan_type, day) DO UPDATE SET opened = opened + 1;
END;

CREATE TRIGGER finding_rows_days_closed_update AFTER UPDATE OF target_id, status, updated_at ON finding_rows
WHEN (OLD.status = 'CLOSED' OR NEW.status = 'CLOSED')
    AND (OLD.status IS NOT NEW.status OR OLD.target_id IS NOT NEW.target_id OR OLD.updated_at / 86400000 IS NOT NEW.updated_at / 86400000)
BEGIN
    UPDATE finding_days SET closed = closed - 1
    WHERE scan_type = (SELECT scan_type FROM scan_targets WHERE id = OLD.target_id) AND day = OLD.updated_at / 86400000
        AND OLD.status = 'CLOSED';
    INSERT INTO finding_days SELECT scan_type, NEW.updated_at / 86400000, 0, 1 FROM scan_targets
    WHERE id = NEW.target_id AND NEW.status = 'CLOSED'
    ON CONFLICT(scan_type, day) DO UPDATE SET closed = closed + 1;
END;
