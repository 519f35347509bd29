-- Image inventories in content-addressed parts: one part per layer (the packages that layer
-- added that are in the image), kept once however many images hold the layer, so an image
-- built on a shared base stores the base's packages once. An image inventory's row then keeps
-- only a header naming its parts by hash (internal/scanning/storedinventory.go); rows written
-- before hold the whole inventory, which is still read (gzip cannot be split in SQL).
CREATE TABLE inventory_parts (
    id   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash BYTEA NOT NULL UNIQUE,  -- SHA-256 of data
    data BYTEA NOT NULL
);

-- Which inventory holds which part: a part no inventory links is deleted with the last
-- inventory that linked it (PutImageInventory replacing one, PruneInventories).
CREATE TABLE inventory_part_links (
    inventory_id BIGINT NOT NULL,
    part_id      BIGINT NOT NULL REFERENCES inventory_parts(id),
    PRIMARY KEY (inventory_id, part_id)
);
CREATE INDEX inventory_part_links_part ON inventory_part_links(part_id);
