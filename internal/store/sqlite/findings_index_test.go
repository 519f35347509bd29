package sqlite

import (
	"database/sql"
	"testing"
)

// FindingColumnsOfDetail must give what the store's SQL takes from the same detail
// (findingFactsOfDetail and indexFindingColumns' fix_available), or the bench's loader writes
// another store than the scanner would.
func TestFindingColumnsOfDetailMatchesSQL(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const fixSQL = `SELECT ` + fixAvailableOfPackages + `
		FROM (SELECT ?1 AS detail) d, json_each(d.detail, '$.finding.vulnerablePackages') p`
	for _, tc := range []struct{ name, detail string }{
		{"full", `{"finding":{"title":"CVE-1 in a \"pkg\" <x> & \u00e9","source":"NVD","vendorSeverity":"HIGH",
			"aliases":["GHSA-1", "CVE-1"],"related":["a\u003cb"],
			"vulnerablePackages":[{"name":"a","fixedInVersion":"1.2"},{"name":"b","fixedInVersion":"2"}]}}`},
		{"partial fix", `{"finding":{"title":"t","vulnerablePackages":[{"name":"a","fixedInVersion":"1.2"},{"name":"b","fixedInVersion":""}]}}`},
		{"no fix", `{"finding":{"title":"t","vulnerablePackages":[{"name":"a"},{"name":"b","fixedInVersion":null}]}}`},
		{"no packages", `{"finding":{"title":"t","vulnerablePackages":[]}}`},
		{"packages absent, facts null", `{"finding":{"title":null,"aliases":null}}`},
		{"nothing", `{}`},
		{"empty arrays", `{"finding":{"aliases":[],"related":[ ]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want FindingFacts
			var wantFix string
			if err := db.QueryRow(`SELECT `+findingFactsOfDetail+` FROM (SELECT ?1 AS detail) d`, tc.detail).
				Scan(&want.Title, &want.Source, &want.VendorSeverity, &want.Aliases, &want.Related); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRow(fixSQL, tc.detail).Scan(&wantFix); err != nil {
				t.Fatal(err)
			}
			got, gotFix, err := FindingColumnsOfDetail([]byte(tc.detail))
			if err != nil {
				t.Fatal(err)
			}
			if got != want || gotFix != wantFix {
				t.Errorf("Go %+v %s, SQL %+v %s", got, gotFix, want, wantFix)
			}
		})
	}
	if _, _, err := FindingColumnsOfDetail([]byte(`{"finding":{"title":3}}`)); err == nil {
		t.Error("a number as title: no error")
	}
}

// FuzzFindingColumnsOfDetail: whatever FindingColumnsOfDetail answers without an error is what
// the SQL it stands for (findingFactsOfDetail and the fix_available CASE) reads from the same
// detail; the scanner falls back to that SQL on an error.
func FuzzFindingColumnsOfDetail(f *testing.F) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	const fixSQL = `SELECT ` + fixAvailableOfPackages + `
		FROM (SELECT ?1 AS detail) d, json_each(d.detail, '$.finding.vulnerablePackages') p`
	for _, d := range []string{
		`{"finding":{"title":"CVE-1 in a \"pkg\" <x> & \u00e9","source":"NVD","vendorSeverity":"HIGH","aliases":["GHSA-1", "CVE-1"],"related":["a\u003cb"],
			"vulnerablePackages":[{"name":"a","fixedInVersion":"1.2"},{"name":"b","fixedInVersion":""}]},"image":{}}`,
		`{"finding":{"title":"a","title":"b","vulnerablePackages":[null,{"fixedInVersion":0}]}}`,
		`{"finding":{"title":"x"},"finding":{"title":"y"}}`,
		`{"finding":{"Title":"x","aliases":{"a":[1, 2]}}}`,
		`{"finding":{"vulnerablePackages":[{"fixedInVersion":"1","fixedInVersion":""}]}}`,
		`{"finding":{"title":"\ud800","source":"\u00e9\n"}}`,
		"{\"finding\":{\"title\":\"\xff\"}}",
		`null`, `{}`, `[]`,
	} {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, detail []byte) {
		got, gotFix, err := FindingColumnsOfDetail(detail)
		if err != nil {
			return // the scanner runs the SQL instead
		}
		var want FindingFacts
		if err := db.QueryRow(`SELECT `+findingFactsOfDetail+` FROM (SELECT ?1 AS detail) d`, string(detail)).
			Scan(&want.Title, &want.Source, &want.VendorSeverity, &want.Aliases, &want.Related); err != nil {
			t.Fatalf("Go read %q as %+v, the SQL fails: %v", detail, got, err)
		}
		var wantFix string
		if err := db.QueryRow(fixSQL, string(detail)).Scan(&wantFix); err != nil {
			t.Fatalf("Go read %q as fix %s, the SQL fails: %v", detail, gotFix, err)
		}
		if got != want || gotFix != wantFix {
			t.Fatalf("%q: Go %+v %s, SQL %+v %s", detail, got, gotFix, want, wantFix)
		}
	})
}
