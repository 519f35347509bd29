-- A finding's detail (scanning.Detail as JSON, about 1.4 KB) is mostly the vulnerability's
-- text (title, description, references, CVSS...), the same in every image it is found in,
-- and the image's facts, the same in every finding of the image. Both are stored once, in
-- finding_texts, and the detail keeps only what is the finding's own: its vulnerable
-- packages. The detail reads back byte for byte (its fingerprint is a hash of the bytes):
--
--   '{"finding":{' || head || ',"vulnerablePackages":' || detail || '},"image":' || tail || '}'
--
-- where head and tail are the finding_texts rows of head_id and tail_id. A detail not of that
-- shape is stored whole, with head_id NULL. Read details through finding_detail_view, which
-- joins them back; write them with splitDetail (finding_texts.go), which splits as below.
-- Texts are never deleted: there are as many as there are variants of the advisories' text,
-- whatever the number of findings.
CREATE TABLE finding_texts (
    id   INTEGER PRIMARY KEY,
    text TEXT    NOT NULL UNIQUE
);

CREATE TABLE finding_details_new (
    finding_id INTEGER PRIMARY KEY REFERENCES findings(id) ON DELETE CASCADE,
    head_id    INTEGER REFERENCES finding_texts(id),  -- NULL: detail is the whole detail
    tail_id    INTEGER REFERENCES finding_texts(id),
    detail     TEXT    NOT NULL
);

-- The split points of every stored detail: k at ',"vulnerablePackages":', j at '},"image":'
-- (neither can occur inside a JSON string, where a quote is escaped). A view: the details are
-- read twice rather than copied.
CREATE TEMP VIEW detail_split AS
    SELECT finding_id, detail, k, j,
        substr(detail, 13, k - 13) AS head,
        substr(detail, k + 22, j - k - 22) AS packages,
        substr(detail, j + 10, length(detail) - j - 10) AS tail
    FROM (SELECT finding_id, detail, instr(detail, ',"vulnerablePackages":') AS k, instr(detail, '},"image":') AS j FROM finding_details);

INSERT INTO finding_texts(text)
    SELECT head FROM temp.detail_split WHERE substr(detail, 1, 12) = '{"finding":{' AND k > 0 AND j > k AND substr(detail, -1) = '}'
    UNION SELECT tail FROM temp.detail_split WHERE substr(detail, 1, 12) = '{"finding":{' AND k > 0 AND j > k AND substr(detail, -1) = '}';

INSERT INTO finding_details_new(finding_id, head_id, tail_id, detail)
    SELECT s.finding_id, h.id, t.id, s.packages FROM temp.detail_split s
        JOIN finding_texts h ON h.text = s.head JOIN finding_texts t ON t.text = s.tail
    WHERE substr(s.detail, 1, 12) = '{"finding":{' AND s.k > 0 AND s.j > s.k AND substr(s.detail, -1) = '}'
        AND '{"finding":{' || s.head || ',"vulnerablePackages":' || s.packages || '},"image":' || s.tail || '}' = s.detail;
-- The rest whole.
INSERT INTO finding_details_new(finding_id, head_id, tail_id, detail)
    SELECT finding_id, NULL, NULL, detail FROM finding_details WHERE finding_id NOT IN (SELECT finding_id FROM finding_details_new);

DROP VIEW temp.detail_split;
DROP TABLE finding_details;
ALTER TABLE finding_details_new RENAME TO finding_details;

CREATE VIEW finding_detail_view(finding_id, detail) AS
    SELECT d.finding_id, CASE WHEN d.head_id IS NULL THEN d.detail
        ELSE '{"finding":{' || h.text || ',"vulnerablePackages":' || d.detail || '},"image":' || t.text || '}' END
    FROM finding_details d LEFT JOIN finding_texts h ON h.id = d.head_id LEFT JOIN finding_texts t ON t.id = d.tail_id;
