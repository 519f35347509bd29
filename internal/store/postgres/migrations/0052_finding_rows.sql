-- Findings stored as SQLite stores them since its 0045 and 0053 (issue 15 point 5: the store
-- within 2x of SQLite's): each row names its image (repository, digest, scan type), its
-- vulnerability, its ARN's prefix, its package keys and its vulnerability's facts (title,
-- source, vendor severity, aliases, related) by integer ids into tables holding each once, and
-- keeps of its ARN only the 16-byte key it ends with. At 100,000 images a findings row was about
-- 440 bytes, 370 of them these texts repeated in the rows of every image.
--
-- findings becomes a view with the columns the table had, so the queries read it unchanged;
-- writes through it are turned into writes of finding_rows by the triggers below, and the
-- store's frequent writes go to finding_rows directly. Dictionary rows are never deleted: they
-- are few (one per image, vulnerability, distinct fact set) and another row may take them at
-- any time.

CREATE TABLE scan_targets (
    id           INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository   TEXT COLLATE "C" NOT NULL,
    image_digest TEXT COLLATE "C" NOT NULL,
    scan_type    TEXT COLLATE "C" NOT NULL,
    UNIQUE (repository, image_digest, scan_type)
);

CREATE TABLE finding_vulnerabilities (
    id               INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vulnerability_id TEXT COLLATE "C" NOT NULL UNIQUE
);

CREATE TABLE finding_arn_prefixes (
    id     INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    prefix TEXT COLLATE "C" NOT NULL UNIQUE
);

-- Package key lists and fact sets can be longer than a B-tree entry may be: they are unique by
-- their hash, and equal when their columns are. Each part is hashed after its length, so that
-- no two lists of parts hash the same text, whatever characters the parts hold.
CREATE FUNCTION finding_text_key(VARIADIC parts TEXT[]) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT sha256(convert_to(string_agg(length(p) || ':' || p, '' ORDER BY n), 'UTF8')) FROM unnest(parts) WITH ORDINALITY AS u(p, n)
$$;

CREATE TABLE finding_key_sets (
    id   INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    keys TEXT NOT NULL
);
CREATE UNIQUE INDEX finding_key_sets_keys ON finding_key_sets (finding_text_key(keys));

CREATE TABLE finding_facts (
    id              INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title           TEXT COLLATE "C" NOT NULL,
    source          TEXT COLLATE "C" NOT NULL,
    vendor_severity TEXT COLLATE "C" NOT NULL,
    aliases         JSONB NOT NULL,
    related         JSONB NOT NULL
);
CREATE UNIQUE INDEX finding_facts_all ON finding_facts
    (finding_text_key(title, source, vendor_severity, aliases::text, related::text));

-- The id of a dictionary row, written when new. A concurrent writer of the same row makes the
-- insert a serialization failure, which the store runs again (postgres.go's tx).
CREATE FUNCTION finding_target_ref(repo TEXT, dgst TEXT, st TEXT) RETURNS integer LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    r integer;
BEGIN
    SELECT id INTO r FROM scan_targets WHERE repository = repo AND image_digest = dgst AND scan_type = st;
    IF r IS NULL THEN
        INSERT INTO scan_targets(repository, image_digest, scan_type) VALUES (repo, dgst, st) RETURNING id INTO r;
    END IF;
    RETURN r;
END $$;

CREATE FUNCTION finding_vulnerability_ref(v TEXT) RETURNS integer LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    r integer;
BEGIN
    SELECT id INTO r FROM finding_vulnerabilities WHERE vulnerability_id = v;
    IF r IS NULL THEN
        INSERT INTO finding_vulnerabilities(vulnerability_id) VALUES (v) RETURNING id INTO r;
    END IF;
    RETURN r;
END $$;

CREATE FUNCTION finding_arn_prefix_ref(p TEXT) RETURNS integer LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    r integer;
BEGIN
    SELECT id INTO r FROM finding_arn_prefixes WHERE prefix = p;
    IF r IS NULL THEN
        INSERT INTO finding_arn_prefixes(prefix) VALUES (p) RETURNING id INTO r;
    END IF;
    RETURN r;
END $$;

-- NULL keys are no list (packageKeysColumn's unknown).
CREATE FUNCTION finding_key_set_ref(k TEXT) RETURNS integer LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    r integer;
BEGIN
    IF k IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT id INTO r FROM finding_key_sets WHERE finding_text_key(keys) = finding_text_key(k) AND keys = k;
    IF r IS NULL THEN
        INSERT INTO finding_key_sets(keys) VALUES (k) RETURNING id INTO r;
    END IF;
    RETURN r;
END $$;

CREATE FUNCTION finding_facts_ref(t TEXT, s TEXT, vs TEXT, a JSONB, rel JSONB) RETURNS integer LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    r integer;
BEGIN
    SELECT id INTO r FROM finding_facts
        WHERE finding_text_key(title, source, vendor_severity, aliases::text, related::text) = finding_text_key(t, s, vs, a::text, rel::text)
            AND title = t AND source = s AND vendor_severity = vs AND aliases = a AND related = rel;
    IF r IS NULL THEN
        INSERT INTO finding_facts(title, source, vendor_severity, aliases, related) VALUES (t, s, vs, a, rel) RETURNING id INTO r;
    END IF;
    RETURN r;
END $$;

-- An ARN made by scanning.FindingARN ends with the finding's key as 32 lowercase hex digits:
-- the row keeps those as 16 bytes, and the rest as a prefix; another ARN is all prefix, with
-- an empty key. findings.go's splitARN splits as these do. (Plain expressions, which the
-- planner inlines.)
CREATE FUNCTION finding_arn_prefix(arn TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN right(arn, 32) ~ '^[0-9a-f]{32}$' THEN left(arn, -32) ELSE arn END
$$;
CREATE FUNCTION finding_arn_key(arn TEXT) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN right(arn, 32) ~ '^[0-9a-f]{32}$' THEN decode(right(arn, 32), 'hex') ELSE '\x'::bytea END
$$;

CREATE TABLE finding_rows (
    id                BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    score             DOUBLE PRECISION NOT NULL DEFAULT 0,
    first_observed_at BIGINT  NOT NULL,
    last_observed_at  BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    target_id         INTEGER NOT NULL,  -- the foreign keys are added after the rows are copied
    vulnerability     INTEGER NOT NULL,
    arn_prefix        INTEGER NOT NULL,
    package_keys      INTEGER,
    facts             INTEGER,  -- NULL: the detail's facts were never written
    head_id           INTEGER,  -- the detail's parts (0050)
    tail_id           INTEGER,
    set_id            INTEGER,
    layer_id          INTEGER,
    suppressed        BOOLEAN NOT NULL DEFAULT false,
    arn_key           BYTEA   NOT NULL,
    status            TEXT COLLATE "C" NOT NULL,  -- ACTIVE or CLOSED
    severity          TEXT COLLATE "C" NOT NULL,
    fingerprint       TEXT    NOT NULL,
    fix_available     TEXT COLLATE "C" NOT NULL DEFAULT 'NO'
);

INSERT INTO scan_targets(repository, image_digest, scan_type)
    SELECT DISTINCT repository, image_digest, scan_type FROM findings ORDER BY 1, 2, 3;
INSERT INTO finding_vulnerabilities(vulnerability_id) SELECT DISTINCT vulnerability_id FROM findings ORDER BY 1;
INSERT INTO finding_arn_prefixes(prefix) SELECT DISTINCT finding_arn_prefix(arn) FROM findings ORDER BY 1;
INSERT INTO finding_key_sets(keys) SELECT DISTINCT package_keys FROM findings WHERE package_keys IS NOT NULL ORDER BY 1;
INSERT INTO finding_facts(title, source, vendor_severity, aliases, related)
    SELECT DISTINCT title, source, vendor_severity, aliases, related FROM findings ORDER BY 1, 2, 3, 4, 5;

-- Hash joins: the dictionaries are new, and the planner, misjudging how many findings an image
-- has, would otherwise look each one up in a nested loop (minutes at 700,000 findings).
SET LOCAL enable_nestloop = off;
INSERT INTO finding_rows(id, score, first_observed_at, last_observed_at, updated_at, target_id, vulnerability, arn_prefix,
        package_keys, facts, head_id, tail_id, set_id, layer_id, suppressed, arn_key, status, severity, fingerprint, fix_available)
    SELECT f.id, f.score, f.first_observed_at, f.last_observed_at, f.updated_at, t.id, v.id, p.id, k.id, x.id,
        f.head_id, f.tail_id, f.set_id, f.layer_id, f.suppressed, finding_arn_key(f.arn), f.status, f.severity, f.fingerprint, f.fix_available
    FROM findings f
    JOIN scan_targets t ON t.repository = f.repository AND t.image_digest = f.image_digest AND t.scan_type = f.scan_type
    JOIN finding_vulnerabilities v ON v.vulnerability_id = f.vulnerability_id
    JOIN finding_arn_prefixes p ON p.prefix = finding_arn_prefix(f.arn)
    LEFT JOIN finding_key_sets k ON k.keys = f.package_keys
    JOIN finding_facts x ON x.title = f.title AND x.source = f.source AND x.vendor_severity = f.vendor_severity
        AND x.aliases = f.aliases AND x.related = f.related
    ORDER BY t.id, v.id;
RESET enable_nestloop;

-- Checked once over the copied rows rather than row by row as they were copied.
ALTER TABLE finding_rows ADD FOREIGN KEY (target_id) REFERENCES scan_targets(id),
    ADD FOREIGN KEY (vulnerability) REFERENCES finding_vulnerabilities(id),
    ADD FOREIGN KEY (arn_prefix) REFERENCES finding_arn_prefixes(id),
    ADD FOREIGN KEY (package_keys) REFERENCES finding_key_sets(id),
    ADD FOREIGN KEY (facts) REFERENCES finding_facts(id);

-- Ids go on from the old table's: a finding's id is never reused.
SELECT setval(pg_get_serial_sequence('finding_rows', 'id'),
    greatest(pg_sequence_last_value(pg_get_serial_sequence('findings', 'id')::regclass), (SELECT coalesce(max(id), 0) FROM finding_rows), 1));

DROP TABLE findings CASCADE;  -- and the views of its details (0050), made again below
DROP FUNCTION findings_count();
DROP FUNCTION finding_arn_derived(TEXT, TEXT, TEXT, TEXT, TEXT);
DROP FUNCTION finding_key(TEXT, TEXT, TEXT, TEXT);

ALTER TABLE finding_rows ADD CONSTRAINT finding_rows_image_vulnerability UNIQUE (target_id, vulnerability);
CREATE INDEX finding_rows_vulnerability ON finding_rows (vulnerability);
CREATE INDEX finding_rows_arn ON finding_rows USING hash (arn_key);
CREATE INDEX finding_rows_suppressed ON finding_rows (id) WHERE suppressed;

-- The table's columns as they were, and the ones behind them that the store's own statements
-- use (target_id, arn_key).
CREATE VIEW findings(id, repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score, fingerprint,
        package_keys, first_observed_at, last_observed_at, updated_at, title, source, vendor_severity, fix_available, aliases,
        related, suppressed, head_id, tail_id, set_id, layer_id, target_id, arn_key) AS
    SELECT f.id, t.repository, t.image_digest, t.scan_type, v.vulnerability_id, p.prefix || encode(f.arn_key, 'hex'), f.status,
        f.severity, f.score, f.fingerprint, k.keys, f.first_observed_at, f.last_observed_at, f.updated_at, coalesce(x.title, ''),
        coalesce(x.source, ''), coalesce(x.vendor_severity, ''), f.fix_available, coalesce(x.aliases, '[]'), coalesce(x.related, '[]'),
        f.suppressed, f.head_id, f.tail_id, f.set_id, f.layer_id,
        f.target_id, f.arn_key
    -- Outer joins, which the planner leaves out of a query that reads none of their columns;
    -- every id is there, so they join as inner joins would.
    FROM finding_rows f
    LEFT JOIN scan_targets t ON t.id = f.target_id
    LEFT JOIN finding_vulnerabilities v ON v.id = f.vulnerability
    LEFT JOIN finding_arn_prefixes p ON p.id = f.arn_prefix
    LEFT JOIN finding_key_sets k ON k.id = f.package_keys
    LEFT JOIN finding_facts x ON x.id = f.facts;

-- A write through the view takes the defaults the table had for the columns it leaves out.
ALTER VIEW findings ALTER COLUMN score SET DEFAULT 0;
ALTER VIEW findings ALTER COLUMN title SET DEFAULT '';
ALTER VIEW findings ALTER COLUMN source SET DEFAULT '';
ALTER VIEW findings ALTER COLUMN vendor_severity SET DEFAULT '';
ALTER VIEW findings ALTER COLUMN fix_available SET DEFAULT 'NO';
ALTER VIEW findings ALTER COLUMN aliases SET DEFAULT '[]';
ALTER VIEW findings ALTER COLUMN related SET DEFAULT '[]';
ALTER VIEW findings ALTER COLUMN suppressed SET DEFAULT false;

CREATE FUNCTION findings_insert() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO finding_rows(id, score, first_observed_at, last_observed_at, updated_at, target_id, vulnerability, arn_prefix,
            package_keys, facts, head_id, tail_id, set_id, layer_id, suppressed, arn_key, status, severity, fingerprint, fix_available)
        VALUES (coalesce(NEW.id, nextval(pg_get_serial_sequence('finding_rows', 'id'))), NEW.score, NEW.first_observed_at,
            NEW.last_observed_at, NEW.updated_at, finding_target_ref(NEW.repository, NEW.image_digest, NEW.scan_type),
            finding_vulnerability_ref(NEW.vulnerability_id), finding_arn_prefix_ref(finding_arn_prefix(NEW.arn)), finding_key_set_ref(NEW.package_keys),
            finding_facts_ref(NEW.title, NEW.source, NEW.vendor_severity, NEW.aliases, NEW.related),
            NEW.head_id, NEW.tail_id, NEW.set_id, NEW.layer_id, NEW.suppressed, finding_arn_key(NEW.arn), NEW.status, NEW.severity,
            NEW.fingerprint, NEW.fix_available)
        RETURNING id, target_id, arn_key INTO NEW.id, NEW.target_id, NEW.arn_key;
    RETURN NEW;
END $$;
CREATE TRIGGER findings_insert INSTEAD OF INSERT ON findings FOR EACH ROW EXECUTE FUNCTION findings_insert();

CREATE FUNCTION findings_update() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE finding_rows SET id = NEW.id, score = NEW.score, first_observed_at = NEW.first_observed_at,
        last_observed_at = NEW.last_observed_at, updated_at = NEW.updated_at,
        target_id = CASE WHEN (NEW.repository, NEW.image_digest, NEW.scan_type) IS NOT DISTINCT FROM (OLD.repository, OLD.image_digest, OLD.scan_type)
            THEN target_id ELSE finding_target_ref(NEW.repository, NEW.image_digest, NEW.scan_type) END,
        vulnerability = CASE WHEN NEW.vulnerability_id IS NOT DISTINCT FROM OLD.vulnerability_id
            THEN vulnerability ELSE finding_vulnerability_ref(NEW.vulnerability_id) END,
        arn_prefix = CASE WHEN NEW.arn IS NOT DISTINCT FROM OLD.arn THEN arn_prefix ELSE finding_arn_prefix_ref(finding_arn_prefix(NEW.arn)) END,
        arn_key = finding_arn_key(NEW.arn),
        package_keys = CASE WHEN NEW.package_keys IS NOT DISTINCT FROM OLD.package_keys
            THEN package_keys ELSE finding_key_set_ref(NEW.package_keys) END,
        facts = CASE WHEN (NEW.title, NEW.source, NEW.vendor_severity, NEW.aliases, NEW.related)
                IS NOT DISTINCT FROM (OLD.title, OLD.source, OLD.vendor_severity, OLD.aliases, OLD.related)
            THEN facts ELSE finding_facts_ref(NEW.title, NEW.source, NEW.vendor_severity, NEW.aliases, NEW.related) END,
        head_id = NEW.head_id, tail_id = NEW.tail_id, set_id = NEW.set_id, layer_id = NEW.layer_id, suppressed = NEW.suppressed,
        status = NEW.status, severity = NEW.severity, fingerprint = NEW.fingerprint, fix_available = NEW.fix_available
    WHERE id = OLD.id;
    RETURN NEW;
END $$;
CREATE TRIGGER findings_update INSTEAD OF UPDATE ON findings FOR EACH ROW EXECUTE FUNCTION findings_update();

CREATE FUNCTION findings_delete() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM finding_rows WHERE id = OLD.id;
    RETURN OLD;
END $$;
CREATE TRIGGER findings_delete INSTEAD OF DELETE ON findings FOR EACH ROW EXECUTE FUNCTION findings_delete();

-- image_finding_counts kept as 0022's trigger kept it, from the rows.
CREATE FUNCTION finding_rows_count() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    t scan_targets;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'ACTIVE' AND NOT OLD.suppressed THEN
        IF TG_OP = 'UPDATE' AND NEW.status = 'ACTIVE' AND NOT NEW.suppressed AND NEW.severity = OLD.severity
            AND NEW.target_id = OLD.target_id THEN
            RETURN NULL;  -- counts the same
        END IF;
        SELECT * INTO STRICT t FROM scan_targets WHERE id = OLD.target_id;
        PERFORM finding_counts_change(t.repository, t.image_digest, t.scan_type, OLD.severity, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status = 'ACTIVE' AND NOT NEW.suppressed THEN
        SELECT * INTO STRICT t FROM scan_targets WHERE id = NEW.target_id;
        PERFORM finding_counts_change(t.repository, t.image_digest, t.scan_type, NEW.severity, 1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER finding_rows_count AFTER INSERT OR DELETE OR UPDATE OF target_id, status, severity, suppressed
    ON finding_rows FOR EACH ROW EXECUTE FUNCTION finding_rows_count();

-- 0050's views of the details, over the rows.
CREATE VIEW finding_details(finding_id, head_id, tail_id, detail) AS
    SELECT d.id, d.head_id::bigint, d.tail_id::bigint, CASE WHEN d.layer_id IS NULL THEN s.body ELSE replace(s.body, E'\x01', l.text) END
    FROM finding_rows d JOIN finding_package_sets s ON s.id = d.set_id LEFT JOIN finding_layers l ON l.id = d.layer_id;

CREATE VIEW finding_detail_view(finding_id, detail) AS
    SELECT d.id, CASE WHEN d.head_id IS NULL THEN s.body
        ELSE '{"finding":{' || h.text || ',"vulnerablePackages":'
            || CASE WHEN d.layer_id IS NULL THEN s.body ELSE replace(s.body, E'\x01', l.text) END
            || '},"image":' || t.text || '}' END
    FROM finding_rows d JOIN finding_package_sets s ON s.id = d.set_id LEFT JOIN finding_layers l ON l.id = d.layer_id
    LEFT JOIN finding_texts h ON h.id = d.head_id LEFT JOIN finding_texts t ON t.id = d.tail_id;

CREATE VIEW finding_packages(finding_id, seq, name, version, epoch, release, arch, file_path, source_layer_hash, reachability) AS
    SELECT d.id, p.seq, p.name, p.version, p.epoch, p.release, p.arch, p.file_path, coalesce(p.source_layer_hash, l.digest), p.reachability
    FROM finding_rows d JOIN finding_set_packages p ON p.set_id = d.set_id LEFT JOIN finding_layers l ON l.id = d.layer_id;

-- 0050's triggers of the detail views, writing the rows.
CREATE OR REPLACE FUNCTION finding_details_insert() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    lt TEXT;
    dg TEXT;
    lid BIGINT;
    sid BIGINT;
    b TEXT := NEW.detail;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM finding_rows WHERE id = NEW.finding_id) THEN
        RAISE EXCEPTION 'detail of finding %: no such finding', NEW.finding_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NEW.head_id IS NOT NULL AND position(E'\x01' IN NEW.detail) = 0 THEN
        SELECT layer, digest INTO lt, dg FROM finding_layer(NEW.detail);
    END IF;
    IF lt IS NOT NULL THEN
        SELECT id INTO lid FROM finding_layers WHERE text = lt LIMIT 1;
        IF lid IS NULL THEN
            INSERT INTO finding_layers(text, digest) VALUES (lt, dg) RETURNING id INTO lid;
        END IF;
        b := replace(NEW.detail, lt, E'\x01');
    END IF;
    SELECT id INTO sid FROM finding_package_sets WHERE body = b AND whole = (NEW.head_id IS NULL) LIMIT 1;
    IF sid IS NULL THEN
        INSERT INTO finding_package_sets(whole, body) VALUES (NEW.head_id IS NULL, b) RETURNING id INTO sid;
    END IF;
    UPDATE finding_rows SET head_id = NEW.head_id, tail_id = NEW.tail_id, set_id = sid, layer_id = lid
        WHERE id = NEW.finding_id AND set_id IS NULL;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION finding_packages_insert() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    sid BIGINT;
    dg TEXT;
    b TEXT;
    slh TEXT := NEW.source_layer_hash;
BEGIN
    SELECT d.set_id, l.digest, s.body INTO sid, dg, b
        FROM finding_rows d JOIN finding_package_sets s ON s.id = d.set_id LEFT JOIN finding_layers l ON l.id = d.layer_id
        WHERE d.id = NEW.finding_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'package % of finding %: the finding has no detail', NEW.seq, NEW.finding_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF slh = dg AND finding_layer_marked(b, NEW.seq) THEN
        slh := NULL;
    END IF;
    INSERT INTO finding_set_packages(set_id, seq, name, version, epoch, release, arch, file_path, source_layer_hash, reachability)
        VALUES (sid, NEW.seq, NEW.name, NEW.version, NEW.epoch, NEW.release, NEW.arch, NEW.file_path, slh, coalesce(NEW.reachability, ''))
        ON CONFLICT (set_id, seq) DO NOTHING;
    RETURN NEW;
END $$;

CREATE TRIGGER finding_details_insert INSTEAD OF INSERT ON finding_details FOR EACH ROW EXECUTE FUNCTION finding_details_insert();
CREATE TRIGGER finding_packages_insert INSTEAD OF INSERT ON finding_packages FOR EACH ROW EXECUTE FUNCTION finding_packages_insert();
