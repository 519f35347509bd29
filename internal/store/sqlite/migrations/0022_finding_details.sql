-- A finding's detail (the match as JSON, about 1.5 KB) moves out of the finding row. A
-- re-evaluation reads the rows of every image a changed package reaches, but needs the detail
-- only of the few findings the change touches; with the detail inline, reading ~70 rows of an
-- image read ~100 KB. The row now records instead which advisory keys its packages have
-- (package_keys), which is what decides whether a change touches it.
CREATE TABLE findings_new (
    id                INTEGER PRIMARY KEY,
    repository        TEXT    NOT NULL,
    image_digest      TEXT    NOT NULL,
    scan_type         TEXT    NOT NULL,
    vulnerability_id  TEXT    NOT NULL,
    arn               TEXT    NOT NULL,
    status            TEXT    NOT NULL,  -- ACTIVE or CLOSED
    severity          TEXT    NOT NULL,
    score             REAL    NOT NULL DEFAULT 0,
    fingerprint       TEXT    NOT NULL,  -- hash of the detail: a change makes an update
    -- The advisory keys (ecosystem, name) of the finding's packages, one "ecosystem<TAB>name" per
    -- line, sorted; NULL when not known (rows written before this migration): the detail decides.
    package_keys      TEXT,
    first_observed_at INTEGER NOT NULL,
    last_observed_at  INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (repository, image_digest, scan_type, vulnerability_id)
);

CREATE TABLE finding_details (
    finding_id INTEGER PRIMARY KEY REFERENCES findings_new(id) ON DELETE CASCADE,
    detail     TEXT    NOT NULL  -- JSON
);

INSERT INTO findings_new(id, repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score, fingerprint,
        first_observed_at, last_observed_at, updated_at)
    SELECT rowid, repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score, fingerprint,
        first_observed_at, last_observed_at, updated_at FROM findings;
INSERT INTO finding_details(finding_id, detail) SELECT rowid, detail FROM findings;

DROP TABLE findings;
-- Renaming also points finding_details' foreign key at the new name.
ALTER TABLE findings_new RENAME TO findings;
