-- Findings rows made smaller (issue 15).
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

DROP VIEW findings;

CREATE VIEW findings(id, repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score, fingerprint,
        package_keys, first_observed_at, last_observed_at, updated_at, title, source, vendor_severity, fix_available, aliases,
        related, suppressed) AS
    SELECT f.id, t.repository, t.image_digest, t.scan_type, v.vulnerability_id, p.prefix || lower(hex(f.arn_key)), f.status,
        f.severity, f.score,
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
            NEW.status, NEW.severity, coalesce(NEW.score, 0), CASE WHEN length(NEW.fingerprint) IN (16, 64) AND coalesce(lower(hex(unhex(NEW.fingerprint))) = NEW.fingerprint, 0)
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
        status = NEW.status, severity = NEW.severity, score = NEW.score, fingerprint = CASE WHEN length(NEW.fingerprint) IN (16, 64) AND coalesce(lower(hex(unhex(NEW.fingerprint))) = NEW.fingerprint, 0)
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
