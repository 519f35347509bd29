-- Events: the outbox and each webhook's delivery cursor. Times are Unix milliseconds.

-- AUTOINCREMENT so that a sequence number is never reused, even after the rows that held the
-- highest ones are pruned: cursors compare against it.
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    detail_type TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    account     TEXT    NOT NULL,
    region      TEXT    NOT NULL,
    time        INTEGER NOT NULL,
    resources   TEXT    NOT NULL, -- JSON array of strings
    detail      TEXT    NOT NULL, -- JSON object
    created_at  INTEGER NOT NULL
);
CREATE INDEX outbox_created ON outbox(created_at);

-- One row per configured webhook: every event with seq <= position has been delivered to it
-- (acknowledged with a 2xx). A webhook delivers in seq order, so this one number is its whole state.
CREATE TABLE webhook_cursors (
    webhook    TEXT    PRIMARY KEY, -- the webhook's stable name (its URL unless configured)
    position   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
