package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestMatchDocumentedExamples is the table in ECR's user guide ("Filters to choose which
// repositories are scanned"): filters down, repository names across.
func TestMatchDocumentedExamples(t *testing.T) {
	repos := []string{"prod", "repo-prod", "prod-repo", "repo-prod-repo", "prodrepo"}
	table := []struct {
		filter string
		want   []bool
	}{
		{"prod", []bool{true, true, true, true, true}},
		{"*prod", []bool{true, true, false, false, false}},
		{"prod*", []bool{true, false, true, false, true}},
		{"*prod*", []bool{true, true, true, true, true}},
		{"prod*repo", []bool{false, false, true, false, true}},
	}
	for _, tc := range table {
		for i, repo := range repos {
			if got := Match(tc.filter, repo); got != tc.want[i] {
				t.Errorf("Match(%q, %q) = %v, want %v", tc.filter, repo, got, tc.want[i])
			}
		}
	}
}

func TestMatchEdgeCases(t *testing.T) {
	for _, tc := range []struct {
		filter, repo string
		want         bool
	}{
		{"*", "anything/at-all", true},
		{"**", "x", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "a-b-b-c", true},
		{"a*b*c", "acb", false},
		{"ab*ba", "aba", false}, // prefix and suffix may not overlap
		{"ab*ba", "abba", true},
		{"team/*", "team/app", true},
		{"team/*", "other/team/app", false},
		{"team/", "other/team/app", true},
		{"prod", "pro", false},
	} {
		if got := Match(tc.filter, tc.repo); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.filter, tc.repo, got, tc.want)
		}
	}
}

func TestEvaluate(t *testing.T) {
	f := func(v string) Filter { return Filter{Value: v, Type: FilterTypeWildcard} }
	enhanced := Policy{ScanType: ScanTypeEnhanced, Rules: []Rule{
		{Frequency: FrequencyScanOnPush, Filters: []Filter{f("*"), f("prod")}},
		{Frequency: FrequencyContinuous, Filters: []Filter{f("prod"), f("*-prod")}},
	}}
	basic := Policy{ScanType: ScanTypeBasic, Rules: []Rule{
		{Frequency: FrequencyScanOnPush, Filters: []Filter{f("team-*")}},
	}}
	for _, tc := range []struct {
		name       string
		policy     Policy
		repo       string
		scanOnPush bool
		want       Decision
	}{
		{"default basic is manual", DefaultPolicy(), "app", false,
			Decision{Frequency: FrequencyManual, AppliedFilters: []Filter{}}},
		{"default basic honours the repository flag", DefaultPolicy(), "app", true,
			Decision{Frequency: FrequencyScanOnPush, ScanOnPush: true, AppliedFilters: []Filter{}}},
		{"basic rule matches", basic, "team-a", false,
			Decision{Frequency: FrequencyScanOnPush, ScanOnPush: true, AppliedFilters: []Filter{f("team-*")}}},
		{"basic rule misses", basic, "a-team-a", false,
			Decision{Frequency: FrequencyManual, AppliedFilters: []Filter{}}},
		{"continuous wins over scan on push", enhanced, "scanrepo-prod", false,
			Decision{Frequency: FrequencyContinuous, ScanOnPush: true, AppliedFilters: []Filter{f("prod"), f("*-prod")}}},
		{"scan on push when only that matches", enhanced, "scanrepo-test", false,
			Decision{Frequency: FrequencyScanOnPush, ScanOnPush: true, AppliedFilters: []Filter{f("*")}}},
		{"enhanced ignores the repository flag", Policy{ScanType: ScanTypeEnhanced, Rules: []Rule{
			{Frequency: FrequencyContinuous, Filters: []Filter{f("prod")}}}}, "test", true,
			Decision{Frequency: FrequencyManual, AppliedFilters: []Filter{}}},
		{"enhanced without rules scans everything continuously", Policy{ScanType: ScanTypeEnhanced}, "prod", false,
			Decision{Frequency: FrequencyContinuous, ScanOnPush: true, AppliedFilters: []Filter{{Value: "*", Type: FilterTypeWildcard}}}},
		{"basic ignores continuous rules", Policy{ScanType: ScanTypeBasic, Rules: []Rule{
			{Frequency: FrequencyContinuous, Filters: []Filter{f("*")}}}}, "prod", false,
			Decision{Frequency: FrequencyManual, AppliedFilters: []Filter{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Evaluate(tc.policy, tc.repo, tc.scanOnPush)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if got.Scanned() != (tc.want.Frequency != FrequencyManual) {
				t.Fatalf("Scanned() = %v", got.Scanned())
			}
		})
	}
}

func TestFilterPattern(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want bool
	}{
		{"prod", true}, {"*", true}, {"team/app-*", true}, {"a.b_c", true},
		{"Prod", false}, {"-prod", false}, {"prod-", false}, {"a--b", false}, {"", false},
	} {
		if got := FilterPattern.MatchString(tc.v); got != tc.want {
			t.Errorf("FilterPattern(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	rule := func(freq string) Rule {
		return Rule{Frequency: freq, Filters: []Filter{{Value: "*", Type: FilterTypeWildcard}}}
	}
	filters := func(n int) []Filter {
		out := make([]Filter, n)
		for i := range out {
			out[i] = Filter{Value: "team-" + strings.Repeat("a", i%10+1), Type: FilterTypeWildcard}
		}
		return out
	}
	const invalid = -2 // refused for its shape (ErrInvalid)
	for _, tc := range []struct {
		name   string
		policy Policy
		index  int // of the refused rule, -1 when valid, invalid when refused for its shape
	}{
		{"default", DefaultPolicy(), -1},
		{"basic scan on push", Policy{ScanType: ScanTypeBasic, Rules: []Rule{rule(FrequencyScanOnPush)}}, -1},
		{"basic continuous", Policy{ScanType: ScanTypeBasic, Rules: []Rule{rule(FrequencyScanOnPush), rule(FrequencyContinuous)}}, 1},
		{"basic manual", Policy{ScanType: ScanTypeBasic, Rules: []Rule{rule(FrequencyManual)}}, 0},
		{"enhanced continuous and manual", Policy{ScanType: ScanTypeEnhanced, Rules: []Rule{rule(FrequencyContinuous), rule(FrequencyManual)}}, -1},
		{"most filters", Policy{ScanType: ScanTypeEnhanced, Rules: []Rule{{Frequency: FrequencyContinuous, Filters: filters(MaxFiltersPerRule)}}}, -1},
		{"longest filter", Policy{ScanType: ScanTypeEnhanced, Rules: []Rule{{Frequency: FrequencyContinuous,
			Filters: []Filter{{Value: strings.Repeat("a", MaxFilterLen), Type: FilterTypeWildcard}}}}}, -1},
		{"no scan type", Policy{Rules: []Rule{}}, invalid},
		{"three rules", Policy{ScanType: ScanTypeEnhanced, Rules: []Rule{rule(FrequencyContinuous), rule(FrequencyScanOnPush), rule(FrequencyManual)}}, invalid},
		{"unknown frequency", Policy{ScanType: ScanTypeEnhanced, Rules: []Rule{rule("DAILY")}}, invalid},
		{"no filters", Policy{ScanType: ScanTypeEnhanced, Rules: []Rule{{Frequency: FrequencyContinuous}}}, invalid},
		{"too many filters", Policy{ScanType: ScanTypeEnhanced, Rules: []Rule{{Frequency: FrequencyContinuous, Filters: filters(MaxFiltersPerRule + 1)}}}, invalid},
		{"filter too long", Policy{ScanType: ScanTypeEnhanced, Rules: []Rule{{Frequency: FrequencyContinuous,
			Filters: []Filter{{Value: strings.Repeat("a", MaxFilterLen+1), Type: FilterTypeWildcard}}}}}, invalid},
		{"uppercase filter", Policy{ScanType: ScanTypeEnhanced, Rules: []Rule{{Frequency: FrequencyContinuous,
			Filters: []Filter{{Value: "Prod", Type: FilterTypeWildcard}}}}}, invalid},
		{"filter type", Policy{ScanType: ScanTypeEnhanced, Rules: []Rule{{Frequency: FrequencyContinuous,
			Filters: []Filter{{Value: "prod", Type: "REGEX"}}}}}, invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.policy)
			var re *RuleError
			switch {
			case tc.index == -1 && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.index == invalid && !errors.Is(err, ErrInvalid):
				t.Fatalf("got %v, want ErrInvalid", err)
			case tc.index >= 0 && (!errors.As(err, &re) || re.Index != tc.index || !errors.Is(err, ErrFrequencyNotAllowed)):
				t.Fatalf("got %v, want rule %d refused", err, tc.index)
			}
		})
	}
}
