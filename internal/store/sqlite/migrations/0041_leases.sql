-- Leases: a background duty (garbage collection, lifecycle, advisory sync, upload purge) or a
-- webhook's delivery is done by one node at a time when several share the store. A lease is
-- held by one holder until expires_at (Unix milliseconds); the holder renews it, anyone takes
-- it once it has expired.
CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
