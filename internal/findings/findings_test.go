package findings

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/kev"
)

func ptr[T any](v T) *T { return &v }

func TestValidate(t *testing.T) {
	now := time.Now()
	tooMany := make([]StringFilter, 11)
	for i := range tooMany {
		tooMany[i] = StringFilter{Comparison: Equals, Value: "x"}
	}
	for _, tc := range []struct {
		name  string
		c     Criteria
		s     *Sort
		field string // "" when valid
	}{
		{"empty", Criteria{}, nil, ""},
		{"string", Criteria{Strings: map[Field][]StringFilter{Severity: {{Comparison: Prefix, Value: "CRIT"}}}}, &Sort{SortSeverity, Desc}, ""},
		{"bad comparison", Criteria{Strings: map[Field][]StringFilter{Severity: {{Comparison: "LIKE", Value: "x"}}}}, nil, "filterCriteria.severity[0].comparison"},
		{"empty value", Criteria{Strings: map[Field][]StringFilter{Title: {{Comparison: Equals}}}}, nil, "filterCriteria.title[0].value"},
		{"long value", Criteria{Strings: map[Field][]StringFilter{Title: {{Comparison: Equals, Value: strings.Repeat("x", 1025)}}}}, nil, "filterCriteria.title[0].value"},
		{"eleven filters", Criteria{Strings: map[Field][]StringFilter{Title: tooMany}}, nil, "filterCriteria.title"},
		{"no filters", Criteria{Strings: map[Field][]StringFilter{Title: {}}}, nil, "filterCriteria.title"},
		{"unknown member", Criteria{Strings: map[Field][]StringFilter{"colour": {{Comparison: Equals, Value: "x"}}}}, nil, "filterCriteria.colour"},
		{"wrong kind", Criteria{Dates: map[Field][]DateFilter{Title: {{}}}}, nil, "filterCriteria.title"},
		{"reversed dates", Criteria{Dates: map[Field][]DateFilter{UpdatedAt: {{Start: &now, End: ptr(now.Add(-time.Hour))}}}}, nil, "filterCriteria.updatedAt[0]"},
		{"reversed numbers", Criteria{Numbers: map[Field][]NumberFilter{InspectorScore: {{Lower: ptr(5.0), Upper: ptr(1.0)}}}}, nil, "filterCriteria.inspectorScore[0]"},
		{"map comparison", Criteria{Maps: map[Field][]MapFilter{ResourceTags: {{Comparison: Prefix, Key: "k"}}}}, nil, "filterCriteria.resourceTags[0].comparison"},
		{"map key", Criteria{Maps: map[Field][]MapFilter{ResourceTags: {{Comparison: Equals}}}}, nil, "filterCriteria.resourceTags[0].key"},
		{"port", Criteria{PortRanges: map[Field][]PortRangeFilter{"portRange": {{Begin: ptr(70000)}}}}, nil, "filterCriteria.portRange[0]"},
		{"package", Criteria{Packages: []PackageFilter{{FilePath: &StringFilter{Comparison: "SUFFIX", Value: "x"}}}}, nil, "filterCriteria.vulnerablePackages[0].filePath.comparison"},
		{"sort field", Criteria{}, &Sort{"COLOUR", Asc}, "sortCriteria.field"},
		{"sort order", Criteria{}, &Sort{SortSeverity, "UP"}, "sortCriteria.sortOrder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate("filterCriteria", tc.c, tc.s)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v, want a validation error", err)
			}
			if ve.Reason != ReasonFieldValidationFailed || len(ve.Fields) == 0 || ve.Fields[0].Name != tc.field {
				t.Fatalf("reason %s, fields %+v, want %s", ve.Reason, ve.Fields, tc.field)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	c := Criteria{Strings: map[Field][]StringFilter{Severity: {{Comparison: Equals, Value: "HIGH"}}}}
	s := Sort{SortSeverity, Desc}
	cur := Cursor{Num: ptr(4.0), Repository: "r", Digest: "d", VulnerabilityID: "CVE-1"}
	tok := EncodeToken("ListFindings", c, s, cur)
	got, err := DecodeToken("ListFindings", c, s, tok)
	if err != nil || *got.Num != 4 || got.Repository != "r" || got.VulnerabilityID != "CVE-1" {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	other := Criteria{Strings: map[Field][]StringFilter{Severity: {{Comparison: Equals, Value: "LOW"}}}}
	for _, tc := range []struct {
		name, op, token string
		c               Criteria
		s               Sort
	}{
		{"another operation", "ListCoverage", tok, c, s},
		{"another filter", "ListFindings", tok, other, s},
		{"another sort", "ListFindings", tok, c, Sort{SortSeverity, Asc}},
		{"not base64", "ListFindings", "!!!", c, s},
		{"not JSON", "ListFindings", "bm90IGpzb24", c, s},
		{"too long", "ListFindings", strings.Repeat("A", maxTokenLen+1), c, s},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeToken(tc.op, tc.c, tc.s, tc.token)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Fields[0].Name != "nextToken" {
				t.Fatalf("error %v, want a validation error about nextToken", err)
			}
		})
	}
}

// Next tokens come from clients: untrusted input.
func FuzzDecodeToken(f *testing.F) {
	c := Criteria{Strings: map[Field][]StringFilter{Severity: {{Comparison: Equals, Value: "HIGH"}}}}
	f.Add(EncodeToken("ListFindings", c, Sort{}, Cursor{Text: ptr("x"), Repository: "r"}))
	f.Add("eyJvIjoiTGlzdEZpbmRpbmdzIn0")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		cur, err := DecodeToken("ListFindings", c, Sort{}, token)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not a validation error", err)
			}
			return
		}
		if cur.Text != nil && cur.Num != nil {
			t.Fatal("accepted a cursor with two sort values")
		}
	})
}

type fakeStore struct {
	rows []Listed
	last Query
}

func (s *fakeStore) QueryFindings(_ context.Context, q Query) ([]Listed, error) {
	s.last = q
	if q.Limit < len(s.rows) {
		return s.rows[:q.Limit], nil
	}
	return s.rows, nil
}

func (s *fakeStore) FindingsByARN(_ context.Context, arns []string) ([]Listed, error) {
	var out []Listed
	for _, r := range s.rows {
		for _, a := range arns {
			if r.Finding.ARN == a {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

func TestServiceList(t *testing.T) {
	st := &fakeStore{}
	for _, id := range []string{"CVE-1", "CVE-2", "CVE-3"} {
		l := Listed{Cursor: Cursor{VulnerabilityID: id}}
		l.Finding.ARN, l.Finding.VulnerabilityID = "arn:"+id, id
		st.rows = append(st.rows, l)
	}
	cat, err := kev.Parse([]byte(`{"vulnerabilities":[{"cveID":"CVE-2021-44228","dateAdded":"2021-12-10"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	svc := NewService(st, nil, cat, "123456789012", "us-east-1")
	ctx := context.Background()
	out, err := svc.List(ctx, ListInput{Op: "ListFindings", MaxResults: ptr(2)})
	if err != nil || len(out.Findings) != 2 || out.NextToken == "" {
		t.Fatalf("page: %+v, %v", out, err)
	}
	if st.last.Limit != 3 || len(st.last.Exploited) != 1 || st.last.Account != "123456789012" {
		t.Errorf("query %+v", st.last)
	}
	if _, err := svc.List(ctx, ListInput{Op: "ListFindings", NextToken: &out.NextToken}); err != nil {
		t.Errorf("the token of the same listing: %v", err)
	}
	if _, err := svc.List(ctx, ListInput{Op: "ListFindings", NextToken: &out.NextToken,
		Criteria: Criteria{Strings: map[Field][]StringFilter{Title: {{Comparison: Equals, Value: "x"}}}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a token of another filter: %v", err)
	}
	for _, n := range []int{0, 101} {
		if _, err := svc.List(ctx, ListInput{Op: "ListFindings", MaxResults: ptr(n)}); !errors.Is(err, ErrInvalid) {
			t.Errorf("maxResults %d: %v", n, err)
		}
	}
	out, err = svc.List(ctx, ListInput{Op: "ListFindings"})
	if err != nil || len(out.Findings) != 3 || out.NextToken != "" {
		t.Fatalf("last page: %+v, %v", out, err)
	}
	d, err := svc.Details(ctx, []string{"arn:CVE-2", "arn:nope"})
	if err != nil || len(d.Details) != 1 || d.Details[0].FindingARN != "arn:CVE-2" || len(d.NotFound) != 1 {
		t.Fatalf("details %+v, %v", d, err)
	}
	if _, err := svc.Details(ctx, make([]string, 11)); !errors.Is(err, ErrInvalid) {
		t.Errorf("eleven ARNs: %v", err)
	}
}

func TestDescribe(t *testing.T) {
	advs := []*advisory.Advisory{
		{ID: "GHSA-jfh8-c2jp-5v3q", VulnerabilityID: "CVE-2021-44228", Aliases: []string{"CVE-2021-44228"}, Summary: "Remote code injection in Log4j",
			Severity: advisory.Severity{Level: advisory.SeverityCritical, Raw: "CRITICAL"}, DatabaseSpecific: []byte(`{"cwe_ids":["CWE-502","CWE-20"]}`),
			CVSS:       []advisory.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", BaseScore: 10}},
			References: []advisory.Reference{{Type: "WEB", URL: "https://logging.apache.org/log4j/2.x/security.html"}},
			Affected: []advisory.Affected{{Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", Ranges: []advisory.Range{{Type: "ECOSYSTEM",
				Events: []advisory.Event{{Kind: advisory.Introduced, Version: "2.0"}, {Kind: advisory.Fixed, Version: "2.15.0"}}}}}}},
		{ID: "CVE-2021-44228", VulnerabilityID: "CVE-2021-44228", Details: "Apache Log4j2 JNDI features ...", Severity: advisory.Severity{Level: advisory.SeverityUndefined}},
	}
	v := Describe("CVE-2021-44228", advs)
	if v.Description != "Apache Log4j2 JNDI features ..." || v.Severity != "CRITICAL" || len(v.CVSS) != 1 || strings.Join(v.CWEs, ",") != "CWE-20,CWE-502" ||
		len(v.Affected) != 1 || strings.Join(v.Affected[0].FixedVersions, ",") != "2.15.0" || strings.Join(v.Related, ",") != "GHSA-jfh8-c2jp-5v3q" ||
		v.SourceURL != "https://nvd.nist.gov/vuln/detail/CVE-2021-44228" || len(v.ReferenceURLs) != 1 {
		t.Fatalf("%+v", v)
	}
	if got := Describe("X", advs[1:]).Severity; got != Untriaged {
		t.Errorf("unrated: %s", got)
	}
	if InspectorSeverity("UNDEFINED") != Untriaged || InspectorSeverity("HIGH") != "HIGH" {
		t.Error("InspectorSeverity")
	}
}
