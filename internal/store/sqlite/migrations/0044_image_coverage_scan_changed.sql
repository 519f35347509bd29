-- image_coverage_scan_update (0042) fired on every write of an image's scan state, as
-- PutImageScan's upsert sets every column: a re-evaluation, which rewrites the scan state of a
-- thousand images with the same status, description and inventory, updated each image's
-- coverage row twice (and its index) and looked up its inventory, for nothing. It now fires
-- only when what image_coverage holds of the scan can change; otherwise the row, kept exact
-- since, already says it.
DROP TRIGGER image_coverage_scan_update;

CREATE TRIGGER image_coverage_scan_update AFTER UPDATE OF repository, image_digest, scan_type, status, description, inventory_id ON image_scans
WHEN (OLD.scan_type = 'ENHANCED' OR NEW.scan_type = 'ENHANCED')
    AND (OLD.repository IS NOT NEW.repository OR OLD.image_digest IS NOT NEW.image_digest OR OLD.scan_type IS NOT NEW.scan_type
        OR OLD.status IS NOT NEW.status OR substr(OLD.description, 1, 32) IS NOT substr(NEW.description, 1, 32)
        OR OLD.inventory_id IS NOT NEW.inventory_id)
BEGIN
    UPDATE image_coverage SET status = NULL, description_head = NULL, no_packages = 0
    WHERE OLD.scan_type = 'ENHANCED' AND repository = OLD.repository AND digest = OLD.image_digest;
    UPDATE image_coverage SET status = NEW.status, description_head = substr(NEW.description, 1, 32),
        no_packages = coalesce((SELECT os = '' AND package_count = 0 FROM image_inventories WHERE id = NEW.inventory_id), 0)
    WHERE NEW.scan_type = 'ENHANCED' AND repository = NEW.repository AND digest = NEW.image_digest;
END;
