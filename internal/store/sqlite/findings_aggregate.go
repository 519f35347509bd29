package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/scanning/policy"
)

// AggregateFindings returns a page of groups of the ENHANCED findings matching q (Inspector's
// ListFindingAggregations).
//
// The groups are counted in two steps: per image (and the type's own key: layer, package,
// title) over finding_rows, clustered by image (or, for repositories and images without filters, from
// the counts the writers keep: image_finding_counts per image, repository_finding_counts per
// repository), then per group with the image
// joined once. Joining the image (manifests, which says the registry still holds it) to every
// finding row would cost a lookup per finding; this way it costs one per image.
func (db *DB) AggregateFindings(ctx context.Context, q findings.AggregationQuery) ([]findings.AggregateRow, error) {
	exploited, err := json.Marshal(q.Exploited)
	if err != nil {
		return nil, err
	}
	if q.Exploited == nil {
		exploited = []byte("[]")
	}
	b := &queryBuilder{q: findings.Query{Criteria: q.Criteria, Account: q.Account, Region: q.Region}, exploited: string(exploited)}
	// Only ACTIVE findings are counted (findings.Service.Aggregate asks for them too).
	b.add("f.scan_type = '" + policy.ScanTypeEnhanced + "' AND f.status = 'ACTIVE'")
	b.compile()
	// The key of a group within an image, and of a group in the end.
	var innerKey, outerKey []string
	packages := false
	switch q.Type {
	case findings.AggregateRepository:
		outerKey = []string{"g.repository"}
	case findings.AggregateImage:
		outerKey = []string{"g.repository", "g.image_digest"}
	case findings.AggregateImageLayer:
		innerKey, packages = []string{"p.source_layer_hash"}, true
		outerKey = []string{"g.repository", "g.image_digest", "g.k0"}
	case findings.AggregatePackage:
		innerKey, packages = []string{"p.name"}, true
		outerKey = []string{"g.k0"}
	case findings.AggregateTitle:
		innerKey = []string{"f.title"}
		outerKey = []string{"g.k0"}
	case findings.AggregateFindingType:
	default:
		return nil, fmt.Errorf("aggregation type %s: not supported", q.Type)
	}
	if len(q.Layers) > 0 {
		b.stringCond(column{expr: "p.source_layer_hash"}, q.Layers)
		packages = true
	}
	if len(q.Packages) > 0 {
		b.stringCond(column{expr: "p.name"}, q.Packages)
		packages = true
	}
	// A finding in a group is counted once, even with two packages in it.
	count := func(cond string) string {
		if packages {
			return "count(DISTINCT CASE WHEN " + cond + " THEN f.id END)"
		}
		return "sum(CASE WHEN " + cond + " THEN 1 ELSE 0 END)"
	}
	exp := b.exploitedExpr()
	inner := []string{"f.repository", "f.image_digest"}
	for i, k := range innerKey {
		inner = append(inner, k+" AS k"+fmt.Sprint(i))
	}
	// Only FINDING_TYPE counts fixes and exploits, only TITLE names a vulnerability: the other
	// types read neither.
	fix, exploit, vuln := "0", "0", "''"
	if q.Type == findings.AggregateTitle {
		vuln = "min(f.vulnerability_id)"
	}
	if q.Type == findings.AggregateFindingType {
		fix, exploit = count("f.fix_available IN ('YES', 'PARTIAL')"), count(exp.expr+" = 'YES'")
	} else {
		exp.args = nil
	}
	inner = append(inner, count("1")+" AS n_all", count("f.severity = 'MEDIUM'")+" AS n_medium", count("f.severity = 'HIGH'")+" AS n_high",
		count("f.severity = 'CRITICAL'")+" AS n_critical", fix+" AS n_fix", exploit+" AS n_exploit", vuln+" AS vuln")
	from := "findings f"
	if needsImage(q.Criteria) {
		from += " JOIN manifests m ON m.repository = f.repository AND m.digest = f.image_digest"
	}
	if b.scans {
		from += " LEFT JOIN image_scans s ON s.repository = f.repository AND s.image_digest = f.image_digest AND s.scan_type = f.scan_type"
	}
	if packages {
		from += " JOIN finding_packages p ON p.finding_id = f.id"
	}
	groupInner := "f.repository, f.image_digest"
	for i := range innerKey {
		groupInner += ", k" + fmt.Sprint(i)
	}
	innerSQL := "SELECT " + strings.Join(inner, ", ") + " FROM " + from + " WHERE " + strings.Join(b.where, " AND ") + " GROUP BY " + groupInner
	args := append(append([]any{}, exp.args...), b.args...)
	if countsAnswer(q) && (q.Type == findings.AggregateRepository || q.Type == findings.AggregateImage) {
		// The same per-image rows, kept by the writers (0033_finding_counts.sql).
		innerSQL = `SELECT repository, image_digest, n_all, n_medium, n_high, n_critical, 0 AS n_fix, 0 AS n_exploit, '' AS vuln
			FROM image_finding_counts WHERE scan_type = '` + policy.ScanTypeEnhanced + `' AND n_all > 0`
		args = nil
	}

	outer := append([]string{}, outerKey...)
	for len(outer) < 3 {
		outer = append(outer, "''") // the row always has three key columns
	}
	outer = append(outer, "coalesce(sum(g.n_all), 0) AS c_all", "coalesce(sum(g.n_medium), 0)", "coalesce(sum(g.n_high), 0) AS c_high",
		"coalesce(sum(g.n_critical), 0) AS c_critical", "coalesce(sum(g.n_fix), 0)", "coalesce(sum(g.n_exploit), 0)", "count(*) AS c_images",
		"coalesce(min(g.vuln), '')")
	// Only AWS_ECR_CONTAINER tells the image's last pull and architecture: the other types
	// join the image by its key alone (the manifests primary key covers it).
	imageCols := "0, ''"
	if q.Type == findings.AggregateImage {
		imageCols = "coalesce(max(m.last_pulled_at), 0), coalesce(max(json_extract(nullif(s.image_facts, ''), '$.architecture')), '')"
	}
	outer = append(outer, imageCols)
	query := "SELECT " + strings.Join(outer, ", ") + " FROM (" + innerSQL + ") g" +
		" JOIN manifests m ON m.repository = g.repository AND m.digest = g.image_digest"
	if q.Type == findings.AggregateImage {
		query += " LEFT JOIN image_scans s ON s.repository = g.repository AND s.image_digest = g.image_digest AND s.scan_type = '" + policy.ScanTypeEnhanced + "'"
	}
	if len(outerKey) > 0 {
		query += " GROUP BY " + strings.Join(outerKey, ", ")
	}
	if countsAnswer(q) && (q.Type == findings.AggregateTitle || q.Type == findings.AggregateFindingType) {
		// Every group from the per-vulnerability counts the writers keep
		// (0034_vulnerability_counts.sql): a row per vulnerability, not per finding.
		ids, _ := countedVulnerabilities(q)
		query, args, outerKey = vulnerabilityCountsQuery(q.Type, exp, ids)
	}
	if countsAnswer(q) && q.Type == findings.AggregateRepository {
		// Every group from the per-repository counts the writers keep
		// (0039_repository_finding_counts.sql): a row per repository, not per image.
		query = `SELECT g.repository, '', '', g.n_all AS c_all, g.n_medium, g.n_high AS c_high, g.n_critical AS c_critical, 0, 0,
			g.n_images AS c_images, '', 0, '' FROM repository_finding_counts g WHERE g.scan_type = '` + policy.ScanTypeEnhanced + `' AND g.n_all > 0`
		args, outerKey = nil, []string{"g.repository"}
	}
	query += " ORDER BY " + aggregateOrder(q, outerKey) + " LIMIT ? OFFSET ?"
	args = append(args, q.Limit, q.Offset)

	var out []findings.AggregateRow
	err = db.readTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("aggregate findings: %w", err)
		}
		for rows.Next() {
			var k [3]string
			var r findings.AggregateRow
			var pulled int64
			if err := rows.Scan(&k[0], &k[1], &k[2], &r.Counts.All, &r.Counts.Medium, &r.Counts.High, &r.Counts.Critical, &r.FixAvailable,
				&r.ExploitAvailable, &r.AffectedImages, &r.VulnerabilityID, &pulled, &r.Architecture); err != nil {
				_ = rows.Close()
				return err
			}
			switch q.Type {
			case findings.AggregateRepository:
				r.Repository = k[0]
			case findings.AggregateImage:
				r.Repository, r.Digest = k[0], k[1]
				if pulled > 0 {
					r.LastPulledAt = fromMS(pulled)
				}
			case findings.AggregateImageLayer:
				r.Repository, r.Digest, r.LayerHash = k[0], k[1], k[2]
			case findings.AggregatePackage:
				r.PackageName = k[0]
			case findings.AggregateTitle:
				r.Title = k[0]
			}
			if q.Type != findings.AggregateTitle {
				r.VulnerabilityID = ""
			}
			if q.Type != findings.AggregateImage {
				r.Architecture = ""
			}
			out = append(out, r)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if q.Type != findings.AggregateImage {
			return nil
		}
		for i, r := range out {
			tags, err := queryStrings(ctx, tx, "SELECT tag FROM tags WHERE repository = ? AND digest = ? ORDER BY tag", r.Repository, r.Digest)
			if err != nil {
				return fmt.Errorf("aggregate findings: tags of %s@%s: %w", r.Repository, r.Digest, err)
			}
			out[i].Tags = tags
		}
		return nil
	})
	return out, err
}

// aggregateOrder is the ORDER BY of an aggregation: the count q sorts by, then the group's key.
func aggregateOrder(q findings.AggregationQuery, keys []string) string {
	dir := "DESC"
	if q.SortOrder == findings.Asc {
		dir = "ASC"
	}
	var order string
	switch q.SortBy {
	case findings.SortByHigh:
		order = "c_high " + dir
	case findings.SortByAll:
		order = "c_all " + dir
	case findings.SortByAffectedImages:
		order = "c_images " + dir
	default:
		order = "c_critical " + dir
	}
	for _, k := range keys {
		order += ", " + k
	}
	return order
}

// vulnerabilityCountsQuery returns the TITLE or FINDING_TYPE aggregation over
// vulnerability_finding_counts, with the columns of AggregateFindings's query and the group's
// key. A title is ACTIVE at most once in an image (one finding per vulnerability an image), so
// its finding count is its image count; FINDING_TYPE's image count is read from
// repository_finding_counts. The exploited catalogue is matched against each row's vulnerability and
// aliases.
func vulnerabilityCountsQuery(t findings.AggregationType, exp column, ids []string) (string, []any, []string) {
	from := " FROM vulnerability_finding_counts f WHERE f.scan_type = '" + policy.ScanTypeEnhanced + "' AND f.n_all > 0"
	var idArgs []any
	if len(ids) > 0 {
		from += " AND f.vulnerability_id IN (" + placeholders(len(ids)) + ")"
		idArgs = toAny(ids)
	}
	if t == findings.AggregateTitle {
		return `SELECT f.title, '', '', sum(f.n_all) AS c_all, sum(f.n_medium), sum(f.n_high) AS c_high, sum(f.n_critical) AS c_critical,
			0, 0, sum(f.n_all) AS c_images, min(f.vulnerability_id), 0, ''` + from + " GROUP BY f.title", idArgs, []string{"f.title"}
	}
	return `SELECT '', '', '', coalesce(sum(f.n_all), 0) AS c_all, coalesce(sum(f.n_medium), 0), coalesce(sum(f.n_high), 0) AS c_high,
		coalesce(sum(f.n_critical), 0) AS c_critical, coalesce(sum(f.n_fix), 0), coalesce(sum(CASE WHEN ` + exp.expr + ` = 'YES' THEN f.n_all ELSE 0 END), 0),
		(SELECT coalesce(sum(c.n_images), 0) FROM repository_finding_counts c WHERE c.scan_type = '` + policy.ScanTypeEnhanced + `') AS c_images,
		'', 0, ''` + from, append(exp.args, idArgs...), nil
}

// countsAnswer reports whether the counts the writers keep answer q (image_finding_counts for
// repositories and images, vulnerability_finding_counts for titles and finding types):
// counting what Inspector shows as ACTIVE, without any other filter but, for titles,
// vulnerability ids EQUALS (the console's page of a vulnerability).
func countsAnswer(q findings.AggregationQuery) bool {
	switch q.Type {
	case findings.AggregateRepository, findings.AggregateImage, findings.AggregateTitle, findings.AggregateFindingType:
	default:
		return false
	}
	if len(q.Layers) > 0 || len(q.Packages) > 0 {
		return false
	}
	c := q.Criteria
	status := c.Strings[findings.FindingStatus]
	others := len(c.Strings) - 1
	if _, ok := countedVulnerabilities(q); ok && c.Strings[findings.VulnerabilityID] != nil {
		others--
	}
	return others == 0 && len(status) == 1 && status[0] == findings.StringFilter{Comparison: findings.Equals, Value: "ACTIVE"} &&
		len(c.Dates) == 0 && len(c.Numbers) == 0 && len(c.Maps) == 0 && len(c.PortRanges) == 0 && len(c.Packages) == 0
}

// countedVulnerabilities returns the vulnerability ids a TITLE aggregation is filtered to when vulnerability_finding_counts can filter them (EQUALS only: any of them);
// ok is false when it cannot.
func countedVulnerabilities(q findings.AggregationQuery) (ids []string, ok bool) {
	if q.Type != findings.AggregateTitle && q.Type != findings.AggregateFindingType {
		return nil, false
	}
	list, present := q.Criteria.Strings[findings.VulnerabilityID]
	if !present {
		return nil, true
	}
	// FINDING_TYPE counts images, which image_finding_counts counts for every vulnerability only.
	if len(list) == 0 || q.Type != findings.AggregateTitle {
		return nil, false
	}
	for _, sf := range list {
		if sf.Comparison != findings.Equals {
			return nil, false
		}
		ids = append(ids, sf.Value)
	}
	return ids, true
}

// needsImage reports whether criteria read the image's columns (manifests), which the
// finding rows do not hold.
func needsImage(c findings.Criteria) bool {
	for f := range c.Dates {
		if f == findings.ECRImagePushedAt || f == findings.ECRImageLastInUseAt {
			return true
		}
	}
	return false
}
