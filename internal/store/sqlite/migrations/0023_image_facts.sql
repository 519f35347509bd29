-- What the scanner recorded of the image (architecture, author, platform: JSON it owns) when it
-- wrote the image's findings, which carry the same facts: a re-evaluation reads them here
-- instead of from a finding's detail. '' when not known.
ALTER TABLE image_scans ADD COLUMN image_facts TEXT NOT NULL DEFAULT '';

-- Scans written before: the facts of the image's first ACTIVE finding, which all its ACTIVE
-- findings share.
UPDATE image_scans SET image_facts = coalesce((
    SELECT json_extract(d.detail, '$.image') FROM findings f JOIN finding_details d ON d.finding_id = f.id
    WHERE f.repository = image_scans.repository AND f.image_digest = image_scans.image_digest AND f.scan_type = image_scans.scan_type
        AND f.status = 'ACTIVE' AND json_type(d.detail, '$.image') = 'object'
    ORDER BY f.vulnerability_id LIMIT 1), '');
