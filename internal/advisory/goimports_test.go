package advisory

import (
	"slices"
	"testing"
)

func TestGoImports(t *testing.T) {
	tests := []struct {
		name   string
		record string
		want   []GoImport
	}{
		{"symbols and platforms", `{"id":"GO-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"golang.org/x/text"},
			"ecosystem_specific":{"imports":[{"path":"golang.org/x/text/language","symbols":["Parse","Tag.String"],"goos":["windows"]},{"path":" "}]}}]}`,
			[]GoImport{{Path: "golang.org/x/text/language", Symbols: []string{"Parse", "Tag.String"}, GOOS: []string{"windows"}}}},
		{"whole package", `{"id":"GO-2","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"m"},
			"ecosystem_specific":{"imports":[{"path":"m/p"}]}}]}`, []GoImport{{Path: "m/p"}}},
		{"none", `{"id":"GO-3","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"m"},"ecosystem_specific":{}}]}`, nil},
		{"malformed member", `{"id":"GO-4","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"m"},"ecosystem_specific":{"imports":"x"}}]}`, nil},
		{"not Go", `{"id":"PYSEC-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"m"},
			"ecosystem_specific":{"imports":[{"path":"m/p"}]}}]}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Parse([]byte(tt.record))
			if err != nil {
				t.Fatal(err)
			}
			got := a.Affected[0].Imports
			if !slices.EqualFunc(got, tt.want, func(x, y GoImport) bool {
				return x.Path == y.Path && slices.Equal(x.Symbols, y.Symbols) && slices.Equal(x.GOOS, y.GOOS) && slices.Equal(x.GOARCH, y.GOARCH)
			}) {
				t.Errorf("imports = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// The Go records of osv-mini keep their symbols.
func TestGoImportsMini(t *testing.T) {
	found := false
	for _, raw := range miniRecords(t, "Go") {
		a, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != "GO-2021-0113" {
			continue
		}
		found = true
		im := a.Affected[0].Imports
		if len(im) != 1 || im[0].Path != "golang.org/x/text/language" || !slices.Contains(im[0].Symbols, "Parse") {
			t.Errorf("GO-2021-0113 imports = %+v", im)
		}
	}
	if !found {
		t.Fatal("GO-2021-0113 not in osv-mini")
	}
}
