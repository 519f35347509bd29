package scan_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/testserver"
)

const (
	log4jLayer = "sha256:77241fdad4f9d386d414bf64582da44435c14b77852fc80aedf7bbfa927e7857"
	log4jPath  = "/var/lib/neo4j/lib/log4j-core-2.14.1.jar"
	log4jCore  = "org.apache.logging.log4j:log4j-core"
)

// miniRecords is the hand-checkable OSV set copied into the project (with its attribution).
func miniRecords(t *testing.T, ecosystem string) string {
	t.Helper()
	return testfiles.Path(t, "osv-mini", ecosystem, "all.zip")
}

type enhancedFinding struct {
	FindingArn                  string  `json:"findingArn"`
	Severity                    string  `json:"severity"`
	Status                      string  `json:"status"`
	Score                       float64 `json:"score"`
	Title                       string  `json:"title"`
	FixAvailable                string  `json:"fixAvailable"`
	PackageVulnerabilityDetails struct {
		VulnerabilityID    string `json:"vulnerabilityId"`
		VulnerablePackages []struct {
			Name            string `json:"name"`
			Version         string `json:"version"`
			FilePath        string `json:"filePath"`
			SourceLayerHash string `json:"sourceLayerHash"`
			FixedInVersion  string `json:"fixedInVersion"`
			PackageManager  string `json:"packageManager"`
		} `json:"vulnerablePackages"`
	} `json:"packageVulnerabilityDetails"`
}

func findEnhanced(fs []enhancedFinding, id string) *enhancedFinding {
	for i := range fs {
		if fs[i].PackageVulnerabilityDetails.VulnerabilityID == id {
			return &fs[i]
		}
	}
	return nil
}

// TestLog4ShellInScanJSON is the example everyone tries first: CVE-2021-44228 in the
// neo4j-like image, in the jar under its lib folder, attributed to the layer that added it.
func TestLog4ShellInScanJSON(t *testing.T) {
	data := t.TempDir()
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", data, "--log-level", "warn", miniRecords(t, "Maven"))
	image := testfiles.Path(t, "images", "debian-family.tar") + ":neo4j-like"
	out := testserver.Run(t, ladingBin, "scan", "--data-dir", data, "--log-level", "warn", "--max-db-age", "0", "--format", "json", image)
	var got findings
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("scan --format json is not JSON: %v\n%s", err, out)
	}
	f := findEnhanced(got.ImageScanFindings.EnhancedFindings, "CVE-2021-44228")
	if f == nil {
		t.Fatalf("CVE-2021-44228 not reported:\n%s", out)
	}
	if f.Severity != "CRITICAL" || f.Status != "ACTIVE" || f.Score != 10 || f.FixAvailable != "YES" {
		t.Errorf("finding %+v", f)
	}
	if len(f.PackageVulnerabilityDetails.VulnerablePackages) != 1 {
		t.Fatalf("packages %+v", f.PackageVulnerabilityDetails.VulnerablePackages)
	}
	p := f.PackageVulnerabilityDetails.VulnerablePackages[0]
	if p.Name != log4jCore || p.Version != "2.14.1" || p.FilePath != log4jPath || p.SourceLayerHash != log4jLayer ||
		p.FixedInVersion != "2.15.0" || p.PackageManager != "JAR" {
		t.Errorf("vulnerable package %+v", p)
	}
	if got.ImageScanFindings.FindingSeverityCounts["CRITICAL"] < 2 || got.ImageScanFindings.FindingSeverityCounts["LOW"] != 0 {
		t.Errorf("counts %v", got.ImageScanFindings.FindingSeverityCounts)
	}
	if _, zero := got.ImageScanFindings.FindingSeverityCounts["INFORMATIONAL"]; zero {
		t.Error("zero buckets must be left out")
	}
	if got.RepositoryName != "neo4j-like" || got.ImageScanStatus.Status != "COMPLETE" {
		t.Errorf("repository %q status %q", got.RepositoryName, got.ImageScanStatus.Status)
	}

	// The fixed jar of the same family is not reported, and OS-only scanning (BASIC) does not
	// look at jars at all.
	basic := testserver.Run(t, ladingBin, "scan", "--data-dir", data, "--log-level", "warn", "--max-db-age", "0", "--format", "json", "--scanners", "os", image)
	if strings.Contains(basic, "CVE-2021-44228") {
		t.Error("--scanners os reported a language package")
	}
}

func TestScanExitCodeAndFormats(t *testing.T) {
	data := t.TempDir()
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", data, "--log-level", "warn", miniRecords(t, "Maven"))
	image := testfiles.Path(t, "images", "debian-family.tar") + ":neo4j-like"
	cmd := exec.Command(ladingBin, "scan", "--data-dir", data, "--log-level", "warn", "--max-db-age", "0", "--exit-code", "1", "--fail-on", "critical", image)
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errorsAs(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1", err)
	}
	if !strings.Contains(string(out), "CVE-2021-44228") || !strings.Contains(string(out), log4jPath) {
		t.Errorf("table lacks the finding:\n%s", out)
	}
	// Only LOW and below: none of those, so no failure.
	if _, err := testserver.RunErr(ladingBin, "scan", "--data-dir", data, "--log-level", "warn", "--max-db-age", "0", "--exit-code", "1", "--severity", "LOW", image); err != nil {
		t.Fatalf("--severity LOW: %v", err)
	}
	for _, tc := range []struct{ format, want string }{
		{"sarif", `"ruleId": "CVE-2021-44228"`},
		{"cyclonedx", `"id": "CVE-2021-44228"`},
		{"spdx", `"SPDXID": "SPDXRef-DOCUMENT"`},
	} {
		out := testserver.Run(t, ladingBin, "scan", "--data-dir", data, "--log-level", "warn", "--max-db-age", "0", "--format", tc.format, image)
		var doc map[string]any
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%s is not JSON: %v", tc.format, err)
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("%s lacks %s", tc.format, tc.want)
		}
	}
	if !strings.Contains(testserver.Run(t, ladingBin, "scan", "--data-dir", data, "--log-level", "warn", "--max-db-age", "0", "--format", "spdx", image), "log4j-core") {
		t.Error("SPDX lacks the jar's package")
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

// TestHostileImage: the hostile image is scanned without a crash, with bounded memory, and each
// bad entry is reported.
func TestHostileImage(t *testing.T) {
	data := t.TempDir()
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", data, "--log-level", "warn", miniRecords(t, "Maven"))
	image := testfiles.Path(t, "images", "hostile.tar")
	cmd := exec.Command(ladingBin, "scan", "--data-dir", data, "--log-level", "warn", "--max-db-age", "0", image)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scan of the hostile image failed: %v\n%s", err, out)
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB
	t.Logf("peak RSS %d MiB", rss>>10)
	// The image expands to tens of GiB; a scanner that holds what it reads would blow far past this.
	if rss > 1<<20 {
		t.Errorf("peak RSS %d MiB", rss>>10)
	}
	text := string(out)
	for _, want := range []string{
		"../../../../etc/passwd", "app/../../escape.txt", "/app/link-up", "/app/hardlink-escape", // traversal
		"/etc/os-release",                                                                                                        // the escaping os-release link
		"/app/lib/zbsm.jar", "400mb_jar_in_jar.jar", "notarealjar.jar", "truncated-log4j-core-2.15.0.jar", "truncated-go-binary", // archives
		"/var/lib/dpkg/status", "/lib/apk/db/installed", "evil-1.0.dist-info/METADATA", "node_modules/evil/package.json", // metadata
		"/dev/evil-null", "/tmp/evil-fifo", // odd entries
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the report does not mention %q", want)
		}
	}
	// Log4j twenty jars deep is still found.
	if !strings.Contains(text, "CVE-2021-44228") || !strings.Contains(text, "nested-20.jar") {
		t.Errorf("log4j in nested-20.jar not reported:\n%s", text)
	}
}

func TestDBCommands(t *testing.T) {
	data := t.TempDir()
	out := testserver.Run(t, ladingBin, "db", "import", "--data-dir", data, "--log-level", "warn", miniRecords(t, "Maven"), miniRecords(t, "npm"))
	if !strings.Contains(out, "database version 1") {
		t.Fatalf("import: %s", out)
	}
	var status struct {
		Version    int64 `json:"version"`
		Ecosystems []struct {
			Ecosystem string `json:"ecosystem"`
			Records   int    `json:"records"`
		} `json:"ecosystems"`
	}
	if err := json.Unmarshal([]byte(testserver.Run(t, ladingBin, "db", "status", "--data-dir", data, "--json")), &status); err != nil {
		t.Fatal(err)
	}
	if status.Version != 1 || len(status.Ecosystems) != 2 {
		t.Fatalf("status %+v", status)
	}
	var vulns []struct {
		ID              string   `json:"id"`
		Aliases         []string `json:"aliases"`
		VulnerabilityID string   `json:"vulnerabilityId"`
		Severity        string   `json:"severity"`
		CVSSScore       *float64 `json:"cvssScore"`
		FixedVersions   []string `json:"fixedVersions"`
	}
	raw := testserver.Run(t, ladingBin, "db", "query", "--data-dir", data, "--json", "--ecosystem", "Maven", "--package", log4jCore, "--version", "2.14.1")
	if err := json.Unmarshal([]byte(raw), &vulns); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range vulns {
		ids = append(ids, v.VulnerabilityID)
		if v.VulnerabilityID == "CVE-2021-44228" {
			if v.ID != "GHSA-jfh8-c2jp-5v3q" && !slices.Contains(v.Aliases, "GHSA-jfh8-c2jp-5v3q") {
				t.Errorf("GHSA id lost: %+v", v)
			}
			if v.Severity != "CRITICAL" || v.CVSSScore == nil || *v.CVSSScore != 10 || !slices.Equal(v.FixedVersions, []string{"2.15.0"}) {
				t.Errorf("%+v", v)
			}
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"CVE-2021-44228", "CVE-2021-44832", "CVE-2021-45046", "CVE-2021-45105"}) {
		t.Errorf("vulnerabilities %v", ids)
	}
	raw = testserver.Run(t, ladingBin, "db", "query", "--data-dir", data, "--json", "--ecosystem", "Maven", "--package", log4jCore, "--version", "2.17.1")
	if strings.TrimSpace(raw) != "[]" {
		t.Errorf("2.17.1 is fixed, got %s", raw)
	}
	// A corrupt archive fails with a clear message and leaves version 1 usable.
	bad := filepath.Join(t.TempDir(), "all.zip")
	if err := writeFile(bad, "not a zip"); err != nil {
		t.Fatal(err)
	}
	if _, err := testserver.RunErr(ladingBin, "db", "import", "--data-dir", data, bad); err == nil || !strings.Contains(err.Error(), "unchanged") {
		t.Fatalf("corrupt import: %v", err)
	}
	if !strings.Contains(testserver.Run(t, ladingBin, "db", "status", "--data-dir", data), "version 1") {
		t.Error("version changed after a failed import")
	}
}

// TestScanGzipDecoders: the same image gives the same findings whichever decoder inflates its
// layers (with igzip, neo4j-like's Debian and apt layers, deflated, go through it; its layer of
// jars, which gzip barely shrinks, stays with Go's decoder), and a decoder the scan does not
// know is a flag error (exit 3), not a scan with another one.
func TestScanGzipDecoders(t *testing.T) {
	testserver.Tool(t, "igzip")
	data := t.TempDir()
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", data, "--log-level", "warn", miniRecords(t, "Maven"))
	image := testfiles.Path(t, "images", "debian-family.tar") + ":neo4j-like"
	found := map[string][]string{}
	for _, decoder := range []string{"go", "igzip"} {
		out := testserver.Run(t, ladingBin, "scan", "--data-dir", data, "--log-level", "warn", "--max-db-age", "0",
			"--gzip-decoder", decoder, "--format", "json", image)
		var got findings
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%s: not JSON: %v", decoder, err)
		}
		for _, f := range got.ImageScanFindings.EnhancedFindings {
			for _, p := range f.PackageVulnerabilityDetails.VulnerablePackages {
				found[decoder] = append(found[decoder], strings.Join([]string{f.PackageVulnerabilityDetails.VulnerabilityID,
					p.Name, p.Version, p.FilePath, p.SourceLayerHash}, " "))
			}
		}
		slices.Sort(found[decoder])
		if !slices.Contains(found[decoder], strings.Join([]string{"CVE-2021-44228", log4jCore, "2.14.1", log4jPath, log4jLayer}, " ")) {
			t.Errorf("%s: Log4Shell not found in %s: %v", decoder, log4jPath, found[decoder])
		}
	}
	if !slices.Equal(found["go"], found["igzip"]) {
		t.Errorf("findings differ:\ngo:    %v\nigzip: %v", found["go"], found["igzip"])
	}
	cmd := exec.Command(ladingBin, "scan", "--data-dir", data, "--max-db-age", "0", "--gzip-decoder", "pigz", image)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errorsAs(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(string(out), "want one of auto, go, igzip") {
		t.Errorf("--gzip-decoder pigz: %v\n%s", err, out)
	}
}
