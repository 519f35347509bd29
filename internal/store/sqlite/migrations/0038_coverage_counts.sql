-- Coverage counted in the store (CoverageCounts: ListCoverageStatistics, the console's
-- overview, a ListCoverage filtered by scan status): a pass over the images reading indexes
-- only. The images in (repository, digest) order with their push and pull times (a manifest's
-- row holds its content first); each image's ENHANCED scan state; the inventories that found
-- nothing (few).
CREATE INDEX manifests_coverage ON manifests(repository, digest, pushed_at, last_pulled_at)
    WHERE media_type IN ('application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json')
    AND config_media_type IN ('application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json')
    AND artifact_type = '';
CREATE INDEX image_scans_coverage ON image_scans(repository, image_digest, scan_type, status, inventory_id, description);
CREATE INDEX image_inventories_empty ON image_inventories(id) WHERE os = '' AND package_count = 0;
