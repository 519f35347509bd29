-- A finding's detail parts (its head and tail texts, package set and layer: finding_parts, 0043
-- and 0049) kept in its own row (issue 15 point 5: the store within 2x of SQLite's).
-- finding_parts held one row per finding, 47 MiB at 10,000 images with its primary key (a row
-- header, the finding's id and its key entry, for 16 bytes of ids); in the finding's row they
-- cost those 16 bytes. NULL set_id: no detail stored (the views then have no row for the
-- finding, as they had none without a finding_parts row).
ALTER TABLE findings ADD COLUMN head_id integer, ADD COLUMN tail_id integer, ADD COLUMN set_id integer,
    ADD COLUMN layer_id integer;

UPDATE findings f SET head_id = p.head_id, tail_id = p.tail_id, set_id = p.set_id, layer_id = p.layer_id
    FROM finding_parts p WHERE p.finding_id = f.id;

-- The UPDATE left a dead version of every row: the table is rewritten (a USING expression other
-- than the column itself makes ALTER TABLE copy the live rows), so an upgraded store gets its
-- space back at once rather than keep a heap twice its size.
ALTER TABLE findings ALTER COLUMN layer_id TYPE integer USING layer_id + 0;

DROP VIEW finding_details;
DROP VIEW finding_detail_view;
DROP VIEW finding_packages;
DROP TABLE finding_parts;

CREATE VIEW finding_details(finding_id, head_id, tail_id, detail) AS
    SELECT d.id, d.head_id::bigint, d.tail_id::bigint, CASE WHEN d.layer_id IS NULL THEN s.body ELSE replace(s.body, E'\x01', l.text) END
    FROM findings d JOIN finding_package_sets s ON s.id = d.set_id LEFT JOIN finding_layers l ON l.id = d.layer_id;

CREATE VIEW finding_detail_view(finding_id, detail) AS
    SELECT d.id, CASE WHEN d.head_id IS NULL THEN s.body
        ELSE '{"finding":{' || h.text || ',"vulnerablePackages":'
            || CASE WHEN d.layer_id IS NULL THEN s.body ELSE replace(s.body, E'\x01', l.text) END
            || '},"image":' || t.text || '}' END
    FROM findings d JOIN finding_package_sets s ON s.id = d.set_id LEFT JOIN finding_layers l ON l.id = d.layer_id
    LEFT JOIN finding_texts h ON h.id = d.head_id LEFT JOIN finding_texts t ON t.id = d.tail_id;

CREATE VIEW finding_packages(finding_id, seq, name, version, epoch, release, arch, file_path, source_layer_hash, reachability) AS
    SELECT d.id, p.seq, p.name, p.version, p.epoch, p.release, p.arch, p.file_path, coalesce(p.source_layer_hash, l.digest), p.reachability
    FROM findings d JOIN finding_set_packages p ON p.set_id = d.set_id LEFT JOIN finding_layers l ON l.id = d.layer_id;

-- As 0043's, writing the parts into the finding's row: a finding that has its parts keeps them
-- (the copy inserts only what the target lacks), and a missing finding is refused as the
-- foreign key of finding_parts refused it.
CREATE OR REPLACE FUNCTION finding_details_insert() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    lt TEXT;
    dg TEXT;
    lid BIGINT;
    sid BIGINT;
    b TEXT := NEW.detail;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM findings WHERE id = NEW.finding_id) THEN
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
    UPDATE findings SET head_id = NEW.head_id, tail_id = NEW.tail_id, set_id = sid, layer_id = lid
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
        FROM findings d JOIN finding_package_sets s ON s.id = d.set_id LEFT JOIN finding_layers l ON l.id = d.layer_id
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
