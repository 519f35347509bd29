package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// fixedRescan is a rescan configuration held by the test.
type fixedRescan struct{ w policy.Window }

func (f *fixedRescan) Rescan(context.Context) (policy.Rescan, policy.Window, error) {
	return policy.Rescan{}, f.w, nil
}

// testCoverageCounts: coverage counted by the store (CoverageCounts) gives the statistics that
// deriving each image's status from its row gives, and a ListCoverage filtered by status the
// resources an unfiltered one lists with that status: every reason, in repositories of every
// frequency, under several windows.
func testCoverageCounts(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	now := time.Now()
	day := 24 * time.Hour
	if err := db.PutScanningPolicy(ctx, policy.Policy{ScanType: policy.ScanTypeEnhanced, Rules: []policy.Rule{
		{Frequency: policy.FrequencyContinuous, Filters: []policy.Filter{{Value: "cont*", Type: policy.FilterTypeWildcard}}},
		{Frequency: policy.FrequencyScanOnPush, Filters: []policy.Filter{{Value: "push*", Type: policy.FilterTypeWildcard}}},
	}}); err != nil {
		t.Fatal(err)
	}
	// Each repository gets an image in each state: a scan (status, description, inventory
	// empty or not; "" none, BASIC a basic scan only), pushed so many days ago, pulled so many
	// days ago (-1: never).
	states := []struct {
		status, description string
		empty               bool
		pushed, pulled      float64
	}{
		{"", "", false, 0, -1},
		{"", "", false, 40, -1},
		{"", "", false, 40, 1},
		{"BASIC", "", false, 1, -1},
		{"PENDING", "", false, 40, -1},
		{"IN_PROGRESS", "", false, 0, -1},
		{"FINDINGS_UNAVAILABLE", "", false, 0, -1},
		{"FAILED", "UnsupportedImageError: no layers", false, 0, -1},
		{"FAILED", "unsupportedimageerror is not the prefix", false, 0, -1},
		{"FAILED", "the scanner stopped", false, 40, -1},
		{"UNSUPPORTED_IMAGE", "", false, 0, -1},
		{"ACTIVE", "", true, 0, -1},
		{"SCAN_ELIGIBILITY_EXPIRED", "", false, 40, -1},
		{"ACTIVE", "", false, 0, -1},
		{"ACTIVE", "", false, 2, -1},
		{"ACTIVE", "", false, 5, -1},
		{"ACTIVE", "", false, 20, -1},
		{"ACTIVE", "", false, 40, 2},
		{"ACTIVE", "", false, 40, 20},
		{"ACTIVE", "", false, 400, 0.5},
	}
	n := 0
	for _, repo := range []string{"cont-a", "cont-b", "push-a", "manual", "flagged"} {
		if _, err := db.CreateRepository(ctx, store.Repository{Name: repo, ScanOnPush: repo == "flagged"}); err != nil {
			t.Fatal(err)
		}
		for _, st := range states {
			n++
			d := fakeDigest(fmt.Sprintf("%x", n))
			pushed := now.Add(-time.Duration(st.pushed * float64(day)))
			db.SetClock(func() time.Time { return pushed })
			m := manifest(repo, d)
			m.ConfigMediaType = "application/vnd.oci.image.config.v1+json"
			if _, err := db.PutManifest(ctx, m, nil, []string{fmt.Sprint("t", n)}, store.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if st.pulled >= 0 {
				if err := db.MarkPulled(ctx, m, now.Add(-time.Duration(st.pulled*float64(day)))); err != nil {
					t.Fatal(err)
				}
			}
			switch st.status {
			case "":
				continue
			case "BASIC":
				if err := db.PutImageScan(ctx, store.ImageScan{Repository: repo, Digest: d, ScanType: "BASIC", Status: "COMPLETE", UpdatedAt: pushed}); err != nil {
					t.Fatal(err)
				}
				continue
			}
			os, packages := "Debian:12", 5
			if st.empty {
				os, packages = "", 0
			}
			inv, err := db.PutImageInventory(ctx, d, "ENHANCED", "fp", os, nil, packages, []byte("x"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.PutImageScan(ctx, store.ImageScan{Repository: repo, Digest: d, ScanType: "ENHANCED", Status: st.status,
				Description: st.description, InventoryID: inv, CompletedAt: pushed, UpdatedAt: pushed}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// An index is not an image; a repository may have none.
	idx := manifest("cont-a", fakeDigest("ffff"))
	idx.MediaType = "application/vnd.oci.image.index.v1+json"
	if _, err := db.PutManifest(ctx, idx, nil, nil, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateRepository(ctx, store.Repository{Name: "cont-empty"}); err != nil {
		t.Fatal(err)
	}

	eq := func(v string) []findings.StringFilter {
		return []findings.StringFilter{{Comparison: findings.Equals, Value: v}}
	}
	crit := func(kv ...string) findings.CoverageCriteria {
		c := findings.CoverageCriteria{Strings: map[findings.Field][]findings.StringFilter{}}
		for i := 0; i < len(kv); i += 2 {
			c.Strings[findings.Field(kv[i])] = append(c.Strings[findings.Field(kv[i])], eq(kv[i+1])...)
		}
		return c
	}
	// byRows adds a filter every resource matches (no resource has that tag) which the
	// store's counts cannot answer: the statistics then come from every row.
	byRows := func(c findings.CoverageCriteria) findings.CoverageCriteria {
		out := findings.CoverageCriteria{Strings: map[findings.Field][]findings.StringFilter{
			findings.CovImageTags: {{Comparison: findings.NotEquals, Value: "no-such-tag"}}}}
		for f, l := range c.Strings {
			out.Strings[f] = l
		}
		return out
	}
	criteria := []findings.CoverageCriteria{
		crit(),
		crit("resourceType", findings.ResourceImage),
		crit("resourceType", findings.ResourceRepository),
		crit("scanStatusCode", findings.StatusCodeInactive),
		crit("scanStatusCode", findings.StatusCodeActive, "resourceType", findings.ResourceImage),
		crit("scanStatusReason", findings.ReasonExpired),
		crit("scanStatusReason", findings.ReasonPendingInitialScan, "ecrRepositoryName", "cont-b"),
		crit("ecrRepositoryName", "push-a"),
	}
	rescan := &fixedRescan{}
	cov := findings.NewCoverage(db, rescan, "123456789012", "us-east-1")
	reasons := map[string]bool{}
	for _, w := range []policy.Window{{Push: 14 * day, Pull: 14 * day}, {Push: 0, Pull: 14 * day}, {Push: 3 * day, Pull: 30 * day}, {Push: day, Pull: day}} {
		rescan.w = w
		// Every resource, as ListCoverage lists them unfiltered.
		var all []findings.CoveredResource
		in := findings.CoverageInput{Op: "T"}
		for {
			page, err := cov.List(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page.Resources...)
			if page.NextToken == "" {
				break
			}
			in.NextToken = &page.NextToken
		}
		if len(all) != 5*len(states)+6 {
			t.Fatalf("window %v: %d resources, want %d", w, len(all), 5*len(states)+6)
		}
		for _, r := range all {
			reasons[r.Reason] = true
		}
		for _, c := range criteria {
			for _, g := range append(findings.GroupKeys(), "") {
				counted, err := statistics(ctx, cov, c, g)
				if err != nil {
					t.Fatal(err)
				}
				read, err := statistics(ctx, cov, byRows(c), g)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(counted, read) {
					t.Errorf("window %v, criteria %v, by %q: counted %v, read %v", w, c.Strings, g, counted, read)
				}
			}
			// A filtered listing, a few at a time: the unfiltered listing's resources that
			// match.
			var want, got []string
			for _, r := range all {
				if coverageMatch(c, r) {
					want = append(want, r.ResourceID)
				}
			}
			three := 3
			in := findings.CoverageInput{Op: "T", Criteria: c, MaxResults: &three}
			for {
				page, err := cov.List(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range page.Resources {
					got = append(got, r.ResourceID)
				}
				if page.NextToken == "" {
					break
				}
				in.NextToken = &page.NextToken
			}
			if !slices.Equal(got, want) {
				t.Errorf("window %v, criteria %v: listed %d resources %q, want %d %q", w, c.Strings, len(got), got, len(want), want)
			}
		}
	}
	for _, r := range []string{findings.ReasonSuccessful, findings.ReasonPendingInitialScan, findings.ReasonManual, findings.ReasonScanOnPush,
		findings.ReasonUnsupportedOS, findings.ReasonUnsupportedMedia, findings.ReasonExpired, findings.ReasonInternalError} {
		if !reasons[r] {
			t.Errorf("no resource has the reason %s: the fixtures miss a case", r)
		}
	}
}

// statistics is every page of ListCoverageStatistics, the total last.
func statistics(ctx context.Context, cov *findings.Coverage, c findings.CoverageCriteria, g findings.GroupKey) ([]findings.CoverageCount, error) {
	var out []findings.CoverageCount
	in := findings.StatisticsInput{Op: "T", Criteria: c, GroupBy: g}
	for {
		page, err := cov.Statistics(ctx, in)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Groups...)
		if page.NextToken == "" {
			return append(out, findings.CoverageCount{Key: "total", Count: page.Total}), nil
		}
		in.NextToken = &page.NextToken
	}
}

// coverageMatch applies the EQUALS filters of the test's criteria to a listed resource.
func coverageMatch(c findings.CoverageCriteria, r findings.CoveredResource) bool {
	for f, list := range c.Strings {
		var v string
		switch f {
		case findings.CovResourceType:
			v = r.ResourceType
		case findings.CovScanStatusCode:
			v = r.StatusCode
		case findings.CovScanStatusReason:
			v = r.Reason
		case findings.CovRepositoryName:
			v = r.Row.Repository
		}
		if !slices.ContainsFunc(list, func(sf findings.StringFilter) bool { return sf.Value == v }) {
			return false
		}
	}
	return true
}
