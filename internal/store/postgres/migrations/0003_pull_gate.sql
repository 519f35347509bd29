-- Per-repository overrides of the pull-time policy gate (internal/pullgate); the registry's
-- default comes from `lading serve`'s flags. severity NONE turns the gate off for the repository.
CREATE TABLE pull_gates (
    repository TEXT COLLATE "C" PRIMARY KEY,
    severity   TEXT   NOT NULL,
    grace_ms   BIGINT NOT NULL,
    exempt     TEXT   NOT NULL DEFAULT '[]',  -- JSON array of identities
    updated_at BIGINT NOT NULL
);
