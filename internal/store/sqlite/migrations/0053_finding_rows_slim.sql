-- finding_rows made smaller (issue 15): package key lists stored once, status and severity as
-- codes, a shorter ARN index; the findings view gives every column back as before.
--
-- A finding's package keys (the advisory keys of its packages, "ecosystem\tname" lines, 19
-- bytes a row on average) are the same in many findings: 1,565 distinct lists among the 654,002
-- findings of the 10,000-image benchmark store. Each list is stored once in finding_key_sets
-- and finding_rows.package_keys holds its id (NULL: no keys). The column keeps its TEXT
-- affinity, so the id is stored as its decimal digits (still 15 bytes a row less); the view
-- compares it with the INTEGER PRIMARY KEY, which takes it as a number. The view gives the
-- lists back; its triggers, made anew, write through the sets (and take the 16-hex-digit
-- fingerprints of 0052 as bytes). Sets no finding names any longer are removed by gc
-- (PruneFindingPackageSets) with the package sets.
CREATE TABLE finding_key_sets (
    id   INTEGER PRIMARY KEY,
    keys TEXT    NOT NULL UNIQUE
);

INSERT INTO finding_key_sets(keys) SELECT DISTINCT package_keys FROM finding_rows WHERE package_keys IS NOT NULL ORDER BY 1;
UPDATE finding_rows SET package_keys = (SELECT k.id FROM finding_key_sets k WHERE k.keys = finding_rows.package_keys)
    WHERE package_keys IS NOT NULL;

-- The ARN index held each finding's 16-byte ARN key (17 MiB at 10,000 images, as much as the
-- keys in the table): it indexes the first 4 bytes now, enough to find a few candidates among
-- millions, which FindingsByARN then compares whole (it did so already for the prefix). An
-- empty key (an ARN not made by the scanner) is X'' (substr gives NULL for an empty blob).
DROP INDEX finding_rows_arn;
CREATE INDEX finding_rows_arn ON finding_rows(coalesce(substr(arn_key, 1, 4), X''));

-- A finding's status and severity are stored as one-byte codes (X'01' ACTIVE, X'02' CLOSED;
-- X'01' CRITICAL, X'02' HIGH, X'03' MEDIUM, X'04' LOW, X'05' INFORMATIONAL, X'06' UNDEFINED;
-- any other string as written): 12 bytes a row less. Blobs, so that no string reads as a code.
-- The view decodes them; the counts' triggers on finding_rows compare codes (made anew below,
-- as they were but for the codes); sqlite.StatusColumn and SeverityColumn encode.
-- (The triggers go first: the codes written below are no change of the counts.)
DROP TRIGGER finding_rows_count_delete;
DROP TRIGGER finding_rows_count_insert;
DROP TRIGGER finding_rows_count_update;
DROP TRIGGER finding_rows_days_closed_update;
DROP TRIGGER finding_rows_days_delete;
DROP TRIGGER finding_rows_days_insert;
DROP TRIGGER finding_rows_vulnerability_count_delete;
DROP TRIGGER finding_rows_vulnerability_count_insert;
DROP TRIGGER finding_rows_vulnerability_count_update;
UPDATE finding_rows SET
    status = CASE status WHEN 'ACTIVE' THEN X'01' WHEN 'CLOSED' THEN X'02' ELSE status END,
    severity = CASE severity WHEN 'CRITICAL' THEN X'01' WHEN 'HIGH' THEN X'02' WHEN 'MEDIUM' THEN X'03' WHEN 'LOW' THEN X'04'
        WHEN 'INFORMATIONAL' THEN X'05' WHEN 'UNDEFINED' THEN X'06' ELSE severity END;

CREATE TRIGGER finding_rows_count_delete AFTER DELETE ON finding_rows WHEN OLD.status = X'01' AND OLD.suppressed = 0
BEGIN
    UPDATE image_finding_counts SET n_all = n_all - 1, n_critical = n_critical - (OLD.severity = X'01'),
        n_high = n_high - (OLD.severity = X'02'), n_medium = n_medium - (OLD.severity = X'03'), n_low = n_low - (OLD.severity = X'04'),
        n_informational = n_informational - (OLD.severity = X'05'),
        n_undefined = n_undefined - (OLD.severity NOT IN (X'01', X'02', X'03', X'04', X'05'))
    WHERE (repository, image_digest, scan_type) = (SELECT repository, image_digest, scan_type FROM scan_targets WHERE id = OLD.target_id);
    DELETE FROM image_finding_counts
    WHERE (repository, image_digest, scan_type) = (SELECT repository, image_digest, scan_type FROM scan_targets WHERE id = OLD.target_id)
        AND n_all = 0;
END;

CREATE TRIGGER finding_rows_count_insert AFTER INSERT ON finding_rows WHEN NEW.status = X'01' AND NEW.suppressed = 0
BEGIN
    INSERT INTO image_finding_counts SELECT t.repository, t.image_digest, t.scan_type, 1, NEW.severity = X'01',
        NEW.severity = X'02', NEW.severity = X'03', NEW.severity = X'04', NEW.severity = X'05',
        NEW.severity NOT IN (X'01', X'02', X'03', X'04', X'05')
    FROM scan_targets t WHERE t.id = NEW.target_id
    ON CONFLICT(repository, image_digest, scan_type) DO UPDATE SET n_all = n_all + 1, n_critical = n_critical + excluded.n_critical,
        n_high = n_high + excluded.n_high, n_medium = n_medium + excluded.n_medium, n_low = n_low + excluded.n_low,
        n_informational = n_informational + excluded.n_informational, n_undefined = n_undefined + excluded.n_undefined;
END;

CREATE TRIGGER finding_rows_count_update AFTER UPDATE OF target_id, status, severity, suppressed ON finding_rows
WHEN (OLD.status = X'01' AND OLD.suppressed = 0 OR NEW.status = X'01' AND NEW.suppressed = 0)
    AND (OLD.status IS NOT NEW.status OR OLD.suppressed IS NOT NEW.suppressed OR OLD.severity IS NOT NEW.severity
        OR OLD.target_id IS NOT NEW.target_id)
BEGIN
    UPDATE image_finding_counts SET n_all = n_all - 1, n_critical = n_critical - (OLD.severity = X'01'),
        n_high = n_high - (OLD.severity = X'02'), n_medium = n_medium - (OLD.severity = X'03'), n_low = n_low - (OLD.severity = X'04'),
        n_informational = n_informational - (OLD.severity = X'05'),
        n_undefined = n_undefined - (OLD.severity NOT IN (X'01', X'02', X'03', X'04', X'05'))
    WHERE (repository, image_digest, scan_type) = (SELECT repository, image_digest, scan_type FROM scan_targets WHERE id = OLD.target_id)
        AND OLD.status = X'01' AND OLD.suppressed = 0;
    INSERT INTO image_finding_counts SELECT t.repository, t.image_digest, t.scan_type, 1, NEW.severity = X'01',
        NEW.severity = X'02', NEW.severity = X'03', NEW.severity = X'04', NEW.severity = X'05',
        NEW.severity NOT IN (X'01', X'02', X'03', X'04', X'05')
    FROM scan_targets t WHERE t.id = NEW.target_id AND NEW.status = X'01' AND NEW.suppressed = 0
    ON CONFLICT(repository, image_digest, scan_type) DO UPDATE SET n_all = n_all + 1, n_critical = n_critical + excluded.n_critical,
        n_high = n_high + excluded.n_high, n_medium = n_medium + excluded.n_medium, n_low = n_low + excluded.n_low,
        n_informational = n_informational + excluded.n_informational, n_undefined = n_undefined + excluded.n_undefined;
END;

CREATE TRIGGER finding_rows_days_closed_update AFTER UPDATE OF target_id, status, updated_at ON finding_rows
WHEN (OLD.status = X'02' OR NEW.status = X'02')
    AND (OLD.status IS NOT NEW.status OR OLD.target_id IS NOT NEW.target_id OR OLD.updated_at / 86400000 IS NOT NEW.updated_at / 86400000)
BEGIN
    UPDATE finding_days SET closed = closed - 1
    WHERE scan_type = (SELECT scan_type FROM scan_targets WHERE id = OLD.target_id) AND day = OLD.updated_at / 86400000
        AND OLD.status = X'02';
    INSERT INTO finding_days SELECT scan_type, NEW.updated_at / 86400000, 0, 1 FROM scan_targets
    WHERE id = NEW.target_id AND NEW.status = X'02'
    ON CONFLICT(scan_type, day) DO UPDATE SET closed = closed + 1;
END;

CREATE TRIGGER finding_rows_days_delete AFTER DELETE ON finding_rows
BEGIN
    UPDATE finding_days SET opened = opened - 1
    WHERE scan_type = (SELECT scan_type FROM scan_targets WHERE id = OLD.target_id) AND day = OLD.first_observed_at / 86400000;
    UPDATE finding_days SET closed = closed - 1
    WHERE scan_type = (SELECT scan_type FROM scan_targets WHERE id = OLD.target_id) AND day = OLD.updated_at / 86400000
        AND OLD.status = X'02';
END;

CREATE TRIGGER finding_rows_days_insert AFTER INSERT ON finding_rows
BEGIN
    INSERT INTO finding_days SELECT scan_type, NEW.first_observed_at / 86400000, 1, 0 FROM scan_targets WHERE id = NEW.target_id
    ON CONFLICT(scan_type, day) DO UPDATE SET opened = opened + 1;
    INSERT INTO finding_days SELECT scan_type, NEW.updated_at / 86400000, 0, 1 FROM scan_targets
    WHERE id = NEW.target_id AND NEW.status = X'02'
    ON CONFLICT(scan_type, day) DO UPDATE SET closed = closed + 1;
END;

CREATE TRIGGER finding_rows_vulnerability_count_delete AFTER DELETE ON finding_rows WHEN OLD.status = X'01' AND OLD.suppressed = 0
BEGIN
    UPDATE vulnerability_finding_counts SET n_all = n_all - 1, n_critical = n_critical - (OLD.severity = X'01'),
        n_high = n_high - (OLD.severity = X'02'), n_medium = n_medium - (OLD.severity = X'03'),
        n_fix = n_fix - (OLD.fix_available IN ('YES', 'PARTIAL'))
    WHERE (scan_type, title, vulnerability_id, aliases) = (SELECT t.scan_type, x.title, v.vulnerability_id, x.aliases
        FROM scan_targets t, finding_vulnerabilities v, finding_facts x
        WHERE t.id = OLD.target_id AND v.id = OLD.vulnerability AND x.id = OLD.facts);
END;

CREATE TRIGGER finding_rows_vulnerability_count_insert AFTER INSERT ON finding_rows WHEN NEW.status = X'01' AND NEW.suppressed = 0
BEGIN
    INSERT INTO vulnerability_finding_counts SELECT t.scan_type, x.title, v.vulnerability_id, x.aliases, 1,
        NEW.severity = X'01', NEW.severity = X'02', NEW.severity = X'03', NEW.fix_available IN ('YES', 'PARTIAL')
    FROM scan_targets t, finding_vulnerabilities v, finding_facts x
    WHERE t.id = NEW.target_id AND v.id = NEW.vulnerability AND x.id = NEW.facts
    ON CONFLICT(scan_type, title, vulnerability_id, aliases) DO UPDATE SET n_all = n_all + 1, n_critical = n_critical + excluded.n_critical,
        n_high = n_high + excluded.n_high, n_medium = n_medium + excluded.n_medium, n_fix = n_fix + excluded.n_fix;
END;

CREATE TRIGGER finding_rows_vulnerability_count_update AFTER UPDATE OF target_id, vulnerability, facts, status, severity,
    fix_available, suppressed ON finding_rows
WHEN (OLD.status = X'01' AND OLD.suppressed = 0 OR NEW.status = X'01' AND NEW.suppressed = 0)
    AND (OLD.status IS NOT NEW.status OR OLD.suppressed IS NOT NEW.suppressed OR OLD.severity IS NOT NEW.severity
        OR OLD.target_id IS NOT NEW.target_id OR OLD.vulnerability IS NOT NEW.vulnerability OR OLD.facts IS NOT NEW.facts
        OR OLD.fix_available IS NOT NEW.fix_available)
BEGIN
    UPDATE vulnerability_finding_counts SET n_all = n_all - 1, n_critical = n_critical - (OLD.severity = X'01'),
        n_high = n_high - (OLD.severity = X'02'), n_medium = n_medium - (OLD.severity = X'03'),
        n_fix = n_fix - (OLD.fix_available IN ('YES', 'PARTIAL'))
    WHERE (scan_type, title, vulnerability_id, aliases) = (SELECT t.scan_type, x.title, v.vulnerability_id, x.aliases
        FROM scan_targets t, finding_vulnerabilities v, finding_facts x
        WHERE t.id = OLD.target_id AND v.id = OLD.vulnerability AND x.id = OLD.facts)
        AND OLD.status = X'01' AND OLD.suppressed = 0;
    INSERT INTO vulnerability_finding_counts SELECT t.scan_type, x.title, v.vulnerability_id, x.aliases, 1,
        NEW.severity = X'01', NEW.severity = X'02', NEW.severity = X'03', NEW.fix_available IN ('YES', 'PARTIAL')
    FROM scan_targets t, finding_vulnerabilities v, finding_facts x
    WHERE t.id = NEW.target_id AND v.id = NEW.vulnerability AND x.id = NEW.facts AND NEW.status = X'01' AND NEW.suppressed = 0
    ON CONFLICT(scan_type, title, vulnerability_id, aliases) DO UPDATE SET n_all = n_all + 1, n_critical = n_critical + excluded.n_critical,
        n_high = n_high + excluded.n_high, n_medium = n_medium + excluded.n_medium, n_fix = n_fix + excluded.n_fix;
END;

DROP VIEW findings;

CREATE VIEW findings(id, repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score, fingerprint,
        package_keys, first_observed_at, last_observed_at, updated_at, title, source, vendor_severity, fix_available, aliases,
        related, suppressed) AS
    SELECT f.id, t.repository, t.image_digest, t.scan_type, v.vulnerability_id, p.prefix || lower(hex(f.arn_key)),
        CASE f.status WHEN X'01' THEN 'ACTIVE' WHEN X'02' THEN 'CLOSED' ELSE f.status END,
        CASE f.severity WHEN X'01' THEN 'CRITICAL' WHEN X'02' THEN 'HIGH' WHEN X'03' THEN 'MEDIUM' WHEN X'04' THEN 'LOW'
            WHEN X'05' THEN 'INFORMATIONAL' WHEN X'06' THEN 'UNDEFINED' ELSE f.severity END, f.score,
        CASE WHEN typeof(f.fingerprint) = 'blob' THEN lower(hex(f.fingerprint)) ELSE f.fingerprint END,
        (SELECT k.keys FROM finding_key_sets k WHERE k.id = f.package_keys), f.first_observed_at, f.last_observed_at, f.updated_at, x.title,
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
    INSERT INTO finding_key_sets(keys) SELECT NEW.package_keys WHERE NEW.package_keys IS NOT NULL ON CONFLICT DO NOTHING;
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
            CASE NEW.status WHEN 'ACTIVE' THEN X'01' WHEN 'CLOSED' THEN X'02' ELSE NEW.status END,
            CASE NEW.severity WHEN 'CRITICAL' THEN X'01' WHEN 'HIGH' THEN X'02' WHEN 'MEDIUM' THEN X'03' WHEN 'LOW' THEN X'04'
                WHEN 'INFORMATIONAL' THEN X'05' WHEN 'UNDEFINED' THEN X'06' ELSE NEW.severity END, coalesce(NEW.score, 0), CASE WHEN length(NEW.fingerprint) IN (16, 64) AND coalesce(lower(hex(unhex(NEW.fingerprint))) = NEW.fingerprint, 0)
                THEN unhex(NEW.fingerprint) ELSE NEW.fingerprint END,
            (SELECT k.id FROM finding_key_sets k WHERE k.keys = NEW.package_keys), NEW.first_observed_at,
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
    INSERT INTO finding_key_sets(keys) SELECT NEW.package_keys WHERE NEW.package_keys IS NOT NULL ON CONFLICT DO NOTHING;
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
        status = CASE NEW.status WHEN 'ACTIVE' THEN X'01' WHEN 'CLOSED' THEN X'02' ELSE NEW.status END,
        severity = CASE NEW.severity WHEN 'CRITICAL' THEN X'01' WHEN 'HIGH' THEN X'02' WHEN 'MEDIUM' THEN X'03' WHEN 'LOW' THEN X'04'
                WHEN 'INFORMATIONAL' THEN X'05' WHEN 'UNDEFINED' THEN X'06' ELSE NEW.severity END, score = NEW.score, fingerprint = CASE WHEN length(NEW.fingerprint) IN (16, 64) AND coalesce(lower(hex(unhex(NEW.fingerprint))) = NEW.fingerprint, 0)
                THEN unhex(NEW.fingerprint) ELSE NEW.fingerprint END,
        package_keys = (SELECT k.id FROM finding_key_sets k WHERE k.keys = NEW.package_keys), first_observed_at = NEW.first_observed_at, last_observed_at = NEW.last_observed_at,
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
