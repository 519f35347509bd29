-- finding_rows made smaller again (issue 15): a finding's score, two of its times and
-- fix_available are stored compactly; the findings view gives every column back as before.
--
-- score: an Inspector score is a number of tenths (9.8, 7.5, 10), 8 bytes as a REAL and one as
-- an integer. It is stored as the integer round(score * 10) when that gives the score back
-- exactly (round(s * 10) / 10.0 = s), else as written (a real such as 5.55 or 7.25, or any
-- other value). REAL affinity would read an integer back as a real, so that the two could not be
-- told apart: the column is made anew without a declared type (no affinity), and keeps what is
-- written as it is. The view divides an integer by 10.0 (IEEE division is correctly rounded:
-- 98 / 10.0 is the double nearest 9.8, which is what 9.8 reads as); sqlite.ScoreColumn encodes
-- alike. (-0.0 is stored as the integer 0 and reads back as 0.0.)
--
-- last_observed_at and updated_at are stored as the milliseconds after first_observed_at, under
-- new names (last_observed_after, updated_after: a statement still writing the old meaning fails
-- rather than writes a wrong time). They are mostly equal to it (an image's later observations
-- go to image_scans.findings_observed_at, 0021), and 0 takes no byte in a record where a time
-- takes 6. The view adds first_observed_at back.
--
-- fix_available: 0 NO, 1 YES (neither takes a byte), 2 PARTIAL; any other string as written.
-- Also without affinity (integers are not strings then); sqlite.FixAvailableColumn encodes.
--
-- SQLite cannot change a column's type in place, and making finding_rows anew would drop the
-- old one with its children's foreign keys on (ON DELETE CASCADE would empty finding_details):
-- new columns are added, filled, and the old ones dropped (ALTER TABLE rewrites the rows).
-- The view (with its INSTEAD OF triggers) and the triggers reading these columns go first and
-- are made anew below.
DROP VIEW findings;
DROP TRIGGER finding_rows_days_closed_update;
DROP TRIGGER finding_rows_days_delete;
DROP TRIGGER finding_rows_days_insert;
DROP TRIGGER finding_rows_vulnerability_count_delete;
DROP TRIGGER finding_rows_vulnerability_count_insert;
DROP TRIGGER finding_rows_vulnerability_count_update;

-- No type: no affinity (ANY would be NUMERIC outside a STRICT table).
ALTER TABLE finding_rows ADD COLUMN score_code NOT NULL DEFAULT 0;
ALTER TABLE finding_rows ADD COLUMN fix_code NOT NULL DEFAULT 0;
UPDATE finding_rows SET
    score_code = CASE WHEN typeof(score) IN ('integer', 'real') AND abs(score) < 1e15 AND round(score * 10) / 10.0 = score
        THEN CAST(round(score * 10) AS INTEGER) ELSE score END,
    fix_code = CASE fix_available WHEN 'NO' THEN 0 WHEN 'YES' THEN 1 WHEN 'PARTIAL' THEN 2 ELSE fix_available END,
    last_observed_at = last_observed_at - first_observed_at,
    updated_at = updated_at - first_observed_at;
ALTER TABLE finding_rows DROP COLUMN score;
ALTER TABLE finding_rows DROP COLUMN fix_available;
ALTER TABLE finding_rows RENAME COLUMN score_code TO score;
ALTER TABLE finding_rows RENAME COLUMN fix_code TO fix_available;
ALTER TABLE finding_rows RENAME COLUMN last_observed_at TO last_observed_after;
ALTER TABLE finding_rows RENAME COLUMN updated_at TO updated_after;

-- The per-day counts (0035) and per-vulnerability counts (0034) as 0053 made them, reading the
-- time closed as first_observed_at + updated_after and fix_available's codes (and the strings,
-- so that the counts agree with what the view shows whatever a writer stored).
CREATE TRIGGER finding_rows_days_closed_update AFTER UPDATE OF target_id, status, first_observed_at, updated_after ON finding_rows
WHEN (OLD.status = X'02' OR NEW.status = X'02')
    AND (OLD.status IS NOT NEW.status OR OLD.target_id IS NOT NEW.target_id
        OR (OLD.first_observed_at + OLD.updated_after) / 86400000 IS NOT (NEW.first_observed_at + NEW.updated_after) / 86400000)
BEGIN
    UPDATE finding_days SET closed = closed - 1
    WHERE scan_type = (SELECT scan_type FROM scan_targets WHERE id = OLD.target_id)
        AND day = (OLD.first_observed_at + OLD.updated_after) / 86400000 AND OLD.status = X'02';
    INSERT INTO finding_days SELECT scan_type, (NEW.first_observed_at + NEW.updated_after) / 86400000, 0, 1 FROM scan_targets
    WHERE id = NEW.target_id AND NEW.status = X'02'
    ON CONFLICT(scan_type, day) DO UPDATE SET closed = closed + 1;
END;

CREATE TRIGGER finding_rows_days_delete AFTER DELETE ON finding_rows
BEGIN
    UPDATE finding_days SET opened = opened - 1
    WHERE scan_type = (SELECT scan_type FROM scan_targets WHERE id = OLD.target_id) AND day = OLD.first_observed_at / 86400000;
    UPDATE finding_days SET closed = closed - 1
    WHERE scan_type = (SELECT scan_type FROM scan_targets WHERE id = OLD.target_id)
        AND day = (OLD.first_observed_at + OLD.updated_after) / 86400000 AND OLD.status = X'02';
END;

CREATE TRIGGER finding_rows_days_insert AFTER INSERT ON finding_rows
BEGIN
    INSERT INTO finding_days SELECT scan_type, NEW.first_observed_at / 86400000, 1, 0 FROM scan_targets WHERE id = NEW.target_id
    ON CONFLICT(scan_type, day) DO UPDATE SET opened = opened + 1;
    INSERT INTO finding_days SELECT scan_type, (NEW.first_observed_at + NEW.updated_after) / 86400000, 0, 1 FROM scan_targets
    WHERE id = NEW.target_id AND NEW.status = X'02'
    ON CONFLICT(scan_type, day) DO UPDATE SET closed = closed + 1;
END;

CREATE TRIGGER finding_rows_vulnerability_count_delete AFTER DELETE ON finding_rows WHEN OLD.status = X'01' AND OLD.suppressed = 0
BEGIN
    UPDATE vulnerability_finding_counts SET n_all = n_all - 1, n_critical = n_critical - (OLD.severity = X'01'),
        n_high = n_high - (OLD.severity = X'02'), n_medium = n_medium - (OLD.severity = X'03'),
        n_fix = n_fix - (OLD.fix_available IN (1, 2, 'YES', 'PARTIAL'))
    WHERE (scan_type, title, vulnerability_id, aliases) = (SELECT t.scan_type, x.title, v.vulnerability_id, x.aliases
        FROM scan_targets t, finding_vulnerabilities v, finding_facts x
        WHERE t.id = OLD.target_id AND v.id = OLD.vulnerability AND x.id = OLD.facts);
END;

CREATE TRIGGER finding_rows_vulnerability_count_insert AFTER INSERT ON finding_rows WHEN NEW.status = X'01' AND NEW.suppressed = 0
BEGIN
    INSERT INTO vulnerability_finding_counts SELECT t.scan_type, x.title, v.vulnerability_id, x.aliases, 1,
        NEW.severity = X'01', NEW.severity = X'02', NEW.severity = X'03', NEW.fix_available IN (1, 2, 'YES', 'PARTIAL')
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
        n_fix = n_fix - (OLD.fix_available IN (1, 2, 'YES', 'PARTIAL'))
    WHERE (scan_type, title, vulnerability_id, aliases) = (SELECT t.scan_type, x.title, v.vulnerability_id, x.aliases
        FROM scan_targets t, finding_vulnerabilities v, finding_facts x
        WHERE t.id = OLD.target_id AND v.id = OLD.vulnerability AND x.id = OLD.facts)
        AND OLD.status = X'01' AND OLD.suppressed = 0;
    INSERT INTO vulnerability_finding_counts SELECT t.scan_type, x.title, v.vulnerability_id, x.aliases, 1,
        NEW.severity = X'01', NEW.severity = X'02', NEW.severity = X'03', NEW.fix_available IN (1, 2, 'YES', 'PARTIAL')
    FROM scan_targets t, finding_vulnerabilities v, finding_facts x
    WHERE t.id = NEW.target_id AND v.id = NEW.vulnerability AND x.id = NEW.facts AND NEW.status = X'01' AND NEW.suppressed = 0
    ON CONFLICT(scan_type, title, vulnerability_id, aliases) DO UPDATE SET n_all = n_all + 1, n_critical = n_critical + excluded.n_critical,
        n_high = n_high + excluded.n_high, n_medium = n_medium + excluded.n_medium, n_fix = n_fix + excluded.n_fix;
END;

CREATE VIEW findings(id, repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score, fingerprint,
        package_keys, first_observed_at, last_observed_at, updated_at, title, source, vendor_severity, fix_available, aliases,
        related, suppressed) AS
    SELECT f.id, t.repository, t.image_digest, t.scan_type, v.vulnerability_id, p.prefix || lower(hex(f.arn_key)),
        CASE f.status WHEN X'01' THEN 'ACTIVE' WHEN X'02' THEN 'CLOSED' ELSE f.status END,
        CASE f.severity WHEN X'01' THEN 'CRITICAL' WHEN X'02' THEN 'HIGH' WHEN X'03' THEN 'MEDIUM' WHEN X'04' THEN 'LOW'
            WHEN X'05' THEN 'INFORMATIONAL' WHEN X'06' THEN 'UNDEFINED' ELSE f.severity END,
        CASE WHEN typeof(f.score) = 'integer' THEN f.score / 10.0 ELSE f.score END,
        CASE WHEN typeof(f.fingerprint) = 'blob' THEN lower(hex(f.fingerprint)) ELSE f.fingerprint END,
        (SELECT k.keys FROM finding_key_sets k WHERE k.id = f.package_keys), f.first_observed_at,
        f.first_observed_at + f.last_observed_after, f.first_observed_at + f.updated_after, x.title, x.source, x.vendor_severity,
        CASE f.fix_available WHEN 0 THEN 'NO' WHEN 1 THEN 'YES' WHEN 2 THEN 'PARTIAL' ELSE f.fix_available END,
        x.aliases, x.related, f.suppressed
    FROM finding_rows f
    JOIN scan_targets t ON t.id = f.target_id
    JOIN finding_vulnerabilities v ON v.id = f.vulnerability
    JOIN finding_arn_prefixes p ON p.id = f.arn_prefix
    JOIN finding_facts x ON x.id = f.facts;

-- Writing through the view: each column as the old table took it (the defaults it had for the
-- columns a statement leaves out), encoded as above. A number written as fix_available is kept
-- as the text the old TEXT column made of it, so that it reads as no code.
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
    INSERT INTO finding_rows(target_id, vulnerability, id, arn_prefix, arn_key, status, severity, score, fingerprint, package_keys,
            first_observed_at, last_observed_after, updated_after, facts, fix_available, suppressed)
        SELECT t.id, v.id, coalesce(NEW.id, (SELECT max(id) FROM finding_rows) + 1, 1), p.id,
            CASE WHEN length(NEW.arn) > 32 AND coalesce(lower(hex(unhex(substr(NEW.arn, -32)))) = substr(NEW.arn, -32), 0)
                THEN unhex(substr(NEW.arn, -32)) ELSE X'' END,
            CASE NEW.status WHEN 'ACTIVE' THEN X'01' WHEN 'CLOSED' THEN X'02' ELSE NEW.status END,
            CASE NEW.severity WHEN 'CRITICAL' THEN X'01' WHEN 'HIGH' THEN X'02' WHEN 'MEDIUM' THEN X'03' WHEN 'LOW' THEN X'04'
                WHEN 'INFORMATIONAL' THEN X'05' WHEN 'UNDEFINED' THEN X'06' ELSE NEW.severity END,
            (SELECT CASE WHEN typeof(s) IN ('integer', 'real') AND abs(s) < 1e15 AND round(s * 10) / 10.0 = s
                THEN CAST(round(s * 10) AS INTEGER) ELSE s END FROM (SELECT coalesce(NEW.score, 0) AS s)),
            CASE WHEN length(NEW.fingerprint) IN (16, 64) AND coalesce(lower(hex(unhex(NEW.fingerprint))) = NEW.fingerprint, 0)
                THEN unhex(NEW.fingerprint) ELSE NEW.fingerprint END,
            (SELECT k.id FROM finding_key_sets k WHERE k.keys = NEW.package_keys), NEW.first_observed_at,
            NEW.last_observed_at - NEW.first_observed_at, NEW.updated_at - NEW.first_observed_at, x.id,
            (SELECT CASE WHEN typeof(a) IN ('integer', 'real') THEN CAST(a AS TEXT)
                ELSE CASE a WHEN 'NO' THEN 0 WHEN 'YES' THEN 1 WHEN 'PARTIAL' THEN 2 ELSE a END END
                FROM (SELECT coalesce(NEW.fix_available, 'NO') AS a)),
            coalesce(NEW.suppressed, 0)
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
                WHEN 'INFORMATIONAL' THEN X'05' WHEN 'UNDEFINED' THEN X'06' ELSE NEW.severity END,
        score = (SELECT CASE WHEN typeof(s) IN ('integer', 'real') AND abs(s) < 1e15 AND round(s * 10) / 10.0 = s
                THEN CAST(round(s * 10) AS INTEGER) ELSE s END FROM (SELECT NEW.score AS s)),
        fingerprint = CASE WHEN length(NEW.fingerprint) IN (16, 64) AND coalesce(lower(hex(unhex(NEW.fingerprint))) = NEW.fingerprint, 0)
                THEN unhex(NEW.fingerprint) ELSE NEW.fingerprint END,
        package_keys = (SELECT k.id FROM finding_key_sets k WHERE k.keys = NEW.package_keys), first_observed_at = NEW.first_observed_at,
        last_observed_after = NEW.last_observed_at - NEW.first_observed_at, updated_after = NEW.updated_at - NEW.first_observed_at,
        facts = (SELECT id FROM finding_facts WHERE title = NEW.title AND source = NEW.source AND vendor_severity = NEW.vendor_severity
            AND aliases = NEW.aliases AND related = NEW.related),
        fix_available = (SELECT CASE WHEN typeof(a) IN ('integer', 'real') THEN CAST(a AS TEXT)
                ELSE CASE a WHEN 'NO' THEN 0 WHEN 'YES' THEN 1 WHEN 'PARTIAL' THEN 2 ELSE a END END
                FROM (SELECT NEW.fix_available AS a)),
        suppressed = NEW.suppressed
    WHERE id = OLD.id;
END;

CREATE TRIGGER findings_delete INSTEAD OF DELETE ON findings
BEGIN
    DELETE FROM finding_rows WHERE id = OLD.id;
END;
