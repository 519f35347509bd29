-- How many findings were first observed, and how many closed, on each UTC day (day = ms since
-- the epoch / 86,400,000): the console's chart of the finding lifecycle reads a row a day here
-- instead of every finding of the period. A finding counts as opened on the day of its
-- first_observed_at, and as closed on the day of its updated_at while its status is CLOSED
-- (a closed finding is updated when it closes), as ListFindings filtered by those dates and
-- statuses counts them. Kept by the triggers below in the transaction of every write of
-- findings; rows are never deleted (one a day).
CREATE TABLE finding_days (
    scan_type TEXT    NOT NULL,
    day       INTEGER NOT NULL,
    opened    INTEGER NOT NULL,
    closed    INTEGER NOT NULL,
    PRIMARY KEY (scan_type, day)
) WITHOUT ROWID;

INSERT INTO finding_days
    SELECT scan_type, day, sum(opened), sum(closed) FROM (
        SELECT scan_type, first_observed_at / 86400000 AS day, 1 AS opened, 0 AS closed FROM findings
        UNION ALL
        SELECT scan_type, updated_at / 86400000, 0, 1 FROM findings WHERE status = 'CLOSED')
    GROUP BY scan_type, day;

CREATE TRIGGER findings_days_insert AFTER INSERT ON findings
BEGIN
    INSERT INTO finding_days VALUES (NEW.scan_type, NEW.first_observed_at / 86400000, 1, 0)
    ON CONFLICT(scan_type, day) DO UPDATE SET opened = opened + 1;
    INSERT INTO finding_days SELECT NEW.scan_type, NEW.updated_at / 86400000, 0, 1 WHERE NEW.status = 'CLOSED'
    ON CONFLICT(scan_type, day) DO UPDATE SET closed = closed + 1;
END;

CREATE TRIGGER findings_days_delete AFTER DELETE ON findings
BEGIN
    UPDATE finding_days SET opened = opened - 1 WHERE scan_type = OLD.scan_type AND day = OLD.first_observed_at / 86400000;
    UPDATE finding_days SET closed = closed - 1
    WHERE scan_type = OLD.scan_type AND day = OLD.updated_at / 86400000 AND OLD.status = 'CLOSED';
END;

CREATE TRIGGER findings_days_opened_update AFTER UPDATE OF scan_type, first_observed_at ON findings
WHEN OLD.scan_type IS NOT NEW.scan_type OR OLD.first_observed_at / 86400000 IS NOT NEW.first_observed_at / 86400000
BEGIN
    UPDATE finding_days SET opened = opened - 1 WHERE scan_type = OLD.scan_type AND day = OLD.first_observed_at / 86400000;
    INSERT INTO finding_days VALUES (NEW.scan_type, NEW.first_observed_at / 86400000, 1, 0)
    ON CONFLICT(scan_type, day) DO UPDATE SET opened = opened + 1;
END;

-- Only a closed finding's updates move it (an ACTIVE finding's updated_at changes at every
-- re-evaluation that changes it, and counts nowhere).
CREATE TRIGGER findings_days_closed_update AFTER UPDATE OF scan_type, status, updated_at ON findings
WHEN (OLD.status = 'CLOSED' OR NEW.status = 'CLOSED')
    AND (OLD.status IS NOT NEW.status OR OLD.scan_type IS NOT NEW.scan_type OR OLD.updated_at / 86400000 IS NOT NEW.updated_at / 86400000)
BEGIN
    UPDATE finding_days SET closed = closed - 1
    WHERE scan_type = OLD.scan_type AND day = OLD.updated_at / 86400000 AND OLD.status = 'CLOSED';
    INSERT INTO finding_days SELECT NEW.scan_type, NEW.updated_at / 86400000, 0, 1 WHERE NEW.status = 'CLOSED'
    ON CONFLICT(scan_type, day) DO UPDATE SET closed = closed + 1;
END;
