-- Advisory database (internal/vulndb), as SQLite's 0010. A batch (an import or a sync) stages
-- its records under its batch_id, invisible to readers, then one short commit transaction points
-- advisory_current at them and gives the batch the next version. Old rows are collected after
-- the commit. Times are Unix milliseconds, record modified times Unix microseconds.

CREATE TABLE advisory_batches (
    batch_id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version      BIGINT UNIQUE,              -- NULL while staging
    base_version BIGINT  NOT NULL,
    kind         TEXT    NOT NULL,
    source       TEXT    NOT NULL DEFAULT '',
    started_at   BIGINT  NOT NULL,
    committed_at BIGINT,
    added        INTEGER NOT NULL DEFAULT 0,
    changed      INTEGER NOT NULL DEFAULT 0,
    withdrawn    INTEGER NOT NULL DEFAULT 0,
    deleted      INTEGER NOT NULL DEFAULT 0,
    unchanged    INTEGER NOT NULL DEFAULT 0,
    changes_kept BOOLEAN NOT NULL DEFAULT true  -- false once its change set has been pruned
);

-- Every staged or current version of a record.
CREATE TABLE advisory_records (
    id        TEXT COLLATE "C" NOT NULL,
    batch_id  BIGINT  NOT NULL,
    modified  BIGINT  NOT NULL,
    withdrawn BOOLEAN NOT NULL DEFAULT false,
    hash      TEXT    NOT NULL,
    raw       BYTEA   NOT NULL,              -- compacted OSV JSON
    PRIMARY KEY (id, batch_id)
);
CREATE INDEX advisory_records_batch ON advisory_records(batch_id);

-- The packages (ecosystem, normalised name) each record version affects.
CREATE TABLE advisory_packages (
    ecosystem TEXT COLLATE "C" NOT NULL,
    name      TEXT COLLATE "C" NOT NULL,
    id        TEXT COLLATE "C" NOT NULL,
    batch_id  BIGINT NOT NULL,
    PRIMARY KEY (ecosystem, name, id, batch_id)
);
CREATE INDEX advisory_packages_record ON advisory_packages(id, batch_id);
CREATE INDEX advisory_packages_batch ON advisory_packages(batch_id);

-- Which version of each record is current.
CREATE TABLE advisory_current (
    id       TEXT COLLATE "C" PRIMARY KEY,
    batch_id BIGINT NOT NULL
);

CREATE TABLE advisory_deletions (
    batch_id BIGINT NOT NULL,
    id       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (batch_id, id)
);

-- The package keys each batch added, changed or withdrew: continuous scanning re-evaluates these.
CREATE TABLE advisory_changes (
    batch_id  BIGINT NOT NULL,
    ecosystem TEXT COLLATE "C" NOT NULL,
    name      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (batch_id, ecosystem, name)
);
