-- finding_parts' references to texts, sets and layers as 4-byte integers (issue 15 point 5: the
-- store within 2x of SQLite's). A row was a header and five bigints, 68 bytes with its line
-- pointer, one per finding (56.6 MiB at 10,000 images); now 52. Those ids number distinct texts,
-- package sets and layers, which are never deleted and made only when new (thousands at
-- 10,000 images), so they stay far below 2^31; an id beyond it would fail the write (integer out
-- of range), never be stored wrong. finding_id stays a bigint: findings' ids advance with every
-- upsert.
--
-- The views over the table are made again as 0043 made them (a column a view reads cannot
-- change type), giving bigints as before, and their INSTEAD OF triggers with them.
DROP VIEW finding_details;
DROP VIEW finding_detail_view;
DROP VIEW finding_packages;

ALTER TABLE finding_parts ALTER COLUMN head_id TYPE integer, ALTER COLUMN tail_id TYPE integer,
    ALTER COLUMN set_id TYPE integer, ALTER COLUMN layer_id TYPE integer;

CREATE VIEW finding_details(finding_id, head_id, tail_id, detail) AS
    SELECT d.finding_id, d.head_id::bigint, d.tail_id::bigint, CASE WHEN d.layer_id IS NULL THEN s.body ELSE replace(s.body, E'\x01', l.text) END
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

CREATE TRIGGER finding_details_insert INSTEAD OF INSERT ON finding_details FOR EACH ROW EXECUTE FUNCTION finding_details_insert();
CREATE TRIGGER finding_packages_insert INSTEAD OF INSERT ON finding_packages FOR EACH ROW EXECUTE FUNCTION finding_packages_insert();
