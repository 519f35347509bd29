-- Permissions: each access key gets a name (its IAM user name) and a policy, either a preset
-- of internal/auth (by name) or a policy document; repositories and the registry get resource
-- policies. Times are Unix milliseconds.

ALTER TABLE access_keys ADD COLUMN name   TEXT NOT NULL DEFAULT '';
ALTER TABLE access_keys ADD COLUMN preset TEXT NOT NULL DEFAULT '';
ALTER TABLE access_keys ADD COLUMN policy TEXT NOT NULL DEFAULT '';
-- Keys made before permissions existed could do everything; they keep that, named by their id.
UPDATE access_keys SET name = id, preset = 'AdministratorAccess';
CREATE UNIQUE INDEX access_keys_name ON access_keys(name);

-- A repository's policy goes with the repository, as on ECR.
CREATE TABLE repository_policies (
    repository TEXT    PRIMARY KEY REFERENCES repositories(name) ON DELETE CASCADE,
    policy     TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

-- At most one row: the registry policy.
CREATE TABLE registry_policy (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    policy     TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
