-- Registry core: repositories, blobs linked into repositories, manifests, tags and upload sessions.
-- Times are Unix milliseconds.

CREATE TABLE repositories (
    name              TEXT PRIMARY KEY,
    created_at        INTEGER NOT NULL,
    tag_mutability    TEXT    NOT NULL DEFAULT 'MUTABLE',
    scan_on_push      INTEGER NOT NULL DEFAULT 0,
    encryption_type   TEXT    NOT NULL DEFAULT 'AES256',
    kms_key           TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE repository_resource_tags (
    repository TEXT NOT NULL REFERENCES repositories(name) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (repository, key)
);

-- A blob is visible in a repository only through a link: pushes, mounts and manifests create links.
CREATE TABLE repository_blobs (
    repository TEXT    NOT NULL REFERENCES repositories(name) ON DELETE CASCADE,
    digest     TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    linked_at  INTEGER NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX repository_blobs_digest ON repository_blobs(digest);

CREATE TABLE manifests (
    repository       TEXT    NOT NULL REFERENCES repositories(name) ON DELETE CASCADE,
    digest           TEXT    NOT NULL,
    media_type       TEXT    NOT NULL,
    artifact_type    TEXT    NOT NULL DEFAULT '',
    config_media_type TEXT   NOT NULL DEFAULT '',
    config_digest    TEXT    NOT NULL DEFAULT '',
    subject          TEXT    NOT NULL DEFAULT '',
    annotations      TEXT    NOT NULL DEFAULT '',
    size             INTEGER NOT NULL,
    -- the sum of config and layer sizes, or of the children's for an index (ECR's imageSizeInBytes)
    image_size       INTEGER NOT NULL DEFAULT 0,
    content          BLOB    NOT NULL,
    pushed_at        INTEGER NOT NULL,
    last_pulled_at   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX manifests_subject ON manifests(repository, subject) WHERE subject <> '';

-- What a manifest references: blobs (config, layers) and, for an index, child manifests.
CREATE TABLE manifest_references (
    repository TEXT    NOT NULL,
    manifest   TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    kind       TEXT    NOT NULL, -- 'config', 'layer', 'manifest'
    position   INTEGER NOT NULL,
    PRIMARY KEY (repository, manifest, position),
    FOREIGN KEY (repository, manifest) REFERENCES manifests(repository, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_references_target ON manifest_references(repository, target);

CREATE TABLE tags (
    repository TEXT    NOT NULL,
    tag        TEXT    NOT NULL,
    digest     TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (repository, tag),
    FOREIGN KEY (repository, digest) REFERENCES manifests(repository, digest) ON DELETE CASCADE
);
CREATE INDEX tags_digest ON tags(repository, digest);

CREATE TABLE uploads (
    id         TEXT    PRIMARY KEY,
    repository TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX uploads_updated ON uploads(updated_at);

-- Small registry-wide values: the scanning configuration, signing keys, and the like.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE access_keys (
    id          TEXT    PRIMARY KEY,
    secret      TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
