-- The findings that name no package keys (package_keys NULL: written by a Lading before 0049
-- kept them, or of packages without keys), by target. A re-evaluation reads, of each image it
-- applies, the findings naming a changed key or none (a partial state); when no key list names
-- a changed key (a new advisory for a package no finding holds yet), that is only these, read
-- here instead of every finding of the image (some seventy rows each, for 10,000 images). Few
-- rows: normally none.
CREATE INDEX finding_rows_no_keys ON finding_rows(target_id) WHERE package_keys IS NULL;
