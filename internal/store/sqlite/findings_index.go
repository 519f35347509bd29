package sqlite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// What ListFindings queries of a finding's detail is copied into the finding's row (its
// vulnerability's facts, in finding_facts, and fix_available) when the detail is written, and
// finding_packages from its package set (migrations 0027 and 0036 backfilled the rows written before). The JSON
// paths are those of scanning.Detail; the store's test writes a real one and reads the
// columns back.

// findingFactsOfDetail are the vulnerability's facts in the stored detail of finding ?1.
const findingFactsOfDetail = `coalesce(json_extract(d.detail, '$.finding.title'), ''),
		coalesce(json_extract(d.detail, '$.finding.source'), ''),
		coalesce(json_extract(d.detail, '$.finding.vendorSeverity'), ''),
		coalesce(json_extract(d.detail, '$.finding.aliases'), '[]'),
		coalesce(json_extract(d.detail, '$.finding.related'), '[]')`

// fixAvailableOfPackages is fix_available of the vulnerable packages p of a detail.
const fixAvailableOfPackages = `CASE
			WHEN count(*) = 0 OR total(coalesce(json_extract(p.value, '$.fixedInVersion'), '') != '') = 0 THEN 'NO'
			WHEN total(coalesce(json_extract(p.value, '$.fixedInVersion'), '') != '') = count(*) THEN 'YES'
			ELSE 'PARTIAL' END`

// indexFindingFacts writes the facts of finding ?1's detail into finding_facts when new.
const indexFindingFacts = `INSERT INTO finding_facts(title, source, vendor_severity, aliases, related)
	SELECT ` + findingFactsOfDetail + ` FROM finding_detail_view d WHERE d.finding_id = ?1
	ON CONFLICT DO NOTHING`

// indexFindingColumns points finding ?1 at its detail's facts and sets fix_available, coded
// as FixAvailableColumn codes it (0055).
const indexFindingColumns = `UPDATE finding_rows SET
	facts = (SELECT x.id FROM finding_detail_view d, finding_facts x WHERE d.finding_id = ?1
		AND (x.title, x.source, x.vendor_severity, x.aliases, x.related) = (SELECT ` + findingFactsOfDetail + `)),
	fix_available = (SELECT CASE ` + fixAvailableOfPackages + ` WHEN 'NO' THEN 0 WHEN 'YES' THEN 1 ELSE 2 END
		FROM finding_detail_view d, json_each(d.detail, '$.finding.vulnerablePackages') p WHERE d.finding_id = ?1)
	WHERE id = ?1 AND EXISTS (SELECT 1 FROM finding_details WHERE finding_id = ?1)`

// A finding's package rows are those of its package set (0049), written once, when the set is
// new: the rows of the set's body as indexFinding took them from a detail before, but for a
// package whose layer is the body's mark (layerMark), whose row's layer is NULL (the finding's
// own, finding_details.package_layer). The mark is read as an object in the layer's place:
// where a body is marked every other layer is a string (SplitDetailLayer).
const (
	setPackagesJSON = `json_each(replace(s.body, char(1), ',"sourceLayerHash":{"\u0001":0}')) p`
	setLayerMarked  = `instr(s.body, char(1)) > 0 AND json_type(p.value, '$.sourceLayerHash') IS 'object'`
	indexSetLayers  = `INSERT INTO finding_layers(digest)
	SELECT DISTINCT coalesce(json_extract(p.value, '$.sourceLayerHash'), '')
	FROM finding_package_sets s, ` + setPackagesJSON + ` WHERE s.id = ?1 AND NOT (` + setLayerMarked + `)
	ON CONFLICT DO NOTHING`
	indexSetPackages = `INSERT INTO finding_set_packages(set_id, seq, name, version, epoch, release, arch, file_path, layer, reachability)
	SELECT s.id, p.key, coalesce(json_extract(p.value, '$.name'), ''), coalesce(json_extract(p.value, '$.version'), ''),
		coalesce(json_extract(p.value, '$.epoch'), 0), coalesce(json_extract(p.value, '$.release'), ''),
		coalesce(json_extract(p.value, '$.arch'), ''), coalesce(json_extract(p.value, '$.filePath'), ''),
		CASE WHEN ` + setLayerMarked + ` THEN NULL
			ELSE (SELECT l.id FROM finding_layers l WHERE l.digest = coalesce(json_extract(p.value, '$.sourceLayerHash'), '')) END,
		coalesce(json_extract(p.value, '$.reachability'), '')
	FROM finding_package_sets s, ` + setPackagesJSON + ` WHERE s.id = ?1`
)

// Package sets by body, and the body of a detail stored whole: its packages as SQLite extracts
// them (NULL when it has none; an error when it is not JSON, as indexing it was).
const (
	selectPackageSet = `SELECT id FROM finding_package_sets WHERE body = ?`
	insertPackageSet = `INSERT INTO finding_package_sets(body) VALUES (?) RETURNING id`
	wholeDetailBody  = `SELECT ?1 -> '$.finding.vulnerablePackages'`
)

// IndexPackageSetQueries are the statements that write the package rows of a new package set,
// each taking the set's id. Exported for loaders that fill a store directly (benchmarks).
func IndexPackageSetQueries() []string { return []string{indexSetLayers, indexSetPackages} }

// indexFindingQueries are the statements that index the stored detail of a finding, each
// taking the finding's id (its package rows are its set's).
func indexFindingQueries() []string {
	return []string{indexFindingFacts, indexFindingColumns}
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

// FindingFacts are a finding's vulnerability facts as finding_facts holds them.
type FindingFacts struct {
	Title, Source, VendorSeverity, Aliases, Related string
}

// FindingColumnsOfDetail computes in Go what indexFindingFacts and indexFindingColumns take
// from a stored detail in SQL (findingFactsOfDetail and the fix_available CASE): the facts and
// fix_available (NO, YES or PARTIAL). The scanner's writes (upsert) and loaders that write
// finding_rows whole (benchmarks) take them from it instead of running indexFinding's
// statements after each detail; the store's tests check it against the SQL. A detail of a
// shape the SQL would read otherwise (a fact that is neither a string nor null, a package
// that is not an object) is an error rather than a guess.
func FindingColumnsOfDetail(detail []byte) (FindingFacts, string, error) {
	// One pass over the detail with gjson rather than encoding/json's decode (a scan for
	// validity, then another decoding maps of every package): a scan writes a detail per
	// finding, and a bulk load millions. Keys are matched exactly and the first of a repeated
	// key is taken, as json_extract does; a key or a fact in escapes is left to the SQL.
	f := FindingFacts{Aliases: "[]", Related: "[]"}
	if !gjson.ValidBytes(detail) {
		return f, "", errors.New("finding detail: not valid JSON")
	}
	root := gjson.ParseBytes(detail)
	var finding, packages gjson.Result
	if err := members(root, "finding detail", func(key string, v gjson.Result) {
		if key == "finding" && !finding.Exists() {
			finding = v
		}
	}); err != nil {
		return f, "", err
	}
	// The first of a repeated member counts: those of the facts, then vulnerablePackages.
	targets := [...]*string{&f.Title, &f.Source, &f.VendorSeverity, &f.Aliases, &f.Related}
	var seen [len(targets) + 1]bool
	var err error
	if err := members(finding, "finding detail: finding", func(key string, v gjson.Result) {
		i := -1
		switch key {
		case "title":
			i = 0
		case "source":
			i = 1
		case "vendorSeverity":
			i = 2
		case "aliases":
			i = 3
		case "related":
			i = 4
		case "vulnerablePackages":
			i = 5
		}
		if i < 0 || seen[i] || err != nil {
			return
		}
		seen[i] = true
		if i == len(targets) {
			packages = v
		} else {
			err = factText(v, targets[i])
		}
	}); err != nil {
		return f, "", err
	}
	if err != nil {
		return f, "", err
	}
	count, fixed := 0, 0
	if packages.Exists() && packages.Type != gjson.Null {
		if !packages.IsArray() {
			return f, "", fmt.Errorf("finding detail: vulnerable packages %.40s", packages.Raw)
		}
		packages.ForEach(func(_, p gjson.Result) bool {
			count++
			var fix gjson.Result
			if err = members(p, "finding detail: vulnerable package", func(key string, v gjson.Result) {
				if key == "fixedInVersion" && !fix.Exists() {
					fix = v
				}
			}); err != nil {
				return false
			}
			if fix.Exists() && fix.Raw != "null" && fix.Raw != `""` {
				fixed++
			}
			return true
		})
		if err != nil {
			return f, "", err
		}
	}
	switch {
	case fixed == 0:
		return f, "NO", nil
	case fixed == count:
		return f, "YES", nil
	default:
		return f, "PARTIAL", nil
	}
}

// members calls fn with each member of object v (absent or null: none). Anything else, or a
// key written with escapes, is an error.
func members(v gjson.Result, what string, fn func(key string, v gjson.Result)) error {
	if !v.Exists() || v.Type == gjson.Null {
		return nil
	}
	if !v.IsObject() {
		return fmt.Errorf("%s: not an object: %.40s", what, v.Raw)
	}
	var err error
	v.ForEach(func(key, value gjson.Result) bool {
		if strings.IndexByte(key.Raw, '\\') >= 0 {
			err = fmt.Errorf("%s: a key in escapes: %.40s", what, key.Raw)
			return false
		}
		fn(key.Str, value)
		return true
	})
	return err
}

// factText sets *to to a fact as json_extract gives it: a string's text, a container
// minified; null keeps *to (the column's default). Anything else is an error.
func factText(v gjson.Result, to *string) error {
	switch {
	case v.Type == gjson.Null:
		return nil
	case v.Type == gjson.String:
		if strings.IndexByte(v.Raw, '\\') < 0 {
			// A copy: the facts outlive the detail (in dictionaries keyed by them).
			*to = strings.Clone(v.Raw[1 : len(v.Raw)-1])
			return nil
		}
		if surrogateEscape(v.Raw) {
			// SQLite and Go decode a lone surrogate differently: the SQL reads it.
			return fmt.Errorf("finding detail: a fact with a surrogate escape %.40s", v.Raw)
		}
		return json.Unmarshal([]byte(v.Raw), to)
	case v.IsArray() || v.IsObject():
		// json_extract returns a container as minified JSON, its strings as written.
		var b bytes.Buffer
		err := json.Compact(&b, []byte(v.Raw))
		*to = b.String()
		return err
	default:
		return fmt.Errorf("finding detail: a fact %.40s", v.Raw)
	}
}

// surrogateEscape reports whether a JSON string may hold a \uD800-\uDFFF escape (a literal
// backslash followed by such text counts too: it only sends the detail to the SQL).
func surrogateEscape(raw string) bool {
	for i := 0; i+3 < len(raw); i++ {
		if raw[i] == '\\' && raw[i+1] == 'u' && (raw[i+2] == 'd' || raw[i+2] == 'D') && strings.IndexByte("89abcdefABCDEF", raw[i+3]) >= 0 {
			return true
		}
	}
	return false
}
