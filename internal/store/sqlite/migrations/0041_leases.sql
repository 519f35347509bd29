-- Leases: a background duty that one node of several runs at a time (garbage collection, a
-- webhook's deliveries, ...) is held by the node named in holder until expires_at (Unix
-- milliseconds), renewed while it runs, taken over by another node once it expires.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
