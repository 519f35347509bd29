-- Scanning, first part: durable scan jobs and the scan state of each repository image (with
-- the columns SQLite's later migrations added). Inventories, findings and usage follow in their
-- own migrations. Times are Unix milliseconds.

-- A worker claims a job with a lease (SELECT ... FOR UPDATE SKIP LOCKED, so nodes claiming at
-- once take different jobs); a job whose lease ran out (its worker died) is claimed again.
CREATE TABLE scan_jobs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository   TEXT COLLATE "C" NOT NULL,
    image_digest TEXT COLLATE "C" NOT NULL,
    scan_type    TEXT    NOT NULL,
    trigger      TEXT    NOT NULL,  -- PUSH, MANUAL, COVERAGE
    state        TEXT    NOT NULL,  -- queued, running
    attempts     INTEGER NOT NULL DEFAULT 0,
    lease_owner  TEXT    NOT NULL DEFAULT '',
    lease_until  BIGINT  NOT NULL DEFAULT 0,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX scan_jobs_state ON scan_jobs(state, lease_until, id);
CREATE UNIQUE INDEX scan_jobs_image ON scan_jobs(repository, image_digest, scan_type);

CREATE TABLE image_scans (
    repository           TEXT COLLATE "C" NOT NULL,
    image_digest         TEXT COLLATE "C" NOT NULL,
    scan_type            TEXT    NOT NULL,
    status               TEXT    NOT NULL,
    description          TEXT    NOT NULL DEFAULT '',
    frequency            TEXT    NOT NULL DEFAULT '',
    inventory_id         BIGINT,
    last_scan_started_at BIGINT  NOT NULL DEFAULT 0,  -- the 24-hour quota of basic scans counts from here
    completed_at         BIGINT  NOT NULL DEFAULT 0,
    source_updated_at    BIGINT  NOT NULL DEFAULT 0,  -- when the advisories used last changed
    updated_at           BIGINT  NOT NULL,
    image_facts          TEXT    NOT NULL DEFAULT '', -- JSON the scanner owns
    not_evaluated        TEXT    NOT NULL DEFAULT '', -- JSON the scanner owns
    not_evaluated_packages INTEGER NOT NULL DEFAULT 0,
    findings_observed_at BIGINT  NOT NULL DEFAULT 0,  -- kept by the findings writes (a later migration)
    PRIMARY KEY (repository, image_digest, scan_type)
);
CREATE INDEX image_scans_inventory ON image_scans(inventory_id);
