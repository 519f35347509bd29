-- When every ACTIVE finding of an image was last observed. A re-evaluation or a rescan observes
-- each ACTIVE finding of the image again; rather than rewriting every finding row (and its
-- detail, in the same row) to move last_observed_at, the store records the time here once.
-- A finding's lastObservedAt is therefore, while it is ACTIVE, the later of its own
-- last_observed_at and this column; a finding written since (new, changed, closed) carries its
-- own time. Read findings through queryFindings (scanning.go), which applies the rule; a
-- query that reads last_observed_at itself must apply it too.
ALTER TABLE image_scans ADD COLUMN findings_observed_at INTEGER NOT NULL DEFAULT 0;
