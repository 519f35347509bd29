package advisory

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lading-registry/lading/internal/testfiles"
)

// miniRecords reads the osv-mini records of testdata/, in OSV's bucket layout (one all.zip
// per ecosystem).
func miniRecords(t testing.TB, ecosystems ...string) [][]byte {
	t.Helper()
	return testfiles.OSVMini(t, ecosystems...)
}

// miniIndex builds an index of the osv-mini records.
func miniIndex(t testing.TB) *Index {
	t.Helper()
	var advs []*Advisory
	for _, raw := range miniRecords(t) {
		a, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		advs = append(advs, a)
	}
	if len(advs) != 45 {
		t.Fatalf("osv-mini has %d records, want 45", len(advs))
	}
	return BuildIndex(1, advs)
}

func vulnIDs(vs []*Vulnerability) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.VulnerabilityID)
	}
	return out
}

func TestAffectingOSVMini(t *testing.T) {
	ix := miniIndex(t)
	const log4j = "org.apache.logging.log4j:log4j-core"
	tests := []struct {
		eco, name, version string
		want               []string // vulnerability ids, sorted
	}{
		// Maven, several affected entries per record and pre-release ordering.
		{"Maven", log4j, "2.14.1", []string{"CVE-2021-44228", "CVE-2021-44832", "CVE-2021-45046", "CVE-2021-45105"}},
		{"Maven", log4j, "2.12.2", []string{"CVE-2021-44832", "CVE-2021-45105"}},
		{"Maven", log4j, "2.3.1", []string{"CVE-2021-44832", "CVE-2021-45046"}},
		{"Maven", log4j, "2.0-beta7", []string{"CVE-2021-44228", "CVE-2021-44832", "CVE-2021-45046", "CVE-2021-45105"}},
		{"Maven", log4j, "2.0-beta6", []string{"CVE-2021-44228", "CVE-2021-45046", "CVE-2021-45105"}},
		{"Maven", log4j, "2.17.1", nil},
		{"Maven", "org.apache.logging.log4j:log4j-api", "2.14.1", nil},
		// Debian: tilde, epochs, release scoping, DSA with one or several upstream CVEs.
		{"Debian:12", "openssl", "3.0.11-1~deb12u1", []string{"CVE-2023-5363"}},
		{"Debian:12", "openssl", "3.0.11-1~deb12u2", nil},
		{"Debian:12", "openssl", "3.0.11-1", nil},
		{"Debian:13", "openssl", "3.0.11-1~deb12u1", nil},
		{"Debian:11", "zlib", "1:1.2.11.dfsg-2+deb11u1", []string{"CVE-2022-37434"}},
		{"Debian:11", "zlib", "1.2.13.dfsg-1", []string{"CVE-2022-37434"}}, // epoch 0 < 1
		{"Debian:11", "zlib", "1:1.2.11.dfsg-2+deb11u2", nil},
		{"Debian:11", "openssl", "1.1.1n-0+deb11u3", []string{"DSA-5343-1"}},
		{"Debian:12", "glibc", "2.36-9+deb12u2", []string{"CVE-2023-4911"}},
		{"Debian:10", "apache-log4j2", "2.15.0-1~deb10u1", []string{"CVE-2021-45046", "CVE-2021-45105"}},
		// Alpine.
		{"Alpine:v3.23", "openssl", "3.3.1-r0", []string{"CVE-2024-5535"}},
		{"Alpine:v3.24", "openssl", "3.3.1-r1", nil},
		{"Alpine:v3.23", "busybox", "1.36.1-r26", []string{"CVE-2023-42363"}},
		{"Alpine:v3.23", "xen", "4.10.0-r0", []string{"ALPINE-XSA-248"}},
		{"Alpine:v3.20", "openssl", "3.3.0-r0", nil},
		// RPM (AlmaLinux) with epochs.
		{"AlmaLinux:9", "openssl", "1:3.0.1-43.el9_0", []string{"ALSA-2023:0946"}},
		{"AlmaLinux:9", "openssl-libs", "1:3.0.1-42.el9", []string{"ALSA-2022:7288", "ALSA-2023:0946"}},
		{"AlmaLinux:9", "openssl", "1:3.0.7-16.el9_2", nil},
		// npm: SEMVER and ECOSYSTEM ranges, a non-zero introduced.
		{"npm", "lodash", "4.17.4", []string{"CVE-2018-16487", "CVE-2018-3721", "CVE-2020-8203", "CVE-2021-23337"}},
		{"npm", "lodash", "4.17.16", []string{"CVE-2020-8203", "CVE-2021-23337", "x_NSWG-ECO-516"}},
		{"npm", "lodash", "4.17.21", nil},
		// Go: SEMVER with several introduced events, pseudo-versions, a withdrawn record.
		{"Go", "stdlib", "1.19.0", []string{"CVE-2022-27664", "CVE-2023-39325", "CVE-2023-45288"}},
		{"Go", "stdlib", "1.18.6", []string{"CVE-2023-39325", "CVE-2023-45288"}},
		{"Go", "stdlib", "1.22.2", nil},
		{"Go", "stdlib", "go1.18.6", []string{"CVE-2023-39325", "CVE-2023-45288"}},
		{"Go", "golang.org/x/text", "v0.3.7", []string{"CVE-2022-32149"}},
		{"Go", "golang.org/x/text", "0.3.7", []string{"CVE-2022-32149"}},
		{"Go", "golang.org/x/net", "0.0.0-20220906165146-f3363e06e74c", []string{"CVE-2023-39325", "CVE-2023-45288", "CVE-2024-45338"}},
		{"Go", "k8s.io/kubernetes", "1.20.0", nil},
		// PyPI: PEP 503 names, GIT ranges ignored, a versions-only record, PEP 440 equality.
		{"PyPI", "requests", "2.30.0", []string{"CVE-2023-32681"}},
		{"PyPI", "Requests", "2.19.1", []string{"CVE-2018-18074", "CVE-2023-32681"}},
		{"PyPI", "requests", "2.31.0", nil},
		{"PyPI", "urllib3", "2.0.5", []string{"CVE-2023-43804", "CVE-2023-45803"}},
		{"PyPI", "urllib3", "2.0.6", []string{"CVE-2023-45803"}},
		{"PyPI", "urllib3", "1.26.17", []string{"CVE-2023-45803"}},
		{"PyPI", "gratient", "0.5", []string{"PYSEC-2024-1"}},
		{"PyPI", "gratient", "0.5.0", []string{"PYSEC-2024-1"}},
		{"PyPI", "gratient", "0.6", nil},
		// OSS-Fuzz: no version order, explicit versions only.
		{"OSS-Fuzz", "harfbuzz", "2.2.0", []string{"OSV-2020-484"}},
		{"OSS-Fuzz", "harfbuzz", "2.2.1", nil},
		// crates.io: SEMVER, pre-release introduced, case-insensitive names.
		{"crates.io", "smallvec", "0.6.2", []string{"CVE-2018-20991"}},
		{"crates.io", "SmallVec", "0.4.0", []string{"CVE-2018-20991"}},
		{"crates.io", "smallvec", "0.6.3", nil},
		{"crates.io", "smallvec", "0.3.1", nil},
		{"crates.io", "openssl", "0.8.0", []string{"CVE-2016-10931"}},
		// RubyGems, Packagist, NuGet.
		{"RubyGems", "nokogiri", "1.13.3", []string{"CVE-2022-24836"}},
		{"RubyGems", "nokogiri", "1.13.4", nil},
		{"Packagist", "symfony/http-kernel", "4.4.49", []string{"CVE-2022-24894"}},
		{"Packagist", "Symfony/HTTP-Kernel", "5.4.19", []string{"CVE-2022-24894"}},
		{"Packagist", "symfony/http-kernel", "4.4.50", nil},
		{"Packagist", "symfony/http-kernel", "6.2.6", nil},
		{"NuGet", "newtonsoft.json", "12.0.3", []string{"GHSA-5crp-9r3c-p9vr"}},
		{"NuGet", "Newtonsoft.Json", "13.0.1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.eco+"/"+tt.name+"@"+tt.version, func(t *testing.T) {
			got, err := ix.Affecting(tt.eco, tt.name, tt.version)
			if err != nil {
				t.Fatal(err)
			}
			ids := vulnIDs(got)
			want := tt.want
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(ids, want) {
				t.Errorf("got %v, want %v", ids, want)
			}
		})
	}
}

func TestAffectingDetails(t *testing.T) {
	ix := miniIndex(t)
	find := func(vs []*Vulnerability, id string) *Vulnerability {
		for _, v := range vs {
			if v.VulnerabilityID == id {
				return v
			}
		}
		t.Fatalf("%s not among %v", id, vulnIDs(vs))
		return nil
	}
	vs, err := ix.Affecting("Maven", "org.apache.logging.log4j:log4j-core", "2.10.0")
	if err != nil {
		t.Fatal(err)
	}
	l := find(vs, "CVE-2021-44228")
	if l.ID != "GHSA-jfh8-c2jp-5v3q" || !slices.Equal(l.Aliases, []string{"GHSA-jfh8-c2jp-5v3q"}) {
		t.Errorf("id %s aliases %v", l.ID, l.Aliases)
	}
	if !slices.Equal(l.FixedVersions, []string{"2.12.2", "2.15.0"}) {
		t.Errorf("fixed %v, want [2.12.2 2.15.0]", l.FixedVersions)
	}
	if l.Severity != SeverityCritical || l.CVSSScore == nil || *l.CVSSScore != 10.0 || l.CVSSVersion != "3.1" {
		t.Errorf("severity %s score %v version %s", l.Severity, l.CVSSScore, l.CVSSVersion)
	}
	if l.Summary == "" || l.Details == "" || len(l.References) == 0 || l.Published.IsZero() {
		t.Errorf("missing display fields: %+v", l)
	}
	if m := find(vs, "CVE-2021-44832"); m.Severity != SeverityMedium || *m.CVSSScore != 6.6 {
		t.Errorf("CVE-2021-44832: %s %v", m.Severity, *m.CVSSScore)
	}

	vs, _ = ix.Affecting("Go", "stdlib", "1.19.0")
	if g := find(vs, "CVE-2023-39325"); !slices.Equal(g.FixedVersions, []string{"1.20.10", "1.21.3"}) || g.Severity != SeverityUndefined || g.CVSSScore != nil {
		t.Errorf("GO-2023-2102: fixed %v severity %s", g.FixedVersions, g.Severity)
	}
	vs, _ = ix.Affecting("NuGet", "Newtonsoft.Json", "12.0.3")
	if n := find(vs, "GHSA-5crp-9r3c-p9vr"); n.Severity != SeverityLow || n.SeverityDetail.Source != SourceDatabaseWord || n.CVSSScore != nil {
		t.Errorf("NuGet: %s %+v", n.Severity, n.SeverityDetail)
	}
	vs, _ = ix.Affecting("AlmaLinux:9", "openssl", "1:3.0.1-1.el9")
	if a := find(vs, "ALSA-2022:7288"); a.Severity != SeverityHigh || a.SeverityDetail.Source != SourceDistribution {
		t.Errorf("ALSA: %s %+v", a.Severity, a.SeverityDetail)
	}
	vs, _ = ix.Affecting("RubyGems", "nokogiri", "1.0.0")
	if r := find(vs, "CVE-2022-24836"); r.Severity != SeverityHigh || r.CVSSScore == nil || *r.CVSSScore != 7.5 {
		t.Errorf("RubyGems numeric cvss_v3: %s %v", r.Severity, r.CVSSScore)
	}
	vs, _ = ix.Affecting("Debian:11", "openssl", "1.1.1n-0+deb11u3")
	if d := find(vs, "DSA-5343-1"); d.Severity != SeverityUndefined || len(d.Upstream) != 5 || !slices.Equal(d.FixedVersions, []string{"1.1.1n-0+deb11u4"}) {
		t.Errorf("DSA-5343-1: %s %v %v", d.Severity, d.Upstream, d.FixedVersions)
	}
	vs, _ = ix.Affecting("Go", "stdlib", "1.19.0")
	raw, err := json.Marshal(find(vs, "CVE-2022-27664"))
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"id", "aliases", "vulnerabilityId", "severity", "cvssScore", "fixedVersions", "summary", "details", "references", "modified", "advisories"} {
		if _, ok := obj[f]; !ok {
			t.Errorf("JSON lacks %q: %s", f, raw)
		}
	}
	if !strings.Contains(string(raw), `"symbols"`) {
		t.Errorf("ecosystem_specific not kept for display: %s", raw)
	}
}

// rec builds an advisory from JSON written in a test.
func rec(t testing.TB, js string) *Advisory {
	t.Helper()
	a, err := Parse([]byte(js))
	if err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	return a
}

func TestEventKinds(t *testing.T) {
	advs := []*Advisory{
		rec(t, `{"id":"T-LAST","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"marked"},
			"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"last_affected":"0.3.5"}]}]}]}`),
		rec(t, `{"id":"T-LIMIT","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"example.com/m"},
			"ranges":[{"type":"SEMVER","events":[{"introduced":"1.0.0"},{"limit":"2.0.0"}]}]}]}`),
		rec(t, `{"id":"T-LIMITS","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"pkg"},
			"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0"},{"fixed":"1.5"},{"introduced":"2.0"},{"limit":"1.2"},{"limit":"3.0"}]}]}]}`),
		rec(t, `{"id":"T-STAR","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Hex","name":"plug"},
			"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0.0-rc.1"},{"limit":"*"}]}]}]}`),
		rec(t, `{"id":"T-EMPTY","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Pub","name":"http"},
			"ranges":[{"type":"ECOSYSTEM","events":[{"fixed":"1.0.0"},{"introduced":"1.0.0"}]}]}]}`),
		rec(t, `{"id":"T-PUB","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Pub","name":"dio"},
			"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"5.0.0"}]}]}]}`),
		rec(t, `{"id":"T-GIT","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"gitonly"},
			"ranges":[{"type":"GIT","repo":"https://example.com/r","events":[{"introduced":"0"},{"fixed":"abc"}]}]}]}`),
		rec(t, `{"id":"T-GIT0","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"gitzero"},
			"ranges":[{"type":"GIT","repo":"https://example.com/r","events":[{"introduced":"0"}]}]}]}`),
		rec(t, `{"id":"T-WD","modified":"2024-01-01T00:00:00Z","withdrawn":"2024-02-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"gone"},
			"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`),
		rec(t, `{"id":"T-UBUNTU","modified":"2024-01-01T00:00:00Z","severity":[{"type":"Ubuntu","score":"medium"}],
			"affected":[{"package":{"ecosystem":"Ubuntu:22.04:LTS","name":"curl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"7.81.0-1ubuntu1.15"}]}]}]}`),
		rec(t, `{"id":"T-UBUNTU-PRO","modified":"2024-01-01T00:00:00Z",
			"affected":[{"package":{"ecosystem":"Ubuntu:Pro:18.04:LTS","name":"curl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"7.58.0-2ubuntu3.24+esm1"}]}]}]}`),
		rec(t, `{"id":"T-DEB-BARE","modified":"2024-01-01T00:00:00Z",
			"affected":[{"package":{"ecosystem":"Debian","name":"bash"},"ecosystem_specific":{"urgency":"low"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"5.2.15-2"}]}]}]}`),
		rec(t, `{"id":"T-ROCKY","modified":"2024-01-01T00:00:00Z","summary":"Moderate: curl security update",
			"affected":[{"package":{"ecosystem":"Rocky Linux:9","name":"curl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"7.76.1-26.el9_3.2"}]}]}]}`),
		rec(t, `{"id":"T-SUSE","modified":"2024-01-01T00:00:00Z",
			"affected":[{"package":{"ecosystem":"SUSE:Linux Enterprise Server 15 SP5","name":"openssl-3"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.8-150500.5.8.1"}]}]}]}`),
		rec(t, `{"id":"T-RH","modified":"2024-01-01T00:00:00Z","summary":"Critical: x",
			"affected":[{"package":{"ecosystem":"Red Hat:enterprise_linux:9::baseos","name":"openssl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1:3.0.7-24.el9"}]}]}]}`),
		rec(t, `{"id":"T-VERSIONS","modified":"2024-01-01T00:00:00Z",
			"affected":[{"package":{"ecosystem":"Debian:12","name":"weird"},"versions":["x:not-an-epoch","1.0-1"]}]}`),
		rec(t, `{"id":"T-PKGSEV","modified":"2024-01-01T00:00:00Z","affected":[
			{"package":{"ecosystem":"npm","name":"a"},"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]},
			{"package":{"ecosystem":"npm","name":"b"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`),
		rec(t, `{"id":"T-V4","modified":"2024-01-01T00:00:00Z","severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}],
			"affected":[{"package":{"ecosystem":"crates.io","name":"v4"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`),
	}
	ix := BuildIndex(7, advs)
	tests := []struct {
		eco, name, version string
		want               []string
	}{
		{"npm", "marked", "0.3.5", []string{"T-LAST"}},
		{"npm", "marked", "0.3.6", nil},
		{"Go", "example.com/m", "1.9.9", []string{"T-LIMIT"}},
		{"Go", "example.com/m", "2.0.0", nil},
		{"Go", "example.com/m", "0.9.0", nil},
		{"PyPI", "pkg", "1.1", []string{"T-LIMITS"}},
		{"PyPI", "pkg", "1.5", nil},
		{"PyPI", "pkg", "2.5", []string{"T-LIMITS"}},
		{"PyPI", "pkg", "3.0", nil},
		{"Hex", "plug", "1.0.0-rc.0", nil},
		{"Hex", "plug", "1.0.0-rc.1", []string{"T-STAR"}},
		{"Hex", "plug", "9.9.9", []string{"T-STAR"}},
		{"Pub", "http", "1.0.0", nil},
		{"Pub", "http", "0.9.0", nil},
		{"Pub", "dio", "5.0.0-dev.1", []string{"T-PUB"}},
		{"Pub", "dio", "5.0.0", nil},
		{"PyPI", "gitonly", "1.0", nil},
		{"PyPI", "gitzero", "1.0", nil},
		{"npm", "gone", "1.0.0", nil},
		{"Ubuntu:22.04:LTS", "curl", "7.81.0-1ubuntu1.14", []string{"T-UBUNTU"}},
		{"Ubuntu:22.04:LTS", "curl", "7.81.0-1ubuntu1.15", nil},
		{"Ubuntu:18.04:LTS", "curl", "7.58.0-2ubuntu3.24", nil},
		{"Ubuntu:Pro:18.04:LTS", "curl", "7.58.0-2ubuntu3.24", []string{"T-UBUNTU-PRO"}},
		{"Debian:12", "bash", "5.2.15-1", []string{"T-DEB-BARE"}},
		{"Debian", "bash", "5.2.15-1", []string{"T-DEB-BARE"}},
		{"Debian:11", "bash", "5.2.15-1", []string{"T-DEB-BARE"}},
		{"Debian:12", "bash", "5.2.15-2", nil},
		{"Rocky Linux:9", "curl", "7.76.1-26.el9_3", []string{"T-ROCKY"}},
		{"Rocky Linux:9", "curl", "7.76.1-26.el9_3.2", nil},
		{"SUSE:Linux Enterprise Server 15 SP5", "openssl-3", "3.0.8-150500.5.7.1", []string{"T-SUSE"}},
		{"SUSE:Linux Enterprise Server 15 SP5", "openssl-3", "3.0.8-150500.5.10.1", nil},
		{"Red Hat:enterprise_linux:9::baseos", "openssl", "3.0.7-27.el9", []string{"T-RH"}}, // no epoch < epoch 1
		{"Red Hat:enterprise_linux:9::baseos", "openssl", "1:3.0.7-24.el9", nil},
		{"Debian:12", "weird", "x:not-an-epoch", []string{"T-VERSIONS"}},
		{"Debian:12", "weird", "1.0-1", []string{"T-VERSIONS"}},
		{"Debian:12", "weird", "1.0-2", nil},
	}
	for _, tt := range tests {
		t.Run(tt.eco+"/"+tt.name+"@"+tt.version, func(t *testing.T) {
			got, _ := ix.Affecting(tt.eco, tt.name, tt.version)
			want := tt.want
			if want == nil {
				want = []string{}
			}
			if ids := vulnIDs(got); !slices.Equal(ids, want) {
				t.Errorf("got %v, want %v", ids, want)
			}
		})
	}

	sev := func(eco, name, version string) Severity {
		t.Helper()
		vs, _ := ix.Affecting(eco, name, version)
		if len(vs) != 1 {
			t.Fatalf("%s/%s@%s: %d results", eco, name, version, len(vs))
		}
		return vs[0].SeverityDetail
	}
	if s := sev("Ubuntu:22.04:LTS", "curl", "7.0-1"); s.Level != SeverityMedium || s.Source != SourceDistribution {
		t.Errorf("Ubuntu priority: %+v", s)
	}
	if s := sev("Debian:12", "bash", "1.0-1"); s.Level != SeverityLow || s.Source != SourceDistribution {
		t.Errorf("Debian urgency: %+v", s)
	}
	for _, eco := range []string{"Debian", "Debian:12", "Debian:11"} {
		if vs, _ := ix.Affecting(eco, "bash", "5.0-1"); len(vs) != 1 || vs[0].Ecosystem != eco {
			t.Errorf("%s: results name another ecosystem: %+v", eco, vs)
		}
	}
	if s := sev("Red Hat:enterprise_linux:9::baseos", "openssl", "0:1-1"); s.Level != SeverityCritical {
		t.Errorf("Red Hat summary: %+v", s)
	}
	if s := sev("npm", "a", "1.0.0"); s.Level != SeverityCritical || s.Score != 9.8 {
		t.Errorf("package-level severity: %+v", s)
	}
	if s := sev("npm", "b", "1.0.0"); s.Level != SeverityUndefined {
		t.Errorf("package without severity: %+v", s)
	}
	if s := sev("crates.io", "v4", "1.0.0"); s.Level != SeverityCritical || s.Version != "4.0" || s.Score != 9.3 {
		t.Errorf("CVSS v4: %+v", s)
	}

	// A version the ecosystem rejects still matches a listed version by its spelling.
	got, err := ix.Affecting("Debian:12", "weird", "x:not-an-epoch")
	if !errors.Is(err, ErrInvalidVersion) || len(got) != 1 {
		t.Errorf("invalid Debian version: %v, err %v, want one match and ErrInvalidVersion", vulnIDs(got), err)
	}
	if ix.Stats().UnorderableVersions != 1 {
		t.Errorf("unorderable versions: %d, want 1", ix.Stats().UnorderableVersions)
	}
	if !ix.HasPackage("Debian:12", "bash") || !ix.HasPackage("PyPI", "PKG") || ix.HasPackage("npm", "nothing") {
		t.Error("HasPackage")
	}
	if ix.Advisory("T-WD") != nil {
		t.Error("withdrawn advisory is in the index")
	}
}

func TestAliasMerge(t *testing.T) {
	advs := []*Advisory{
		rec(t, `{"id":"x_NSWG-ECO-368","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2018-3721"],"summary":"nswg",
			"severity":[{"type":"CVSS_V3","score":"CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:L"}],
			"affected":[{"package":{"ecosystem":"npm","name":"lodash"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"4.17.5"}]}]}]}`),
		rec(t, `{"id":"GHSA-fvqr-27wr-82fm","modified":"2024-01-02T00:00:00Z","aliases":["CVE-2018-3721"],"summary":"ghsa",
			"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:N/I:H/A:N"}],"database_specific":{"severity":"MODERATE"},
			"affected":[{"package":{"ecosystem":"npm","name":"lodash"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"4.17.5"}]}]}]}`),
		rec(t, `{"id":"CVE-2018-3721","modified":"2023-01-01T00:00:00Z","summary":"cve",
			"affected":[{"package":{"ecosystem":"npm","name":"lodash"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"4.17.6"}]}]}]}`),
		rec(t, `{"id":"GHSA-other","modified":"2024-01-01T00:00:00Z",
			"affected":[{"package":{"ecosystem":"npm","name":"lodash"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"4.0.0"}]}]}]}`),
	}
	ix := BuildIndex(1, advs)
	vs, err := ix.Affecting("npm", "lodash", "3.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if ids := vulnIDs(vs); !slices.Equal(ids, []string{"CVE-2018-3721", "GHSA-other"}) {
		t.Fatalf("got %v", ids)
	}
	v := vs[0]
	if v.ID != "CVE-2018-3721" || !slices.Equal(v.AdvisoryIDs, []string{"CVE-2018-3721", "GHSA-fvqr-27wr-82fm", "x_NSWG-ECO-368"}) {
		t.Errorf("id %s records %v", v.ID, v.AdvisoryIDs)
	}
	if !slices.Equal(v.Aliases, []string{"GHSA-fvqr-27wr-82fm", "x_NSWG-ECO-368"}) {
		t.Errorf("aliases %v", v.Aliases)
	}
	// The higher of the two v3 scores wins; both vectors are listed.
	if v.Severity != SeverityMedium || *v.CVSSScore != 6.5 || v.CVSSVersion != "3.1" || len(v.CVSS) != 2 {
		t.Errorf("severity %s score %v cvss %v", v.Severity, *v.CVSSScore, v.CVSS)
	}
	if !slices.Equal(v.FixedVersions, []string{"4.17.5", "4.17.6"}) {
		t.Errorf("fixed %v", v.FixedVersions)
	}
	// At 4.17.5 only the CVE record still matches.
	vs, _ = ix.Affecting("npm", "lodash", "4.17.5")
	if len(vs) != 1 || vs[0].ID != "CVE-2018-3721" || len(vs[0].AdvisoryIDs) != 1 {
		t.Errorf("4.17.5: %+v", vs)
	}
}

func TestNormalizeName(t *testing.T) {
	tests := []struct{ eco, in, want string }{
		{"PyPI", "Foo.Bar__baz", "foo-bar-baz"},
		{"PyPI", "requests", "requests"},
		{"PyPI", "zope.interface", "zope-interface"},
		{"PyPI", "a--b", "a-b"},
		{"NuGet", "Newtonsoft.Json", "newtonsoft.json"},
		{"crates.io", "Foo-Bar", "foo_bar"},
		{"Packagist", "Symfony/Http-Kernel", "symfony/http-kernel"},
		{"npm", "@Scope/Pkg", "@Scope/Pkg"},
		{"Maven", "Org.Group:Art", "Org.Group:Art"},
		{"Go", "github.com/BurntSushi/toml", "github.com/BurntSushi/toml"},
		{"Debian:12", "libssl3", "libssl3"},
	}
	for _, tt := range tests {
		if got := NormalizeName(tt.eco, tt.in); got != tt.want {
			t.Errorf("NormalizeName(%q, %q) = %q, want %q", tt.eco, tt.in, got, tt.want)
		}
	}
}

func TestDistroEcosystem(t *testing.T) {
	tests := []struct{ id, version, want string }{
		{"debian", "12", "Debian:12"},
		{"ubuntu", "22.04", "Ubuntu:22.04:LTS"},
		{"ubuntu", "23.10", "Ubuntu:23.10"},
		{"alpine", "3.20.3", "Alpine:v3.20"},
		{"almalinux", "9.4", "AlmaLinux:9"},
		{"rocky", "8.9", "Rocky Linux:8"},
		{"fedora", "40", ""},
	}
	for _, tt := range tests {
		if got := DistroEcosystem(tt.id, tt.version); got != tt.want {
			t.Errorf("DistroEcosystem(%q, %q) = %q, want %q", tt.id, tt.version, got, tt.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	tests := map[string]string{
		"not json":      `{"id":`,
		"no id":         `{"modified":"2024-01-01T00:00:00Z"}`,
		"no modified":   `{"id":"X-1"}`,
		"bad modified":  `{"id":"X-1","modified":"yesterday"}`,
		"slash in id":   `{"id":"../X","modified":"2024-01-01T00:00:00Z"}`,
		"bad withdrawn": `{"id":"X-1","modified":"2024-01-01T00:00:00Z","withdrawn":"2024-13-01"}`,
	}
	for name, js := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(js)); !errors.Is(err, ErrInvalidRecord) {
				t.Errorf("err = %v, want ErrInvalidRecord", err)
			}
		})
	}
}

func TestIncrementalIndexEqualsFull(t *testing.T) {
	a1 := rec(t, `{"id":"A-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"2.0.0"}]}]},{"package":{"ecosystem":"npm","name":"y"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`)
	a2 := rec(t, `{"id":"A-2","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"y"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`)
	old := BuildIndex(1, []*Advisory{a1, a2})
	// A-1 now only affects x below 1.5.0 and no longer y.
	a1b := rec(t, `{"id":"A-1","modified":"2024-02-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.5.0"}]}]}]}`)
	keys := []PackageKey{MakeKey("npm", "x"), MakeKey("npm", "y")}
	nx := old.WithChanges(2, keys, []*Advisory{a1b, a2})
	if got, _ := nx.Affecting("npm", "x", "1.6.0"); len(got) != 0 {
		t.Errorf("x@1.6.0 still affected: %v", vulnIDs(got))
	}
	if got, _ := nx.Affecting("npm", "y", "1.0.0"); !slices.Equal(vulnIDs(got), []string{"A-2"}) {
		t.Errorf("y: %v", vulnIDs(got))
	}
	if got, _ := old.Affecting("npm", "x", "1.6.0"); len(got) != 1 {
		t.Errorf("old snapshot changed: %v", vulnIDs(got))
	}
	if nx.Version() != 2 || nx.Advisory("A-1").Modified.Month() != 2 {
		t.Errorf("version %d advisory %v", nx.Version(), nx.Advisory("A-1"))
	}
}

// BenchmarkAffecting times lookups on the osv-mini index: "warm" asks the same version
// again (answered from what the package remembers), "cold" a new version every time.
func BenchmarkAffecting(b *testing.B) {
	ix := miniIndex(b)
	for _, q := range []struct{ eco, name, version string }{
		{"Debian:11", "zlib", "1:1.2.11.dfsg-2+deb11u1"},
		{"Alpine:v3.23", "openssl", "3.3.1-r0"},
		{"AlmaLinux:9", "openssl", "1:3.0.1-42.el9"},
		{"Maven", "org.apache.logging.log4j:log4j-core", "2.14.1"},
		{"PyPI", "requests", "2.19.1"},
		{"Go", "stdlib", "1.19.0"},
		{"npm", "lodash", "4.17.4"},
		{"npm", "express", "4.17.1"}, // no advisory
	} {
		b.Run("warm/"+q.eco+"/"+q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = ix.Affecting(q.eco, q.name, q.version)
			}
		})
		b.Run("cold/"+q.eco+"/"+q.name, func(b *testing.B) {
			versions := make([]string, 4096)
			for i := range versions {
				versions[i] = fmt.Sprintf("%s.%d", q.version, i)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				// A fresh index now and then keeps the remembered versions from helping.
				if i%len(versions) == 0 {
					b.StopTimer()
					ix = miniIndex(b)
					b.StartTimer()
				}
				_, _ = ix.Affecting(q.eco, q.name, versions[i%len(versions)])
				i++
			}
		})
	}
}

// Queries share remembered versions and answers; they must agree with a fresh index and
// be safe from many goroutines (run with -race).
func TestAffectingConcurrent(t *testing.T) {
	ix, fresh := miniIndex(t), miniIndex(t)
	qs := []struct{ eco, name, version string }{
		{"Debian:11", "zlib", "1:1.2.11.dfsg-2+deb11u1"},
		{"Maven", "org.apache.logging.log4j:log4j-core", "2.14.1"},
		{"Maven", "org.apache.logging.log4j:log4j-core", "2.3.1"},
		{"npm", "lodash", "4.17.16"},
		{"Go", "stdlib", "1.19.0"},
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				q := qs[(g+i)%len(qs)]
				got, _ := ix.Affecting(q.eco, q.name, q.version)
				want, _ := fresh.Affecting(q.eco, q.name, q.version)
				if !slices.Equal(vulnIDs(got), vulnIDs(want)) {
					t.Errorf("%v: %v, want %v", q, vulnIDs(got), vulnIDs(want))
					return
				}
			}
		})
	}
	wg.Wait()
}

// The precomputed verdicts and shared answers must agree with evaluating the ranges at
// query time (the OSV algorithm as written), at every boundary and between boundaries.
func TestPrecomputedAnswersAgreeWithEvaluation(t *testing.T) {
	fast, slow := miniIndex(t), miniIndex(t)
	for _, e := range slow.pkgs {
		e.verdicts, e.byRank = nil, nil
	}
	summary := func(vs []*Vulnerability) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.VulnerabilityID+" "+strings.Join(v.AdvisoryIDs, ",")+" fixed="+strings.Join(v.FixedVersions, ",")+" "+string(v.Severity))
		}
		return out
	}
	n := 0
	for k := range fast.pkgs {
		for _, b := range fast.BoundaryVersions(k) {
			for _, v := range []string{b, b + ".1", b + "-1", "0.0.1", "99999"} {
				for range 2 { // the second time answers come from what the first remembered
					got, _ := fast.Affecting(k.Ecosystem, k.Name, v)
					want, _ := slow.Affecting(k.Ecosystem, k.Name, v)
					if !slices.Equal(summary(got), summary(want)) {
						t.Fatalf("%s@%s: %v, want %v", k, v, summary(got), summary(want))
					}
					n++
				}
			}
		}
	}
	if n < 1000 {
		t.Fatalf("only %d comparisons", n)
	}
}

// TestUnevaluatedAdvisories: an advisory whose range cannot be compiled is never silently
// left out: unless it matched otherwise, Affecting names it in an UnevaluatedError.
func TestUnevaluatedAdvisories(t *testing.T) {
	advs := []*Advisory{
		// The fixed version is not a Debian version: the range cannot be evaluated.
		rec(t, `{"id":"T-BADFIX","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},
			"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"x:not-an-epoch"}]}]}]}`),
		// A good advisory of the same package, evaluated as usual.
		rec(t, `{"id":"T-GOOD","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},
			"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.11-1~deb12u2"}]}]}]}`),
		// A broken range beside a good one that matches: a finding, not an unevaluated entry.
		rec(t, `{"id":"T-HALF","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:12","name":"half"},
			"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"y:bad"}]},{"type":"ECOSYSTEM","events":[{"introduced":"1.0-1"},{"fixed":"2.0-1"}]}]}]}`),
		// An ecosystem whose versions cannot be ordered.
		rec(t, `{"id":"T-UNORDERED","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"OSS-Fuzz","name":"proj"},
			"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1"},{"fixed":"2"}]}]}]}`),
		// GIT ranges are not for versions: nothing to report.
		rec(t, `{"id":"T-GITONLY","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"gitonly"},
			"ranges":[{"type":"GIT","repo":"https://example.com/r","events":[{"introduced":"0"},{"fixed":"abc"}]}]}]}`),
	}
	ix := BuildIndex(1, advs)
	tests := []struct {
		name, eco, pkg, version string
		wantVulns               []string
		wantUnevaluated         []string // advisory ids
		wantInvalidVersion      bool
	}{
		{"bad fixed version", "Debian:12", "openssl", "3.0.11-1~deb12u1", []string{"T-GOOD"}, []string{"T-BADFIX"}, false},
		{"bad fixed version, fixed otherwise", "Debian:12", "openssl", "3.0.11-1~deb12u2", []string{}, []string{"T-BADFIX"}, false},
		{"broken range, other range matches", "Debian:12", "half", "1.5-1", []string{"T-HALF"}, nil, false},
		{"broken range, other range does not match", "Debian:12", "half", "2.5-1", []string{}, []string{"T-HALF"}, false},
		{"unordered ecosystem", "OSS-Fuzz", "proj", "1.5", []string{}, []string{"T-UNORDERED"}, false},
		{"git range", "PyPI", "gitonly", "1.0", []string{}, nil, false},
		{"invalid installed version", "Debian:12", "openssl", "x:bad", []string{}, []string{"T-BADFIX"}, true},
		{"no advisory", "PyPI", "nothing", "1.0", []string{}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vs, err := ix.Affecting(tc.eco, tc.pkg, tc.version)
			if got := vulnIDs(vs); !slices.Equal(got, tc.wantVulns) {
				t.Errorf("vulnerabilities %v, want %v", got, tc.wantVulns)
			}
			var got []string
			if ue, ok := errors.AsType[*UnevaluatedError](err); ok {
				for _, u := range ue.Advisories {
					got = append(got, u.AdvisoryID)
					if u.Reason == "" {
						t.Errorf("%s: no reason", u.AdvisoryID)
					}
				}
			}
			if !slices.Equal(got, tc.wantUnevaluated) {
				t.Errorf("unevaluated %v, want %v (err %v)", got, tc.wantUnevaluated, err)
			}
			if errors.Is(err, ErrInvalidVersion) != tc.wantInvalidVersion {
				t.Errorf("err %v, want ErrInvalidVersion: %v", err, tc.wantInvalidVersion)
			}
		})
	}
}
