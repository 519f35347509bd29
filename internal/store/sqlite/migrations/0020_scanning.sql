-- Scanning: cached inventories, the package index used by continuous scanning, scan jobs,
-- per-image scan status, findings and usage. Times are Unix milliseconds.

-- What one layer contributes, content addressed: a layer is read once for every image holding it.
CREATE TABLE layer_inventories (
    layer_digest   TEXT    NOT NULL,
    mode           TEXT    NOT NULL,  -- BASIC (OS packages) or ENHANCED (OS and language packages)
    schema_version INTEGER NOT NULL,  -- a newer extractor set reads the layer again
    inventory      BLOB    NOT NULL,  -- gzip'd JSON
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (layer_digest, mode)
);

-- An image's merged inventory, keyed by manifest digest: the same in every repository holding it.
CREATE TABLE image_inventories (
    id             INTEGER PRIMARY KEY,
    image_digest   TEXT    NOT NULL,
    mode           TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    os             TEXT    NOT NULL DEFAULT '',  -- OSV ecosystem of the OS packages, '' when none was found
    package_count  INTEGER NOT NULL,
    inventory      BLOB    NOT NULL,             -- gzip'd JSON
    created_at     INTEGER NOT NULL,
    UNIQUE (image_digest, mode)
);

CREATE TABLE package_keys (
    id        INTEGER PRIMARY KEY,
    ecosystem TEXT NOT NULL,
    name      TEXT NOT NULL,
    UNIQUE (ecosystem, name)
);

-- The inverted index from package to image inventories: continuous scanning re-evaluates only
-- the images that hold a package whose advisories changed.
CREATE TABLE inventory_packages (
    key_id       INTEGER NOT NULL,
    inventory_id INTEGER NOT NULL,
    PRIMARY KEY (key_id, inventory_id)
) WITHOUT ROWID;
CREATE INDEX inventory_packages_inventory ON inventory_packages(inventory_id);

-- Durable scan jobs. A worker claims a job with a lease; a job whose lease ran out (its worker
-- died) is claimed again.
CREATE TABLE scan_jobs (
    id           INTEGER PRIMARY KEY,
    repository   TEXT    NOT NULL,
    image_digest TEXT    NOT NULL,
    scan_type    TEXT    NOT NULL,
    trigger      TEXT    NOT NULL,  -- PUSH, MANUAL, COVERAGE
    state        TEXT    NOT NULL,  -- queued, running
    attempts     INTEGER NOT NULL DEFAULT 0,
    lease_owner  TEXT    NOT NULL DEFAULT '',
    lease_until  INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);
CREATE INDEX scan_jobs_state ON scan_jobs(state, lease_until, id);
CREATE UNIQUE INDEX scan_jobs_image ON scan_jobs(repository, image_digest, scan_type);

-- The scan state of a repository image, per scan type.
CREATE TABLE image_scans (
    repository        TEXT    NOT NULL,
    image_digest      TEXT    NOT NULL,
    scan_type         TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    description       TEXT    NOT NULL DEFAULT '',
    frequency         TEXT    NOT NULL DEFAULT '',
    inventory_id      INTEGER,
    last_scan_started_at INTEGER NOT NULL DEFAULT 0,  -- the 24-hour quota of basic scans counts from here
    completed_at      INTEGER NOT NULL DEFAULT 0,
    source_updated_at INTEGER NOT NULL DEFAULT 0,    -- when the advisories used last changed
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (repository, image_digest, scan_type)
);
CREATE INDEX image_scans_inventory ON image_scans(inventory_id);

CREATE TABLE findings (
    repository        TEXT    NOT NULL,
    image_digest      TEXT    NOT NULL,
    scan_type         TEXT    NOT NULL,
    vulnerability_id  TEXT    NOT NULL,
    arn               TEXT    NOT NULL,
    status            TEXT    NOT NULL,  -- ACTIVE or CLOSED
    severity          TEXT    NOT NULL,
    score             REAL    NOT NULL DEFAULT 0,
    fingerprint       TEXT    NOT NULL,  -- hash of detail: a change makes an update
    detail            TEXT    NOT NULL,  -- JSON
    first_observed_at INTEGER NOT NULL,
    last_observed_at  INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (repository, image_digest, scan_type, vulnerability_id)
);

-- One row per scan performed, for `lading admin usage`.
CREATE TABLE scan_usage (
    id           INTEGER PRIMARY KEY,
    repository   TEXT    NOT NULL,
    image_digest TEXT    NOT NULL,
    scan_type    TEXT    NOT NULL,
    kind         TEXT    NOT NULL,  -- INITIAL or RESCAN
    at           INTEGER NOT NULL
);
CREATE INDEX scan_usage_at ON scan_usage(at);

CREATE INDEX manifests_digest ON manifests(digest);
