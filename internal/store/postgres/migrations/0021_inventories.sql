-- Scanning, second part: cached inventories and the package index continuous scanning uses
-- (SQLite's 0020 with 0025's fingerprints), and the usage record. Times are Unix milliseconds.

-- What one layer contributes, content addressed: a layer is read once for every image holding it.
CREATE TABLE layer_inventories (
    layer_digest TEXT COLLATE "C" NOT NULL,
    mode         TEXT   NOT NULL,  -- BASIC (OS packages) or ENHANCED (OS and language packages)
    fingerprint  TEXT   NOT NULL,  -- inventory.Fingerprint of the extractors that read it
    inventory    BYTEA  NOT NULL,  -- gzip'd JSON
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (layer_digest, mode)
);

-- An image's merged inventory, keyed by manifest digest: the same in every repository holding it.
CREATE TABLE image_inventories (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    image_digest  TEXT COLLATE "C" NOT NULL,
    mode          TEXT    NOT NULL,
    fingerprint   TEXT    NOT NULL,
    os            TEXT    NOT NULL DEFAULT '',  -- OSV ecosystem of the OS packages, '' when none was found
    package_count INTEGER NOT NULL,
    inventory     BYTEA   NOT NULL,             -- gzip'd JSON
    created_at    BIGINT  NOT NULL,
    UNIQUE (image_digest, mode)
);

CREATE TABLE package_keys (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ecosystem TEXT COLLATE "C" NOT NULL,
    name      TEXT COLLATE "C" NOT NULL,
    UNIQUE (ecosystem, name)
);
-- a bare ecosystem's key finds its releases' packages by name ("Debian" -> "Debian:12")
CREATE INDEX package_keys_name ON package_keys(name, ecosystem);

-- The inverted index from package to image inventories: continuous scanning re-evaluates only
-- the images that hold a package whose advisories changed.
CREATE TABLE inventory_packages (
    key_id       BIGINT NOT NULL,
    inventory_id BIGINT NOT NULL,
    PRIMARY KEY (key_id, inventory_id)
);
CREATE INDEX inventory_packages_inventory ON inventory_packages(inventory_id);

-- One row per scan performed, for `lading admin usage`.
CREATE TABLE scan_usage (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository   TEXT COLLATE "C" NOT NULL,
    image_digest TEXT COLLATE "C" NOT NULL,
    scan_type    TEXT   NOT NULL,
    kind         TEXT   NOT NULL,  -- INITIAL or RESCAN
    at           BIGINT NOT NULL
);
CREATE INDEX scan_usage_at ON scan_usage(at);

CREATE INDEX manifests_digest ON manifests(digest);
CREATE INDEX manifest_references_layer ON manifest_references(target) WHERE kind = 'layer';
