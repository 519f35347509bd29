-- The newest modified time of the current advisories, which every `lading scan` checks
-- (--max-db-age), read from the top of an index instead of a pass over every record.
CREATE INDEX advisory_records_modified ON advisory_records(modified);
