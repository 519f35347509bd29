-- A finding's vulnerable packages stored once per distinct set (issue 15 point 5: the store
-- within 2x of SQLite's). finding_details kept each finding's packages part (the
-- vulnerablePackages JSON) and finding_packages its rows: at 10,000 images 277 MiB and
-- 146 MiB for 654,002 findings. Those parts differ from image to image mostly by the layer the
-- package came from (',"sourceLayerHash":"sha256:…","createdBy":"…"', as SQLite's 0046 found):
-- without it the 654,002 parts are 3,592 distinct ones.
--
-- finding_layers holds each such layer text once, with its digest. finding_package_sets holds
-- each distinct body once, content-addressed (looked up by a hash index, as finding_texts), and
-- its package rows in finding_set_packages. A body is a split detail's packages part with its
-- first package's layer text replaced by the byte 0x01 wherever it stands (a raw control
-- character, which JSON never holds unescaped), or a detail of another shape stored whole
-- (whole true, no head, tail or layer). A package row whose element held the layer text has
-- source_layer_hash NULL (the finding's layer digest), so a set's rows are read from its body
-- alone and findings sharing a body share them. finding_parts names a finding's head and tail
-- texts (0022), its set and its layer. Sets and layers, like texts, are never deleted.
--
-- finding_details, finding_packages and finding_detail_view are views with their old columns
-- for every reader; INSTEAD OF INSERT triggers write through the first two (the copy from
-- SQLite, internal/store/metamigrate, inserts what SQLite's views give). The store's own
-- writer (findings.go, splitLayer) writes the tables directly, by the same rules.
CREATE TABLE finding_layers (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    text   TEXT NOT NULL,
    digest TEXT COLLATE "C" NOT NULL
);

CREATE TABLE finding_package_sets (
    id    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    whole BOOLEAN NOT NULL,
    body  TEXT    NOT NULL
);

CREATE TABLE finding_parts (
    finding_id BIGINT NOT NULL,
    head_id    BIGINT,          -- finding_texts.id; NULL: the set's body is the whole detail
    tail_id    BIGINT,
    set_id     BIGINT NOT NULL, -- finding_package_sets.id
    layer_id   BIGINT           -- finding_layers.id: the text of the body's 0x01 bytes
);

CREATE TABLE finding_set_packages (
    set_id            BIGINT  NOT NULL,
    seq               INTEGER NOT NULL,
    name              TEXT COLLATE "C" NOT NULL,
    version           TEXT COLLATE "C" NOT NULL,
    epoch             BIGINT  NOT NULL,
    release           TEXT COLLATE "C" NOT NULL,
    arch              TEXT COLLATE "C" NOT NULL,
    file_path         TEXT COLLATE "C" NOT NULL,
    source_layer_hash TEXT COLLATE "C",  -- NULL: the finding's layer digest
    reachability      TEXT COLLATE "C" NOT NULL DEFAULT ''
);

-- finding_layer(packages): the layer text of a packages part and its digest (NULLs when it has
-- none), as findings.go's layerText finds it.
CREATE FUNCTION finding_layer(packages TEXT, OUT layer TEXT, OUT digest TEXT) LANGUAGE sql IMMUTABLE AS $$
    SELECT m[1], m[2] FROM (SELECT regexp_match(packages, '(,"sourceLayerHash":"([^"\\]*)"(?:,"createdBy":"(?:[^"\\]|\\.)*")?)') AS m) x
$$;

-- finding_layer_marked(body, seq): whether the element seq (from 0) of a layered body holds
-- the layer text (its 0x01 byte).
CREATE FUNCTION finding_layer_marked(body TEXT, seq INTEGER) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce((SELECT position('"\u0001lading-layer"' IN e::text) > 0
        FROM (SELECT replace(body, E'\x01', ',"\u0001lading-layer":0')::json AS j) x,
            json_array_elements(CASE WHEN json_typeof(x.j) = 'array' THEN x.j ELSE '[]' END) WITH ORDINALITY AS a(e, n)
        WHERE n = seq + 1), false)
$$;

-- The rows move set-based; the indexes are built after them.
CREATE TEMP TABLE finding_split ON COMMIT DROP AS
    SELECT d.finding_id, d.head_id, d.tail_id, d.head_id IS NULL AS whole, d.detail, l.layer, l.digest
    FROM finding_details d LEFT JOIN LATERAL finding_layer(d.detail) l
        ON d.head_id IS NOT NULL AND position(E'\x01' IN d.detail) = 0;
INSERT INTO finding_layers(text, digest)
    SELECT layer, min(digest) FROM finding_split WHERE layer IS NOT NULL GROUP BY layer ORDER BY 1;
CREATE INDEX finding_layers_text ON finding_layers USING hash (text);
CREATE TEMP TABLE finding_bodies ON COMMIT DROP AS
    SELECT s.finding_id, s.head_id, s.tail_id, s.whole, l.id AS layer_id,
        CASE WHEN s.layer IS NULL THEN s.detail ELSE replace(s.detail, s.layer, E'\x01') END AS body
    FROM finding_split s LEFT JOIN finding_layers l ON l.text = s.layer;
INSERT INTO finding_package_sets(whole, body) SELECT DISTINCT whole, body FROM finding_bodies;
INSERT INTO finding_parts(finding_id, head_id, tail_id, set_id, layer_id)
    SELECT b.finding_id, b.head_id, b.tail_id, s.id, b.layer_id
    FROM finding_bodies b JOIN finding_package_sets s ON s.body = b.body AND s.whole = b.whole
    ORDER BY b.finding_id;
-- A set's rows are those of one finding holding it (the first): they were read from the same
-- body for each, but for the layer.
INSERT INTO finding_set_packages
    SELECT r.set_id, p.seq, p.name, p.version, p.epoch, p.release, p.arch, p.file_path,
        CASE WHEN p.source_layer_hash = l.digest AND finding_layer_marked(s.body, p.seq) THEN NULL ELSE p.source_layer_hash END,
        p.reachability
    FROM (SELECT DISTINCT ON (set_id) set_id, finding_id, layer_id FROM finding_parts ORDER BY set_id, finding_id) r
    JOIN finding_package_sets s ON s.id = r.set_id
    JOIN finding_packages p ON p.finding_id = r.finding_id
    LEFT JOIN finding_layers l ON l.id = r.layer_id
    ORDER BY r.set_id, p.seq;

-- The bodies are long: the lookup is by hash, the equality checked on the row.
CREATE INDEX finding_package_sets_body ON finding_package_sets USING hash (body);
ALTER TABLE finding_parts ADD PRIMARY KEY (finding_id),
    ADD FOREIGN KEY (finding_id) REFERENCES findings(id) ON DELETE CASCADE;
ALTER TABLE finding_set_packages ADD PRIMARY KEY (set_id, seq);

DROP VIEW finding_detail_view;
DROP TABLE finding_details;
DROP TABLE finding_packages;

CREATE VIEW finding_details(finding_id, head_id, tail_id, detail) AS
    SELECT d.finding_id, d.head_id, d.tail_id, CASE WHEN d.layer_id IS NULL THEN s.body ELSE replace(s.body, E'\x01', l.text) END
    FROM finding_parts d JOIN finding_package_sets s ON s.id = d.set_id LEFT JOIN finding_layers l ON l.id = d.layer_id;

CREATE VIEW finding_detail_view(finding_id, detail) AS
    SELECT d.finding_id, CASE WHEN d.head_id IS NULL THEN s.body
        ELSE '{"finding":{' || h.text || ',"vulnerablePackages":'
            || CASE WHEN d.layer_id IS NULL THEN s.body ELSE replace(s.body, E'\x01', l.text) END
            || '},"image":' || t.text || '}' END
    FROM finding_parts d JOIN finding_package_sets s ON s.id = d.set_id LEFT JOIN finding_layers l ON l.id = d.layer_id
    LEFT JOIN finding_texts h ON h.id = d.head_id LEFT JOIN finding_texts t ON t.id = d.tail_id;

CREATE VIEW finding_packages(finding_id, seq, name, version, epoch, release, arch, file_path, source_layer_hash, reachability) AS
    SELECT d.finding_id, p.seq, p.name, p.version, p.epoch, p.release, p.arch, p.file_path, coalesce(p.source_layer_hash, l.digest), p.reachability
    FROM finding_parts d JOIN finding_set_packages p ON p.set_id = d.set_id LEFT JOIN finding_layers l ON l.id = d.layer_id;

-- An insert into finding_details names the finding's layer and set by the texts, made if new;
-- a finding that has its parts keeps them (the copy inserts only what the target lacks).
CREATE FUNCTION finding_details_insert() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    lt TEXT;
    dg TEXT;
    lid BIGINT;
    sid BIGINT;
    b TEXT := NEW.detail;
BEGIN
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
    INSERT INTO finding_parts(finding_id, head_id, tail_id, set_id, layer_id) VALUES (NEW.finding_id, NEW.head_id, NEW.tail_id, sid, lid)
        ON CONFLICT (finding_id) DO NOTHING;
    RETURN NEW;
END $$;
CREATE TRIGGER finding_details_insert INSTEAD OF INSERT ON finding_details FOR EACH ROW EXECUTE FUNCTION finding_details_insert();

-- An insert into finding_packages writes the row into the set of its finding (whose detail is
-- written first), unless the set has it: findings sharing a set give the same rows.
CREATE FUNCTION finding_packages_insert() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    sid BIGINT;
    dg TEXT;
    b TEXT;
    slh TEXT := NEW.source_layer_hash;
BEGIN
    SELECT d.set_id, l.digest, s.body INTO sid, dg, b
        FROM finding_parts d JOIN finding_package_sets s ON s.id = d.set_id LEFT JOIN finding_layers l ON l.id = d.layer_id
        WHERE d.finding_id = NEW.finding_id;
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
CREATE TRIGGER finding_packages_insert INSTEAD OF INSERT ON finding_packages FOR EACH ROW EXECUTE FUNCTION finding_packages_insert();
