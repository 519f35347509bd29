-- Coverage counted from one small table (CoverageCounts: the console's overview,
-- ListCoverageStatistics, a ListCoverage filtered by scan status): a row per image coverage
-- lists (the manifests of imageCondition, as manifests_coverage, 0038) with its push and pull
-- times and its ENHANCED scan's state: status (NULL: no such scan), the description's first 32
-- characters (CoverageCounts classes a description by a prefix no longer than that) and whether
-- its inventory found nothing. Kept exact by the triggers below in the transaction of every
-- write of manifests, image_scans and image_inventories; a pass over an index of its 100,000
-- rows replaces a join of three tables' indexes.
CREATE TABLE image_coverage (
    repository       TEXT    NOT NULL,
    digest           TEXT    NOT NULL,
    pushed_at        INTEGER NOT NULL,
    last_pulled_at   INTEGER NOT NULL,
    status           TEXT,
    description_head TEXT,
    no_packages      INTEGER NOT NULL DEFAULT 0,
    -- A rowid table: the index below then holds a rowid, not the 71-character digest, and is
    -- half the size (the pass over it reads about 2,000 pages of 100,000 images, not 3,700).
    UNIQUE (repository, digest)
);

INSERT INTO image_coverage
    SELECT m.repository, m.digest, m.pushed_at, m.last_pulled_at, s.status, substr(s.description, 1, 32),
        coalesce(ii.os = '' AND ii.package_count = 0, 0)
    FROM manifests m
    LEFT JOIN image_scans s ON s.repository = m.repository AND s.image_digest = m.digest AND s.scan_type = 'ENHANCED'
    LEFT JOIN image_inventories ii ON ii.id = s.inventory_id
    WHERE m.media_type IN ('application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json')
    AND m.config_media_type IN ('application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json')
    AND m.artifact_type = '';

-- CoverageCounts groups by these columns in this order: a pass over the index, without a sort.
CREATE INDEX image_coverage_state ON image_coverage(repository, status, description_head, no_packages, pushed_at, last_pulled_at);

-- A manifest is inserted (never replaced: ON CONFLICT DO NOTHING); its scan may be there already.
CREATE TRIGGER image_coverage_manifest_insert AFTER INSERT ON manifests
WHEN NEW.media_type IN ('application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json')
    AND NEW.config_media_type IN ('application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json')
    AND NEW.artifact_type = ''
BEGIN
    INSERT INTO image_coverage
        SELECT NEW.repository, NEW.digest, NEW.pushed_at, NEW.last_pulled_at, s.status, substr(s.description, 1, 32),
            coalesce(ii.os = '' AND ii.package_count = 0, 0)
        FROM (SELECT 1) LEFT JOIN image_scans s ON s.repository = NEW.repository AND s.image_digest = NEW.digest AND s.scan_type = 'ENHANCED'
        LEFT JOIN image_inventories ii ON ii.id = s.inventory_id;
END;

-- Also fired by the cascade of a repository's deletion (foreign keys are on).
CREATE TRIGGER image_coverage_manifest_delete AFTER DELETE ON manifests
BEGIN
    DELETE FROM image_coverage WHERE repository = OLD.repository AND digest = OLD.digest;
END;

-- A pull (or a push time changed): the row's times.
CREATE TRIGGER image_coverage_manifest_times AFTER UPDATE OF pushed_at, last_pulled_at ON manifests
WHEN OLD.repository = NEW.repository AND OLD.digest = NEW.digest AND OLD.media_type = NEW.media_type
    AND OLD.config_media_type = NEW.config_media_type AND OLD.artifact_type = NEW.artifact_type
BEGIN
    UPDATE image_coverage SET pushed_at = NEW.pushed_at, last_pulled_at = NEW.last_pulled_at
    WHERE repository = NEW.repository AND digest = NEW.digest;
END;

-- The key and media types are never updated; a change of them is followed all the same (the
-- WHEN clauses of the two triggers exclude each other).
CREATE TRIGGER image_coverage_manifest_update AFTER UPDATE OF repository, digest, media_type, config_media_type, artifact_type,
    pushed_at, last_pulled_at ON manifests
WHEN OLD.repository <> NEW.repository OR OLD.digest <> NEW.digest OR OLD.media_type <> NEW.media_type
    OR OLD.config_media_type <> NEW.config_media_type OR OLD.artifact_type <> NEW.artifact_type
BEGIN
    DELETE FROM image_coverage WHERE repository = OLD.repository AND digest = OLD.digest;
    INSERT INTO image_coverage
        SELECT NEW.repository, NEW.digest, NEW.pushed_at, NEW.last_pulled_at, s.status, substr(s.description, 1, 32),
            coalesce(ii.os = '' AND ii.package_count = 0, 0)
        FROM (SELECT 1) LEFT JOIN image_scans s ON s.repository = NEW.repository AND s.image_digest = NEW.digest AND s.scan_type = 'ENHANCED'
        LEFT JOIN image_inventories ii ON ii.id = s.inventory_id
        WHERE NEW.media_type IN ('application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json')
        AND NEW.config_media_type IN ('application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json')
        AND NEW.artifact_type = '';
END;

CREATE TRIGGER image_coverage_scan_insert AFTER INSERT ON image_scans
WHEN NEW.scan_type = 'ENHANCED'
BEGIN
    UPDATE image_coverage SET status = NEW.status, description_head = substr(NEW.description, 1, 32),
        no_packages = coalesce((SELECT os = '' AND package_count = 0 FROM image_inventories WHERE id = NEW.inventory_id), 0)
    WHERE repository = NEW.repository AND digest = NEW.image_digest;
END;

-- The ON CONFLICT DO UPDATE of PutImageScan, a change of scan state: the old row's image loses
-- its scan, the new row's gets it (the same image but for an update of the key).
CREATE TRIGGER image_coverage_scan_update AFTER UPDATE OF repository, image_digest, scan_type, status, description, inventory_id ON image_scans
WHEN OLD.scan_type = 'ENHANCED' OR NEW.scan_type = 'ENHANCED'
BEGIN
    UPDATE image_coverage SET status = NULL, description_head = NULL, no_packages = 0
    WHERE OLD.scan_type = 'ENHANCED' AND repository = OLD.repository AND digest = OLD.image_digest;
    UPDATE image_coverage SET status = NEW.status, description_head = substr(NEW.description, 1, 32),
        no_packages = coalesce((SELECT os = '' AND package_count = 0 FROM image_inventories WHERE id = NEW.inventory_id), 0)
    WHERE NEW.scan_type = 'ENHANCED' AND repository = NEW.repository AND digest = NEW.image_digest;
END;

CREATE TRIGGER image_coverage_scan_delete AFTER DELETE ON image_scans
WHEN OLD.scan_type = 'ENHANCED'
BEGIN
    UPDATE image_coverage SET status = NULL, description_head = NULL, no_packages = 0
    WHERE repository = OLD.repository AND digest = OLD.image_digest;
END;

-- An inventory is replaced in place (PutImageInventory's upsert keeps its id) or pruned; one
-- inserted may carry an id a scan already names. The scans naming it: image_scans_inventory.
CREATE TRIGGER image_coverage_inventory_insert AFTER INSERT ON image_inventories
BEGIN
    UPDATE image_coverage SET no_packages = (NEW.os = '' AND NEW.package_count = 0)
    WHERE (repository, digest) IN (SELECT repository, image_digest FROM image_scans WHERE inventory_id = NEW.id AND scan_type = 'ENHANCED');
END;

CREATE TRIGGER image_coverage_inventory_update AFTER UPDATE OF id, os, package_count ON image_inventories
BEGIN
    UPDATE image_coverage SET no_packages = 0
    WHERE (repository, digest) IN (SELECT repository, image_digest FROM image_scans WHERE inventory_id = OLD.id AND scan_type = 'ENHANCED');
    UPDATE image_coverage SET no_packages = (NEW.os = '' AND NEW.package_count = 0)
    WHERE (repository, digest) IN (SELECT repository, image_digest FROM image_scans WHERE inventory_id = NEW.id AND scan_type = 'ENHANCED');
END;

CREATE TRIGGER image_coverage_inventory_delete AFTER DELETE ON image_inventories
BEGIN
    UPDATE image_coverage SET no_packages = 0
    WHERE (repository, digest) IN (SELECT repository, image_digest FROM image_scans WHERE inventory_id = OLD.id AND scan_type = 'ENHANCED');
END;
