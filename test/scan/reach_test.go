package scan_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/testserver"
)

// TestScanGoReachability scans go-app's binaries against osv-mini's Go advisories: textnet
// calls x/text's language.Parse and x/net's html.Parse (PRESENT) and links neither x/net's
// http2 nor net/http (ABSENT); --reachable-only hides the findings whose every package is
// ABSENT, and says how many.
func TestScanGoReachability(t *testing.T) {
	data := t.TempDir()
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", data, "--log-level", "warn", miniRecords(t, "Go"))
	image := testfiles.Path(t, "images", "go-app.tar")
	want := map[string]string{
		"CVE-2021-38561": "PRESENT", // x/text language.Parse
		"CVE-2022-32149": "PRESENT", // x/text language.ParseAcceptLanguage
		"CVE-2024-45338": "PRESENT", // x/net html.Parse
		"CVE-2022-27664": "ABSENT",  // x/net http2 Server.ServeConn
		"CVE-2023-39325": "ABSENT",
		"CVE-2023-45288": "ABSENT", // x/net http2 and stdlib net/http
	}

	raw, _, code := scanRun(t, "--data-dir", data, "--log-level", "warn", "--max-db-age", "0", "--format", "json", image)
	var got struct {
		ImageScanFindings struct {
			EnhancedFindings []struct {
				PackageVulnerabilityDetails struct {
					VulnerabilityID    string `json:"vulnerabilityId"`
					VulnerablePackages []struct {
						Name         string `json:"name"`
						Reachability string `json:"reachability"`
					} `json:"vulnerablePackages"`
				} `json:"packageVulnerabilityDetails"`
			} `json:"enhancedFindings"`
		} `json:"imageScanFindings"`
	}
	if err := json.Unmarshal([]byte(raw), &got); err != nil || code != 0 {
		t.Fatalf("exit %d, %v\n%s", code, err, raw)
	}
	seen := map[string]bool{}
	for _, f := range got.ImageScanFindings.EnhancedFindings {
		d := f.PackageVulnerabilityDetails
		seen[d.VulnerabilityID] = true
		for _, p := range d.VulnerablePackages {
			if p.Reachability != want[d.VulnerabilityID] {
				t.Errorf("%s %s: reachability %q, want %q", d.VulnerabilityID, p.Name, p.Reachability, want[d.VulnerabilityID])
			}
		}
	}
	if len(seen) != len(want) {
		t.Errorf("findings %v, want %v", seen, want)
	}

	table, _, code := scanRun(t, "--data-dir", data, "--log-level", "warn", "--max-db-age", "0", "--reachable-only", image)
	if code != 0 || !strings.Contains(table, ", 3 findings, 3 unreachable hidden\n") || !strings.Contains(table, "REACHABILITY") {
		t.Fatalf("exit %d:\n%s", code, table)
	}
	for id, r := range want {
		if shown := strings.Contains(table, id+" "); shown != (r == "PRESENT") {
			t.Errorf("--reachable-only: %s (%s) shown %v:\n%s", id, r, shown, table)
		}
	}
}
