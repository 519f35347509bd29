package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func daysAgo(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }

func img(name string, days int, tags ...string) Image {
	return Image{Digest: "sha256:" + name, Tags: tags, PushedAt: daysAgo(days)}
}

// The ECR user guide's lifecycle policy examples (lifecycle_policy_examples), with the
// repositories they describe and the results they state.
func TestUserGuideExamples(t *testing.T) {
	multiRepo := []Image{img("A", 10, "beta-1", "prod-1"), img("B", 9, "beta-2", "prod-2"), img("C", 8, "beta-3")}
	alphaBeta := []Image{img("A", 12, "alpha-1"), img("B", 11, "beta-1"), img("C", 10, "alpha-2", "beta-2"),
		img("D", 4, "alpha-3"), img("E", 3, "beta-3"), img("F", 2, "alpha-4", "beta-4")}
	notExclusive := []Image{img("A", 10, "alpha-1", "beta-1", "gamma-1"), img("B", 9, "alpha-2", "beta-2"), img("C", 8, "alpha-3", "beta-3", "gamma-2")}
	tests := []struct {
		name   string
		policy string
		images []Image
		want   map[string]int // image -> rule priority that expires it
	}{
		{
			name: "filtering on image age: untagged images older than 14 days",
			policy: `{"rules":[{"rulePriority":1,"description":"Expire images older than 14 days","selection":{"tagStatus":"untagged",
				"countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`,
			images: []Image{img("old", 20), img("edge", 14), img("new", 3), img("tagged-old", 30, "v1")},
			want:   map[string]int{"old": 1},
		},
		{
			name: "filtering on image age: tags matching prod* older than 14 days",
			policy: `{"rules":[{"rulePriority":1,"description":"Expire images older than 14 days","selection":{"tagStatus":"tagged",
				"tagPatternList":["prod*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`,
			images: []Image{img("prod-old", 15, "prod-1"), img("prod-new", 13, "prod-2"), img("dev-old", 30, "dev-1"), img("untagged", 30)},
			want:   map[string]int{"prod-old": 1},
		},
		{
			name: "filtering on image count: keep one untagged image",
			policy: `{"rules":[{"rulePriority":1,"description":"Keep only one untagged image, expire all others","selection":{"tagStatus":"untagged",
				"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
			images: []Image{img("u1", 3), img("u2", 2), img("u3", 1), img("t", 5, "v1")},
			want:   map[string]int{"u1": 1, "u2": 1},
		},
		{
			name: "keep only the last 2 images tagged with prefix prod",
			policy: `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["prod"],
				"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}`,
			images: []Image{img("p1", 4, "prod-1"), img("p2", 3, "prod-2"), img("p3", 2, "production"), img("p4", 1, "prod-4"), img("d", 6, "dev")},
			want:   map[string]int{"p1": 1, "p2": 1},
		},
		{
			name: "multiple rules, example A (prefixes)",
			policy: `{"rules":[{"rulePriority":1,"description":"Rule 1","selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
				{"rulePriority":2,"description":"Rule 2","selection":{"tagStatus":"tagged","tagPrefixList":["beta"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
			images: multiRepo,
			want:   map[string]int{"A": 1},
		},
		{
			name: "multiple rules, example A (patterns)",
			policy: `{"rules":[{"rulePriority":1,"description":"Rule 1","selection":{"tagStatus":"tagged","tagPatternList":["prod*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
				{"rulePriority":2,"description":"Rule 2","selection":{"tagStatus":"tagged","tagPatternList":["beta*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
			images: multiRepo,
			want:   map[string]int{"A": 1},
		},
		{
			name: "multiple rules, example B (priorities swapped)",
			policy: `{"rules":[{"rulePriority":1,"description":"Rule 1","selection":{"tagStatus":"tagged","tagPatternList":["beta*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
				{"rulePriority":2,"description":"Rule 2","selection":{"tagStatus":"tagged","tagPatternList":["prod*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
			images: multiRepo,
			want:   map[string]int{"A": 1, "B": 1},
		},
		{
			name: "multiple tags in a single rule, example A",
			policy: `{"rules":[{"rulePriority":1,"description":"Rule 1","selection":{"tagStatus":"tagged","tagPatternList":["alpha*","beta*"],
				"countType":"sinceImagePushed","countNumber":5,"countUnit":"days"},"action":{"type":"expire"}}]}`,
			images: alphaBeta,
			want:   map[string]int{"C": 1},
		},
		{
			name: "multiple tags in a single rule, example B (tags are not exclusive)",
			policy: `{"rules":[{"rulePriority":1,"description":"Rule 1","selection":{"tagStatus":"tagged","tagPrefixList":["alpha","beta"],
				"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
			images: notExclusive,
			want:   map[string]int{"A": 1, "B": 1},
		},
		{
			name: "rules combined: untagged after 14 days, prod kept to 1, everything else kept to 2",
			policy: `{"rules":[{"rulePriority":10,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}},
				{"rulePriority":20,"selection":{"tagStatus":"tagged","tagPatternList":["prod-*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
				{"rulePriority":30,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}`,
			images: []Image{img("u-old", 20), img("u-new", 1), img("prod1", 9, "prod-1"), img("prod2", 8, "prod-2"),
				img("dev1", 7, "dev-1"), img("dev2", 6, "dev-2"), img("dev3", 5, "dev-3")},
			// The any rule keeps the 2 newest of all seven (u-new, dev3) and marks the rest, but
			// images matched by the untagged and prod rules are theirs to expire or keep.
			want: map[string]int{"u-old": 10, "prod1": 20, "dev1": 30, "dev2": 30},
		},
		{
			name: "tagPatternList wildcards",
			policy: `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["*test*1*2*3"],
				"countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}`,
			images: []Image{img("match", 2, "my-test-1-2-3"), img("match-tight", 2, "test123"), img("suffix-missing", 2, "test1234"), img("young", 0, "test123")},
			want:   map[string]int{"match": 1, "match-tight": 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			var order []time.Time
			for _, e := range Evaluate(p, tc.images, now) {
				got[strings.TrimPrefix(e.Image.Digest, "sha256:")] = e.RulePriority
				order = append(order, e.Image.PushedAt)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("expired %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("expired %v, want %v", got, tc.want)
				}
			}
			if !slices.IsSortedFunc(order, func(a, b time.Time) int { return a.Compare(b) }) {
				t.Fatalf("expiries not oldest first: %v", order)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	rule := func(sel string) string {
		return `{"rules":[{"rulePriority":1,"selection":` + sel + `,"action":{"type":"expire"}}]}`
	}
	tests := []struct{ name, policy, reason string }{
		{"not JSON", `{"rules":`, "Could not map policyString into LifecyclePolicy."},
		{"trailing data", `{"rules":[]} {}`, "Could not map policyString into LifecyclePolicy."},
		{"no rules", `{}`, `object has missing required properties (["rules"])`},
		{"empty rules", `{"rules":[]}`, "array is too short"},
		{"unknown member", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"},"x":1}]}`,
			`object instance has properties which are not allowed by the schema: (["x"])`},
		{"priority not an integer", `{"rules":[{"rulePriority":"1","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
			`instance type (string) does not match any allowed primitive type (allowed: ["integer"])`},
		{"priority zero", `{"rules":[{"rulePriority":0,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
			"numeric instance is lower than the required minimum (minimum: 1, found: 0)"},
		{"count zero", rule(`{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":0}`), "lower than the required minimum"},
		{"bad tag status", rule(`{"tagStatus":"all","countType":"imageCountMoreThan","countNumber":1}`), `instance value ("all") not found in enum`},
		{"unit with a count", rule(`{"tagStatus":"any","countType":"imageCountMoreThan","countUnit":"days","countNumber":1}`), "matched 0 out of 2"},
		{"age without a unit", rule(`{"tagStatus":"any","countType":"sinceImagePushed","countNumber":1}`), "matched 0 out of 2"},
		{"bad unit", rule(`{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"hours","countNumber":1}`), `instance value ("hours") not found`},
		{"unsupported count type", rule(`{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":1}`), `instance value ("sinceImagePulled") not found`},
		{"tagged without a list", rule(`{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1}`), "tagPrefixList or tagPatternList must be specified"},
		{"tagged with an empty list", rule(`{"tagStatus":"tagged","tagPrefixList":[],"countType":"imageCountMoreThan","countNumber":1}`), "must not be empty"},
		{"both lists", rule(`{"tagStatus":"tagged","tagPrefixList":["a"],"tagPatternList":["a*"],"countType":"imageCountMoreThan","countNumber":1}`), "cannot both be specified"},
		{"untagged with a list", rule(`{"tagStatus":"untagged","tagPrefixList":["a"],"countType":"imageCountMoreThan","countNumber":1}`), "only allowed when tagStatus is tagged"},
		{"five wildcards", rule(`{"tagStatus":"tagged","tagPatternList":["test*1*2*3*4*5"],"countType":"imageCountMoreThan","countNumber":1}`), "more than 4 wildcards"},
		{"bad action", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"delete"}}]}`,
			`instance value ("delete") not found in enum`},
		{"duplicate priorities", `{"rules":[
			{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
			{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
			"Rule priorities must be unique"},
		{"any not last", `{"rules":[
			{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
			{"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
			"must have the highest rulePriority"},
		{"two untagged rules", `{"rules":[
			{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
			{"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}`,
			"Only one rule is allowed to select untagged images"},
		{"same prefixes twice", `{"rules":[
			{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["a","b"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
			{"rulePriority":2,"selection":{"tagStatus":"tagged","tagPrefixList":["b","a"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}`,
			"unique set of tag prefixes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.policy)
			var pe *Error
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse: %v, want a policy error", err)
			}
			if !strings.Contains(pe.Reason, tc.reason) {
				t.Fatalf("reason %q, want it to contain %q", pe.Reason, tc.reason)
			}
		})
	}
}

func TestParseSortsRulesByPriority(t *testing.T) {
	p, err := Parse(`{"rules":[
		{"rulePriority":9,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":3},"action":{"type":"expire"}},
		{"rulePriority":2,"description":"d","selection":{"tagStatus":"tagged","tagPatternList":["v*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rules) != 2 || p.Rules[0].Priority != 2 || p.Rules[0].Description != "d" || p.Rules[0].TagPatterns[0] != "v*" ||
		p.Rules[1].Priority != 9 || p.Rules[1].CountNumber != 3 {
		t.Fatalf("%+v", p)
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, tag string
		want         bool
	}{
		{"prod", "prod", true},
		{"prod", "prod1", false},
		{"prod*", "prod", true},
		{"prod*", "production", true},
		{"*prod", "my-prod", true},
		{"*prod", "prod-x", false},
		{"prod*repo", "prod-repo", true},
		{"prod*repo", "prodrepo", true},
		{"prod*repo", "repo-prod-repo", false},
		{"*", "", true},
		{"a*a", "a", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
		{"v*.*.*", "v1.2.3", true},
	}
	for _, tc := range tests {
		if got := Match(tc.pattern, tc.tag); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.tag, got, tc.want)
		}
	}
}
