-- Advisory database (internal/vulndb). A batch (an import or a sync) stages its records
-- under its batch_id, invisible to readers, then one short commit transaction points
-- advisory_current at them and gives the batch the next version. Old rows are collected
-- after the commit. Times are Unix milliseconds, record modified times Unix microseconds.

CREATE TABLE advisory_batches (
    batch_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    version      INTEGER UNIQUE,            -- NULL while staging
    base_version INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    source       TEXT    NOT NULL DEFAULT '',
    started_at   INTEGER NOT NULL,
    committed_at INTEGER,
    added        INTEGER NOT NULL DEFAULT 0,
    changed      INTEGER NOT NULL DEFAULT 0,
    withdrawn    INTEGER NOT NULL DEFAULT 0,
    deleted      INTEGER NOT NULL DEFAULT 0,
    unchanged    INTEGER NOT NULL DEFAULT 0,
    changes_kept INTEGER NOT NULL DEFAULT 1   -- 0 once its change set has been pruned
);

-- Every staged or current version of a record.
CREATE TABLE advisory_records (
    id        TEXT    NOT NULL,
    batch_id  INTEGER NOT NULL,
    modified  INTEGER NOT NULL,
    withdrawn INTEGER NOT NULL DEFAULT 0,
    hash      TEXT    NOT NULL,
    raw       BLOB    NOT NULL,              -- compacted OSV JSON
    PRIMARY KEY (id, batch_id)
);
CREATE INDEX advisory_records_batch ON advisory_records(batch_id);

-- The packages (ecosystem, normalised name) each record version affects.
CREATE TABLE advisory_packages (
    ecosystem TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    id        TEXT    NOT NULL,
    batch_id  INTEGER NOT NULL,
    PRIMARY KEY (ecosystem, name, id, batch_id)
);
CREATE INDEX advisory_packages_record ON advisory_packages(id, batch_id);

-- Which version of each record is current.
CREATE TABLE advisory_current (
    id       TEXT    PRIMARY KEY,
    batch_id INTEGER NOT NULL
);

CREATE TABLE advisory_deletions (
    batch_id INTEGER NOT NULL,
    id       TEXT    NOT NULL,
    PRIMARY KEY (batch_id, id)
);

-- The package keys each batch added, changed or withdrew: continuous scanning re-evaluates these.
CREATE TABLE advisory_changes (
    batch_id  INTEGER NOT NULL,
    ecosystem TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    PRIMARY KEY (batch_id, ecosystem, name)
);
