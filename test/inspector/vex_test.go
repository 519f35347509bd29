package inspector_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vexDoc is an OpenVEX document with one statement about Log4Shell in the seed image.
func vexDoc(t *testing.T, addr, digest, status, extra, timestamp string) string {
	t.Helper()
	hex := strings.TrimPrefix(digest, "sha256:")
	doc := fmt.Sprintf(`{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.com/vex/neo4j", "author": "Security team",
  "timestamp": %q, "version": 1,
  "statements": [{"vulnerability": {"name": %q},
    "products": [{"@id": "pkg:oci/neo4j-like@sha256%%3A%s?repository_url=%s/%s"}],
    "status": %q%s}]}`, timestamp, log4shell, hex, addr, repo, status, extra)
	path := filepath.Join(t.TempDir(), "neo4j.openvex.json")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestVEXImport: a not_affected statement about the seed image suppresses its Log4Shell
// finding with the statement's justification as the rule's reason; importing again updates the
// rule; a later affected statement removes it.
func TestVEXImport(t *testing.T) {
	s := newStory(t)
	images := s.aws(t, "ecr", "describe-images", "--repository-name", repo, "--image-ids", "imageTag=4.4.0")
	digest, _ := images["imageDetails"].([]any)[0].(map[string]any)["imageDigest"].(string)
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("describe-images %v", images)
	}
	status := func() string {
		fs := cliFindings(t, s.aws(t, "inspector2", "list-findings", "--filter-criteria",
			`{"vulnerabilityId":[{"comparison":"EQUALS","value":"`+log4shell+`"}]}`))
		if len(fs) != 1 {
			t.Fatalf("findings of %s: %v", log4shell, fs)
		}
		return fs[0]["status"].(string)
	}
	notAffected := vexDoc(t, s.srv.Addr, digest, "not_affected", `, "justification": "vulnerable_code_not_in_execute_path"`, "2026-11-01T00:00:00Z")
	out := s.srv.RunStore(t, "vex", "import", notAffected)
	if !strings.HasPrefix(out, "created\tvex-") {
		t.Fatalf("vex import: %s", out)
	}
	if got := status(); got != "SUPPRESSED" {
		t.Errorf("after vex import %s is %s, want SUPPRESSED", log4shell, got)
	}
	filters, _ := s.aws(t, "inspector2", "list-filters")["filters"].([]any)
	if len(filters) != 1 || !strings.Contains(filters[0].(map[string]any)["reason"].(string), "vulnerable_code_not_in_execute_path") {
		t.Errorf("filters %v", filters)
	}
	if out := s.srv.RunStore(t, "vex", "import", notAffected); !strings.HasPrefix(out, "updated\tvex-") {
		t.Errorf("importing again: %s", out)
	}
	if filters, _ := s.aws(t, "inspector2", "list-filters")["filters"].([]any); len(filters) != 1 {
		t.Errorf("after a second import: %d filters, want 1", len(filters))
	}

	affected := vexDoc(t, s.srv.Addr, digest, "affected", `, "action_statement": "upgrade log4j"`, "2026-11-02T00:00:00Z")
	if out := s.srv.RunStore(t, "vex", "import", notAffected, affected); !strings.HasPrefix(out, "deleted\tvex-") {
		t.Errorf("importing the affected statement: %s", out)
	}
	if got := status(); got != "ACTIVE" {
		t.Errorf("after the affected statement %s is %s, want ACTIVE", log4shell, got)
	}
	if _, err := s.srv.RunStoreErr("vex", "import", filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("importing a missing file succeeded")
	}
}
