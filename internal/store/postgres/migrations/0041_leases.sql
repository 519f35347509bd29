-- Leases: a background duty (garbage collection, lifecycle, advisory sync, upload purge) or a
-- webhook's delivery is done by one node at a time when several nodes share the store. A
-- lease is held by one holder until expires_at, on the database's clock (so the nodes' clocks
-- need not agree); the holder renews it, anyone takes it once it has expired.
CREATE TABLE leases (
    name       TEXT        PRIMARY KEY,
    holder     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
