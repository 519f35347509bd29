package console

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/suppression"
)

func TestParseListQuery(t *testing.T) {
	cols := []string{"name", "images"}
	tests := []struct {
		query string
		want  listQuery
	}{
		{"", listQuery{Sort: "name", Page: 1}},
		{"q=+team+&sort=images&order=desc&page=3", listQuery{Filter: "team", Sort: "images", Desc: true, Page: 3}},
		{"sort=bogus&page=-1", listQuery{Sort: "name", Page: 1}},
		{"page=99999999999999999999", listQuery{Sort: "name", Page: 1}},
		{"page=abc&q=" + strings.Repeat("x", maxFilter+1), listQuery{Sort: "name", Page: 1}},
		{"q=%ff", listQuery{Sort: "name", Page: 1}},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		if got := parseListQuery(q, cols); got != tt.want {
			t.Errorf("%q: %+v, want %+v", tt.query, got, tt.want)
		}
	}
	// A page past the end shows the first.
	lq := listQuery{Sort: "name", Page: 5}
	if from, to := lq.window(30); lq.Page != 1 || from != 0 || to != pageSize {
		t.Errorf("page 5 of 30 rows: page %d, [%d, %d)", lq.Page, from, to)
	}
}

func TestSafeNext(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/console/repositories?q=a", "/console/repositories?q=a"},
		{"", Prefix},
		{"//evil.example/console/", Prefix},
		{"https://evil.example/console/", Prefix},
		{"/console/\\evil", Prefix},
		{"/console/../v2/", Prefix},
		{"/v2/_catalog", Prefix},
		{"/console/x\r\nSet-Cookie: a=b", Prefix},
	}
	for _, tt := range tests {
		if got := safeNext(tt.in); got != tt.want {
			t.Errorf("safeNext(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSessionCookie(t *testing.T) {
	key := []byte("k1")
	now := time.Unix(1_800_000_000, 0)
	good := encodeSession(key, claims{KeyID: "LAK1", Expires: now.Add(time.Hour).Unix(), Nonce: "n"})
	payload, _, _ := strings.Cut(good, ".")
	tests := []struct {
		name  string
		value string
		key   []byte
		at    time.Time
		want  error
	}{
		{"valid", good, key, now, nil},
		{"expired", good, key, now.Add(time.Hour), errSessionExpired},
		{"other key", good, []byte("k2"), now, errNoSession},
		{"tampered", encodeSession([]byte("k2"), claims{KeyID: "LAK1", Expires: now.Add(time.Hour).Unix(), Nonce: "n"}), key, now, errNoSession},
		{"no signature", payload, key, now, errNoSession},
		{"garbage", "%%%.%%%", key, now, errNoSession},
	}
	for _, tt := range tests {
		c, err := decodeSession(tt.key, tt.value, tt.at)
		if !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		if err == nil && c.KeyID != "LAK1" {
			t.Errorf("%s: claims %+v", tt.name, c)
		}
	}
}

func TestParsePolicyForm(t *testing.T) {
	tests := []struct {
		name    string
		form    url.Values
		want    policy.Policy
		wantErr string
	}{
		{"basic, no rules", url.Values{"scan_type": {"BASIC"}}, policy.Policy{ScanType: "BASIC", Rules: []policy.Rule{}}, ""},
		{"enhanced, two rules", url.Values{"scan_type": {"ENHANCED"}, "rule1_frequency": {"CONTINUOUS_SCAN"}, "rule1_filters": {"prod*, team/a\nb"},
			"rule2_frequency": {"SCAN_ON_PUSH"}, "rule2_filters": {"*"}},
			policy.Policy{ScanType: "ENHANCED", Rules: []policy.Rule{
				{Frequency: "CONTINUOUS_SCAN", Filters: []policy.Filter{{Value: "prod*", Type: "WILDCARD"}, {Value: "team/a", Type: "WILDCARD"}, {Value: "b", Type: "WILDCARD"}}},
				{Frequency: "SCAN_ON_PUSH", Filters: []policy.Filter{{Value: "*", Type: "WILDCARD"}}}}}, ""},
		{"bad scan type", url.Values{"scan_type": {"FULL"}}, policy.Policy{}, "scan type"},
		{"basic continuous", url.Values{"scan_type": {"BASIC"}, "rule1_frequency": {"CONTINUOUS_SCAN"}, "rule1_filters": {"x"}}, policy.Policy{}, "only supports the SCAN_ON_PUSH"},
		{"no filters", url.Values{"scan_type": {"ENHANCED"}, "rule1_frequency": {"CONTINUOUS_SCAN"}}, policy.Policy{}, "between 1 and 100"},
		{"filters without frequency", url.Values{"scan_type": {"ENHANCED"}, "rule2_filters": {"x"}}, policy.Policy{}, "choose a scan frequency"},
		{"uppercase filter", url.Values{"scan_type": {"ENHANCED"}, "rule1_frequency": {"SCAN_ON_PUSH"}, "rule1_filters": {"Prod"}}, policy.Policy{}, "lowercase"},
		{"unknown frequency", url.Values{"scan_type": {"ENHANCED"}, "rule1_frequency": {"HOURLY"}, "rule1_filters": {"x"}}, policy.Policy{}, "unknown scan frequency"},
	}
	for _, tt := range tests {
		got, _, err := parsePolicyForm(tt.form)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errBadRequest) {
				t.Errorf("%s: %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !equalPolicy(got, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func equalPolicy(a, b policy.Policy) bool {
	if a.ScanType != b.ScanType || len(a.Rules) != len(b.Rules) {
		return false
	}
	for i := range a.Rules {
		if a.Rules[i].Frequency != b.Rules[i].Frequency || len(a.Rules[i].Filters) != len(b.Rules[i].Filters) {
			return false
		}
		for j := range a.Rules[i].Filters {
			if a.Rules[i].Filters[j] != b.Rules[i].Filters[j] {
				return false
			}
		}
	}
	return true
}

// FuzzParseForms feeds arbitrary query strings and form bodies to every parser of what a
// browser sends: none may panic, and what they accept stays within bounds.
func FuzzParseForms(f *testing.F) {
	for _, s := range []string{"", "q=a&sort=images&order=desc&page=2", "scan_type=ENHANCED&rule1_frequency=CONTINUOUS_SCAN&rule1_filters=a*,b",
		"next=/console/x", "page=-1&q=%00", "rule1_filters=" + strings.Repeat("a,", 200),
		"name=abc&action=SUPPRESS&vulnerability_ids=CVE-1,CVE-2&repositories=a*,b&severity=HIGH&packages=p&file_path=/x",
		"status=INACTIVE&reason=SCAN_FREQUENCY_MANUAL&repository=a&token=xyz", "keep_criteria=1&severity=LOW&severity=nope"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		lq := parseListQuery(q, repoColumns)
		if lq.Page < 1 || len(lq.Filter) > maxFilter || !strings.Contains(strings.Join(repoColumns, ","), lq.Sort) {
			t.Fatalf("out of bounds: %+v", lq)
		}
		if p, _, err := parsePolicyForm(q); err == nil {
			if policy.Validate(p) != nil || len(p.Rules) > policy.MaxRules {
				t.Fatalf("accepted an invalid policy: %+v", p)
			}
		}
		if n := safeNext(q.Get("next")); !strings.HasPrefix(n, Prefix) || strings.HasPrefix(n, "//") {
			t.Fatalf("next %q", n)
		}
		_, _ = decodeSession([]byte("k"), raw, time.Unix(0, 0))
		if rf, in, err := parseSuppressionForm(q); err == nil {
			if in.Name == nil || in.Action == nil || (in.Criteria == nil) != rf.Fixed {
				t.Fatalf("suppression form %+v: input %+v", rf, in)
			}
			if in.Criteria != nil {
				// What the form makes, the form shows back (unless a value holds a separator).
				_ = formOfRule(suppression.Rule{Criteria: *in.Criteria})
				_ = describeCriteria(*in.Criteria)
			}
		}
		cq := parseCoverageQuery(q)
		if len(cq.Repository) > 256 || len(cq.Token) > 4096 || (cq.Status != "" && cq.Status != "ACTIVE" && cq.Status != "INACTIVE") {
			t.Fatalf("coverage query out of bounds: %+v", cq)
		}
	})
}
