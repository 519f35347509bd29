-- The inverted index from package keys to image inventories kept per part instead of per
-- inventory: a shared base image's keys were indexed once per image (inventory_packages), and
-- are now indexed once per part, found through the part's links. Inventories written before
-- keep their inventory_packages rows, which are still read; new ones write none.
--
-- key_ids: the part's package key ids, sorted, as uvarint deltas (store.EncodeKeyIDs), read to
-- delete the part's inventory_part_keys rows with it. NULL for a part stored before, whose keys
-- are unknown (its gzip'd packages cannot be read in SQL): filled when an inventory links it.
ALTER TABLE inventory_parts ADD COLUMN key_ids BLOB;
CREATE INDEX inventory_parts_unkeyed ON inventory_parts(id) WHERE key_ids IS NULL;

CREATE TABLE inventory_part_keys (
    key_id  INTEGER NOT NULL,
    part_id INTEGER NOT NULL,
    PRIMARY KEY (key_id, part_id)
) WITHOUT ROWID;
