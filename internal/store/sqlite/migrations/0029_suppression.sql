-- Suppression rules (Inspector's filters, internal/suppression). criteria is the domain's
-- findings.Criteria as JSON; the store compiles it to SQL with the finding queries' compiler.
CREATE TABLE suppression_rules (
    id          INTEGER PRIMARY KEY,  -- the listing order
    arn         TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL UNIQUE,
    action      TEXT    NOT NULL,     -- SUPPRESS or NONE
    description TEXT    NOT NULL DEFAULT '',
    reason      TEXT    NOT NULL DEFAULT '',
    criteria    TEXT    NOT NULL,
    tags        TEXT    NOT NULL DEFAULT '{}',
    owner       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Whether a SUPPRESS rule matches the finding: stored, not computed per read, so that the
-- finding queries read a column whatever the rules (an ACTIVE finding with it set shows as
-- SUPPRESSED). Recomputed for every finding when a rule changes and for each finding written
-- with its detail.
ALTER TABLE findings ADD COLUMN suppressed INTEGER NOT NULL DEFAULT 0;
-- The suppressed findings, which a rule change compares with what the rules now match.
CREATE INDEX findings_suppressed ON findings(id) WHERE suppressed = 1;
