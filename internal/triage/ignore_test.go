package triage

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/match"
)

func date(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseIgnoreFile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []IgnoreRule
		wantErr bool
	}{
		{"empty", "", nil, false},
		{"comments and blanks", "# accepted risks\n\n   \n# end\n", nil, false},
		{"ids", "CVE-2023-5363\nGHSA-jfh8-c2jp-5v3q\n", []IgnoreRule{{ID: "CVE-2023-5363", Line: 1}, {ID: "GHSA-jfh8-c2jp-5v3q", Line: 2}}, false},
		{"expiry and reason", "CVE-2023-5363 exp:2026-12-31 # no TLS in this image\r\n",
			[]IgnoreRule{{ID: "CVE-2023-5363", Expires: date("2026-12-31"), Reason: "no TLS in this image", Line: 1}}, false},
		{"reason without expiry", "  CVE-1 #reason  ", []IgnoreRule{{ID: "CVE-1", Reason: "reason", Line: 1}}, false},
		{"bad date", "CVE-1 exp:2026-13-01\n", nil, true},
		{"two dates", "CVE-1 exp:2026-01-01 exp:2027-01-01\n", nil, true},
		{"stray word", "CVE-1 because\n", nil, true},
		{"control character", "CVE-1\x01\n", nil, true},
		{"yaml", "# Trivy's YAML form\nvulnerabilities:\n  - id: CVE-1\n    statement: not reachable\n    expired_at: 2026-01-02\n  - id: CVE-2\n",
			[]IgnoreRule{{ID: "CVE-1", Reason: "not reachable", Expires: date("2026-01-02"), Line: 1}, {ID: "CVE-2", Line: 2}}, false},
		{"yaml with paths is refused, not widened", "vulnerabilities:\n  - id: CVE-1\n    paths: [usr/lib/x]\n", nil, true},
		{"yaml without id", "vulnerabilities:\n  - statement: x\n", nil, true},
		{"yaml bad date", "vulnerabilities:\n  - id: CVE-1\n    expired_at: soon\n", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ParseIgnoreFile([]byte(tc.in))
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidIgnoreFile) {
					t.Fatalf("err %v, want ErrInvalidIgnoreFile", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(l.Rules, tc.want) {
				t.Errorf("rules\n%+v\nwant\n%+v", l.Rules, tc.want)
			}
		})
	}
}

func TestIgnoreMatch(t *testing.T) {
	l, err := ParseIgnoreFile([]byte("cve-2021-44228\nGHSA-xxxx exp:2026-06-01\nCVE-2\nCVE-2 exp:2020-01-01\n"))
	if err != nil {
		t.Fatal(err)
	}
	now := date("2026-05-31")
	tests := []struct {
		name        string
		f           match.Finding
		at          time.Time
		wantOK      bool
		wantExpired bool
	}{
		{"by id, any case", match.Finding{VulnerabilityID: "CVE-2021-44228"}, now, true, false},
		{"by alias", match.Finding{VulnerabilityID: "CVE-9", Aliases: []string{"GHSA-xxxx"}}, now, true, false},
		{"by advisory id", match.Finding{VulnerabilityID: "CVE-9", AdvisoryIDs: []string{"GHSA-xxxx"}}, now, true, false},
		{"expires at the start of the date", match.Finding{VulnerabilityID: "CVE-9", Aliases: []string{"GHSA-xxxx"}}, date("2026-06-01"), true, true},
		{"an unexpired rule wins over an expired one", match.Finding{VulnerabilityID: "CVE-2"}, now, true, false},
		{"not named", match.Finding{VulnerabilityID: "CVE-3"}, now, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := l.Match(tc.f, tc.at)
			if ok != tc.wantOK || (ok && r.Expired(tc.at) != tc.wantExpired) {
				t.Errorf("match %+v %v (expired %v), want %v expired %v", r, ok, r.Expired(tc.at), tc.wantOK, tc.wantExpired)
			}
		})
	}
}
