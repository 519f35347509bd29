-- The findings' uniqueness kept by a 16-byte hash instead of the four texts (issue 15 point 5:
-- the store within 2x of SQLite's). The UNIQUE (repository, image_digest, scan_type,
-- vulnerability_id) index held about 120 bytes per finding, its image columns repeated for each
-- of an image's ~65 findings (a B-tree deduplicates only whole equal keys, which a unique one
-- never has).
--
-- Now: the image's findings are found through findings_image (repository, image_digest,
-- scan_type), not unique, so an image's entries deduplicate into one posting list (a few bytes a
-- finding); the queries by image, repository or image and vulnerability read it as they read
-- the prefix of the old index. The uniqueness is kept by finding_key, the first 16 bytes of the
-- SHA-256 of the four texts separated by NUL bytes (which a text never holds, so the input is
-- unambiguous): the finding ARN's own suffix (scanning.FindingARN), which already names a
-- finding by those 16 bytes. The writer's upsert names the same expression (findings.go).

-- convert_to is STABLE only because it depends on the database's encoding, fixed for the life of
-- a database; over the same texts it gives the same bytes, so the function is immutable.
CREATE FUNCTION finding_key(repository TEXT, image_digest TEXT, scan_type TEXT, vulnerability_id TEXT) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT substring(sha256(convert_to(repository, 'UTF8') || '\x00'::bytea || convert_to(image_digest, 'UTF8') || '\x00'::bytea
        || convert_to(scan_type, 'UTF8') || '\x00'::bytea || convert_to(vulnerability_id, 'UTF8')) FROM 1 FOR 16)
$$;

CREATE UNIQUE INDEX findings_key ON findings (finding_key(repository, image_digest, scan_type, vulnerability_id));
CREATE INDEX findings_image ON findings (repository, image_digest, scan_type);

-- The UNIQUE constraint of 0022, under the name PostgreSQL gave it.
DO $$
DECLARE
    c name;
BEGIN
    SELECT conname INTO STRICT c FROM pg_constraint WHERE conrelid = 'findings'::regclass AND contype = 'u';
    EXECUTE format('ALTER TABLE findings DROP CONSTRAINT %I', c);
END $$;
