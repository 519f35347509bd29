-- A finding's fingerprint is now the first 8 bytes of its detail's SHA-256 as 16 hex digits
-- (scanning.FindingFingerprint; SQLite's 0052): a stored whole one (64 hex digits) keeps its
-- first 16, what the scanner computes for the same detail, so a re-evaluation after the upgrade
-- sees no change (scanning.SameFingerprint also takes a whole one, written by a node not yet
-- upgraded). Fingerprints of another shape are kept as written.
UPDATE findings SET fingerprint = left(fingerprint, 16) WHERE fingerprint ~ '^[0-9a-f]{64}$';
