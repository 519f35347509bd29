-- An image's findings as the scanning service reads them (every column but the detail), in one
-- index range: a re-evaluation reads the findings of a thousand images without a table lookup
-- per finding. The row id (findings.id) is in every index entry.
CREATE INDEX findings_image ON findings(repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score,
    fingerprint, package_keys, first_observed_at, last_observed_at, updated_at);
