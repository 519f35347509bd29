package postgres

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// This file runs the findings queries of internal/findings, as store/sqlite's findings_query.go
// does: the criteria compiled to SQL over findings, finding_packages, manifests, tags and
// image_scans. Only ENHANCED findings are Inspector's, and only of images the registry holds.
// Conditions are written with ? for their arguments; rebind numbers them for PostgreSQL once
// the query is whole.

// rebind numbers the ? placeholders of query ($1, $2, ...). The queries built here hold no ?
// of their own (no string literal or operator with one).
func rebind(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// queryBuilder collects a query's joins, conditions and arguments.
type queryBuilder struct {
	q         findings.Query
	where     []string
	args      []any
	scans     bool // image_scans is joined (s)
	exploited []string
	// rule compiles a suppression rule's criteria: findingStatus is the stored ACTIVE or
	// CLOSED, which suppression does not change (a rule cannot depend on what rules decide).
	rule bool
}

func (b *queryBuilder) add(cond string, args ...any) {
	b.where = append(b.where, cond)
	b.args = append(b.args, args...)
}

// column is a criterion's SQL expression, the arguments it binds, and whether it needs
// image_scans joined.
type column struct {
	expr  string
	args  []any
	scans bool
	arn   bool // the finding's ARN: an EQUALS filter looks it up by key (arnLookup)
}

// lastObservedExpr is a finding's lastObservedAt: while ACTIVE, the later of its own and its
// image's findings_observed_at.
const lastObservedExpr = `(CASE WHEN f.status = 'ACTIVE' AND coalesce(s.findings_observed_at, 0) > f.last_observed_at
	THEN s.findings_observed_at ELSE f.last_observed_at END)`

// statusExpr is a finding's status as Inspector shows it: an ACTIVE finding a suppression
// rule matches is SUPPRESSED.
const statusExpr = `(CASE WHEN f.status = 'ACTIVE' AND f.suppressed THEN 'SUPPRESSED' ELSE f.status END)`

// severityExpr is the severity as Inspector words it (findings.InspectorSeverity).
const severityExpr = `(CASE f.severity WHEN 'UNDEFINED' THEN 'UNTRIAGED' ELSE f.severity END)`

func (b *queryBuilder) exploitedExpr() column {
	return column{expr: `(CASE WHEN f.vulnerability_id = ANY(?::text[]) OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(f.aliases) a(value)
		WHERE a.value = ANY(?::text[])) THEN 'YES' ELSE 'NO' END)`, args: []any{b.exploited, b.exploited}}
}

// stringColumn returns the expression of a single-valued string criterion.
func (b *queryBuilder) stringColumn(f findings.Field) (column, bool) {
	switch f {
	case findings.FindingARN:
		return column{expr: "f.arn", arn: true}, true
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
		return column{expr: "('arn:aws:ecr:' || ?::text || ':' || ?::text || ':repository/' || f.repository || '/' || f.image_digest)",
			args: []any{b.q.Region, b.q.Account}}, true
	case findings.ECRImageArchitecture:
		return column{expr: "coalesce(s.architecture, '')", scans: true}, true
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
			b.multiCond("SELECT 1 FROM jsonb_array_elements_text(f.related) r(value) WHERE true", "r.value", list)
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
			if df.Start != nil {
				conds = append(conds, col.expr+" >= ?::bigint")
				args = append(args, df.Start.UnixMilli())
			}
			if df.End != nil {
				conds = append(conds, col.expr+" <= ?::bigint")
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
				conds = append(conds, "false")
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
		b.add("false")
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
			b.add("NOT EXISTS ("+sub+" AND "+col+" = ?::text)", sf.Value)
			continue
		}
		pos, posArgs = append(pos, cond), append(posArgs, a...)
	}
	if len(pos) > 0 {
		b.add("EXISTS ("+sub+" AND ("+strings.Join(pos, " OR ")+"))", posArgs...)
	}
}

// stringCmp compares an expression with one filter, byte for byte (collation "C", as SQLite
// compares).
func stringCmp(col column, sf findings.StringFilter) (string, []any) {
	args := append(append([]any{}, col.args...), sf.Value)
	switch sf.Comparison {
	case findings.Prefix:
		return "starts_with(" + col.expr + ", ?::text)", args
	case findings.NotEquals:
		return col.expr + " <> ?::text", args
	}
	if col.arn {
		_, key := splitARN(sf.Value)
		return "(" + col.expr + " = ?::text AND " + arnLookup("?::bytea") + ")", append(args, key)
	}
	return col.expr + " = ?::text", args
}

// arnLookup is the condition that lets the planner find findings by ARN through the index of
// the keys ARNs end with (0052's finding_rows_arn) when a query also compares f.arn with the
// ARNs: the finding's key is among keys (an SQL expression of a bytea or bytea[], read from the
// ARNs by splitARN).
func arnLookup(keys string) string {
	if strings.HasSuffix(keys, "[]") {
		return "f.arn_key = ANY(" + keys + ")"
	}
	return "f.arn_key = " + keys
}

// arnKey is the finding key an ARN made by scanning.FindingARN ends with (its last 32
// characters, lowercase hex, as 0052's finding_arn_key reads them), or nil for an ARN that
// does not end so.
func arnKey(arn string) []byte {
	if len(arn) < 32 {
		return nil
	}
	tail := arn[len(arn)-32:]
	if strings.ToLower(tail) != tail {
		return nil
	}
	k, err := hex.DecodeString(tail)
	if err != nil {
		return nil
	}
	return k
}

func numberCond(expr string, nf findings.NumberFilter) (string, []any) {
	conds := []string{expr + " IS NOT NULL"}
	var args []any
	if nf.Lower != nil {
		conds = append(conds, expr+" >= ?::float8")
		args = append(args, *nf.Lower)
	}
	if nf.Upper != nil {
		conds = append(conds, expr+" <= ?::float8")
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

// sortColumn is a sort field's expression and whether its values are text. Numeric
// expressions are read as float8 (the cursor's number), text ones compared byte for byte.
func (b *queryBuilder) sortColumn() (column, bool, bool) {
	num := func(expr string) column { return column{expr: "(" + expr + ")::float8"} }
	text := func(expr string) column { return column{expr: "(" + expr + " COLLATE \"C\")"} }
	switch b.q.Sort.Field {
	case findings.SortSeverity:
		return num(severityRank("f.severity")), false, true
	case findings.SortFirstObservedAt:
		return num("f.first_observed_at"), false, true
	case findings.SortLastObservedAt:
		c := num(lastObservedExpr)
		c.scans = true
		return c, false, true
	case findings.SortFindingStatus:
		return text(statusExpr), true, true
	case findings.SortECRImagePushedAt:
		return num("m.pushed_at"), false, true
	case findings.SortECRImageRepositoryName:
		return column{}, false, false // the default order starts with it
	case findings.SortVulnerabilityID:
		return text("f.vulnerability_id"), true, true
	case findings.SortVulnerabilitySource:
		return text("f.source"), true, true
	case findings.SortInspectorScore:
		return num("f.score"), false, true
	case findings.SortVendorSeverity:
		return text("f.vendor_severity"), true, true
	case findings.SortAWSAccountID:
		// Constant for the findings of one registry: the default order decides.
	}
	return column{}, false, false
}

// QueryFindings returns a page of ENHANCED findings matching q.
func (db *DB) QueryFindings(ctx context.Context, q findings.Query) ([]findings.Listed, error) {
	exploited := q.Exploited
	if exploited == nil {
		exploited = []string{}
	}
	b := &queryBuilder{q: q, exploited: exploited}
	b.add("f.scan_type = ?::text", policy.ScanTypeEnhanced)
	b.compile()
	sortCol, text, sorted := b.sortColumn()
	b.scans = b.scans || sortCol.scans
	desc := q.Sort.Order == findings.Desc
	cmp, dir := ">", "ASC"
	if desc {
		cmp, dir = "<", "DESC"
	}
	key := "f.repository, f.image_digest, f.scan_type, f.vulnerability_id"
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
			var v any
			switch {
			case text && cur.Text != nil:
				v = *cur.Text
			case text:
				v = ""
			case cur.Num != nil:
				v = *cur.Num
			default:
				v = 0.0
			}
			cast := "::float8"
			if text {
				cast = "::text"
			}
			b.add("("+sortCol.expr+", "+key+") "+cmp+" (?"+cast+", ?::text, ?::text, ?::text, ?::text)",
				append(append(append([]any{}, sortCol.args...), v), vals...)...)
		} else {
			b.add("("+key+") "+cmp+" (?::text, ?::text, ?::text, ?::text)", vals...)
		}
	}
	from := "findings f JOIN manifests m ON m.repository = f.repository AND m.digest = f.image_digest"
	if b.scans {
		from += " LEFT JOIN image_scans s ON s.repository = f.repository AND s.image_digest = f.image_digest AND s.scan_type = f.scan_type"
	}
	query := "SELECT f.id, f.repository, f.image_digest, f.vulnerability_id" + selectSort + " FROM " + from +
		" WHERE " + strings.Join(b.where, " AND ") + " ORDER BY " + order + " LIMIT ?::bigint"
	args := append(append(append(append([]any{}, sortArgs...), b.args...), sortArgs...), q.Limit)
	var out []findings.Listed
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		out = nil
		rows, err := tx.Query(ctx, rebind(query), args...)
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
				rows.Close()
				return err
			}
			switch v := sv.(type) {
			case string:
				c.Text = &v
			case float64:
				c.Num = &v
			}
			ids = append(ids, id)
			cursors = append(cursors, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("query findings: %w", err)
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

// FindingsByARN returns the ENHANCED findings with these ARNs of images the registry holds.
func (db *DB) FindingsByARN(ctx context.Context, arns []string) ([]findings.Listed, error) {
	var out []findings.Listed
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		out = nil
		ids, err := queryAll(ctx, tx, scanID, `SELECT f.id FROM findings f JOIN manifests m ON m.repository = f.repository AND m.digest = f.image_digest
			WHERE f.scan_type = $1 AND f.arn = ANY($2) AND `+arnLookup("$3::bytea[]"), policy.ScanTypeEnhanced, arns, arnKeys(arns))
		if err != nil {
			return fmt.Errorf("findings by ARN: %w", err)
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

// arnKeys are the keys of arns as finding_rows keeps them (splitARN).
func arnKeys(arns []string) [][]byte {
	keys := make([][]byte, len(arns))
	for i, a := range arns {
		_, keys[i] = splitARN(a)
	}
	return keys
}

func scanID(r rowScanner) (int64, error) {
	var id int64
	return id, r.Scan(&id)
}

// loadListed reads the findings with these ids, with their details and images.
func loadListed(ctx context.Context, tx pgx.Tx, ids []int64) (map[int64]findings.Listed, error) {
	out := make(map[int64]findings.Listed, len(ids))
	images := map[[2]string]store.Manifest{}
	rows, err := tx.Query(ctx, "SELECT f.id, f.repository, f.image_digest, f.scan_type, "+qualified("f.", findingOwnColumns)+
		`, f.suppressed, d.detail, coalesce(s.findings_observed_at, 0) FROM findings f JOIN finding_detail_view d ON d.finding_id = f.id
		LEFT JOIN image_scans s ON s.repository = f.repository AND s.image_digest = f.image_digest AND s.scan_type = f.scan_type
		WHERE f.id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read findings: %w", err)
	}
	for rows.Next() {
		var id, observed int64
		var repo, dgst, scanType, detail string
		var f store.Finding
		var keys *string
		var first, last, updated int64
		if err := rows.Scan(&id, &repo, &dgst, &scanType, &f.VulnerabilityID, &f.ARN, &f.Status, &f.Severity, &f.Score, &f.Fingerprint,
			&keys, &first, &last, &updated, &f.Suppressed, &detail, &observed); err != nil {
			rows.Close()
			return nil, err
		}
		f.Repository, f.Digest, f.ScanType, f.Detail = repo, dgst, scanType, []byte(detail)
		f.PackageKeys = decodePackageKeys(keys)
		f.FirstObservedAt, f.LastObservedAt, f.UpdatedAt = fromMS(first), fromMS(last), fromMS(updated)
		if f.Status == findingActive && observed > last {
			f.LastObservedAt = fromMS(observed)
		}
		out[id] = findings.Listed{Finding: f}
		images[[2]string{repo, dgst}] = store.Manifest{}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read findings: %w", err)
	}
	for k := range images {
		m, err := scanManifest(tx.QueryRow(ctx, "SELECT "+manifestColumns+" FROM manifests WHERE repository = $1 AND digest = $2", k[0], k[1]))
		if err != nil {
			return nil, fmt.Errorf("read image %s@%s: %w", k[0], k[1], err)
		}
		if m.Tags, err = queryStrings(ctx, tx, "SELECT tag FROM tags WHERE repository = $1 AND digest = $2 ORDER BY tag", k[0], k[1]); err != nil {
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
