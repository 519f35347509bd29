package sqlite

import "context"

// What ListFindings queries of a finding's detail is copied into the finding's row (its
// vulnerability's facts, in finding_facts, and fix_available) and finding_packages when the
// detail is written (migrations 0027 and 0036 backfilled the rows written before). The JSON
// paths are those of scanning.Detail; the store's test writes a real one and reads the
// columns back.

// findingFactsOfDetail are the vulnerability's facts in the stored detail of finding ?1.
const findingFactsOfDetail = `coalesce(json_extract(d.detail, '$.finding.title'), ''),
		coalesce(json_extract(d.detail, '$.finding.source'), ''),
		coalesce(json_extract(d.detail, '$.finding.vendorSeverity'), ''),
		coalesce(json_extract(d.detail, '$.finding.aliases'), '[]'),
		coalesce(json_extract(d.detail, '$.finding.related'), '[]')`

// indexFindingFacts writes the facts of finding ?1's detail into finding_facts when new.
const indexFindingFacts = `INSERT INTO finding_facts(title, source, vendor_severity, aliases, related)
	SELECT ` + findingFactsOfDetail + ` FROM finding_detail_view d WHERE d.finding_id = ?1
	ON CONFLICT DO NOTHING`

// indexFindingColumns points finding ?1 at its detail's facts and sets fix_available.
const indexFindingColumns = `UPDATE finding_rows SET
	facts = (SELECT x.id FROM finding_detail_view d, finding_facts x WHERE d.finding_id = ?1
		AND (x.title, x.source, x.vendor_severity, x.aliases, x.related) = (SELECT ` + findingFactsOfDetail + `)),
	fix_available = (SELECT CASE
			WHEN count(*) = 0 OR total(coalesce(json_extract(p.value, '$.fixedInVersion'), '') != '') = 0 THEN 'NO'
			WHEN total(coalesce(json_extract(p.value, '$.fixedInVersion'), '') != '') = count(*) THEN 'YES'
			ELSE 'PARTIAL' END
		FROM finding_detail_view d, json_each(d.detail, '$.finding.vulnerablePackages') p WHERE d.finding_id = ?1)
	WHERE id = ?1 AND EXISTS (SELECT 1 FROM finding_details WHERE finding_id = ?1)`

// The packages of finding ?1's detail: their layers into finding_layers when new, then their
// rows (0047).
const (
	indexFindingLayers = `INSERT INTO finding_layers(digest)
	SELECT DISTINCT coalesce(json_extract(p.value, '$.sourceLayerHash'), '')
	FROM finding_detail_view d, json_each(d.detail, '$.finding.vulnerablePackages') p WHERE d.finding_id = ?1
	ON CONFLICT DO NOTHING`
	indexFindingPackages = `INSERT INTO finding_package_rows(finding_id, seq, name, version, epoch, release, arch, file_path, layer, reachability)
	SELECT d.finding_id, p.key, coalesce(json_extract(p.value, '$.name'), ''), coalesce(json_extract(p.value, '$.version'), ''),
		coalesce(json_extract(p.value, '$.epoch'), 0), coalesce(json_extract(p.value, '$.release'), ''),
		coalesce(json_extract(p.value, '$.arch'), ''), coalesce(json_extract(p.value, '$.filePath'), ''),
		l.id, coalesce(json_extract(p.value, '$.reachability'), '')
	FROM finding_detail_view d, json_each(d.detail, '$.finding.vulnerablePackages') p
		JOIN finding_layers l ON l.digest = coalesce(json_extract(p.value, '$.sourceLayerHash'), '')
	WHERE d.finding_id = ?1`
)

// indexFindingQueries are the statements that index the stored detail of a finding, each
// taking the finding's id.
func indexFindingQueries() []string {
	return []string{indexFindingFacts, indexFindingColumns, "DELETE FROM finding_package_rows WHERE finding_id = ?1", indexFindingLayers,
		indexFindingPackages}
}

// indexFinding copies what the queries need of the stored detail of finding id.
func indexFinding(ctx context.Context, q execer, id int64) error {
	for _, query := range indexFindingQueries() {
		if _, err := q.ExecContext(ctx, query, id); err != nil {
			return err
		}
	}
	return nil
}

// IndexFindingQueries are the statements the scanning writers run, each with the finding's id,
// after writing a finding's detail; exported for loaders that fill a store directly
// (benchmarks), which must run them too.
func IndexFindingQueries() []string { return indexFindingQueries() }
