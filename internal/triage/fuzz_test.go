package triage

import (
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/match"
)

// Ignore files and VEX documents come from users' files: untrusted input.

func FuzzParseIgnoreFile(f *testing.F) {
	for _, s := range []string{"CVE-1\n", "CVE-1 exp:2026-12-31 # why\n# c\n", "vulnerabilities:\n  - id: CVE-1\n    expired_at: 2026-01-02\n",
		"vulnerabilities: [", "\x00\n#\n exp:", "CVE-1 exp:"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseIgnoreFile(data)
		if err != nil {
			return
		}
		for _, r := range l.Rules {
			if r.ID == "" || strings.ContainsAny(r.ID, " \t\n#") && !isYAMLIgnore(data) {
				t.Fatalf("rule with id %q", r.ID)
			}
			// Every rule must be usable.
			_, _ = l.Match(match.Finding{VulnerabilityID: r.ID}, time.Now())
		}
	})
}

func FuzzParseVEX(f *testing.F) {
	for _, s := range []string{openVEXDoc, cycloneDXVEX, `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{}]}`,
		`{"bomFormat":"CycloneDX","specVersion":"1.6","vulnerabilities":[{"id":"X","analysis":{"state":"weird"},"affects":[{"ref":"#"}]}]}`, `[]`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseVEX("fuzz.json", data)
		if err != nil {
			return
		}
		for _, st := range v.statements {
			if st.Vulnerability.Name == "" && st.Vulnerability.ID == "" {
				t.Fatal("a statement naming no vulnerability was accepted")
			}
			d, ok := v.Decide([]string{string(st.Vulnerability.Name)}, Subject{Image: ImageIDs("app:1", "sha256:00"), Package: "pkg:npm/a@1"})
			if ok && d.Justification == "" {
				t.Fatal("a decision without its source")
			}
		}
	})
}
