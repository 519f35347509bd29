-- 0052's finding_rows_count with a counted finding's change written in place, in one statement,
-- not through finding_counts_change: a re-evaluation adds a finding to each of hundreds of
-- images, and the nested call (a lookup of the target, then a function call with its upsert)
-- cost as much again as the upsert. What is counted is as before: ACTIVE, not suppressed.
CREATE OR REPLACE FUNCTION finding_rows_count() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
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
        INSERT INTO image_finding_counts
            SELECT s.repository, s.image_digest, s.scan_type, 1,
                CASE WHEN NEW.severity = 'CRITICAL' THEN 1 ELSE 0 END, CASE WHEN NEW.severity = 'HIGH' THEN 1 ELSE 0 END,
                CASE WHEN NEW.severity = 'MEDIUM' THEN 1 ELSE 0 END, CASE WHEN NEW.severity = 'LOW' THEN 1 ELSE 0 END,
                CASE WHEN NEW.severity = 'INFORMATIONAL' THEN 1 ELSE 0 END,
                CASE WHEN NEW.severity NOT IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL') THEN 1 ELSE 0 END
            FROM scan_targets s WHERE s.id = NEW.target_id
        ON CONFLICT (repository, image_digest, scan_type) DO UPDATE SET n_all = image_finding_counts.n_all + 1,
            n_critical = image_finding_counts.n_critical + excluded.n_critical, n_high = image_finding_counts.n_high + excluded.n_high,
            n_medium = image_finding_counts.n_medium + excluded.n_medium, n_low = image_finding_counts.n_low + excluded.n_low,
            n_informational = image_finding_counts.n_informational + excluded.n_informational,
            n_undefined = image_finding_counts.n_undefined + excluded.n_undefined;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'finding row % names no scan target %', NEW.id, NEW.target_id;
        END IF;
    END IF;
    RETURN NULL;
END $$;
