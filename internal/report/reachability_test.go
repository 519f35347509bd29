package report_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/report"
	"github.com/lading-registry/lading/internal/scanning/pipeline"
	"github.com/lading-registry/lading/internal/scanning/policy"
)

// goSample is a scan of one Go binary holding x/text's language.Parse and not MatchStrings,
// with two advisories: one naming Parse (PRESENT), one naming MatchStrings (ABSENT).
func goSample(t *testing.T) *report.Scan {
	t.Helper()
	var advs []*advisory.Advisory
	for _, r := range []string{
		`{"id":"GO-2099-0001","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2099-1001"],"affected":[{"package":{"ecosystem":"Go","name":"golang.org/x/text"},
		  "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.3.7"}]}],
		  "ecosystem_specific":{"imports":[{"path":"golang.org/x/text/language","symbols":["Parse"]}]}}]}`,
		`{"id":"GO-2099-0002","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2099-1002"],"affected":[{"package":{"ecosystem":"Go","name":"golang.org/x/text"},
		  "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.3.8"}]}],
		  "ecosystem_specific":{"imports":[{"path":"golang.org/x/text/language","symbols":["MatchStrings"]}]}}]}`,
	} {
		a, err := advisory.Parse([]byte(r))
		if err != nil {
			t.Fatal(err)
		}
		advs = append(advs, a)
	}
	inv := &inventory.Image{Packages: []inventory.Package{{Ecosystem: "Go", Name: "golang.org/x/text", Version: "0.3.5",
		PackageManager: inventory.ManagerGoBinary, Path: "/app/bin", Layer: log4jLayer,
		Symbols: &inventory.Symbols{Packages: map[string][]string{"golang.org/x/text/language": {"Parse"}}}}}}
	m := pipeline.Match(inv.Packages, advisory.BuildIndex(1, advs), nil)
	if len(m.Findings) != 2 {
		t.Fatalf("findings %+v", m.Findings)
	}
	return &report.Scan{Image: report.Image{Name: "go-app:1", ManifestDigest: digest}, ScanType: policy.ScanTypeEnhanced,
		Inventory: inv, Findings: m.Findings}
}

func TestReportsSayReachability(t *testing.T) {
	want := map[string]string{"CVE-2099-1001": match.ReachPresent, "CVE-2099-1002": match.ReachAbsent}

	table := string(write(t, "table", goSample(t)))
	if !strings.Contains(table, "FIXED IN  REACHABILITY  PATH") {
		t.Errorf("no REACHABILITY column:\n%s", table)
	}
	for line := range strings.Lines(table) {
		f := strings.Fields(line)
		if len(f) > 6 && want[f[0]] != "" && f[6] != want[f[0]] {
			t.Errorf("row %q: reachability %q, want %q", line, f[6], want[f[0]])
		}
	}
	// Without Go findings the table keeps its columns.
	if plain := string(write(t, "table", sample(t, policy.ScanTypeEnhanced))); strings.Contains(plain, "REACHABILITY") {
		t.Errorf("REACHABILITY column without Go findings:\n%s", plain)
	}

	var js struct {
		ImageScanFindings struct {
			EnhancedFindings []struct {
				PackageVulnerabilityDetails struct {
					VulnerabilityID    string `json:"vulnerabilityId"`
					VulnerablePackages []struct {
						Reachability string `json:"reachability"`
					} `json:"vulnerablePackages"`
				} `json:"packageVulnerabilityDetails"`
			} `json:"enhancedFindings"`
		} `json:"imageScanFindings"`
	}
	if err := json.Unmarshal(write(t, "json", goSample(t)), &js); err != nil {
		t.Fatal(err)
	}
	if len(js.ImageScanFindings.EnhancedFindings) != 2 {
		t.Fatalf("findings %+v", js)
	}
	for _, f := range js.ImageScanFindings.EnhancedFindings {
		d := f.PackageVulnerabilityDetails
		if len(d.VulnerablePackages) != 1 || d.VulnerablePackages[0].Reachability != want[d.VulnerabilityID] {
			t.Errorf("JSON %s: %+v", d.VulnerabilityID, d.VulnerablePackages)
		}
	}

	var sarif struct {
		Runs []struct {
			Results []struct {
				RuleID     string         `json:"ruleId"`
				Properties map[string]any `json:"properties"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(write(t, "sarif", goSample(t)), &sarif); err != nil {
		t.Fatal(err)
	}
	if len(sarif.Runs) != 1 || len(sarif.Runs[0].Results) != 2 {
		t.Fatalf("SARIF %+v", sarif)
	}
	for _, r := range sarif.Runs[0].Results {
		if r.Properties["reachability"] != want[r.RuleID] {
			t.Errorf("SARIF %s: properties %v", r.RuleID, r.Properties)
		}
	}

	s := goSample(t)
	s.Unreachable = 3
	if table := string(write(t, "table", s)); !strings.Contains(table, ", 3 unreachable hidden") {
		t.Errorf("summary does not count hidden findings:\n%s", table)
	}
}
