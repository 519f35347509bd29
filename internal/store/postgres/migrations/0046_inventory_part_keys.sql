-- The inverted index from package keys to image inventories kept per part instead of per
-- inventory: a shared base image's keys were indexed once per image (inventory_packages), and
-- are now indexed once per part, in the part's row (key_ids && / @> through the GIN index) and
-- found through the part's links. Inventories written before keep their inventory_packages
-- rows, which are still read; new ones write none.
--
-- key_ids is NULL for a part stored before, whose keys are unknown (its gzip'd packages cannot
-- be read in SQL): filled when an inventory links it.
ALTER TABLE inventory_parts ADD COLUMN key_ids INT4[];
CREATE INDEX inventory_parts_key_ids ON inventory_parts USING GIN (key_ids);
CREATE INDEX inventory_parts_unkeyed ON inventory_parts(id) WHERE key_ids IS NULL;
