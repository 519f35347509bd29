-- Findings (SQLite's 0020 to 0033 and 0036 in their final shape): the findings of each image,
-- their details with the shared texts stored once, the columns and packages the finding
-- queries read, the suppression rules, and the per-image counts the aggregations read.
-- Times are Unix milliseconds.

-- A finding's row holds everything but its detail. package_keys: the advisory keys of its
-- packages, one "ecosystem<TAB>name" per line, NULL when not known. A finding's lastObservedAt
-- is, while it is ACTIVE, the later of its own last_observed_at and its image's
-- image_scans.findings_observed_at (see SQLite's 0021).
CREATE TABLE findings (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository        TEXT COLLATE "C" NOT NULL,
    image_digest      TEXT COLLATE "C" NOT NULL,
    scan_type         TEXT COLLATE "C" NOT NULL,
    vulnerability_id  TEXT COLLATE "C" NOT NULL,
    arn               TEXT COLLATE "C" NOT NULL,
    status            TEXT COLLATE "C" NOT NULL,  -- ACTIVE or CLOSED
    severity          TEXT COLLATE "C" NOT NULL,
    score             DOUBLE PRECISION NOT NULL DEFAULT 0,
    fingerprint       TEXT    NOT NULL,  -- hash of the detail: a change makes an update
    package_keys      TEXT,
    first_observed_at BIGINT  NOT NULL,
    last_observed_at  BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    -- Copied from the detail when it is written, for the finding queries (SQLite's 0027).
    title             TEXT COLLATE "C" NOT NULL DEFAULT '',
    source            TEXT COLLATE "C" NOT NULL DEFAULT '',
    vendor_severity   TEXT COLLATE "C" NOT NULL DEFAULT '',
    fix_available     TEXT COLLATE "C" NOT NULL DEFAULT 'NO',  -- YES, NO or PARTIAL
    aliases           JSONB   NOT NULL DEFAULT '[]',
    related           JSONB   NOT NULL DEFAULT '[]',
    -- Whether a SUPPRESS rule matches the finding (SQLite's 0029): stored, recomputed when a
    -- rule changes and for each finding written with its detail.
    suppressed        BOOLEAN NOT NULL DEFAULT false,
    UNIQUE (repository, image_digest, scan_type, vulnerability_id)
);
CREATE INDEX findings_arn ON findings(arn);
CREATE INDEX findings_vulnerability ON findings(vulnerability_id, scan_type, repository, image_digest);
CREATE INDEX findings_suppressed ON findings(id) WHERE suppressed;

-- The texts a detail shares with others (the vulnerability's, the image's), stored once
-- (SQLite's 0032): a detail whose shape is '{"finding":{' head ',"vulnerablePackages":'
-- packages '},"image":' tail '}' keeps only its packages, with the ids of head and tail.
CREATE TABLE finding_texts (
    id   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    text TEXT NOT NULL
);
-- The texts are long: the lookup is by hash, the equality checked on the row.
CREATE INDEX finding_texts_text ON finding_texts USING hash (text);

CREATE TABLE finding_details (
    finding_id BIGINT PRIMARY KEY REFERENCES findings(id) ON DELETE CASCADE,
    head_id    BIGINT,  -- finding_texts.id (texts are never deleted); NULL: detail is the whole detail
    tail_id    BIGINT,
    detail     TEXT   NOT NULL
);

CREATE VIEW finding_detail_view(finding_id, detail) AS
    SELECT d.finding_id, CASE WHEN d.head_id IS NULL THEN d.detail
        ELSE '{"finding":{' || h.text || ',"vulnerablePackages":' || d.detail || '},"image":' || t.text || '}' END
    FROM finding_details d LEFT JOIN finding_texts h ON h.id = d.head_id LEFT JOIN finding_texts t ON t.id = d.tail_id;

-- A finding's vulnerable packages, one row each, for vulnerablePackages filters.
CREATE TABLE finding_packages (
    finding_id        BIGINT  NOT NULL REFERENCES findings(id) ON DELETE CASCADE,
    seq               INTEGER NOT NULL,
    name              TEXT COLLATE "C" NOT NULL,
    version           TEXT COLLATE "C" NOT NULL,
    epoch             BIGINT  NOT NULL,
    release           TEXT COLLATE "C" NOT NULL,
    arch              TEXT COLLATE "C" NOT NULL,
    file_path         TEXT COLLATE "C" NOT NULL,
    source_layer_hash TEXT COLLATE "C" NOT NULL,
    reachability      TEXT COLLATE "C" NOT NULL DEFAULT '',
    PRIMARY KEY (finding_id, seq)
);

-- The image's architecture, from its facts (image_facts, JSON the scanner owns), for the
-- finding queries: copied when the facts are written rather than read with PostgreSQL's JSON
-- functions, which refuse a document holding an escaped NUL anywhere (an image's author is the
-- image's to choose).
ALTER TABLE image_scans ADD COLUMN architecture TEXT COLLATE "C" NOT NULL DEFAULT '';

-- Suppression rules (internal/suppression); criteria is findings.Criteria as JSON.
CREATE TABLE suppression_rules (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    arn         TEXT COLLATE "C" NOT NULL UNIQUE,
    name        TEXT COLLATE "C" NOT NULL UNIQUE,
    action      TEXT   NOT NULL,  -- SUPPRESS or NONE
    description TEXT   NOT NULL DEFAULT '',
    reason      TEXT   NOT NULL DEFAULT '',
    criteria    TEXT   NOT NULL,
    tags        TEXT   NOT NULL DEFAULT '{}',
    owner       TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- How many findings of each image Inspector shows as ACTIVE (status ACTIVE, not suppressed),
-- by severity (SQLite's 0033), kept by the trigger below in the transaction of every write of
-- findings. A row whose counts fell to zero is removed.
CREATE TABLE image_finding_counts (
    repository      TEXT COLLATE "C" NOT NULL,
    image_digest    TEXT COLLATE "C" NOT NULL,
    scan_type       TEXT COLLATE "C" NOT NULL,
    n_all           BIGINT NOT NULL,
    n_critical      BIGINT NOT NULL,
    n_high          BIGINT NOT NULL,
    n_medium        BIGINT NOT NULL,
    n_low           BIGINT NOT NULL,
    n_informational BIGINT NOT NULL,
    n_undefined     BIGINT NOT NULL,
    PRIMARY KEY (repository, image_digest, scan_type)
);

-- The functions resolve names in the schema they were made in (SET search_path FROM CURRENT),
-- whatever the search path of the session whose write fires the trigger.
CREATE FUNCTION finding_counts_change(repo TEXT, dgst TEXT, st TEXT, sev TEXT, d BIGINT) RETURNS void LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF d < 0 THEN
        -- A finding no longer counted: its image's row is there (it counted it), unless the
        -- counts went first (a delete of everything); a missing row is not made negative.
        UPDATE image_finding_counts SET n_all = n_all + d,
            n_critical = n_critical + CASE WHEN sev = 'CRITICAL' THEN d ELSE 0 END,
            n_high = n_high + CASE WHEN sev = 'HIGH' THEN d ELSE 0 END,
            n_medium = n_medium + CASE WHEN sev = 'MEDIUM' THEN d ELSE 0 END,
            n_low = n_low + CASE WHEN sev = 'LOW' THEN d ELSE 0 END,
            n_informational = n_informational + CASE WHEN sev = 'INFORMATIONAL' THEN d ELSE 0 END,
            n_undefined = n_undefined + CASE WHEN sev NOT IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL') THEN d ELSE 0 END
        WHERE repository = repo AND image_digest = dgst AND scan_type = st;
        DELETE FROM image_finding_counts WHERE repository = repo AND image_digest = dgst AND scan_type = st AND n_all <= 0;
        RETURN;
    END IF;
    INSERT INTO image_finding_counts VALUES (repo, dgst, st, d,
        CASE WHEN sev = 'CRITICAL' THEN d ELSE 0 END, CASE WHEN sev = 'HIGH' THEN d ELSE 0 END,
        CASE WHEN sev = 'MEDIUM' THEN d ELSE 0 END, CASE WHEN sev = 'LOW' THEN d ELSE 0 END,
        CASE WHEN sev = 'INFORMATIONAL' THEN d ELSE 0 END,
        CASE WHEN sev NOT IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL') THEN d ELSE 0 END)
    ON CONFLICT (repository, image_digest, scan_type) DO UPDATE SET n_all = image_finding_counts.n_all + excluded.n_all,
        n_critical = image_finding_counts.n_critical + excluded.n_critical, n_high = image_finding_counts.n_high + excluded.n_high,
        n_medium = image_finding_counts.n_medium + excluded.n_medium, n_low = image_finding_counts.n_low + excluded.n_low,
        n_informational = image_finding_counts.n_informational + excluded.n_informational,
        n_undefined = image_finding_counts.n_undefined + excluded.n_undefined;
END $$;

CREATE FUNCTION findings_count() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'ACTIVE' AND NOT OLD.suppressed THEN
        IF TG_OP = 'UPDATE' AND NEW.status = 'ACTIVE' AND NOT NEW.suppressed AND NEW.severity = OLD.severity
            AND NEW.repository = OLD.repository AND NEW.image_digest = OLD.image_digest AND NEW.scan_type = OLD.scan_type THEN
            RETURN NULL;  -- counts the same
        END IF;
        PERFORM finding_counts_change(OLD.repository, OLD.image_digest, OLD.scan_type, OLD.severity, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status = 'ACTIVE' AND NOT NEW.suppressed THEN
        PERFORM finding_counts_change(NEW.repository, NEW.image_digest, NEW.scan_type, NEW.severity, 1);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER findings_count AFTER INSERT OR DELETE OR UPDATE OF repository, image_digest, scan_type, status, severity, suppressed
    ON findings FOR EACH ROW EXECUTE FUNCTION findings_count();
