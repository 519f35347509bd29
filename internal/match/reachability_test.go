package match

import (
	"fmt"
	"testing"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/inventory/installed"
)

// goAdvisory is a Go advisory affecting every version of module, with this
// ecosystem_specific member ("" for none).
func goAdvisory(t *testing.T, id, module, ecosystemSpecific string) *advisory.Advisory {
	t.Helper()
	es := ""
	if ecosystemSpecific != "" {
		es = `,"ecosystem_specific":` + ecosystemSpecific
	}
	a, err := advisory.Parse(fmt.Appendf(nil, `{"id":%q,"modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":%q},
		"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]%s}]}`, id, module, es))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestReachability(t *testing.T) {
	const textMod = "golang.org/x/text"
	linked := &installed.Symbols{GOOS: "linux", GOARCH: "amd64", Packages: map[string][]string{
		"golang.org/x/text/language":  {"Parse", "Tag.String"},
		"golang.org/x/text/transform": {"String"},
	}}
	tests := []struct {
		name    string
		symbols *installed.Symbols
		es      string
		want    string
		ghsa    bool
	}{
		{"a vulnerable symbol linked", linked, `{"imports":[{"path":"golang.org/x/text/language","symbols":["MatchStrings","Parse"]}]}`, ReachPresent, false},
		{"a method linked", linked, `{"imports":[{"path":"golang.org/x/text/language","symbols":["Tag.String"]}]}`, ReachPresent, false},
		{"no vulnerable symbol linked", linked, `{"imports":[{"path":"golang.org/x/text/language","symbols":["MatchStrings","ParseAcceptLanguage"]}]}`, ReachAbsent, false},
		{"vulnerable package not linked", linked, `{"imports":[{"path":"golang.org/x/text/encoding/unicode","symbols":["utf16Decoder.Transform"]}]}`, ReachAbsent, false},
		{"second import linked", linked, `{"imports":[{"path":"golang.org/x/text/encoding/unicode","symbols":["utf16Decoder.Transform"]},{"path":"golang.org/x/text/transform","symbols":["String"]}]}`, ReachPresent, false},
		{"whole package, linked", linked, `{"imports":[{"path":"golang.org/x/text/language"}]}`, ReachPresent, false},
		{"whole package, not linked", linked, `{"imports":[{"path":"golang.org/x/text/unicode/norm"}]}`, ReachAbsent, false},
		{"other platform only", linked, `{"imports":[{"path":"golang.org/x/text/language","symbols":["Parse"],"goos":["windows"]}]}`, ReachAbsent, false},
		{"this platform", linked, `{"imports":[{"path":"golang.org/x/text/language","symbols":["Parse"],"goos":["linux","windows"],"goarch":["amd64"]}]}`, ReachPresent, false},
		{"advisory without imports", linked, "", ReachUnknown, false},
		{"advisory with empty ecosystem_specific", linked, `{}`, ReachUnknown, false},
		{"symbols unreadable", nil, `{"imports":[{"path":"golang.org/x/text/language","symbols":["MatchStrings"]}]}`, ReachUnknown, false},
		{"merged with a GHSA record without symbols", linked, `{"imports":[{"path":"golang.org/x/text/language","symbols":["MatchStrings"]}]}`, ReachAbsent, true},
		{"merged with a GHSA record, symbol linked", linked, `{"imports":[{"path":"golang.org/x/text/language","symbols":["Parse"]}]}`, ReachPresent, true},
		{"GHSA record alone has no symbols", linked, "", ReachUnknown, true},
		{"symbol table read, module not linked", &installed.Symbols{Packages: map[string][]string{}},
			`{"imports":[{"path":"golang.org/x/text/language","symbols":["Parse"]}]}`, ReachAbsent, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := advisory.BuildIndex(1, []*advisory.Advisory{goAdvisory(t, "GO-2099-0001", textMod, tt.es)})
			if tt.ghsa {
				// A GHSA record (no symbols) aliasing the Go record merges with it.
				ghsa, err := advisory.Parse([]byte(`{"id":"GHSA-xxxx-yyyy-zzzz","modified":"2024-01-01T00:00:00Z","aliases":["GO-2099-0001"],
					"affected":[{"package":{"ecosystem":"Go","name":"` + textMod + `"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`))
				if err != nil {
					t.Fatal(err)
				}
				ix = advisory.BuildIndex(1, []*advisory.Advisory{goAdvisory(t, "GO-2099-0001", textMod, tt.es), ghsa})
			}
			pkg := installed.Package{Ecosystem: "Go", Name: textMod, Version: "0.3.5", PackageManager: installed.ManagerGoBinary,
				Path: "/app/bin", Symbols: tt.symbols}
			fs, _ := Image([]installed.Package{pkg}, ix, nil)
			if len(fs) != 1 || len(fs[0].Packages) != 1 || (tt.ghsa && len(fs[0].AdvisoryIDs) != 2) {
				t.Fatalf("findings %+v", fs)
			}
			if got := fs[0].Packages[0].Reachability; got != tt.want {
				t.Errorf("reachability = %q, want %q", got, tt.want)
			}
			if got := fs[0].Reachability(); got != tt.want {
				t.Errorf("finding reachability = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFindingReachability(t *testing.T) {
	pkg := func(r string) VulnerablePackage { return VulnerablePackage{Name: "p", Reachability: r} }
	tests := []struct {
		name        string
		pkgs        []VulnerablePackage
		want        string
		unreachable bool
	}{
		{"no Go package", []VulnerablePackage{pkg("")}, "", false},
		{"all absent", []VulnerablePackage{pkg(ReachAbsent), pkg(ReachAbsent)}, ReachAbsent, true},
		{"one present", []VulnerablePackage{pkg(ReachAbsent), pkg(ReachPresent)}, ReachPresent, false},
		{"one unknown", []VulnerablePackage{pkg(ReachAbsent), pkg(ReachUnknown)}, ReachUnknown, false},
		{"absent beside an OS package", []VulnerablePackage{pkg(ReachAbsent), pkg("")}, ReachUnknown, false},
	}
	for _, tt := range tests {
		f := Finding{Packages: tt.pkgs}
		if got := f.Reachability(); got != tt.want || f.Unreachable() != tt.unreachable {
			t.Errorf("%s: Reachability = %q, Unreachable = %v; want %q, %v", tt.name, got, f.Unreachable(), tt.want, tt.unreachable)
		}
	}
}
