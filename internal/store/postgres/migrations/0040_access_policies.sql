-- Resource policies of repositories and of the registry (the access key columns are in 0001:
-- PostgreSQL stores start with them). Times are Unix milliseconds.

-- A repository's policy goes with the repository, as on ECR.
CREATE TABLE repository_policies (
    repository TEXT COLLATE "C" PRIMARY KEY REFERENCES repositories(name) ON DELETE CASCADE,
    policy     TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

-- At most one row: the registry policy.
CREATE TABLE registry_policy (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    policy     TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);
