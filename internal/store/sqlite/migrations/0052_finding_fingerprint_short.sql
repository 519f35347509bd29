-- A finding's fingerprint is now the first 8 bytes of its detail's SHA-256 (scanning
-- FindingFingerprint: 16 hex digits), not all 32: it only tells a finding's detail from its
-- previous one, and it was 32 bytes of every finding row (issue 15). Stored fingerprints keep
-- their first 8 bytes, which is what the scanner computes for the same detail, so a
-- re-evaluation after the upgrade sees no change (scanning.SameFingerprint also takes a whole
-- one, written by a node not yet upgraded). Fingerprints of another shape are kept as written.
UPDATE finding_rows SET fingerprint = substr(fingerprint, 1, 8)
    WHERE typeof(fingerprint) = 'blob' AND length(fingerprint) = 32;
UPDATE finding_rows SET fingerprint = unhex(substr(fingerprint, 1, 16))
    WHERE typeof(fingerprint) = 'text' AND length(fingerprint) = 64 AND coalesce(lower(hex(unhex(fingerprint))) = fingerprint, 0);
