-- A finding's own part of its detail, the vulnerable packages' JSON with the layer text marked
-- (0046), and its package rows (0047) are the same in every image holding the same vulnerable
-- package version, on whatever base: at 10,000 images, 650,000 findings hold 3,600 distinct
-- parts. Each distinct part is stored once, content-addressed, in finding_package_sets (body
-- UNIQUE, as finding_texts: the bodies are few and short, so the body is its own key), with
-- its package rows in finding_set_packages. A package row's layer is NULL where the body has
-- the layer mark: it is the layer of the finding holding the set (finding_details.package_layer),
-- so one set serves images on different bases. finding_details keeps only ids; a detail of
-- another shape (head_id NULL) keeps its whole text in detail and names the set of its
-- packages for their rows. A detail column not NULL beside a head_id stands for the set's body
-- (rows written by statements of the layout before, tests), so the detail still reads back
-- from it. A body's raw 0x01 bytes are always layer marks: a packages part holding one that
-- is not a mark is stored whole.
--
-- finding_packages and finding_detail_view are views giving back exactly the rows and bytes
-- they gave. Sets no finding names any longer are removed by PruneFindingPackageSets (gc).
-- finding_details.set_id has no foreign key: a delete of a set would scan finding_details
-- for children (it has no index on set_id; the prune checks them all at once instead).
CREATE TABLE finding_package_sets (
    id   INTEGER PRIMARY KEY,
    body TEXT    NOT NULL UNIQUE
);

CREATE TABLE finding_set_packages (
    set_id       INTEGER NOT NULL REFERENCES finding_package_sets(id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    name         TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    epoch        INTEGER NOT NULL,
    release      TEXT    NOT NULL,
    arch         TEXT    NOT NULL,
    file_path    TEXT    NOT NULL,
    layer        INTEGER REFERENCES finding_layers(id),  -- NULL: the finding's own layer (the body's mark)
    reachability TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (set_id, seq)
) WITHOUT ROWID;

-- The digest of each layer text in use (',"sourceLayerHash":"…","createdBy":"…"').
CREATE TEMP TABLE layer_digests AS
    SELECT id, json_extract('{' || substr(text, 2) || '}', '$.sourceLayerHash') AS digest FROM finding_texts
    WHERE id IN (SELECT layer_id FROM finding_details WHERE layer_id IS NOT NULL)
        AND instr(text, char(1)) = 0 AND json_valid('{' || substr(text, 2) || '}')
        AND json_type('{' || substr(text, 2) || '}', '$.sourceLayerHash') = 'text';
INSERT INTO finding_layers(digest) SELECT digest FROM temp.layer_digests WHERE true ON CONFLICT DO NOTHING;

-- Each detail's body: split details keep theirs (marked when their layer has a digest, else
-- unmarked and free of 0x01); the rest is stored whole, its body the packages as SQLite
-- extracts them (the rows it indexed came from there).
CREATE TEMP TABLE fd AS
    SELECT d.finding_id, d.head_id, d.tail_id, CASE WHEN ld.id IS NOT NULL THEN d.layer_id END AS layer_id,
        CASE WHEN ld.id IS NOT NULL OR instr(d.detail, char(1)) = 0 THEN d.detail
            WHEN l.text IS NOT NULL THEN replace(d.detail, char(1), l.text) END AS body,
        NULL AS whole
    FROM finding_details d LEFT JOIN temp.layer_digests ld ON ld.id = d.layer_id LEFT JOIN finding_texts l ON l.id = d.layer_id
    WHERE d.head_id IS NOT NULL;
-- (A body beginning with 0x02 is a finding's own set, below: a part holding one is stored whole.)
DELETE FROM temp.fd WHERE body IS NULL OR instr(body, char(1)) > 0 AND layer_id IS NULL OR instr(body, char(2)) > 0;
INSERT INTO temp.fd(finding_id, head_id, tail_id, layer_id, body, whole)
    SELECT v.finding_id, NULL, NULL, NULL, CASE WHEN json_valid(v.detail) THEN v.detail -> '$.finding.vulnerablePackages' END, v.detail
    FROM finding_detail_view v WHERE v.finding_id NOT IN (SELECT finding_id FROM temp.fd);
CREATE UNIQUE INDEX temp.fd_finding ON fd(finding_id);

-- A marked body whose packages name a layer by a JSON object would read as marks where it
-- does not hold one (the rows below take an object for the mark): unmarked (never written by
-- the scanner, whose layers are strings).
CREATE TEMP TABLE bad_marked AS
    SELECT body FROM (SELECT DISTINCT body FROM temp.fd WHERE layer_id IS NOT NULL) b
    WHERE json_valid(replace(b.body, char(1), ',"sourceLayerHash":""')) AND EXISTS (
        SELECT 1 FROM json_each(replace(b.body, char(1), ',"sourceLayerHash":""')) p
        WHERE CASE WHEN p.type = 'object' THEN json_type(p.value, '$.sourceLayerHash') END = 'object');
UPDATE temp.fd SET body = replace(body, char(1), (SELECT text FROM finding_texts WHERE id = fd.layer_id)), layer_id = NULL
    WHERE layer_id IS NOT NULL AND body IN (SELECT body FROM temp.bad_marked);
DROP TABLE temp.bad_marked;

INSERT INTO finding_package_sets(body) SELECT DISTINCT body FROM temp.fd WHERE body IS NOT NULL;

-- The package rows of each set, as indexFinding took them from the detail, but for the marked
-- layer (an object in its place here, as in the writer's statements). Only bodies whose
-- packages can be read so: the rows of the rest are checked below like any other.
CREATE TEMP TABLE set_json AS
    SELECT id, instr(body, char(1)) > 0 AS marked,
        replace(body, char(1), ',"sourceLayerHash":{"\u0001":0}') AS packages
    FROM finding_package_sets s
    WHERE json_valid(replace(body, char(1), ',"sourceLayerHash":{"\u0001":0}'))
        AND json_type(replace(body, char(1), ',"sourceLayerHash":{"\u0001":0}')) IN ('array', 'object')
        AND NOT EXISTS (SELECT 1 FROM json_each(replace(s.body, char(1), ',"sourceLayerHash":{"\u0001":0}')) p WHERE p.type = 'text');
INSERT INTO finding_layers(digest)
    SELECT DISTINCT coalesce(json_extract(p.value, '$.sourceLayerHash'), '') FROM temp.set_json s, json_each(s.packages) p
    WHERE NOT (s.marked AND json_type(p.value, '$.sourceLayerHash') IS 'object')
    ON CONFLICT DO NOTHING;
INSERT INTO finding_set_packages(set_id, seq, name, version, epoch, release, arch, file_path, layer, reachability)
    SELECT s.id, p.key, coalesce(json_extract(p.value, '$.name'), ''), coalesce(json_extract(p.value, '$.version'), ''),
        coalesce(json_extract(p.value, '$.epoch'), 0), coalesce(json_extract(p.value, '$.release'), ''),
        coalesce(json_extract(p.value, '$.arch'), ''), coalesce(json_extract(p.value, '$.filePath'), ''),
        CASE WHEN s.marked AND json_type(p.value, '$.sourceLayerHash') IS 'object' THEN NULL
            ELSE (SELECT l.id FROM finding_layers l WHERE l.digest = coalesce(json_extract(p.value, '$.sourceLayerHash'), '')) END,
        coalesce(json_extract(p.value, '$.reachability'), '')
    FROM temp.set_json s, json_each(s.packages) p
    ORDER BY 1, 2;
DROP TABLE temp.set_json;

CREATE TABLE finding_details_new (
    finding_id    INTEGER PRIMARY KEY REFERENCES finding_rows(id) ON DELETE CASCADE,
    head_id       INTEGER REFERENCES finding_texts(id),  -- NULL: detail is the whole detail
    tail_id       INTEGER REFERENCES finding_texts(id),
    detail        TEXT,                                  -- the whole detail (head_id NULL); else NULL, or in place of the set's body
    layer_id      INTEGER REFERENCES finding_texts(id),  -- the text the body's marks stand for
    set_id        INTEGER,                               -- finding_package_sets(id): the packages part and rows
    package_layer INTEGER REFERENCES finding_layers(id)  -- the digest of layer_id, for the rows whose layer is NULL
);
INSERT INTO finding_details_new(finding_id, head_id, tail_id, detail, layer_id, set_id, package_layer)
    SELECT fd.finding_id, fd.head_id, fd.tail_id, fd.whole, fd.layer_id, s.id, fl.id
    FROM temp.fd fd LEFT JOIN finding_package_sets s ON s.body = fd.body
        LEFT JOIN temp.layer_digests ld ON ld.id = fd.layer_id LEFT JOIN finding_layers fl ON fl.digest = ld.digest
    ORDER BY fd.finding_id;
DROP TABLE temp.fd;
DROP TABLE temp.layer_digests;

-- The rows as stored against the rows the sets give: a finding whose rows differ (written by
-- statements, not from its detail) gets a set of its own, its body a key no JSON can be
-- (0x02 and the finding's id), holding the rows as they were; its detail keeps its body.
CREATE TEMP TABLE mismatched AS
    SELECT finding_id FROM (
        SELECT finding_id, seq, name, version, epoch, release, arch, file_path, layer, reachability FROM finding_package_rows
        EXCEPT SELECT d.finding_id, p.seq, p.name, p.version, p.epoch, p.release, p.arch, p.file_path, coalesce(p.layer, d.package_layer),
            p.reachability FROM finding_details_new d JOIN finding_set_packages p ON p.set_id = d.set_id)
    UNION SELECT finding_id FROM (
        SELECT d.finding_id, p.seq, p.name, p.version, p.epoch, p.release, p.arch, p.file_path, coalesce(p.layer, d.package_layer),
            p.reachability FROM finding_details_new d JOIN finding_set_packages p ON p.set_id = d.set_id
        EXCEPT SELECT finding_id, seq, name, version, epoch, release, arch, file_path, layer, reachability FROM finding_package_rows);
INSERT INTO finding_package_sets(body) SELECT char(2) || finding_id FROM temp.mismatched;
-- Rows of findings without a detail row have no place: none are written so (indexFinding
-- writes rows from a stored detail), and they are given one holding their rows only.
INSERT INTO finding_details_new(finding_id, head_id, tail_id, detail, layer_id, set_id, package_layer)
    SELECT finding_id, NULL, NULL, NULL, NULL, NULL, NULL FROM temp.mismatched
    WHERE finding_id NOT IN (SELECT finding_id FROM finding_details_new);
UPDATE finding_details_new SET
    detail = CASE WHEN head_id IS NULL THEN detail ELSE coalesce(detail, (SELECT body FROM finding_package_sets WHERE id = set_id)) END,
    set_id = (SELECT id FROM finding_package_sets WHERE body = char(2) || finding_details_new.finding_id)
    WHERE finding_id IN (SELECT finding_id FROM temp.mismatched);
INSERT INTO finding_set_packages(set_id, seq, name, version, epoch, release, arch, file_path, layer, reachability)
    SELECT s.id, p.seq, p.name, p.version, p.epoch, p.release, p.arch, p.file_path, p.layer, p.reachability
    FROM temp.mismatched m JOIN finding_package_rows p ON p.finding_id = m.finding_id
        JOIN finding_package_sets s ON s.body = char(2) || m.finding_id;
DROP TABLE temp.mismatched;

DROP VIEW finding_detail_view;
DROP VIEW finding_packages;
DROP TABLE finding_package_rows;
DROP TABLE finding_details;
ALTER TABLE finding_details_new RENAME TO finding_details;

CREATE VIEW finding_detail_view(finding_id, detail) AS
    SELECT d.finding_id, CASE WHEN d.head_id IS NULL THEN d.detail
        ELSE '{"finding":{' || h.text || ',"vulnerablePackages":'
            || CASE WHEN d.layer_id IS NULL THEN coalesce(d.detail, s.body) ELSE replace(coalesce(d.detail, s.body), char(1), l.text) END
            || '},"image":' || t.text || '}' END
    FROM finding_details d LEFT JOIN finding_texts h ON h.id = d.head_id LEFT JOIN finding_texts t ON t.id = d.tail_id
        LEFT JOIN finding_texts l ON l.id = d.layer_id LEFT JOIN finding_package_sets s ON s.id = d.set_id
    WHERE d.head_id IS NOT NULL OR d.detail IS NOT NULL;  -- not a row holding package rows only (below)

CREATE VIEW finding_packages(finding_id, seq, name, version, epoch, release, arch, file_path, source_layer_hash, reachability) AS
    SELECT d.finding_id, p.seq, p.name, p.version, p.epoch, p.release, p.arch, p.file_path, l.digest, p.reachability
    FROM finding_details d JOIN finding_set_packages p ON p.set_id = d.set_id JOIN finding_layers l ON l.id = coalesce(p.layer, d.package_layer);

-- Writing a finding's rows through the view (rare statements, tests): the finding's rows become
-- its own first (a set keyed by 0x02 and its id, its detail keeping the body it read), as the
-- migration above does for rows that differ from their detail's.
CREATE TRIGGER finding_packages_insert INSTEAD OF INSERT ON finding_packages
BEGIN
    INSERT INTO finding_details(finding_id) SELECT NEW.finding_id WHERE NOT EXISTS (SELECT 1 FROM finding_details WHERE finding_id = NEW.finding_id);
    INSERT INTO finding_package_sets(body) VALUES (char(2) || NEW.finding_id) ON CONFLICT DO NOTHING;
    INSERT INTO finding_set_packages(set_id, seq, name, version, epoch, release, arch, file_path, layer, reachability)
        SELECT s.id, p.seq, p.name, p.version, p.epoch, p.release, p.arch, p.file_path, coalesce(p.layer, d.package_layer), p.reachability
        FROM finding_details d JOIN finding_set_packages p ON p.set_id = d.set_id
            JOIN finding_package_sets s ON s.body = char(2) || NEW.finding_id
        WHERE d.finding_id = NEW.finding_id AND d.set_id IS NOT s.id;
    UPDATE finding_details SET
        detail = CASE WHEN head_id IS NULL THEN detail ELSE coalesce(detail, (SELECT body FROM finding_package_sets WHERE id = set_id)) END,
        set_id = (SELECT id FROM finding_package_sets WHERE body = char(2) || NEW.finding_id)
        WHERE finding_id = NEW.finding_id AND set_id IS NOT (SELECT id FROM finding_package_sets WHERE body = char(2) || NEW.finding_id);
    INSERT INTO finding_layers(digest) VALUES (NEW.source_layer_hash) ON CONFLICT DO NOTHING;
    INSERT INTO finding_set_packages(set_id, seq, name, version, epoch, release, arch, file_path, layer, reachability)
        SELECT s.id, NEW.seq, NEW.name, NEW.version, NEW.epoch, NEW.release, NEW.arch, NEW.file_path, l.id, coalesce(NEW.reachability, '')
        FROM finding_package_sets s, finding_layers l WHERE s.body = char(2) || NEW.finding_id AND l.digest = NEW.source_layer_hash;
END;

CREATE TRIGGER finding_packages_delete INSTEAD OF DELETE ON finding_packages
BEGIN
    INSERT INTO finding_package_sets(body) VALUES (char(2) || OLD.finding_id) ON CONFLICT DO NOTHING;
    INSERT INTO finding_set_packages(set_id, seq, name, version, epoch, release, arch, file_path, layer, reachability)
        SELECT s.id, p.seq, p.name, p.version, p.epoch, p.release, p.arch, p.file_path, coalesce(p.layer, d.package_layer), p.reachability
        FROM finding_details d JOIN finding_set_packages p ON p.set_id = d.set_id
            JOIN finding_package_sets s ON s.body = char(2) || OLD.finding_id
        WHERE d.finding_id = OLD.finding_id AND d.set_id IS NOT s.id;
    UPDATE finding_details SET
        detail = CASE WHEN head_id IS NULL THEN detail ELSE coalesce(detail, (SELECT body FROM finding_package_sets WHERE id = set_id)) END,
        set_id = (SELECT id FROM finding_package_sets WHERE body = char(2) || OLD.finding_id)
        WHERE finding_id = OLD.finding_id AND set_id IS NOT (SELECT id FROM finding_package_sets WHERE body = char(2) || OLD.finding_id);
    DELETE FROM finding_set_packages
        WHERE set_id = (SELECT id FROM finding_package_sets WHERE body = char(2) || OLD.finding_id) AND seq = OLD.seq;
END;
