-- finding_packages (0027, 0036) held each vulnerable package's layer digest (71 bytes, about
-- half of a row), the same in every finding of every image holding the layer. The rows move to
-- finding_package_rows, naming the digest by an id into finding_layers; finding_packages is a
-- view with the old columns for every reader, and INSTEAD OF triggers write through it. The
-- scanner's writer (findings_index.go) writes finding_package_rows directly. Layer ids are
-- never reused for another digest.
CREATE TABLE finding_layers (
    id     INTEGER PRIMARY KEY,
    digest TEXT    NOT NULL UNIQUE
);

CREATE TABLE finding_package_rows (
    finding_id   INTEGER NOT NULL REFERENCES finding_rows(id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    name         TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    epoch        INTEGER NOT NULL,
    release      TEXT    NOT NULL,
    arch         TEXT    NOT NULL,
    file_path    TEXT    NOT NULL,
    layer        INTEGER NOT NULL REFERENCES finding_layers(id),
    reachability TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (finding_id, seq)
) WITHOUT ROWID;

INSERT INTO finding_layers(digest) SELECT DISTINCT source_layer_hash FROM finding_packages ORDER BY 1;
INSERT INTO finding_package_rows
    SELECT p.finding_id, p.seq, p.name, p.version, p.epoch, p.release, p.arch, p.file_path, l.id, p.reachability
    FROM finding_packages p JOIN finding_layers l ON l.digest = p.source_layer_hash ORDER BY p.finding_id, p.seq;
DROP TABLE finding_packages;

CREATE VIEW finding_packages(finding_id, seq, name, version, epoch, release, arch, file_path, source_layer_hash, reachability) AS
    SELECT p.finding_id, p.seq, p.name, p.version, p.epoch, p.release, p.arch, p.file_path, l.digest, p.reachability
    FROM finding_package_rows p JOIN finding_layers l ON l.id = p.layer;

CREATE TRIGGER finding_packages_insert INSTEAD OF INSERT ON finding_packages
BEGIN
    INSERT INTO finding_layers(digest) VALUES (NEW.source_layer_hash) ON CONFLICT DO NOTHING;
    INSERT INTO finding_package_rows
        SELECT NEW.finding_id, NEW.seq, NEW.name, NEW.version, NEW.epoch, NEW.release, NEW.arch, NEW.file_path, l.id,
            coalesce(NEW.reachability, '')
        FROM finding_layers l WHERE l.digest = NEW.source_layer_hash;
END;

CREATE TRIGGER finding_packages_delete INSTEAD OF DELETE ON finding_packages
BEGIN
    DELETE FROM finding_package_rows WHERE finding_id = OLD.finding_id AND seq = OLD.seq;
END;
