-- Lifecycle policies (ECR PutLifecyclePolicy) and the last preview of each repository
-- (StartLifecyclePolicyPreview). Times are Unix milliseconds.

CREATE TABLE lifecycle_policies (
    repository        TEXT COLLATE "C" PRIMARY KEY REFERENCES repositories(name) ON DELETE CASCADE,
    policy            TEXT   NOT NULL,            -- the policy JSON, compacted
    updated_at        BIGINT NOT NULL,
    last_evaluated_at BIGINT NOT NULL DEFAULT 0   -- the last scheduled run over the repository
);

CREATE TABLE lifecycle_previews (
    repository TEXT COLLATE "C" PRIMARY KEY REFERENCES repositories(name) ON DELETE CASCADE,
    policy     TEXT   NOT NULL,
    status     TEXT   NOT NULL,
    results    TEXT   NOT NULL,  -- JSON array of store.LifecyclePreviewResult
    created_at BIGINT NOT NULL
);
