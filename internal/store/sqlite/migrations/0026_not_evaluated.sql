-- What a scan could not evaluate (packages whose version does not compare, advisories whose
-- ranges do not compile), so that readers (the API's status description, coverage, the
-- console) can say an image is not known to be clean: JSON the scanner owns, '' when nothing,
-- and the count of packages, for listing images without decoding it.
ALTER TABLE image_scans ADD COLUMN not_evaluated TEXT NOT NULL DEFAULT '';
ALTER TABLE image_scans ADD COLUMN not_evaluated_packages INTEGER NOT NULL DEFAULT 0;
