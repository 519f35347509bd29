-- Inspector's SBOM exports and findings reports, as SQLite's 0031: background jobs whose files
-- go to the reports directory. A row is written when the job is created and updated when it
-- ends; the files it wrote are listed (JSON array of keys under the bucket) so that downloads
-- need no listing.
CREATE TABLE report_jobs (
    id            TEXT COLLATE "C" PRIMARY KEY,  -- the reportId, a UUID
    kind          TEXT   NOT NULL,               -- SBOM_EXPORT or FINDINGS_REPORT
    format        TEXT   NOT NULL,               -- CYCLONEDX_1_4, SPDX_2_3, CSV, JSON
    status        TEXT   NOT NULL,               -- IN_PROGRESS, SUCCEEDED, FAILED, CANCELLED
    error_code    TEXT   NOT NULL DEFAULT '',
    error_message TEXT   NOT NULL DEFAULT '',
    bucket        TEXT   NOT NULL,
    key_prefix    TEXT   NOT NULL DEFAULT '',
    kms_key_arn   TEXT   NOT NULL DEFAULT '',
    criteria      TEXT   NOT NULL DEFAULT '',    -- the request's filter criteria, as JSON
    files         TEXT   NOT NULL DEFAULT '[]',
    owner         TEXT   NOT NULL DEFAULT '',    -- host/pid of the process running it
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX report_jobs_kind_created ON report_jobs(kind, created_at);
