package inspector_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const webhookSecret = "inspector-webhook-secret"

// receiver is a webhook endpoint that checks signatures and keeps the events it accepts.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []map[string]any
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mac := hmac.New(sha256.New, []byte(webhookSecret))
		mac.Write(body)
		if req.Header.Get("X-Lading-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			t.Errorf("event with a bad signature")
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("event is not JSON: %v", err)
		}
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// findingStatuses are the statuses of the "Inspector2 Finding" events of a vulnerability, in
// the order they arrived.
func (r *receiver) findingStatuses(vuln string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		d, _ := ev["detail"].(map[string]any)
		p, _ := d["packageVulnerabilityDetails"].(map[string]any)
		if ev["detail-type"] == "Inspector2 Finding" && p["vulnerabilityId"] == vuln {
			out = append(out, d["status"].(string))
		}
	}
	return out
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ecrHas reports whether ECR's DescribeImageScanFindings of the seed image lists vuln, and its
// count of CRITICAL findings.
func (s *story) ecrHas(t *testing.T, vuln string) (listed bool, critical float64) {
	t.Helper()
	out := s.aws(t, "ecr", "describe-image-scan-findings", "--repository-name", repo, "--image-id", "imageTag=4.4.0")
	isf, _ := out["imageScanFindings"].(map[string]any)
	fs, _ := isf["enhancedFindings"].([]any)
	for _, f := range fs {
		if vulnID(f.(map[string]any)) == vuln {
			listed = true
		}
	}
	counts, _ := isf["findingSeverityCounts"].(map[string]any)
	critical, _ = counts["CRITICAL"].(float64)
	// DescribeImages' summary counts the same findings.
	images := s.aws(t, "ecr", "describe-images", "--repository-name", repo, "--image-ids", "imageTag=4.4.0")
	details, _ := images["imageDetails"].([]any)
	if len(details) != 1 {
		t.Fatalf("describe-images %v", images)
	}
	summary, _ := details[0].(map[string]any)["imageScanFindingsSummary"].(map[string]any)
	summaryCounts, _ := summary["findingSeverityCounts"].(map[string]any)
	if n, _ := summaryCounts["CRITICAL"].(float64); n != critical {
		t.Errorf("describe-images counts %v CRITICAL, describe-image-scan-findings %v", n, critical)
	}
	return listed, critical
}

// TestSuppressionRule is issue 12's story: a suppression rule hides Log4Shell (SUPPRESSED, an
// event, gone from ECR's findings and counts) and deleting it brings it back (ACTIVE, event).
func TestSuppressionRule(t *testing.T) {
	recv := newReceiver(t)
	s := newStory(t, "--event-webhook", recv.srv.URL, "--event-webhook-secret", webhookSecret)
	waitFor(t, "the ACTIVE event of "+log4shell, func() bool { return strings.Join(recv.findingStatuses(log4shell), ",") == "ACTIVE" })
	listedBefore, critical := s.ecrHas(t, log4shell)
	if !listedBefore || critical < 1 {
		t.Fatalf("before the rule ECR lists %s: %v, counts %v CRITICAL", log4shell, listedBefore, critical)
	}

	criteria := `{"vulnerabilityId":[{"comparison":"EQUALS","value":"` + log4shell + `"}],"ecrImageRepositoryName":[{"comparison":"EQUALS","value":"` + repo + `"}]}`
	created := s.aws(t, "inspector2", "create-filter", "--name", "log4shell-accepted", "--action", "SUPPRESS", "--reason", "not reachable here",
		"--filter-criteria", criteria)
	arn, _ := created["arn"].(string)
	if !strings.HasPrefix(arn, "arn:aws:inspector2:us-east-1:000000000000:owner/000000000000/filter/") {
		t.Fatalf("filter ARN %q", arn)
	}
	fs := cliFindings(t, s.aws(t, "inspector2", "list-findings", "--filter-criteria",
		`{"findingStatus":[{"comparison":"EQUALS","value":"SUPPRESSED"}]}`))
	if len(fs) != 1 || vulnID(fs[0]) != log4shell || fs[0]["status"] != "SUPPRESSED" {
		t.Fatalf("SUPPRESSED findings %v", fs)
	}
	waitFor(t, "the SUPPRESSED event", func() bool { return strings.Join(recv.findingStatuses(log4shell), ",") == "ACTIVE,SUPPRESSED" })
	if listed, n := s.ecrHas(t, log4shell); listed || n != critical-1 {
		t.Errorf("with the rule ECR lists %s: %v, counts %v CRITICAL, want %v", log4shell, listed, n, critical-1)
	}
	listed := s.aws(t, "inspector2", "list-filters", "--action", "SUPPRESS")
	filters, _ := listed["filters"].([]any)
	if len(filters) != 1 || filters[0].(map[string]any)["reason"] != "not reachable here" {
		t.Errorf("list-filters %v", listed)
	}
	if _, err := s.run("inspector2", "create-filter", "--name", "log4shell-accepted", "--action", "NONE", "--filter-criteria", criteria); err == nil ||
		!strings.Contains(err.Error(), "BadRequestException") {
		t.Errorf("a second filter of the same name: %v", err)
	}

	s.aws(t, "inspector2", "delete-filter", "--arn", arn)
	fs = cliFindings(t, s.aws(t, "inspector2", "list-findings", "--filter-criteria",
		`{"vulnerabilityId":[{"comparison":"EQUALS","value":"`+log4shell+`"}]}`))
	if len(fs) != 1 || fs[0]["status"] != "ACTIVE" {
		t.Fatalf("after delete-filter %v", fs)
	}
	waitFor(t, "the ACTIVE event after the delete", func() bool {
		return strings.Join(recv.findingStatuses(log4shell), ",") == "ACTIVE,SUPPRESSED,ACTIVE"
	})
	if listed, n := s.ecrHas(t, log4shell); !listed || n != critical {
		t.Errorf("after the delete ECR lists %s: %v, counts %v CRITICAL, want %v", log4shell, listed, n, critical)
	}
	if _, err := s.run("inspector2", "delete-filter", "--arn", arn); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Errorf("deleting it again: %v", err)
	}
}
