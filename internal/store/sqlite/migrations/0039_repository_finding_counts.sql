-- The ACTIVE (unsuppressed) findings of each repository by severity, and how many of its
-- images have any: image_finding_counts (0033) summed per repository, kept by triggers on
-- that table in the transaction of every write of findings. The console's repositories page
-- sorted by severity reads these 5,000 rows instead of summing 100,000. A row whose counts fell
-- to zero may stay: it counts nothing.
CREATE TABLE repository_finding_counts (
    repository      TEXT    NOT NULL,
    scan_type       TEXT    NOT NULL,
    n_images        INTEGER NOT NULL,
    n_all           INTEGER NOT NULL,
    n_critical      INTEGER NOT NULL,
    n_high          INTEGER NOT NULL,
    n_medium        INTEGER NOT NULL,
    n_low           INTEGER NOT NULL,
    n_informational INTEGER NOT NULL,
    n_undefined     INTEGER NOT NULL,
    PRIMARY KEY (repository, scan_type)
) WITHOUT ROWID;

INSERT INTO repository_finding_counts
    SELECT repository, scan_type, total(n_all > 0), total(n_all), total(n_critical), total(n_high), total(n_medium), total(n_low),
        total(n_informational), total(n_undefined)
    FROM image_finding_counts GROUP BY repository, scan_type;

CREATE TRIGGER image_finding_counts_insert AFTER INSERT ON image_finding_counts
BEGIN
    INSERT INTO repository_finding_counts VALUES (NEW.repository, NEW.scan_type, NEW.n_all > 0, NEW.n_all, NEW.n_critical, NEW.n_high,
        NEW.n_medium, NEW.n_low, NEW.n_informational, NEW.n_undefined)
    ON CONFLICT(repository, scan_type) DO UPDATE SET n_images = n_images + excluded.n_images, n_all = n_all + excluded.n_all,
        n_critical = n_critical + excluded.n_critical, n_high = n_high + excluded.n_high, n_medium = n_medium + excluded.n_medium,
        n_low = n_low + excluded.n_low, n_informational = n_informational + excluded.n_informational, n_undefined = n_undefined + excluded.n_undefined;
END;

-- 0033's triggers change an image's counts in place (its key stays): the difference is added.
CREATE TRIGGER image_finding_counts_update AFTER UPDATE ON image_finding_counts
BEGIN
    UPDATE repository_finding_counts SET n_images = n_images + (NEW.n_all > 0) - (OLD.n_all > 0), n_all = n_all + NEW.n_all - OLD.n_all,
        n_critical = n_critical + NEW.n_critical - OLD.n_critical, n_high = n_high + NEW.n_high - OLD.n_high,
        n_medium = n_medium + NEW.n_medium - OLD.n_medium, n_low = n_low + NEW.n_low - OLD.n_low,
        n_informational = n_informational + NEW.n_informational - OLD.n_informational, n_undefined = n_undefined + NEW.n_undefined - OLD.n_undefined
    WHERE repository = NEW.repository AND scan_type = NEW.scan_type;
END;

CREATE TRIGGER image_finding_counts_delete AFTER DELETE ON image_finding_counts
BEGIN
    UPDATE repository_finding_counts SET n_images = n_images - (OLD.n_all > 0), n_all = n_all - OLD.n_all,
        n_critical = n_critical - OLD.n_critical, n_high = n_high - OLD.n_high, n_medium = n_medium - OLD.n_medium, n_low = n_low - OLD.n_low,
        n_informational = n_informational - OLD.n_informational, n_undefined = n_undefined - OLD.n_undefined
    WHERE repository = OLD.repository AND scan_type = OLD.scan_type;
END;
