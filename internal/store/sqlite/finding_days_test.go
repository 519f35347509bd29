package sqlite

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// TestFindingDays checks the days read back from finding_days: five findings first observed on
// the fixture's day, one of them closed the next day, and ranges around them.
func TestFindingDays(t *testing.T) {
	ctx := context.Background()
	fx := newQueryFixture(t)
	db := fx.db
	db.SetFindingContext(FindingContext{Account: testOrigin.Account, Region: testOrigin.Region})
	closedAt := fx.t0.Add(24 * time.Hour)
	target := store.ScanTarget{Repository: "prod/web", Digest: fakeDigest("2"), ScanType: policy.ScanTypeEnhanced}
	if err := db.ApplyScans(ctx, []store.ScanTarget{target}, func(st store.ScanState) (store.ScanUpdate, error) {
		if err := loadAll(ctx, &st); err != nil {
			return store.ScanUpdate{}, err
		}
		fs := slices.Clone(st.Findings) // the state read stays as read: the store compares with it
		for i := range fs {
			fs[i].LastObservedAt = closedAt
			if fs[i].VulnerabilityID == "CVE-2023-5678" {
				fs[i].Status, fs[i].UpdatedAt = "CLOSED", closedAt
			}
		}
		return store.ScanUpdate{Findings: fs}, nil
	}); err != nil {
		t.Fatal(err)
	}
	day := fx.t0.Truncate(24 * time.Hour)
	tests := []struct {
		name string
		from time.Time
		days int
		want string // day:opened/closed ...
	}{
		{"both days", day, 2, "2026-11-01:5/0 2026-11-02:0/1"},
		{"from mid-day", fx.t0, 1, "2026-11-01:5/0"},
		{"days before", day.AddDate(0, 0, -2), 3, "2026-10-30:0/0 2026-10-31:0/0 2026-11-01:5/0"},
		{"the closing day only", closedAt, 1, "2026-11-02:0/1"},
		{"later", day.AddDate(0, 0, 5), 2, "2026-11-06:0/0 2026-11-07:0/0"},
		{"no days", day, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.FindingDays(ctx, tc.from, tc.days)
			if err != nil {
				t.Fatal(err)
			}
			s := ""
			for i, d := range got {
				if i > 0 {
					s += " "
				}
				s += fmt.Sprintf("%s:%d/%d", d.Day.Format("2006-01-02"), d.Opened, d.Closed)
			}
			if s != tc.want {
				t.Errorf("got %q, want %q", s, tc.want)
			}
		})
	}
}

// TestActiveFindingCounts checks the per-image severity counts read for image summaries.
func TestActiveFindingCounts(t *testing.T) {
	ctx := context.Background()
	fx := newQueryFixture(t)
	tests := []struct {
		name, repo, scanType string
		digests              []string
		want                 string
	}{
		{"two severities", "prod/neo4j", policy.ScanTypeEnhanced, []string{fakeDigest("1")}, fakeDigest("1") + ":map[CRITICAL:1 MEDIUM:1]"},
		{"unrated", "prod/web", policy.ScanTypeEnhanced, []string{fakeDigest("2"), fakeDigest("9")}, fakeDigest("2") + ":map[MEDIUM:1 UNDEFINED:1]"},
		{"digest of another repository", "prod/web", policy.ScanTypeEnhanced, []string{fakeDigest("1")}, ""},
		{"other scan type", "prod/neo4j", policy.ScanTypeBasic, []string{fakeDigest("1")}, ""},
		{"no digests", "prod/neo4j", policy.ScanTypeEnhanced, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := fx.db.ActiveFindingCounts(ctx, tc.repo, tc.digests, tc.scanType)
			if err != nil {
				t.Fatal(err)
			}
			s := ""
			for _, d := range tc.digests {
				if c, ok := got[d]; ok {
					s += fmt.Sprintf("%s:%v", d, c)
				}
			}
			if s != tc.want || len(got) > len(tc.digests) {
				t.Errorf("got %q (%d digests), want %q", s, len(got), tc.want)
			}
		})
	}
}

// TestRepositoryFindingCounts checks the per-repository sums of the per-image counts.
func TestRepositoryFindingCounts(t *testing.T) {
	ctx := context.Background()
	fx := newQueryFixture(t)
	tests := []struct {
		name, scanType string
		want           string
	}{
		{"enhanced", policy.ScanTypeEnhanced, "map[prod/neo4j:map[CRITICAL:1 MEDIUM:1] prod/web:map[MEDIUM:1 UNDEFINED:1] test/web:map[CRITICAL:1]]"},
		{"basic: none", policy.ScanTypeBasic, "map[]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := fx.db.RepositoryFindingCounts(ctx, tc.scanType)
			if err != nil {
				t.Fatal(err)
			}
			if s := fmt.Sprint(got); s != tc.want {
				t.Errorf("got %s, want %s", s, tc.want)
			}
		})
	}
}
