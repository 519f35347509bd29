package e2e

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lading-registry/lading/internal/testserver"
)

// TestOCIConformance runs the OCI distribution-spec conformance suite with its defaults (sha512
// digests, referrers, non-distributable layers) plus upload cancel, with credentials.
func TestOCIConformance(t *testing.T) {
	runConformance(t, testserver.Serve(t, ladingBin))
}

// runConformance runs the suite against a running server.
func runConformance(t *testing.T, srv *testserver.Server) {
	t.Helper()
	bin := testserver.Tool(t, "conformance")
	dir := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+srv.Addr, "OCI_TLS=disabled",
		"OCI_REPO1=conformance/repo1", "OCI_REPO2=conformance/repo2",
		"OCI_USERNAME="+testserver.AccessKeyID, "OCI_PASSWORD="+testserver.SecretAccessKey,
		"OCI_API_BLOBS_UPLOAD_CANCEL=true",
		"OCI_RESULTS_DIR="+filepath.Join(dir, "results"), "OCI_LOG=warn")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("conformance suite failed: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "results", "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
	}
	if err := xml.Unmarshal(raw, &suites); err != nil {
		t.Fatal(err)
	}
	t.Logf("conformance: %d checks, %d failures, %d errors", suites.Tests, suites.Failures, suites.Errors)
	if suites.Tests < 800 {
		t.Errorf("only %d checks ran; expected the full suite", suites.Tests)
	}
	if suites.Failures != 0 || suites.Errors != 0 {
		t.Errorf("%d failures, %d errors", suites.Failures, suites.Errors)
	}
}
