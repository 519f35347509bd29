package sqlite

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/pullgate"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/suppression"
)

func TestBlockingFindings(t *testing.T) {
	ctx := context.Background()
	fx := newQueryFixture(t)
	db := fx.db
	later := fx.t0.Add(time.Hour)
	for _, tc := range []struct {
		name     string
		rank     int
		observed time.Time
		want     []string
	}{
		{"critical", pullgate.Rank("CRITICAL"), later, []string{"CVE-2021-44228"}},
		{"medium and above, most severe first", pullgate.Rank("MEDIUM"), later, []string{"CVE-2021-44228", "CVE-2023-5678"}},
		{"observed too recently", pullgate.Rank("LOW"), fx.t0.Add(-time.Second), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.BlockingFindings(ctx, "prod/neo4j", fakeDigest("1"), policy.ScanTypeEnhanced, tc.rank, tc.observed)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	// A suppressed finding does not block.
	db.SetFindingContext(FindingContext{Account: testOrigin.Account, Region: testOrigin.Region})
	rule := suppression.Rule{ARN: "arn:r", Name: "r", Action: suppression.Suppress, Criteria: strs(findings.VulnerabilityID, sf(findings.Equals, "CVE-2021-44228"))}
	if err := db.CreateFilter(ctx, rule, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := db.BlockingFindings(ctx, "prod/neo4j", fakeDigest("1"), policy.ScanTypeEnhanced, pullgate.Rank("CRITICAL"), later); err != nil || len(got) != 0 {
		t.Errorf("with the finding suppressed: %v, %v", got, err)
	}
}
