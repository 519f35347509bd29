-- Registry core: repositories, blobs linked into repositories, manifests, tags, upload sessions,
-- settings and access keys. The same tables as SQLite's 0001 (and 0040's access key columns),
-- so both engines answer alike: times are Unix milliseconds, and every text column compares
-- bytewise (COLLATE "C"), as SQLite does, so listings page in the same order whatever the
-- database's locale.

CREATE TABLE repositories (
    name            TEXT COLLATE "C" PRIMARY KEY,
    created_at      BIGINT  NOT NULL,
    tag_mutability  TEXT    NOT NULL DEFAULT 'MUTABLE',
    scan_on_push    BOOLEAN NOT NULL DEFAULT false,
    encryption_type TEXT    NOT NULL DEFAULT 'AES256',
    kms_key         TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE repository_resource_tags (
    repository TEXT COLLATE "C" NOT NULL REFERENCES repositories(name) ON DELETE CASCADE,
    key        TEXT COLLATE "C" NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (repository, key)
);

-- A blob is visible in a repository only through a link: pushes, mounts and manifests create links.
CREATE TABLE repository_blobs (
    repository TEXT COLLATE "C" NOT NULL REFERENCES repositories(name) ON DELETE CASCADE,
    digest     TEXT COLLATE "C" NOT NULL,
    size       BIGINT NOT NULL,
    linked_at  BIGINT NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX repository_blobs_digest ON repository_blobs(digest);

CREATE TABLE manifests (
    repository        TEXT COLLATE "C" NOT NULL REFERENCES repositories(name) ON DELETE CASCADE,
    digest            TEXT COLLATE "C" NOT NULL,
    media_type        TEXT   NOT NULL,
    artifact_type     TEXT   NOT NULL DEFAULT '',
    config_media_type TEXT   NOT NULL DEFAULT '',
    config_digest     TEXT   NOT NULL DEFAULT '',
    subject           TEXT COLLATE "C" NOT NULL DEFAULT '',
    annotations       TEXT   NOT NULL DEFAULT '',
    size              BIGINT NOT NULL,
    -- the sum of config and layer sizes, or of the children's for an index (ECR's imageSizeInBytes)
    image_size        BIGINT NOT NULL DEFAULT 0,
    content           BYTEA  NOT NULL,
    pushed_at         BIGINT NOT NULL,
    last_pulled_at    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX manifests_subject ON manifests(repository, subject) WHERE subject <> '';

-- What a manifest references: blobs (config, layers) and, for an index, child manifests.
CREATE TABLE manifest_references (
    repository TEXT COLLATE "C" NOT NULL,
    manifest   TEXT COLLATE "C" NOT NULL,
    target     TEXT COLLATE "C" NOT NULL,
    kind       TEXT NOT NULL, -- 'config', 'layer', 'manifest'
    position   INTEGER NOT NULL,
    PRIMARY KEY (repository, manifest, position),
    FOREIGN KEY (repository, manifest) REFERENCES manifests(repository, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_references_target ON manifest_references(repository, target);
-- garbage collection asks whether any repository's manifest names a blob
CREATE INDEX manifest_references_blob ON manifest_references(target) WHERE kind IN ('config', 'layer');

CREATE TABLE tags (
    repository TEXT COLLATE "C" NOT NULL,
    tag        TEXT COLLATE "C" NOT NULL,
    digest     TEXT COLLATE "C" NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repository, tag),
    FOREIGN KEY (repository, digest) REFERENCES manifests(repository, digest) ON DELETE CASCADE
);
CREATE INDEX tags_digest ON tags(repository, digest);

CREATE TABLE uploads (
    id         TEXT COLLATE "C" PRIMARY KEY,
    repository TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX uploads_updated ON uploads(updated_at);

-- Small registry-wide values: the scanning configuration, signing keys, and the like.
CREATE TABLE settings (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);

-- name is the key's IAM user name; preset names one of internal/auth's presets, or policy holds
-- an IAM policy document.
CREATE TABLE access_keys (
    id          TEXT COLLATE "C" PRIMARY KEY,
    secret      TEXT   NOT NULL,
    description TEXT   NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    name        TEXT COLLATE "C" NOT NULL UNIQUE,
    preset      TEXT   NOT NULL DEFAULT '',
    policy      TEXT   NOT NULL DEFAULT ''
);
