package pullgate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeStore holds findings as (vulnerability id, severity, first observed) and overrides.
type fakeStore struct {
	overrides map[string]Policy
	findings  []fakeFinding
}

type fakeFinding struct {
	id, severity string
	first        time.Time
}

func (s fakeStore) RepositoryPullGate(_ context.Context, repo string) (Policy, bool, error) {
	p, ok := s.overrides[repo]
	return p, ok, nil
}

func (s fakeStore) BlockingFindings(_ context.Context, _, _, _ string, minRank int, by time.Time) ([]string, error) {
	var out []string
	for _, f := range s.findings {
		if Rank(f.severity) >= minRank && !f.first.After(by) {
			out = append(out, f.id)
		}
	}
	return out, nil
}

func TestCheck(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st := fakeStore{
		overrides: map[string]Policy{"sandbox": {Severity: Off}, "strict": {Severity: "LOW"}},
		findings: []fakeFinding{
			{"CVE-1", "CRITICAL", now.Add(-48 * time.Hour)},
			{"CVE-2", "CRITICAL", now.Add(-time.Hour)},
			{"CVE-3", "MEDIUM", now.Add(-48 * time.Hour)},
		},
	}
	ci := Caller{AccessKeyID: "LAKCI", Name: "ci"}
	dev := Caller{AccessKeyID: "LAKDEV", Name: "dev"}
	for _, tc := range []struct {
		name    string
		def     Policy
		p       Caller
		repo    string
		refused string // "" when allowed, else text the refusal must hold
	}{
		{"no gate", Policy{}, dev, "app", ""},
		{"critical", Policy{Severity: "CRITICAL"}, dev, "app", "2 ACTIVE findings at or above CRITICAL: CVE-1, CVE-2"},
		{"grace spares the new one", Policy{Severity: "CRITICAL", Grace: 24 * time.Hour}, dev, "app", "1 ACTIVE finding at or above CRITICAL first observed more than 24h0m0s ago: CVE-1"},
		{"grace spares all", Policy{Severity: "CRITICAL", Grace: 72 * time.Hour}, dev, "app", ""},
		{"exempt by name", Policy{Severity: "CRITICAL", Exempt: []string{"ci"}}, ci, "app", ""},
		{"exempt by key id", Policy{Severity: "CRITICAL", Exempt: []string{"LAKCI"}}, ci, "app", ""},
		{"exempt by ARN", Policy{Severity: "CRITICAL", Exempt: []string{"arn:aws:iam::123456789012:user/ci"}}, ci, "app", ""},
		{"another is not exempt", Policy{Severity: "CRITICAL", Exempt: []string{"ci"}}, dev, "app", "CVE-1"},
		{"anonymous is never exempt", Policy{Severity: "CRITICAL", Exempt: []string{""}}, Caller{}, "app", "CVE-1"},
		{"override off", Policy{Severity: "CRITICAL"}, dev, "sandbox", ""},
		{"override stricter", Policy{}, dev, "strict", "3 ACTIVE findings at or above LOW"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &Gate{store: st, def: tc.def, registryID: "123456789012", now: func() time.Time { return now },
				scanType: func(context.Context) (string, error) { return "ENHANCED", nil }}
			err := g.Check(context.Background(), tc.p, tc.repo, "sha256:abc")
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && (!errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("got %v, want a refusal with %q", err, tc.refused)
			}
		})
	}
}

func TestRefusalNamesAFew(t *testing.T) {
	var fs []fakeFinding
	for _, id := range []string{"CVE-1", "CVE-2", "CVE-3", "CVE-4", "CVE-5", "CVE-6", "CVE-7"} {
		fs = append(fs, fakeFinding{id, "HIGH", time.Time{}})
	}
	g, err := New(fakeStore{findings: fs}, Policy{Severity: "HIGH"}, "123456789012", func(context.Context) (string, error) { return "ENHANCED", nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	g.WithPage(func(repo, digest string) string { return "/console/image?repository=" + repo + "&digest=" + digest })
	err = g.Check(context.Background(), Caller{}, "app", "sha256:abc")
	if err == nil || !strings.Contains(err.Error(), "7 ACTIVE findings") || !strings.Contains(err.Error(), "CVE-5 and 2 more") || strings.Contains(err.Error(), "CVE-6") ||
		!strings.HasSuffix(err.Error(), "; see /console/image?repository=app&digest=sha256:abc") {
		t.Errorf("refusal %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		p  Policy
		ok bool
	}{
		{Policy{}, true},
		{Policy{Severity: "CRITICAL", Grace: time.Hour, Exempt: []string{"ci"}}, true},
		{Policy{Severity: Off}, true},
		{Policy{Severity: "SEVERE"}, false},
		{Policy{Severity: "HIGH", Grace: -time.Second}, false},
		{Policy{Severity: "HIGH", Exempt: []string{" "}}, false},
	} {
		if err := tc.p.Validate(); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("Validate(%+v) = %v, want ok %v", tc.p, err, tc.ok)
		}
	}
}
