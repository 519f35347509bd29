package inspector_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/testserver"
)

// TestSBOMReferrer checks that the seed image's scan attached its SBOM as an OCI referrer that
// the real oras lists, that the referrer is no image, and that a rescan replaces it.
func TestSBOMReferrer(t *testing.T) {
	s := newStory(t)
	t.Run("attached", func(t *testing.T) { sbomReferrer(t, s) })
	t.Run("a rescan replaces it", func(t *testing.T) { rescanReplaces(t, s) })
}

// referrers lists the image's referrers with the real oras.
func referrers(t *testing.T, s *story, authfile string) []map[string]any {
	t.Helper()
	oras := testserver.Tool(t, "oras")
	cmd := exec.Command(oras, "discover", "--plain-http", "--registry-config", authfile, "--format", "json", s.srv.Addr+"/"+repo+":4.4.0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("oras discover: %v\n%s", err, out)
	}
	var v struct {
		Referrers []map[string]any `json:"referrers"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("oras discover: %v\n%s", err, out)
	}
	return v.Referrers
}

// sbomReferrers waits until oras lists want SBOM referrers of the image other than those in
// not, and returns their digests.
func sbomReferrers(t *testing.T, s *story, want int, not map[string]bool) []string {
	t.Helper()
	authfile := filepath.Join(s.srv.DockerConfig(t), "config.json")
	deadline := time.Now().Add(60 * time.Second)
	for {
		var digests []string
		fresh := 0
		for _, r := range referrers(t, s, authfile) {
			if r["artifactType"] == "application/vnd.cyclonedx+json" {
				d, _ := r["digest"].(string)
				digests = append(digests, d)
				if !not[d] {
					fresh++
				}
			}
		}
		if len(digests) == want && fresh == want {
			return digests
		}
		if time.Now().After(deadline) {
			t.Fatalf("oras discover lists SBOM referrers %v, want %d new\nserver log:\n%s", digests, want, s.srv.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func sbomReferrer(t *testing.T, s *story) {
	digests := sbomReferrers(t, s, 1, nil)
	// The referrer is not an image: it is not scanned, and DescribeImages given its digest
	// says so (no scan status).
	out := s.aws(t, "ecr", "describe-images", "--repository-name", repo, "--image-ids", "imageDigest="+digests[0])
	details, _ := out["imageDetails"].([]any)
	if len(details) != 1 {
		t.Fatalf("describe-images of the SBOM referrer: %v", out)
	}
	if d := details[0].(map[string]any); d["imageScanStatus"] != nil || d["artifactMediaType"] != "application/vnd.cyclonedx+json" {
		t.Errorf("the SBOM referrer: %v", d)
	}
	// Listings show the image alone: scripts written for ECR see what they pushed.
	out = s.aws(t, "ecr", "describe-images", "--repository-name", repo)
	if details, _ := out["imageDetails"].([]any); len(details) != 1 {
		t.Errorf("describe-images lists %d images, want 1: %v", len(details), out)
	}
}

// rescanReplaces rescans the image (basic scanning, a manual scan) and expects its SBOM
// referrer replaced: still one, another one.
func rescanReplaces(t *testing.T, s *story) {
	before := sbomReferrers(t, s, 1, nil)
	s.aws(t, "ecr", "put-registry-scanning-configuration", "--scan-type", "BASIC", "--rules", "[]")
	s.aws(t, "ecr", "start-image-scan", "--repository-name", repo, "--image-id", "imageTag=4.4.0")
	sbomReferrers(t, s, 1, map[string]bool{before[0]: true})
}
