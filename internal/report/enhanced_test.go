package report_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/report"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

type exploited []string

func (e exploited) Exploited(ids ...string) bool {
	for _, id := range ids {
		if slices.Contains(e, id) {
			return true
		}
	}
	return false
}

// TestEnhancedSeverityAndExploits: an unrated finding is UNTRIAGED in the enhanced shape (and
// its count), UNDEFINED in the basic one; a vulnerability the catalogue lists, by id or alias,
// is exploitAvailable YES.
func TestEnhancedSeverityAndExploits(t *testing.T) {
	stored := func(id, severity string, aliases ...string) store.Finding {
		d, _ := json.Marshal(scanning.Detail{Finding: match.Finding{VulnerabilityID: id, Severity: severity, Aliases: aliases,
			Packages: []match.VulnerablePackage{{Name: "p", Version: "1"}}}})
		return store.Finding{VulnerabilityID: id, Status: scanning.FindingActive, Severity: severity, Detail: d}
	}
	fs := []store.Finding{stored("GHSA-1", "UNDEFINED", "CVE-2021-44228"), stored("CVE-2", "HIGH")}
	m := store.Manifest{Repository: "r", Digest: "sha256:1"}
	for _, tc := range []struct {
		scanType, severity string
	}{{policy.ScanTypeEnhanced, "UNTRIAGED"}, {policy.ScanTypeBasic, "UNDEFINED"}} {
		out, err := report.RenderFindingsWith("123456789012", "us-east-1", store.ImageScan{ScanType: tc.scanType}, fs, m, exploited{"CVE-2021-44228"})
		if err != nil {
			t.Fatal(err)
		}
		if out.FindingSeverityCounts[tc.severity] != 1 {
			t.Errorf("%s: counts %v, want one %s", tc.scanType, out.FindingSeverityCounts, tc.severity)
		}
		if tc.scanType != policy.ScanTypeEnhanced {
			continue
		}
		got := map[string][2]string{}
		for _, f := range out.EnhancedFindings {
			got[f.PackageVulnerabilityDetails.VulnerabilityID] = [2]string{f.Severity, f.ExploitAvailable}
		}
		if got["GHSA-1"] != [2]string{"UNTRIAGED", "YES"} || got["CVE-2"] != [2]string{"HIGH", "NO"} {
			t.Errorf("enhanced findings %v", got)
		}
	}
}
