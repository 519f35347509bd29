package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// This file runs the findings queries of internal/findings: the criteria compiled to SQL over
// findings (with the columns of migration 0027), finding_packages, manifests, tags and
// image_scans. Only ENHANCED findings are Inspector's, and only of images the registry holds.

// queryBuilder collects a query's joins, conditions and arguments.
type queryBuilder struct {
	q         findings.Query
	where     []string
	args      []any
	scans     bool // image_scans is joined (s)
	exploited string
	// rule compiles a suppression rule's criteria: findingStatus is the stored ACTIVE or
	// CLOSED, which suppression does not change (a rule cannot depend on what rules decide).
	rule bool
}

func (b *queryBuilder) add(cond string, args ...any) {
	b.where = append(b.where, cond)
	b.args = append(b.args, args...)
}

// column is a criterion's SQL expression, the arguments it binds, and whether it needs
// image_scans joined. A criterion without a column is a constant (matched in Go) or absent.
type column struct {
	expr  string
	args  []any
	scans bool
}

// lastObservedExpr is a finding's lastObservedAt (0021_findings_observed.sql): while ACTIVE,
// the later of its own and its image's findings_observed_at.
const lastObservedExpr = `(CASE WHEN f.status = 'ACTIVE' AND coalesce(s.findings_observed_at, 0) > f.last_observed_at
	THEN s.findings_observed_at ELSE f.last_observed_at END)`

// statusExpr is a finding's status as Inspector shows it (scanning.InspectorStatus): an ACTIVE
// finding a suppression rule matches is SUPPRESSED (0029_suppression.sql).
const statusExpr = `(CASE WHEN f.status = 'ACTIVE' AND f.suppressed = 1 THEN 'SUPPRESSED' ELSE f.status END)`

// severityExpr is the severity as Inspector words it (findings.InspectorSeverity).
const severityExpr = `(CASE f.severity WHEN 'UNDEFINED' THEN 'UNTRIAGED' ELSE f.severity END)`

// severityRankExpr orders severities, most severe highest.
const severityRankExpr = `(CASE f.severity WHEN 'CRITICAL' THEN 5 WHEN 'HIGH' THEN 4 WHEN 'MEDIUM' THEN 3 WHEN 'LOW' THEN 2
	WHEN 'INFORMATIONAL' THEN 1 ELSE 0 END)`

func (b *queryBuilder) exploitedExpr() column {
	// The catalogue is bound once as a JSON array; SQLite builds the IN list's index once per
	// statement.
	return column{expr: `(CASE WHEN f.vulnerability_id IN (SELECT value FROM json_each(?)) OR EXISTS (SELECT 1 FROM json_each(f.aliases) a
		WHERE a.value IN (SELECT value FROM json_each(?))) THEN 'YES' ELSE 'NO' END)`, args: []any{b.exploited, b.exploited}}
}

// stringColumn returns the expression of a single-valued string criterion.
func (b *queryBuilder) stringColumn(f findings.Field) (column, bool) {
	switch f {
	case findings.FindingARN:
		return column{expr: "f.arn"}, true
	case findings.Severity:
		return column{expr: severityExpr}, true
	case findings.FindingStatus:
		if b.rule {
			return column{expr: "f.status"}, true
		}
		return column{expr: statusExpr}, true
	case findings.Title:
		return column{expr: "f.title"}, true
	case findings.ResourceID:
		return column{expr: "('arn:aws:ecr:' || ? || ':' || ? || ':repository/' || f.repository || '/' || f.image_digest)",
			args: []any{b.q.Region, b.q.Account}}, true
	case findings.ECRImageArchitecture:
		return column{expr: "coalesce(json_extract(nullif(s.image_facts, ''), '$.architecture'), '')", scans: true}, true
	case findings.ECRImageRepositoryName:
		return column{expr: "f.repository"}, true
	case findings.ECRImageHash:
		return column{expr: "f.image_digest"}, true
	case findings.VulnerabilityID:
		return column{expr: "f.vulnerability_id"}, true
	case findings.VulnerabilitySource:
		return column{expr: "f.source"}, true
	case findings.VendorSeverity:
		return column{expr: "f.vendor_severity"}, true
	case findings.FixAvailable:
		return column{expr: "f.fix_available"}, true
	case findings.ExploitAvailable:
		return b.exploitedExpr(), true
	}
	return column{}, false
}

// constantValue is the value a criterion has for every finding of the registry.
func (b *queryBuilder) constantValue(f findings.Field) (string, bool) {
	switch f {
	case findings.AWSAccountID, findings.ECRImageRegistry:
		return b.q.Account, true
	case findings.FindingType:
		return "PACKAGE_VULNERABILITY", true
	case findings.ResourceType:
		return "AWS_ECR_CONTAINER_IMAGE", true
	}
	return "", false
}

func dateColumn(f findings.Field) (column, bool) {
	switch f {
	case findings.FirstObservedAt:
		return column{expr: "f.first_observed_at"}, true
	case findings.LastObservedAt:
		return column{expr: lastObservedExpr, scans: true}, true
	case findings.UpdatedAt:
		return column{expr: "f.updated_at"}, true
	case findings.ECRImagePushedAt:
		return column{expr: "m.pushed_at"}, true
	case findings.ECRImageLastInUseAt:
		return column{expr: "nullif(m.last_pulled_at, 0)"}, true // never pulled: no value
	}
	return column{}, false
}

// compile turns the criteria into conditions.
func (b *queryBuilder) compile() {
	c := b.q.Criteria
	for f, list := range c.Strings {
		if col, ok := b.stringColumn(f); ok {
			b.stringCond(col, list)
			continue
		}
		if v, ok := b.constantValue(f); ok {
			b.constCond(matchConstant(v, true, list))
			continue
		}
		switch f {
		case findings.ECRImageTags:
			b.multiCond("SELECT 1 FROM tags t WHERE t.repository = f.repository AND t.digest = f.image_digest", "t.tag", list)
		case findings.RelatedVulnerabilities:
			b.multiCond("SELECT 1 FROM json_each(f.related) r WHERE 1", "r.value", list)
		default: // a criterion container image findings have no value for
			b.constCond(matchConstant("", false, list))
		}
	}
	for f, list := range c.Dates {
		col, ok := dateColumn(f)
		if !ok {
			b.constCond(len(list) == 0)
			continue
		}
		b.scans = b.scans || col.scans
		var alts []string
		var args []any
		for _, df := range list {
			conds := []string{col.expr + " IS NOT NULL"}
			args = append(args, col.args...)
			if df.Start != nil {
				conds = append(conds, col.expr+" >= ?")
				args = append(args, col.args...)
				args = append(args, df.Start.UnixMilli())
			}
			if df.End != nil {
				conds = append(conds, col.expr+" <= ?")
				args = append(args, col.args...)
				args = append(args, df.End.UnixMilli())
			}
			alts = append(alts, "("+strings.Join(conds, " AND ")+")")
		}
		b.add("("+strings.Join(alts, " OR ")+")", args...)
	}
	for f, list := range c.Numbers {
		if f != findings.InspectorScore {
			b.constCond(len(list) == 0) // no EPSS scores or in-use counts: no value
			continue
		}
		var alts []string
		var args []any
		for _, nf := range list {
			alt, a := numberCond("f.score", nf)
			alts = append(alts, alt)
			args = append(args, a...)
		}
		b.add("("+strings.Join(alts, " OR ")+")", args...)
	}
	for _, list := range c.Maps {
		b.constCond(len(list) == 0) // image resources carry no tags
	}
	for _, list := range c.PortRanges {
		b.constCond(len(list) == 0)
	}
	if len(c.Packages) > 0 {
		var alts []string
		var args []any
		for _, pf := range c.Packages {
			conds := []string{"p.finding_id = f.id"}
			for _, m := range []struct {
				col string
				sf  *findings.StringFilter
			}{{"p.name", pf.Name}, {"p.version", pf.Version}, {"p.release", pf.Release}, {"p.arch", pf.Architecture},
				{"p.source_layer_hash", pf.SourceLayerHash}, {"p.file_path", pf.FilePath}, {"p.reachability", pf.Reachability}} {
				if m.sf != nil {
					cond, a := stringCmp(column{expr: m.col}, *m.sf)
					conds = append(conds, cond)
					args = append(args, a...)
				}
			}
			if pf.SourceLambdaLayerArn != nil && !matchConstant("", false, []findings.StringFilter{*pf.SourceLambdaLayerArn}) {
				conds = append(conds, "0")
			}
			if pf.Epoch != nil {
				cond, a := numberCond("p.epoch", *pf.Epoch)
				conds = append(conds, cond)
				args = append(args, a...)
			}
			alts = append(alts, "EXISTS (SELECT 1 FROM finding_packages p WHERE "+strings.Join(conds, " AND ")+")")
		}
		b.add("("+strings.Join(alts, " OR ")+")", args...)
	}
}

func (b *queryBuilder) constCond(ok bool) {
	if !ok {
		b.add("0")
	}
}

// stringCond is a single-valued string criterion: the value matches one of the EQUALS and
// PREFIX filters (if there are any) and none of the NOT_EQUALS ones.
func (b *queryBuilder) stringCond(col column, list []findings.StringFilter) {
	b.scans = b.scans || col.scans
	var pos []string
	var posArgs []any
	for _, sf := range list {
		cond, a := stringCmp(col, sf)
		if sf.Comparison == findings.NotEquals {
			b.add(cond, a...)
			continue
		}
		pos, posArgs = append(pos, cond), append(posArgs, a...)
	}
	if len(pos) > 0 {
		b.add("("+strings.Join(pos, " OR ")+")", posArgs...)
	}
}

// multiCond is a criterion over a list of values (tags, related vulnerabilities): one value
// matches one of the EQUALS and PREFIX filters, and no value equals a NOT_EQUALS one.
func (b *queryBuilder) multiCond(sub, col string, list []findings.StringFilter) {
	var pos []string
	var posArgs []any
	for _, sf := range list {
		cond, a := stringCmp(column{expr: col}, sf)
		if sf.Comparison == findings.NotEquals {
			b.add("NOT EXISTS ("+sub+" AND "+col+" = ?)", sf.Value)
			continue
		}
		pos, posArgs = append(pos, cond), append(posArgs, a...)
	}
	if len(pos) > 0 {
		b.add("EXISTS ("+sub+" AND ("+strings.Join(pos, " OR ")+"))", posArgs...)
	}
}

// stringCmp compares an expression with one filter. PREFIX is a range, so that an index on
// the column serves it; no UTF-8 text holds the byte 0xff, so prefix+0xff bounds it.
func stringCmp(col column, sf findings.StringFilter) (string, []any) {
	arg := func(v string) []any { return append(append([]any{}, col.args...), v) }
	switch sf.Comparison {
	case findings.Prefix:
		return "(" + col.expr + " >= ? AND " + col.expr + " < ?)", append(arg(sf.Value), arg(sf.Value+"\xff")...)
	case findings.NotEquals:
		return col.expr + " != ?", arg(sf.Value)
	}
	return col.expr + " = ?", arg(sf.Value)
}

func numberCond(expr string, nf findings.NumberFilter) (string, []any) {
	conds := []string{expr + " IS NOT NULL"}
	var args []any
	if nf.Lower != nil {
		conds = append(conds, expr+" >= ?")
		args = append(args, *nf.Lower)
	}
	if nf.Upper != nil {
		conds = append(conds, expr+" <= ?")
		args = append(args, *nf.Upper)
	}
	return "(" + strings.Join(conds, " AND ") + ")", args
}

// matchConstant applies string filters to a value every finding shares (has is false when
// the findings have no value: only NOT_EQUALS filters match then).
func matchConstant(v string, has bool, list []findings.StringFilter) bool {
	anyPos, posOK := false, false
	for _, sf := range list {
		switch sf.Comparison {
		case findings.NotEquals:
			if has && v == sf.Value {
				return false
			}
		case findings.Prefix:
			anyPos = true
			posOK = posOK || has && strings.HasPrefix(v, sf.Value)
		default:
			anyPos = true
			posOK = posOK || has && v == sf.Value
		}
	}
	return !anyPos || posOK
}

// sortColumn is a sort field's expression and whether its values are text.
func (b *queryBuilder) sortColumn() (column, bool, bool) {
	switch b.q.Sort.Field {
	case findings.SortSeverity:
		return column{expr: severityRankExpr}, false, true
	case findings.SortFirstObservedAt:
		return column{expr: "f.first_observed_at"}, false, true
	case findings.SortLastObservedAt:
		return column{expr: lastObservedExpr, scans: true}, false, true
	case findings.SortFindingStatus:
		return column{expr: statusExpr}, true, true
	case findings.SortECRImagePushedAt:
		return column{expr: "m.pushed_at"}, false, true
	case findings.SortECRImageRepositoryName:
		return column{}, false, false // the default order starts with it
	case findings.SortVulnerabilityID:
		return column{expr: "f.vulnerability_id"}, true, true
	case findings.SortVulnerabilitySource:
		return column{expr: "f.source"}, true, true
	case findings.SortInspectorScore:
		return column{expr: "f.score"}, false, true
	case findings.SortVendorSeverity:
		return column{expr: "f.vendor_severity"}, true, true
	case findings.SortAWSAccountID:
		// Constant for the findings of one registry (and EPSS, network protocol, ...): the
		// default order decides.
	}
	return column{}, false, false
}

// walkTargets tells whether a page of findings in the default order (repository, digest) is
// read faster by walking the scan targets in that order than through the index of finding_rows
// by vulnerability, and of which vulnerability (its finding_vulnerabilities id): when q selects
// one vulnerability id (EQUALS) held by many images. Through the index every finding of the
// vulnerability is read, joined and sorted (count); the walk probes about targets/count
// targets a finding of the page. It walks when count*count > targets*limit.
func (db *DB) walkTargets(ctx context.Context, q findings.Query) (bool, int64, error) {
	list := q.Criteria.Strings[findings.VulnerabilityID]
	if len(list) != 1 || list[0].Comparison != findings.Equals || q.Limit <= 0 {
		return false, 0, nil
	}
	var vuln, count int64
	err := db.read.QueryRowContext(ctx, `SELECT v.id, (SELECT count(*) FROM finding_rows r WHERE r.vulnerability = v.id)
		FROM finding_vulnerabilities v WHERE v.vulnerability_id = ?`, list[0].Value).Scan(&vuln, &count)
	if errors.Is(err, sql.ErrNoRows) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("query findings: %w", err)
	}
	// The number of targets, from the planner's statistics (exact enough, and free). Before any
	// ANALYZE there is no statistics table: a small store, either way is quick.
	var haveStats bool
	if err := db.read.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1')").
		Scan(&haveStats); err != nil {
		return false, 0, fmt.Errorf("query findings: %w", err)
	}
	if !haveStats {
		return false, 0, nil
	}
	var targets int64
	if err := db.read.QueryRowContext(ctx, `SELECT coalesce((SELECT CAST(stat AS INTEGER) FROM sqlite_stat1
		WHERE tbl = 'scan_targets' AND idx = 'sqlite_autoindex_scan_targets_1'), 0)`).Scan(&targets); err != nil {
		return false, 0, fmt.Errorf("query findings: %w", err)
	}
	if targets == 0 {
		return false, 0, nil
	}
	return count*count > targets*int64(q.Limit), vuln, nil
}

// QueryFindings returns a page of ENHANCED findings matching q.
func (db *DB) QueryFindings(ctx context.Context, q findings.Query) ([]findings.Listed, error) {
	exploited, err := json.Marshal(q.Exploited)
	if err != nil {
		return nil, err
	}
	if q.Exploited == nil {
		exploited = []byte("[]")
	}
	b := &queryBuilder{q: q, exploited: string(exploited)}
	b.add("f.scan_type = ?", policy.ScanTypeEnhanced)
	b.compile()
	sortCol, text, sorted := b.sortColumn()
	b.scans = b.scans || sortCol.scans
	desc := q.Sort.Order == findings.Desc
	cmp, dir := ">", "ASC"
	if desc {
		cmp, dir = "<", "DESC"
	}
	key := "f.repository, f.image_digest, f.scan_type, f.vulnerability_id"
	from := "findings f JOIN manifests m ON m.repository = f.repository AND m.digest = f.image_digest"
	var fromArgs []any
	if !sorted {
		walk, vuln, err := db.walkTargets(ctx, q)
		if err != nil {
			return nil, err
		}
		if walk {
			// The scan targets in order, each probed for the one vulnerability by finding_rows'
			// key: a page fills after a few targets, where the vulnerability's index would read
			// and sort every finding of it. The order (and a next page's start) is the targets'.
			from = `scan_targets wt CROSS JOIN finding_rows wr ON wr.target_id = wt.id AND wr.vulnerability = ?
				CROSS JOIN findings f ON f.id = wr.id JOIN manifests m ON m.repository = f.repository AND m.digest = f.image_digest`
			fromArgs = []any{vuln}
			key = "wt.repository, wt.image_digest, wt.scan_type, f.vulnerability_id"
		}
	}
	var selectSort, order string
	var sortArgs []any
	if sorted {
		selectSort = ", " + sortCol.expr
		sortArgs = sortCol.args
		order = sortCol.expr + " " + dir + ", "
	}
	for i, c := range strings.Split(key, ", ") {
		if i > 0 {
			order += ", "
		}
		order += c + " " + dir
	}
	if cur := q.After; cur != nil {
		vals := []any{cur.Repository, cur.Digest, policy.ScanTypeEnhanced, cur.VulnerabilityID}
		if sorted {
			var v any = 0.0
			switch {
			case text && cur.Text != nil:
				v = *cur.Text
			case text:
				v = ""
			case cur.Num != nil:
				v = *cur.Num
			}
			b.add("("+sortCol.expr+", "+key+") "+cmp+" (?, ?, ?, ?, ?)", append(append(append([]any{}, sortCol.args...), v), vals...)...)
		} else {
			b.add("("+key+") "+cmp+" (?, ?, ?, ?)", vals...)
		}
	}
	if b.scans {
		from += " LEFT JOIN image_scans s ON s.repository = f.repository AND s.image_digest = f.image_digest AND s.scan_type = f.scan_type"
	}
	query := "SELECT f.id, f.repository, f.image_digest, f.vulnerability_id" + selectSort + " FROM " + from +
		" WHERE " + strings.Join(b.where, " AND ") + " ORDER BY " + order + " LIMIT ?"
	args := append(append(append(append(append([]any{}, sortArgs...), fromArgs...), b.args...), sortArgs...), q.Limit)
	var out []findings.Listed
	err = db.readTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("query findings: %w", err)
		}
		var ids []int64
		var cursors []findings.Cursor
		for rows.Next() {
			var id int64
			var c findings.Cursor
			dest := []any{&id, &c.Repository, &c.Digest, &c.VulnerabilityID}
			var sv any
			if sorted {
				dest = append(dest, &sv)
			}
			if err := rows.Scan(dest...); err != nil {
				_ = rows.Close()
				return err
			}
			switch v := sv.(type) {
			case string:
				c.Text = &v
			case int64:
				f := float64(v)
				c.Num = &f
			case float64:
				c.Num = &v
			}
			ids = append(ids, id)
			cursors = append(cursors, c)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		listed, err := loadListed(ctx, tx, ids)
		if err != nil {
			return err
		}
		for i, id := range ids {
			if l, ok := listed[id]; ok {
				l.Cursor = cursors[i]
				out = append(out, l)
			}
		}
		return nil
	})
	return out, err
}

// findingsByARNQuery reads the ids of the ENHANCED findings of n ARN keys' first bytes
// (finding_rows_arn) and n ARNs, of images the registry holds.
func findingsByARNQuery(n int) string {
	return `SELECT f.id FROM finding_rows r JOIN findings f ON f.id = r.id JOIN manifests m ON m.repository = f.repository AND m.digest = f.image_digest
		WHERE f.scan_type = ? AND coalesce(substr(r.arn_key, 1, 4), X'') IN (` + placeholders(n) + `) AND f.arn IN (` + placeholders(n) + `)`
}

// FindingsByARN returns the ENHANCED findings with these ARNs of images the registry holds.
func (db *DB) FindingsByARN(ctx context.Context, arns []string) ([]findings.Listed, error) {
	var out []findings.Listed
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		var ids []int64
		for chunk := range chunks(arns, 200) {
			// finding_rows keeps an ARN as a prefix id and a 16-byte key, indexed by the key's
			// first bytes (0053): found by those, then compared whole.
			keys := make([]any, len(chunk))
			for i, arn := range chunk {
				_, key := SplitFindingARN(arn)
				keys[i] = key[:min(len(key), arnIndexBytes)]
			}
			got, err := queryAll(ctx, tx, func(r rowScanner) (int64, error) {
				var id int64
				return id, r.Scan(&id)
			}, findingsByARNQuery(len(chunk)),
				append(append([]any{policy.ScanTypeEnhanced}, keys...), toAny(chunk)...)...)
			if err != nil {
				return fmt.Errorf("findings by ARN: %w", err)
			}
			ids = append(ids, got...)
		}
		listed, err := loadListed(ctx, tx, ids)
		for _, id := range ids {
			if l, ok := listed[id]; ok {
				out = append(out, l)
			}
		}
		return err
	})
	return out, err
}

// loadListed reads the findings with these ids, with their details and images.
func loadListed(ctx context.Context, tx *sql.Tx, ids []int64) (map[int64]findings.Listed, error) {
	out := make(map[int64]findings.Listed, len(ids))
	images := map[[2]string]store.Manifest{}
	for chunk := range chunks(ids, 200) {
		rows, err := tx.QueryContext(ctx, "SELECT f.id, f.repository, f.image_digest, f.scan_type, "+qualified("f.", findingOwnColumns)+
			`, f.suppressed, d.detail, coalesce(s.findings_observed_at, 0) FROM findings f JOIN finding_detail_view d ON d.finding_id = f.id
			LEFT JOIN image_scans s ON s.repository = f.repository AND s.image_digest = f.image_digest AND s.scan_type = f.scan_type
			WHERE f.id IN (`+placeholders(len(chunk))+")", toAny(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("read findings: %w", err)
		}
		for rows.Next() {
			var id, observed int64
			var repo, dgst, scanType string
			var f store.Finding
			var keys sql.NullString
			var first, last, updated int64
			var detail []byte
			if err := rows.Scan(&id, &repo, &dgst, &scanType, &f.VulnerabilityID, &f.ARN, &f.Status, &f.Severity, &f.Score, &f.Fingerprint,
				&keys, &first, &last, &updated, &f.Suppressed, &detail, &observed); err != nil {
				_ = rows.Close()
				return nil, err
			}
			f.Repository, f.Digest, f.ScanType, f.Detail = repo, dgst, scanType, detail
			f.PackageKeys = decodePackageKeys(keys)
			f.FirstObservedAt, f.LastObservedAt, f.UpdatedAt = fromMS(first), fromMS(last), fromMS(updated)
			if f.Status == findingActive && observed > last {
				f.LastObservedAt = fromMS(observed)
			}
			out[id] = findings.Listed{Finding: f}
			images[[2]string{repo, dgst}] = store.Manifest{}
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	for k := range images {
		m, err := scanManifest(tx.QueryRowContext(ctx, "SELECT "+manifestColumns+" FROM manifests WHERE repository = ? AND digest = ?", k[0], k[1]))
		if err != nil {
			return nil, fmt.Errorf("read image %s@%s: %w", k[0], k[1], err)
		}
		if m.Tags, err = queryStrings(ctx, tx, "SELECT tag FROM tags WHERE repository = ? AND digest = ? ORDER BY tag", k[0], k[1]); err != nil {
			return nil, err
		}
		images[k] = m
	}
	for id, l := range out {
		l.Manifest = images[[2]string{l.Finding.Repository, l.Finding.Digest}]
		out[id] = l
	}
	return out, nil
}
