-- Events: the outbox and each webhook's delivery cursor. Times are Unix milliseconds.

-- An identity column never hands a number out twice, even after the rows that held the highest
-- ones are pruned: cursors compare against it. Numbers are handed out before commit, so
-- writers take an advisory lock until they commit (store/postgres appendOutboxTx) and readers
-- never see a smaller number appear behind a larger one.
CREATE TABLE outbox (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT COLLATE "C" NOT NULL UNIQUE,
    detail_type TEXT   NOT NULL,
    source      TEXT   NOT NULL,
    account     TEXT   NOT NULL,
    region      TEXT   NOT NULL,
    time        BIGINT NOT NULL,
    resources   TEXT   NOT NULL, -- JSON array of strings
    detail      TEXT   NOT NULL, -- JSON object
    created_at  BIGINT NOT NULL
);
CREATE INDEX outbox_created ON outbox(created_at);

-- One row per configured webhook: every event with seq <= position has been delivered to it
-- (acknowledged with a 2xx). A webhook delivers in seq order, so this one number is its whole state.
CREATE TABLE webhook_cursors (
    webhook    TEXT COLLATE "C" PRIMARY KEY, -- the webhook's stable name (its URL unless configured)
    position   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
