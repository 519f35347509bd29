-- Inventories are keyed by the fingerprint of the extractors that read them
-- (inventory.Fingerprint: the layer walk's version, osv-scalibr's module version, each plugin's
-- name and version), not by a hand-bumped integer, so that an upgrade reads layers again.
-- Layer inventories cached under the integer can never match a fingerprint: drop them. Image
-- inventories stay (continuous scanning reads them); '' marks those written before.
DELETE FROM layer_inventories;
ALTER TABLE layer_inventories DROP COLUMN schema_version;
ALTER TABLE layer_inventories ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE image_inventories DROP COLUMN schema_version;
ALTER TABLE image_inventories ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
