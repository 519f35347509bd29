-- How many findings of each image Inspector shows as ACTIVE (status ACTIVE, not suppressed),
-- by severity: ListFindingAggregations of repositories and images over every finding reads a
-- row per image here instead of every finding. Kept by the triggers below, so that every
-- write of findings (a scan, a re-evaluation, a suppression rule's change, an image or
-- repository deleted) changes the counts in its own transaction. A row whose counts fell to
-- zero may stay: it counts nothing.
CREATE TABLE image_finding_counts (
    repository      TEXT    NOT NULL,
    image_digest    TEXT    NOT NULL,
    scan_type       TEXT    NOT NULL,
    n_all           INTEGER NOT NULL,
    n_critical      INTEGER NOT NULL,
    n_high          INTEGER NOT NULL,
    n_medium        INTEGER NOT NULL,
    n_low           INTEGER NOT NULL,
    n_informational INTEGER NOT NULL,
    n_undefined     INTEGER NOT NULL,
    PRIMARY KEY (repository, image_digest, scan_type)
) WITHOUT ROWID;

INSERT INTO image_finding_counts
    SELECT repository, image_digest, scan_type, count(*), total(severity = 'CRITICAL'), total(severity = 'HIGH'), total(severity = 'MEDIUM'),
        total(severity = 'LOW'), total(severity = 'INFORMATIONAL'), total(severity NOT IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL'))
    FROM findings WHERE status = 'ACTIVE' AND suppressed = 0 GROUP BY repository, image_digest, scan_type;

CREATE TRIGGER findings_count_insert AFTER INSERT ON findings WHEN NEW.status = 'ACTIVE' AND NEW.suppressed = 0
BEGIN
    INSERT INTO image_finding_counts VALUES (NEW.repository, NEW.image_digest, NEW.scan_type, 1, NEW.severity = 'CRITICAL',
        NEW.severity = 'HIGH', NEW.severity = 'MEDIUM', NEW.severity = 'LOW', NEW.severity = 'INFORMATIONAL',
        NEW.severity NOT IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL'))
    ON CONFLICT(repository, image_digest, scan_type) DO UPDATE SET n_all = n_all + 1, n_critical = n_critical + excluded.n_critical,
        n_high = n_high + excluded.n_high, n_medium = n_medium + excluded.n_medium, n_low = n_low + excluded.n_low,
        n_informational = n_informational + excluded.n_informational, n_undefined = n_undefined + excluded.n_undefined;
END;

CREATE TRIGGER findings_count_delete AFTER DELETE ON findings WHEN OLD.status = 'ACTIVE' AND OLD.suppressed = 0
BEGIN
    UPDATE image_finding_counts SET n_all = n_all - 1, n_critical = n_critical - (OLD.severity = 'CRITICAL'),
        n_high = n_high - (OLD.severity = 'HIGH'), n_medium = n_medium - (OLD.severity = 'MEDIUM'), n_low = n_low - (OLD.severity = 'LOW'),
        n_informational = n_informational - (OLD.severity = 'INFORMATIONAL'),
        n_undefined = n_undefined - (OLD.severity NOT IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL'))
    WHERE repository = OLD.repository AND image_digest = OLD.image_digest AND scan_type = OLD.scan_type;
    DELETE FROM image_finding_counts
    WHERE repository = OLD.repository AND image_digest = OLD.image_digest AND scan_type = OLD.scan_type AND n_all = 0;
END;

-- An update that changes whether or how the finding counts: the old row out, the new one in.
CREATE TRIGGER findings_count_update AFTER UPDATE OF repository, image_digest, scan_type, status, severity, suppressed ON findings
WHEN (OLD.status = 'ACTIVE' AND OLD.suppressed = 0 OR NEW.status = 'ACTIVE' AND NEW.suppressed = 0)
    AND (OLD.status IS NOT NEW.status OR OLD.suppressed IS NOT NEW.suppressed OR OLD.severity IS NOT NEW.severity
        OR OLD.repository IS NOT NEW.repository OR OLD.image_digest IS NOT NEW.image_digest OR OLD.scan_type IS NOT NEW.scan_type)
BEGIN
    UPDATE image_finding_counts SET n_all = n_all - 1, n_critical = n_critical - (OLD.severity = 'CRITICAL'),
        n_high = n_high - (OLD.severity = 'HIGH'), n_medium = n_medium - (OLD.severity = 'MEDIUM'), n_low = n_low - (OLD.severity = 'LOW'),
        n_informational = n_informational - (OLD.severity = 'INFORMATIONAL'),
        n_undefined = n_undefined - (OLD.severity NOT IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL'))
    WHERE repository = OLD.repository AND image_digest = OLD.image_digest AND scan_type = OLD.scan_type
        AND OLD.status = 'ACTIVE' AND OLD.suppressed = 0;
    INSERT INTO image_finding_counts SELECT NEW.repository, NEW.image_digest, NEW.scan_type, 1, NEW.severity = 'CRITICAL',
        NEW.severity = 'HIGH', NEW.severity = 'MEDIUM', NEW.severity = 'LOW', NEW.severity = 'INFORMATIONAL',
        NEW.severity NOT IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL')
    WHERE NEW.status = 'ACTIVE' AND NEW.suppressed = 0
    ON CONFLICT(repository, image_digest, scan_type) DO UPDATE SET n_all = n_all + 1, n_critical = n_critical + excluded.n_critical,
        n_high = n_high + excluded.n_high, n_medium = n_medium + excluded.n_medium, n_low = n_low + excluded.n_low,
        n_informational = n_informational + excluded.n_informational, n_undefined = n_undefined + excluded.n_undefined;
END;

-- The REPOSITORY and IMAGE aggregations without filters read the counts; with filters they
-- read findings_image, whose first columns are the same. The partial index of 0028 is dropped:
-- at 100,000 images it was about 0.8 GB.
DROP INDEX findings_active_severity;
