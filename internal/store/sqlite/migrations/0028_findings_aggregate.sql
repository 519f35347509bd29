-- ListFindingAggregations counts the ACTIVE ENHANCED findings of each image by severity: this
-- index holds just that, in image order, so an aggregation over every finding of the registry
-- reads a third of what findings_image (every column the scanner reads) would make it read.
-- It is partial, and the aggregation query states its condition with literals (a bound
-- parameter does not prove it): ListFindings, whose conditions are parameters, never uses it,
-- so its plans keep the findings_image order its pages rely on.
CREATE INDEX findings_active_severity ON findings(repository, image_digest, severity) WHERE scan_type = 'ENHANCED' AND status = 'ACTIVE';
