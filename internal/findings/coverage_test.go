package findings

import (
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/scanning/policy"
)

func TestCoverageStatus(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	fresh, old := now.Add(-24*time.Hour), now.Add(-60*24*time.Hour)
	pol := policy.Policy{ScanType: policy.ScanTypeEnhanced, Rules: []policy.Rule{
		{Frequency: policy.FrequencyContinuous, Filters: []policy.Filter{{Value: "prod", Type: policy.FilterTypeWildcard}}},
		{Frequency: policy.FrequencyScanOnPush, Filters: []policy.Filter{{Value: "dev", Type: policy.FilterTypeWildcard}}}}}
	w := policy.Window{Push: 14 * 24 * time.Hour, Pull: 14 * 24 * time.Hour}
	scan := func(status, desc string) *CoverageScan { return &CoverageScan{Status: status, Description: desc} }
	for _, tc := range []struct {
		name         string
		row          CoverageRow
		code, reason string
	}{
		{"repository, continuous", CoverageRow{Repository: "prod"}, StatusCodeActive, ReasonSuccessful},
		{"repository, no rule", CoverageRow{Repository: "test"}, StatusCodeInactive, ReasonManual},
		{"image, no rule", CoverageRow{Repository: "test", Digest: "d", PushedAt: fresh, Scan: scan("ACTIVE", "")}, StatusCodeInactive, ReasonManual},
		{"image, scanned", CoverageRow{Repository: "prod", Digest: "d", PushedAt: fresh, Scan: scan("ACTIVE", "")}, StatusCodeActive, ReasonSuccessful},
		{"image, pending", CoverageRow{Repository: "prod", Digest: "d", PushedAt: fresh, Scan: scan("PENDING", "")}, StatusCodeActive, ReasonPendingInitialScan},
		{"image, not scanned yet", CoverageRow{Repository: "prod", Digest: "d", PushedAt: fresh}, StatusCodeActive, ReasonPendingInitialScan},
		{"image, scan on push", CoverageRow{Repository: "dev", Digest: "d", PushedAt: fresh, Scan: scan("COMPLETE", "")}, StatusCodeInactive, ReasonScanOnPush},
		{"image, out of the window", CoverageRow{Repository: "prod", Digest: "d", PushedAt: old, Scan: scan("ACTIVE", "")}, StatusCodeInactive, ReasonExpired},
		{"image, out of the push window, pulled lately", CoverageRow{Repository: "prod", Digest: "d", PushedAt: old, LastPulledAt: fresh, Scan: scan("ACTIVE", "")},
			StatusCodeActive, ReasonSuccessful},
		{"image, expired", CoverageRow{Repository: "prod", Digest: "d", PushedAt: fresh, Scan: scan("SCAN_ELIGIBILITY_EXPIRED", "")}, StatusCodeInactive, ReasonExpired},
		{"image, unreadable", CoverageRow{Repository: "prod", Digest: "d", PushedAt: fresh, Scan: scan("FAILED", "UnsupportedImageError: Layer x is corrupt")},
			StatusCodeInactive, ReasonUnsupportedMedia},
		{"image, failed", CoverageRow{Repository: "prod", Digest: "d", PushedAt: fresh, Scan: scan("FAILED", "The scan failed: internal error (id 1)")},
			StatusCodeInactive, ReasonInternalError},
		{"image, nothing found", CoverageRow{Repository: "prod", Digest: "d", PushedAt: fresh, Scan: &CoverageScan{Status: "ACTIVE", NoPackages: true}},
			StatusCodeInactive, ReasonUnsupportedOS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, reason, _ := coverageStatus(pol, w, now, tc.row)
			if code != tc.code || reason != tc.reason {
				t.Errorf("%s %s, want %s %s", code, reason, tc.code, tc.reason)
			}
		})
	}
}

func TestCoverageCriteria(t *testing.T) {
	r := CoveredResource{Row: CoverageRow{Repository: "prod", Digest: "d", Tags: []string{"1.0", "latest"}}, ResourceType: ResourceImage,
		StatusCode: StatusCodeActive, Reason: ReasonSuccessful}
	eq := func(v string) StringFilter { return StringFilter{Comparison: Equals, Value: v} }
	ne := func(v string) StringFilter { return StringFilter{Comparison: NotEquals, Value: v} }
	for _, tc := range []struct {
		name string
		c    CoverageCriteria
		want bool
	}{
		{"none", CoverageCriteria{}, true},
		{"status code", CoverageCriteria{Strings: map[Field][]StringFilter{CovScanStatusCode: {eq("ACTIVE")}}}, true},
		{"other reason", CoverageCriteria{Strings: map[Field][]StringFilter{CovScanStatusReason: {eq(ReasonManual)}}}, false},
		{"a tag", CoverageCriteria{Strings: map[Field][]StringFilter{CovImageTags: {eq("latest")}}}, true},
		{"not a tag it has", CoverageCriteria{Strings: map[Field][]StringFilter{CovImageTags: {ne("latest")}}}, false},
		{"repository, either", CoverageCriteria{Strings: map[Field][]StringFilter{CovRepositoryName: {eq("dev"), eq("prod")}}}, true},
		{"account", CoverageCriteria{Strings: map[Field][]StringFilter{CovAccountID: {eq("123456789012")}}}, true},
		{"never pulled", CoverageCriteria{Dates: map[Field][]DateFilter{CovImagePulledAt: {{}}}}, false},
		{"lambda", CoverageCriteria{Strings: map[Field][]StringFilter{"lambdaFunctionName": {eq("f")}}}, false},
		{"not lambda", CoverageCriteria{Strings: map[Field][]StringFilter{"lambdaFunctionName": {ne("f")}}}, true},
	} {
		if got := tc.c.matches(r, "123456789012"); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if err := ValidateCoverage("filterCriteria", CoverageCriteria{Strings: map[Field][]StringFilter{CovRepositoryName: {{Comparison: Prefix, Value: "p"}}}}); err == nil {
		t.Error("coverage filters have no PREFIX")
	}
}

func TestRescanWindow(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{336 * time.Hour, "DAYS_14"}, {time.Hour, "DAYS_14"}, {20 * 24 * time.Hour, "DAYS_30"}, {400 * 24 * time.Hour, "LIFETIME"}} {
		if got := policy.RescanFromDuration(tc.d).Duration; got != tc.want {
			t.Errorf("%s: %s, want %s", tc.d, got, tc.want)
		}
	}
	w := policy.Rescan{Duration: "LIFETIME", PullDateDuration: "DAYS_30"}.Window()
	now := time.Now()
	if !w.Covers(now.Add(-1000*24*time.Hour), time.Time{}, now) {
		t.Error("LIFETIME covers every image")
	}
	w = policy.Rescan{Duration: "DAYS_14", PullDateDuration: "DAYS_30"}.Window()
	if w.Covers(now.Add(-20*24*time.Hour), time.Time{}, now) || !w.Covers(now.Add(-20*24*time.Hour), now.Add(-29*24*time.Hour), now) {
		t.Error("the pull-date window")
	}
}
