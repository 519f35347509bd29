-- The inverted index from package keys to inventory parts as posting lists: one row per key and
-- chunk of 1,024 part ids (part_id >> 10, store.PartChunkBits) holding the chunk's part ids of
-- the key, instead of one row per key and part (0051), whose 12 bytes were mostly the row's own
-- overhead: 1.4 bytes a pair on the bench's store.
--
-- part_ids: the sorted, distinct ids as uvarint deltas, the first from the chunk's first id
-- (store.EncodePartIDs); never empty, the row goes with its last id. A write reads, changes and
-- rewrites the row.
CREATE TABLE inventory_key_postings (
    key_id   INTEGER NOT NULL,
    chunk    INTEGER NOT NULL,
    part_ids BLOB NOT NULL,
    PRIMARY KEY (key_id, chunk)
) WITHOUT ROWID;

-- The rows of 0051 converted in SQL. A delta is below 1,024, so its uvarint is one byte under
-- 128 and two otherwise. The window follows the old table's order (key_id, part_id), so it
-- needs no sort; a delta is from the previous id of the same chunk or else the chunk's first.
INSERT INTO inventory_key_postings(key_id, chunk, part_ids)
SELECT key_id, chunk, unhex(group_concat(CASE WHEN d < 128 THEN printf('%02X', d)
        ELSE printf('%02X%02X', 128 | (d & 127), d >> 7) END, '' ORDER BY part_id))
FROM (SELECT key_id, part_id, part_id >> 10 AS chunk,
        part_id - CASE WHEN prev >> 10 = part_id >> 10 THEN prev ELSE (part_id >> 10) << 10 END AS d
    FROM (SELECT key_id, part_id, lag(part_id) OVER (PARTITION BY key_id ORDER BY part_id) AS prev
        FROM inventory_part_keys))
GROUP BY key_id, chunk;

DROP TABLE inventory_part_keys;
