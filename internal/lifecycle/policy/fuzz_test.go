package policy

import (
	"errors"
	"testing"
	"time"
)

// FuzzParse feeds Parse untrusted policy text (it arrives through PutLifecyclePolicy): it must
// not panic, must refuse with a policy error or return a policy whose rules satisfy ECR's
// constraints, and evaluating that policy must expire each image at most once.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`,
		`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["prod*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
			{"rulePriority":2,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}`,
		`{"rules":[{"rulePriority":1.0,"selection":{"tagStatus":"tagged","tagPrefixList":["a","b"],"countType":"imageCountMoreThan","countNumber":1e0},"action":{"type":"expire"}}]}`,
		`{"rules":[{}]}`, `[]`, `null`, `{"rules":[{"rulePriority":99999999999999999999}]}`,
	} {
		f.Add(seed)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	images := []Image{
		{Digest: "a", PushedAt: now.Add(-40 * 24 * time.Hour)},
		{Digest: "b", Tags: []string{"prod-1", "v1"}, PushedAt: now.Add(-20 * 24 * time.Hour)},
		{Digest: "c", Tags: []string{"a", "b"}, PushedAt: now.Add(-time.Hour)},
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := Parse(text)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not a policy error", err)
			}
			return
		}
		seen := map[int]bool{}
		for i, r := range p.Rules {
			if r.Priority < 1 || seen[r.Priority] || r.CountNumber < 1 || (i > 0 && p.Rules[i-1].Priority > r.Priority) {
				t.Fatalf("accepted %+v", p)
			}
			seen[r.Priority] = true
		}
		expired := map[string]bool{}
		for _, e := range Evaluate(p, images, now) {
			if expired[e.Image.Digest] || !seen[e.RulePriority] {
				t.Fatalf("expiry %+v", e)
			}
			expired[e.Image.Digest] = true
		}
	})
}
