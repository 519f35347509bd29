package match

import (
	"maps"
	"slices"
	"testing"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/inventory/installed"
	"github.com/lading-registry/lading/internal/testfiles"
)

// miniIndex indexes osv-mini records of the given ecosystems (testdata/osv-mini).
func miniIndex(t *testing.T, ecosystems ...string) *advisory.Index {
	t.Helper()
	var advs []*advisory.Advisory
	for _, raw := range testfiles.OSVMini(t, ecosystems...) {
		a, err := advisory.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		advs = append(advs, a)
	}
	return advisory.BuildIndex(1, advs)
}

func byID(fs []Finding) map[string]Finding {
	out := map[string]Finding{}
	for _, f := range fs {
		out[f.VulnerabilityID] = f
	}
	return out
}

func TestImage(t *testing.T) {
	idx := miniIndex(t, "Maven", "Debian", "Go", "npm")
	layer1, layer2 := "sha256:1", "sha256:2"
	pkgs := []installed.Package{
		// Binary packages of source openssl, matched by source name and version.
		{Ecosystem: "Debian:12", Name: "libssl3", Version: "3.0.11-1~deb12u1", SourceName: "openssl", SourceVersion: "3.0.11-1~deb12u1",
			Release: "1~deb12u1", PackageManager: installed.ManagerOS, Path: "/var/lib/dpkg/status", Layer: layer1},
		{Ecosystem: "Debian:12", Name: "openssl", Version: "3.0.11-1~deb12u1", Release: "1~deb12u1", PackageManager: installed.ManagerOS,
			Path: "/var/lib/dpkg/status", Layer: layer1},
		// Fixed already.
		{Ecosystem: "Debian:12", Name: "libssl3", Version: "3.0.11-1~deb12u2", SourceName: "openssl", PackageManager: installed.ManagerOS, Layer: layer1},
		{Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1", PackageManager: installed.ManagerJAR,
			Path: "/app/lib/log4j-core-2.14.1.jar", Layer: layer2},
		{Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.17.1", PackageManager: installed.ManagerJAR, Layer: layer2},
		{Ecosystem: "Go", Name: "golang.org/x/text", Version: "0.3.5", PackageManager: installed.ManagerGoBinary, Path: "/bin/app", Layer: layer2},
		// An OS package of an image whose release is unknown is not matched.
		{Name: "openssl", Version: "1.0", PackageManager: installed.ManagerOS},
	}
	fs, unknown := Image(pkgs, idx, map[string]string{layer2: "COPY app /app"})
	if unknown != nil {
		t.Fatalf("not evaluated: %+v", unknown)
	}
	got := byID(fs)

	ssl, ok := got["CVE-2023-5363"]
	if !ok {
		t.Fatalf("no openssl finding in %v", slices.Collect(maps.Keys(got)))
	}
	if len(ssl.Packages) != 2 || ssl.Packages[0].Name != "libssl3" || ssl.Packages[1].Name != "openssl" {
		t.Fatalf("openssl packages %+v", ssl.Packages)
	}
	if p := ssl.Packages[0]; p.Version != "3.0.11" || p.Release != "1~deb12u1" || p.FixedInVersion != "3.0.11-1~deb12u2" || p.Layer != layer1 {
		t.Fatalf("libssl3 %+v", p)
	}
	if ssl.Title != "CVE-2023-5363 - libssl3, openssl" || ssl.FixAvailable() != FixYes {
		t.Fatalf("title %q fix %s", ssl.Title, ssl.FixAvailable())
	}

	l4 := got["CVE-2021-44228"]
	if l4.Severity != "CRITICAL" || l4.Score == nil || *l4.Score != 10 || len(l4.Packages) != 1 {
		t.Fatalf("log4shell %+v", l4)
	}
	if p := l4.Packages[0]; p.Version != "2.14.1" || p.FixedInVersion != "2.15.0" || p.CreatedBy != "COPY app /app" || p.FilePath != "/app/lib/log4j-core-2.14.1.jar" {
		t.Fatalf("log4j package %+v", p)
	}
	if !slices.Contains(l4.Aliases, "GHSA-jfh8-c2jp-5v3q") {
		t.Fatalf("aliases %v", l4.Aliases)
	}
	for _, id := range []string{"CVE-2021-38561", "CVE-2022-32149"} {
		if _, ok := got[id]; !ok {
			t.Errorf("x/text 0.3.5: %s missing", id)
		}
	}
	if _, ok := got["CVE-2020-14040"]; ok {
		t.Error("x/text 0.3.5 is past GO-2020-0015's fix (0.3.3)")
	}
	// Most severe first.
	for i := 1; i < len(fs); i++ {
		if SeverityRank(fs[i-1].Severity) > SeverityRank(fs[i].Severity) {
			t.Fatalf("not sorted by severity: %s before %s", fs[i-1].Severity, fs[i].Severity)
		}
	}
	counts := Counts(fs)
	if counts["CRITICAL"] < 2 || counts["LOW"] != 0 {
		t.Fatalf("counts %v", counts)
	}
}

func TestFixAvailable(t *testing.T) {
	for _, tc := range []struct {
		fixed []string
		want  string
	}{{[]string{"1", "2"}, FixYes}, {[]string{"1", ""}, FixPartial}, {[]string{"", ""}, FixNo}} {
		var f Finding
		for _, v := range tc.fixed {
			f.Packages = append(f.Packages, VulnerablePackage{FixedInVersion: v})
		}
		if got := f.FixAvailable(); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.fixed, got, tc.want)
		}
	}
}

// TestNotEvaluated: a package whose version cannot be compared, and an advisory whose range
// cannot be evaluated, come back as not evaluated, never as silence.
func TestNotEvaluated(t *testing.T) {
	parse := func(raw string) *advisory.Advisory {
		a, err := advisory.Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	idx := advisory.BuildIndex(1, []*advisory.Advisory{
		parse(`{"id":"DSA-0000-1","modified":"2024-01-01T00:00:00Z","upstream":["CVE-2099-0001"],"affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},
			"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"not:a:version"}]}]}]}`),
		parse(`{"id":"DSA-0000-2","modified":"2024-01-01T00:00:00Z","upstream":["CVE-2099-0002"],"affected":[{"package":{"ecosystem":"Debian:12","name":"zlib"},
			"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1:1.2.13.dfsg-2"}]}]}]}`),
	})
	libssl := installed.Package{Ecosystem: "Debian:12", Name: "libssl3", Version: "3.0.11-1~deb12u1", SourceName: "openssl",
		PackageManager: installed.ManagerOS, Path: "/var/lib/dpkg/status", Layer: "sha256:1"}
	badZlib := installed.Package{Ecosystem: "Debian:12", Name: "zlib1g", Version: "x:1.2.13", SourceName: "zlib",
		PackageManager: installed.ManagerOS, Path: "/var/lib/dpkg/status", Layer: "sha256:1"}
	goodZlib := badZlib
	goodZlib.Version = "1:1.2.13.dfsg-1"
	tests := []struct {
		name         string
		pkgs         []installed.Package
		wantFindings int
		want         []NotEvaluated // Reason only checked for being set
	}{
		{"unparseable range", []installed.Package{libssl}, 0, []NotEvaluated{{Ecosystem: "Debian:12", Package: "libssl3", Version: "3.0.11-1~deb12u1",
			SourceName: "openssl", PackageManager: installed.ManagerOS, FilePath: "/var/lib/dpkg/status", Layer: "sha256:1", AdvisoryID: "DSA-0000-1"}}},
		{"unparseable version", []installed.Package{badZlib}, 0, []NotEvaluated{{Ecosystem: "Debian:12", Package: "zlib1g", Version: "x:1.2.13",
			SourceName: "zlib", PackageManager: installed.ManagerOS, FilePath: "/var/lib/dpkg/status", Layer: "sha256:1"}}},
		{"comparable", []installed.Package{goodZlib}, 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, got := Image(tc.pkgs, idx, nil)
			if len(fs) != tc.wantFindings {
				t.Errorf("%d findings, want %d", len(fs), tc.wantFindings)
			}
			for i := range got {
				if got[i].Reason == "" {
					t.Errorf("entry %d has no reason", i)
				}
				got[i].Reason = ""
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("not evaluated\n%+v\nwant\n%+v", got, tc.want)
			}
			if n := NotEvaluatedPackages(got); n != len(tc.want) {
				t.Errorf("%d packages, want %d", n, len(tc.want))
			}
			for _, n := range got {
				if k := n.Key(); k != Key(tc.pkgs[0]) {
					t.Errorf("key %v, want %v", k, Key(tc.pkgs[0]))
				}
			}
		})
	}
}

func TestInstalledVersion(t *testing.T) {
	for _, tc := range []struct {
		p    installed.Package
		want string
	}{
		{installed.Package{Version: "3.0.11-1~deb12u1", Release: "1~deb12u1", PackageManager: installed.ManagerOS}, "3.0.11-1~deb12u1"},
		{installed.Package{Version: "1:1.2.13.dfsg-1", Epoch: 1, Release: "1", PackageManager: installed.ManagerOS}, "1:1.2.13.dfsg-1"},
		{installed.Package{Version: "1.36.1-r29", Release: "r29", PackageManager: installed.ManagerOS}, "1.36.1-r29"},
		{installed.Package{Version: "1:3.0.1-40.el9", Epoch: 1, Release: "40.el9", PackageManager: installed.ManagerOS}, "1:3.0.1-40.el9"},
		{installed.Package{Version: "2.14.1", PackageManager: installed.ManagerJAR}, "2.14.1"},
	} {
		// As a finding records it, then back.
		vp := vulnerablePackage(tc.p, &advisory.Vulnerability{}, nil)
		if got := vp.InstalledVersion(); got != tc.want {
			t.Errorf("%+v: InstalledVersion() = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestSort(t *testing.T) {
	score := func(s float64) *float64 { return &s }
	tests := []struct {
		name string
		in   []Finding
		want []string // Title of each finding, in the order Sort leaves them
	}{
		{"empty", nil, []string{}},
		{"severity first", []Finding{
			{VulnerabilityID: "A", Severity: "LOW", Score: score(9.8), Title: "low"},
			{VulnerabilityID: "B", Severity: "CRITICAL", Score: score(1), Title: "critical"},
			{VulnerabilityID: "C", Severity: "UNTRIAGED", Title: "untriaged"},
			{VulnerabilityID: "D", Severity: "HIGH", Title: "high"},
		}, []string{"critical", "high", "low", "untriaged"}},
		{"then score, a missing score last", []Finding{
			{VulnerabilityID: "A", Severity: "HIGH", Title: "none"},
			{VulnerabilityID: "B", Severity: "HIGH", Score: score(7.1), Title: "7.1"},
			{VulnerabilityID: "C", Severity: "HIGH", Score: score(8.8), Title: "8.8"},
		}, []string{"8.8", "7.1", "none"}},
		{"then id", []Finding{
			{VulnerabilityID: "CVE-2", Severity: "MEDIUM", Score: score(5), Title: "2"},
			{VulnerabilityID: "CVE-1", Severity: "MEDIUM", Score: score(5), Title: "1"},
		}, []string{"1", "2"}},
		{"equal findings keep their order", []Finding{
			{VulnerabilityID: "X", Severity: "LOW", Title: "first"},
			{VulnerabilityID: "W", Severity: "CRITICAL", Title: "critical"},
			{VulnerabilityID: "X", Severity: "LOW", Title: "second"},
			{VulnerabilityID: "X", Severity: "LOW", Title: "third"},
		}, []string{"critical", "first", "second", "third"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := slices.Clone(tt.in)
			Sort(fs)
			got := []string{}
			for _, f := range fs {
				got = append(got, f.Title)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Sort: %v, want %v", got, tt.want)
			}
		})
	}
}
