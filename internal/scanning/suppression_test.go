package scanning

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/suppression"
)

// TestReevaluationWritesSuppressed: a finding a continuous re-evaluation creates, matching a
// SUPPRESS rule made before, is SUPPRESSED from the start, and its event says so.
func TestReevaluationWritesSuppressed(t *testing.T) {
	ctx := context.Background()
	clock := time.Now().UTC().Truncate(time.Millisecond)
	r := newTestRegistry(t, continuousImages(), &clock)
	rule := suppression.Rule{ARN: "arn:aws:inspector2:eu-west-1:123456789012:owner/123456789012/filter/1", Name: "log4shell", Action: suppression.Suppress,
		Criteria: findings.Criteria{Strings: map[findings.Field][]findings.StringFilter{
			findings.VulnerabilityID:        {{Comparison: findings.Equals, Value: "CVE-2021-44228"}},
			findings.ECRImageRepositoryName: {{Comparison: findings.Equals, Value: "java/service"}},
		}}}
	if err := r.db.CreateFilter(ctx, rule, nil); err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	for _, rec := range osvMini(t) {
		recs = append(recs, rec)
	}
	if _, err := r.svc.Reevaluate(ctx, r.importRecords(t, recs...)); err != nil {
		t.Fatal(err)
	}
	var digest string
	if err := r.db.Reader().QueryRow("SELECT image_digest FROM image_scans WHERE repository = 'java/service'").Scan(&digest); err != nil {
		t.Fatal(err)
	}
	fs, err := r.db.Findings(ctx, "java/service", digest, policy.ScanTypeEnhanced)
	if err != nil {
		t.Fatal(err)
	}
	suppressed, others := 0, 0
	for _, f := range fs {
		switch {
		case f.VulnerabilityID == "CVE-2021-44228" && InspectorStatus(f) == FindingSuppressed:
			suppressed++
		case f.VulnerabilityID == "CVE-2021-44228":
			t.Errorf("CVE-2021-44228 is %s, want SUPPRESSED", InspectorStatus(f))
		case InspectorStatus(f) == FindingActive:
			others++
		}
	}
	if suppressed != 1 || others == 0 {
		t.Fatalf("%d suppressed, %d other ACTIVE findings", suppressed, others)
	}
	evs, err := r.db.ReadOutbox(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	statuses := map[string]string{}
	for _, ev := range evs {
		var d struct {
			Status  string `json:"status"`
			Details struct {
				ID string `json:"vulnerabilityId"`
			} `json:"packageVulnerabilityDetails"`
			Resources []struct {
				Details struct {
					Image struct {
						Repository string `json:"repositoryName"`
					} `json:"awsEcrContainerImage"`
				} `json:"details"`
			} `json:"resources"`
		}
		if ev.DetailType != "Inspector2 Finding" {
			continue
		}
		if err := json.Unmarshal(ev.Detail, &d); err != nil || len(d.Resources) != 1 {
			t.Fatalf("event %s: %v", ev.Detail, err)
		}
		statuses[d.Resources[0].Details.Image.Repository+" "+d.Details.ID] = d.Status
	}
	if got := statuses["java/service CVE-2021-44228"]; got != FindingSuppressed {
		t.Errorf("the event of the new finding says %q, want SUPPRESSED (events %v)", got, statuses)
	}
	if len(statuses) < 2 {
		t.Errorf("events %v: want the other findings' too", statuses)
	}
}
