-- A finding's own part of its detail (the vulnerable packages' JSON, 0032) spends about 40% of
-- its bytes on the layer the package came from: ',"sourceLayerHash":"sha256:…","createdBy":"…"'
-- (about 140 bytes), the same in every finding of every image holding that layer. That text is
-- stored once, in finding_texts, named by layer_id, and the detail keeps the byte 0x01 in each
-- place it stood (a raw control character, which JSON never holds unescaped). The view puts
-- the text back: the detail still reads back byte for byte. Written by splitDetailLayer
-- (finding_texts.go); details of another shape keep layer_id NULL.
ALTER TABLE finding_details ADD COLUMN layer_id INTEGER REFERENCES finding_texts(id);

-- The rows stored before, by the layer of their first package; where SQLite's JSON quoting
-- differs from the bytes the scanner wrote (HTML characters, which Go escapes) the text is not
-- found and the row stays whole.
CREATE TEMP TABLE detail_layer AS
    SELECT finding_id, ',"sourceLayerHash":' || json_quote(json_extract(detail, '$[0].sourceLayerHash'))
        || coalesce(',"createdBy":' || json_quote(json_extract(detail, '$[0].createdBy')), '') AS layer
    FROM finding_details
    WHERE head_id IS NOT NULL AND json_valid(detail) AND json_type(detail, '$[0].sourceLayerHash') = 'text'
        AND instr(detail, char(1)) = 0;
DELETE FROM temp.detail_layer
    WHERE instr((SELECT detail FROM finding_details d WHERE d.finding_id = detail_layer.finding_id), layer) = 0;

INSERT INTO finding_texts(text) SELECT DISTINCT layer FROM temp.detail_layer WHERE true ON CONFLICT DO NOTHING;

UPDATE finding_details SET layer_id = (SELECT t.id FROM finding_texts t WHERE t.text = l.layer), detail = replace(detail, l.layer, char(1))
    FROM temp.detail_layer l WHERE l.finding_id = finding_details.finding_id;
DROP TABLE temp.detail_layer;

DROP VIEW finding_detail_view;
CREATE VIEW finding_detail_view(finding_id, detail) AS
    SELECT d.finding_id, CASE WHEN d.head_id IS NULL THEN d.detail
        ELSE '{"finding":{' || h.text || ',"vulnerablePackages":'
            || CASE WHEN d.layer_id IS NULL THEN d.detail ELSE replace(d.detail, char(1), l.text) END
            || '},"image":' || t.text || '}' END
    FROM finding_details d LEFT JOIN finding_texts h ON h.id = d.head_id LEFT JOIN finding_texts t ON t.id = d.tail_id
        LEFT JOIN finding_texts l ON l.id = d.layer_id;
