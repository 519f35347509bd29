package scan_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/testserver"
)

const webhookSecret = "test-webhook-secret"

// receiver is a webhook endpoint that checks signatures and keeps the events it accepts.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	events []map[string]any
	down   bool // answer 503 to everything
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		mac := hmac.New(sha256.New, []byte(webhookSecret))
		mac.Write(body)
		if req.Header.Get("X-Lading-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			r.t.Errorf("event with a bad signature: %s", req.Header.Get("X-Lading-Signature"))
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil {
			r.t.Errorf("event is not JSON: %v", err)
		}
		r.events = append(r.events, ev)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

// find returns the events of a detail type whose detail satisfies match.
func (r *receiver) find(detailType string, match func(detail map[string]any) bool) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, ev := range r.events {
		if ev["detail-type"] != detailType {
			continue
		}
		d, _ := ev["detail"].(map[string]any)
		if match == nil || match(d) {
			out = append(out, ev)
		}
	}
	return out
}

// awsCLI runs Debian's AWS CLI v2 against a server.
type awsCLI struct {
	t   *testing.T
	bin string
	srv *testserver.Server
}

func newAWS(t *testing.T, srv *testserver.Server) *awsCLI {
	bin := "/usr/bin/aws" // Debian's AWS CLI v2; an older v1 may come first on PATH
	if _, err := os.Stat(bin); err != nil {
		bin = testserver.Tool(t, "aws")
	}
	return &awsCLI{t: t, bin: bin, srv: srv}
}

func (a *awsCLI) run(args ...string) ([]byte, error) {
	cmd := exec.Command(a.bin, append(append([]string{"ecr"}, args...), "--endpoint-url", a.srv.URL(), "--output", "json")...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+testserver.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+testserver.SecretAccessKey,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("aws ecr %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}

func (a *awsCLI) json(v any, args ...string) {
	a.t.Helper()
	out, err := a.run(args...)
	if err != nil {
		a.t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			a.t.Fatalf("aws ecr %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// findings is describe-image-scan-findings' output (both scan types), as the API and
// `lading scan --format json` print it.
type findings struct {
	RepositoryName  string `json:"repositoryName"`
	ImageScanStatus struct {
		Status      string `json:"status"`
		Description string `json:"description"`
	} `json:"imageScanStatus"`
	ImageScanFindings struct {
		FindingSeverityCounts map[string]int `json:"findingSeverityCounts"`
		Findings              []struct {
			Name       string `json:"name"`
			Severity   string `json:"severity"`
			Attributes []struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			} `json:"attributes"`
		} `json:"findings"`
		EnhancedFindings []enhancedFinding `json:"enhancedFindings"`
	} `json:"imageScanFindings"`
}

func (a *awsCLI) findings(repo, tag string) (findings, error) {
	var f findings
	out, err := a.run("describe-image-scan-findings", "--repository-name", repo, "--image-id", "imageTag="+tag)
	if err != nil {
		return f, err
	}
	return f, json.Unmarshal(out, &f)
}

// waitFindings polls describe-image-scan-findings until ok accepts the answer.
func (a *awsCLI) waitFindings(repo, tag string, what string, ok func(findings) bool) findings {
	a.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last findings
	var lastErr error
	for time.Now().Before(deadline) {
		f, err := a.findings(repo, tag)
		if err == nil && ok(f) {
			return f
		}
		last, lastErr = f, err
		time.Sleep(500 * time.Millisecond)
	}
	a.t.Fatalf("%s/%s: %s never happened; last answer %+v, %v\nserver log:\n%s", repo, tag, what, last, lastErr, tail(a.srv.Logs(), 3000))
	return last
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// pushCorpus copies an image of testdata/images into the server with skopeo.
func pushCorpus(t *testing.T, srv *testserver.Server, archive, ref, dest string) {
	t.Helper()
	skopeo := testserver.Tool(t, "skopeo")
	src := "oci-archive:" + testfiles.Path(t, "images", archive) + ":" + ref
	cmd := exec.Command(skopeo, "copy", "--dest-tls-verify=false", "--dest-authfile", filepath.Join(srv.DockerConfig(t), "config.json"),
		src, "docker://"+srv.Addr+"/"+dest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy %s: %v\n%s", dest, err, out)
	}
}

// osvRecord writes one OSV record into a fresh folder, for `lading db import`.
func osvRecord(t *testing.T, rec map[string]any) string {
	t.Helper()
	dir := t.TempDir()
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, rec["id"].(string)+".json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func snakeyamlAdvisory(modified string, withdrawn bool) map[string]any {
	rec := map[string]any{
		"schema_version": "1.6.0",
		"id":             "GHSA-mjmj-j48q-9wg2",
		"modified":       modified,
		"published":      "2022-12-12T21:19:47Z",
		"aliases":        []string{"CVE-2022-1471"},
		"summary":        "SnakeYaml Constructor Deserialization Remote Code Execution",
		"details":        "SnakeYaml's Constructor class does not restrict types which can be instantiated during deserialization.",
		"severity":       []map[string]string{{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}},
		"affected": []map[string]any{{
			"package": map[string]string{"ecosystem": "Maven", "name": "org.yaml:snakeyaml"},
			"ranges":  []map[string]any{{"type": "ECOSYSTEM", "events": []map[string]string{{"introduced": "0"}, {"fixed": "2.0"}}}},
		}},
		"database_specific": map[string]any{"severity": "HIGH"},
	}
	if withdrawn {
		rec["withdrawn"] = modified
	}
	return rec
}

// TestECRScanningStory is the whole ECR story with the real AWS CLI: enhanced continuous
// scanning on filter "prod", Log4Shell found on push, a new advisory matched without any push,
// then withdrawn, with the events arriving at a webhook.
func TestECRScanningStory(t *testing.T) {
	recv := newReceiver(t)
	srv := testserver.Start(t, ladingBin, "--event-webhook", recv.srv.URL, "--event-webhook-secret", webhookSecret)
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", srv.DataDir, "--log-level", "warn", miniRecords(t, "Maven"))
	aws := newAWS(t, srv)

	for _, repo := range []string{"scanrepo-prod", "scanrepo-test"} {
		aws.json(nil, "create-repository", "--repository-name", repo)
	}
	var put struct {
		RegistryScanningConfiguration struct {
			ScanType string `json:"scanType"`
		} `json:"registryScanningConfiguration"`
	}
	aws.json(&put, "put-registry-scanning-configuration", "--scan-type", "ENHANCED", "--region", "us-west-2",
		"--rules", `[{"repositoryFilters":[{"filter":"prod","filterType":"WILDCARD"}],"scanFrequency":"CONTINUOUS_SCAN"}]`)
	if put.RegistryScanningConfiguration.ScanType != "ENHANCED" {
		t.Fatalf("put: %+v", put)
	}
	pushCorpus(t, srv, "debian-family.tar", "neo4j-like", "scanrepo-prod:4.4.0")
	pushCorpus(t, srv, "debian-family.tar", "neo4j-like", "scanrepo-test:4.4.0")

	got := aws.waitFindings("scanrepo-prod", "4.4.0", "an ACTIVE scan with CVE-2021-44228", func(f findings) bool {
		return f.ImageScanStatus.Status == "ACTIVE" && findEnhanced(f.ImageScanFindings.EnhancedFindings, "CVE-2021-44228") != nil
	})
	if got.ImageScanStatus.Description != "Continuous scan is selected for image." {
		t.Errorf("description %q", got.ImageScanStatus.Description)
	}
	f := findEnhanced(got.ImageScanFindings.EnhancedFindings, "CVE-2021-44228")
	p := f.PackageVulnerabilityDetails.VulnerablePackages
	if f.Severity != "CRITICAL" || f.Status != "ACTIVE" || len(p) != 1 || p[0].Name != log4jCore || p[0].Version != "2.14.1" ||
		p[0].FilePath != log4jPath || p[0].SourceLayerHash != log4jLayer || !strings.HasPrefix(f.FindingArn, "arn:aws:inspector2:") {
		t.Fatalf("finding %+v", f)
	}
	if got.ImageScanFindings.FindingSeverityCounts["CRITICAL"] != 2 || got.ImageScanFindings.FindingSeverityCounts["HIGH"] != 1 {
		t.Errorf("counts %v", got.ImageScanFindings.FindingSeverityCounts)
	}
	// Pages of one finding (the CLI follows nextToken) add up to the whole list.
	var paged findings
	aws.json(&paged, "describe-image-scan-findings", "--repository-name", "scanrepo-prod", "--image-id", "imageTag=4.4.0", "--page-size", "1")
	if n := len(paged.ImageScanFindings.EnhancedFindings); n != len(got.ImageScanFindings.EnhancedFindings) || n < 4 {
		t.Errorf("paged %d findings, unpaged %d", n, len(got.ImageScanFindings.EnhancedFindings))
	}
	// The repository no filter matches is not scanned.
	if _, err := aws.findings("scanrepo-test", "4.4.0"); err == nil || !strings.Contains(err.Error(), "ScanNotFoundException") {
		t.Fatalf("scanrepo-test: %v", err)
	}
	waitEvents(t, recv, "Inspector2 Scan", func(d map[string]any) bool { return d["scan-status"] == "INITIAL_SCAN_COMPLETE" }, 1)
	waitEvents(t, recv, "ECR Image Action", func(d map[string]any) bool {
		return d["action-type"] == "PUSH" && d["repository-name"] == "scanrepo-test"
	}, 1)

	// A new advisory for snakeyaml 1.33, which the image holds, imported by an operator into the
	// live server's data dir: the finding appears without any push.
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", srv.DataDir, "--log-level", "warn", osvRecord(t, snakeyamlAdvisory("2024-01-01T00:00:00Z", false)))
	got = aws.waitFindings("scanrepo-prod", "4.4.0", "CVE-2022-1471 after the import", func(f findings) bool {
		return findEnhanced(f.ImageScanFindings.EnhancedFindings, "CVE-2022-1471") != nil
	})
	// (Debian's AWS CLI 2.9 predates fixedInVersion and fixAvailable and drops them from its output.)
	snake := findEnhanced(got.ImageScanFindings.EnhancedFindings, "CVE-2022-1471")
	sp := snake.PackageVulnerabilityDetails.VulnerablePackages
	if snake.Status != "ACTIVE" || snake.Severity != "HIGH" || len(sp) != 1 || sp[0].Name != "org.yaml:snakeyaml" || sp[0].Version != "1.33" ||
		!strings.HasPrefix(sp[0].FilePath, "/var/lib/neo4j/lib/snakeyaml") || sp[0].SourceLayerHash != log4jLayer {
		t.Fatalf("snakeyaml finding %+v", snake)
	}
	if findEnhanced(got.ImageScanFindings.EnhancedFindings, "CVE-2021-44228").Status != "ACTIVE" {
		t.Error("the Log4Shell finding changed")
	}
	ev := waitEvents(t, recv, "Inspector2 Finding", findingEventFor("CVE-2022-1471", "ACTIVE"), 1)[0]
	if res, _ := ev["resources"].([]any); len(res) != 1 || !strings.Contains(fmt.Sprint(res[0]), "repository/scanrepo-prod/sha256:") {
		t.Errorf("event resources %v", ev["resources"])
	}
	if _, err := aws.findings("scanrepo-test", "4.4.0"); err == nil || !strings.Contains(err.Error(), "ScanNotFoundException") {
		t.Fatalf("scanrepo-test was scanned by the re-evaluation: %v", err)
	}

	// The advisory is withdrawn: the finding turns CLOSED, and the event says so.
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", srv.DataDir, "--log-level", "warn", osvRecord(t, snakeyamlAdvisory("2024-02-01T00:00:00Z", true)))
	aws.waitFindings("scanrepo-prod", "4.4.0", "CVE-2022-1471 CLOSED", func(f findings) bool {
		s := findEnhanced(f.ImageScanFindings.EnhancedFindings, "CVE-2022-1471")
		return s != nil && s.Status == "CLOSED"
	})
	waitEvents(t, recv, "Inspector2 Finding", findingEventFor("CVE-2022-1471", "CLOSED"), 1)
	var images struct {
		ImageDetails []struct {
			ImageScanStatus struct {
				Status string `json:"status"`
			} `json:"imageScanStatus"`
			ImageScanFindingsSummary struct {
				FindingSeverityCounts map[string]int `json:"findingSeverityCounts"`
			} `json:"imageScanFindingsSummary"`
		} `json:"imageDetails"`
	}
	aws.json(&images, "describe-images", "--repository-name", "scanrepo-prod")
	if len(images.ImageDetails) != 1 || images.ImageDetails[0].ImageScanStatus.Status != "ACTIVE" ||
		images.ImageDetails[0].ImageScanFindingsSummary.FindingSeverityCounts["CRITICAL"] != 2 {
		t.Errorf("describe-images %+v", images)
	}
}

func findingEventFor(vulnID, status string) func(map[string]any) bool {
	return func(d map[string]any) bool {
		pvd, _ := d["packageVulnerabilityDetails"].(map[string]any)
		return pvd != nil && pvd["vulnerabilityId"] == vulnID && d["status"] == status
	}
}

// waitEvents waits until the receiver holds at least n matching events.
func waitEvents(t *testing.T, r *receiver, detailType string, match func(map[string]any) bool, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		evs := r.find(detailType, match)
		if len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %q events arrived, want %d", len(evs), detailType, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scratchImage pushes an image holding one text file and nothing else (no OS), with crane.
func scratchImage(t *testing.T, srv *testserver.Server, dest string) {
	t.Helper()
	crane := testserver.Tool(t, "crane")
	dir := t.TempDir()
	layer := filepath.Join(dir, "layer.tar")
	if err := writeTar(layer, "hello.txt", "hello from scratch\n"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(crane, "append", "--insecure", "--oci-empty-base", "-f", layer, "-t", srv.Addr+"/"+dest)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+srv.DockerConfig(t))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("crane append: %v\n%s", err, out)
	}
}

// TestBasicScanning: scan on push for a matching repository, the 24-hour quota (the push scan
// counts), the waiter, and unsupported images both on push and on a manual scan.
func TestBasicScanning(t *testing.T) {
	recv := newReceiver(t)
	srv := testserver.Start(t, ladingBin, "--event-webhook", recv.srv.URL, "--event-webhook-secret", webhookSecret)
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", srv.DataDir, "--log-level", "warn", miniRecords(t, "Debian"))
	aws := newAWS(t, srv)
	aws.json(nil, "put-registry-scanning-configuration", "--scan-type", "BASIC",
		"--rules", `[{"repositoryFilters":[{"filter":"onpush","filterType":"WILDCARD"}],"scanFrequency":"SCAN_ON_PUSH"}]`)

	pushCorpus(t, srv, "debian-family.tar", "neo4j-like", "onpush-app:4.4.0")
	if _, err := aws.run("wait", "image-scan-complete", "--repository-name", "onpush-app", "--image-id", "imageTag=4.4.0"); err != nil {
		t.Fatalf("the waiter: %v", err)
	}
	got, err := aws.findings("onpush-app", "4.4.0")
	if err != nil {
		t.Fatal(err)
	}
	if got.ImageScanStatus.Status != "COMPLETE" || got.ImageScanStatus.Description != "The scan was completed successfully." {
		t.Fatalf("status %+v", got.ImageScanStatus)
	}
	if got.ImageScanFindings.EnhancedFindings != nil {
		t.Error("a basic scan returned enhanced findings")
	}
	// DSA-5532-1 fixes openssl in Debian 12 at 3.0.11-1~deb12u2; the image's openssl and libssl3
	// are 3.0.11-1~deb12u1, from source package openssl.
	pkgs := map[string]string{}
	for _, f := range got.ImageScanFindings.Findings {
		if f.Name != "CVE-2023-5363" {
			continue
		}
		attrs := map[string]string{}
		for _, a := range f.Attributes {
			attrs[a.Key] = a.Value
		}
		pkgs[attrs["package_name"]] = attrs["package_version"]
	}
	if pkgs["openssl"] != "3.0.11" || pkgs["libssl3"] != "3.0.11" {
		t.Fatalf("CVE-2023-5363 packages %v in %+v", pkgs, got.ImageScanFindings.Findings)
	}
	waitEvents(t, recv, "ECR Image Scan", func(d map[string]any) bool {
		return d["scan-status"] == "COMPLETE" && d["repository-name"] == "onpush-app"
	}, 1)

	// The push scan counts toward the once-a-day quota.
	_, err = aws.run("start-image-scan", "--repository-name", "onpush-app", "--image-id", "imageTag=4.4.0")
	if err == nil || !strings.Contains(err.Error(), "LimitExceededException") || !strings.Contains(err.Error(), "The scan quota per image has been exceeded. Wait and try again.") {
		t.Fatalf("second scan within 24 hours: %v", err)
	}

	// A manual scan of an image in a repository that is not scanned on push.
	pushCorpus(t, srv, "debian-family.tar", "debian-base", "manual-app:bookworm")
	if _, err := aws.findings("manual-app", "bookworm"); err == nil || !strings.Contains(err.Error(), "ScanNotFoundException") {
		t.Fatalf("manual-app was scanned on push: %v", err)
	}
	var started struct {
		ImageScanStatus struct {
			Status string `json:"status"`
		} `json:"imageScanStatus"`
	}
	aws.json(&started, "start-image-scan", "--repository-name", "manual-app", "--image-id", "imageTag=bookworm")
	if started.ImageScanStatus.Status != "IN_PROGRESS" {
		t.Fatalf("start-image-scan %+v", started)
	}
	if _, err := aws.run("wait", "image-scan-complete", "--repository-name", "manual-app", "--image-id", "imageTag=bookworm"); err != nil {
		t.Fatal(err)
	}
	if _, err := aws.run("start-image-scan", "--repository-name", "manual-app", "--image-id", "imageTag=bookworm"); err == nil || !strings.Contains(err.Error(), "LimitExceededException") {
		t.Fatalf("second manual scan: %v", err)
	}

	// A scratch image with only a text file: UNSUPPORTED_IMAGE on push, refused when manual.
	scratchImage(t, srv, "onpush-scratch:1")
	aws.waitFindings("onpush-scratch", "1", "UNSUPPORTED_IMAGE", func(f findings) bool { return f.ImageScanStatus.Status == "UNSUPPORTED_IMAGE" })
	scratchImage(t, srv, "manual-scratch:1")
	if _, err := aws.run("start-image-scan", "--repository-name", "manual-scratch", "--image-id", "imageTag=1"); err == nil || !strings.Contains(err.Error(), "UnsupportedImageTypeException") {
		t.Fatalf("manual scan of a scratch image: %v", err)
	}

	// Enhanced scanning refuses manual scans.
	aws.json(nil, "put-registry-scanning-configuration", "--scan-type", "ENHANCED")
	if _, err := aws.run("start-image-scan", "--repository-name", "manual-scratch", "--image-id", "imageTag=1"); err == nil || !strings.Contains(err.Error(), "ValidationException") {
		t.Fatalf("manual scan under enhanced scanning: %v", err)
	}
	var usage bytes.Buffer
	usage.WriteString(testserver.Run(t, ladingBin, "admin", "usage", "--data-dir", srv.DataDir))
	if !strings.Contains(usage.String(), "onpush-app") || !strings.Contains(usage.String(), "BASIC") {
		t.Errorf("usage:\n%s", usage.String())
	}
}

// TestScansAndEventsSurviveKill: kill -9 with scans queued and events undelivered; after the
// restart every scan completes and every event is delivered at least once.
func TestScansAndEventsSurviveKill(t *testing.T) {
	recv := newReceiver(t)
	recv.setDown(true)
	// No scan workers on the first run: pushes queue their scans, nothing runs them.
	srv := testserver.Start(t, ladingBin, "--event-webhook", recv.srv.URL, "--event-webhook-secret", webhookSecret, "--scan-workers", "0")
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", srv.DataDir, "--log-level", "warn", miniRecords(t, "Maven"))
	aws := newAWS(t, srv)
	aws.json(nil, "put-registry-scanning-configuration", "--scan-type", "ENHANCED")
	refs := []string{"neo4j-like", "node-app", "whiteout"}
	for _, ref := range refs {
		pushCorpus(t, srv, "debian-family.tar", ref, "crash/"+ref+":1")
	}
	srv.Kill()
	recv.setDown(false)
	srv.Args = []string{"--event-webhook", recv.srv.URL, "--event-webhook-secret", webhookSecret, "--scan-workers", "1"}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	for _, ref := range refs {
		aws.waitFindings("crash/"+ref, "1", "the queued scan to complete", func(f findings) bool { return f.ImageScanStatus.Status == "ACTIVE" })
		waitEvents(t, recv, "ECR Image Action", func(d map[string]any) bool {
			return d["action-type"] == "PUSH" && d["repository-name"] == "crash/"+ref
		}, 1)
		waitEvents(t, recv, "Inspector2 Scan", func(d map[string]any) bool {
			return strings.HasSuffix(fmt.Sprint(d["repository-name"]), "repository/crash/"+ref)
		}, 1)
	}
	got, err := aws.findings("crash/neo4j-like", "1")
	if err != nil || findEnhanced(got.ImageScanFindings.EnhancedFindings, "CVE-2021-44228") == nil {
		t.Fatalf("neo4j-like findings after restart: %+v %v", got, errors.Unwrap(err))
	}
}

// TestIndexScannedPerPlatform: the images of a multi-platform index are scanned one by one; the
// index itself is not.
func TestIndexScannedPerPlatform(t *testing.T) {
	srv := testserver.Start(t, ladingBin)
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", srv.DataDir, "--log-level", "warn", miniRecords(t, "Go"))
	aws := newAWS(t, srv)
	aws.json(nil, "put-registry-scanning-configuration", "--scan-type", "ENHANCED")
	skopeo := testserver.Tool(t, "skopeo")
	cmd := exec.Command(skopeo, "copy", "--all", "--dest-tls-verify=false", "--dest-authfile", filepath.Join(srv.DockerConfig(t), "config.json"),
		"oci-archive:"+testfiles.Path(t, "images", "multiarch.tar")+":multiarch", "docker://"+srv.Addr+"/multi:1.0.0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo: %v\n%s", err, out)
	}
	var images struct {
		ImageDetails []struct {
			ImageDigest            string   `json:"imageDigest"`
			ImageTags              []string `json:"imageTags"`
			ImageManifestMediaType string   `json:"imageManifestMediaType"`
		} `json:"imageDetails"`
	}
	aws.json(&images, "describe-images", "--repository-name", "multi")
	if len(images.ImageDetails) != 3 {
		t.Fatalf("%d images, want the index and its two platform images", len(images.ImageDetails))
	}
	for _, img := range images.ImageDetails {
		id := "imageDigest=" + img.ImageDigest
		if strings.Contains(img.ImageManifestMediaType, "index") {
			if _, err := aws.run("describe-image-scan-findings", "--repository-name", "multi", "--image-id", id); err == nil || !strings.Contains(err.Error(), "ScanNotFoundException") {
				t.Fatalf("the index was scanned: %v", err)
			}
			continue
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			out, err := aws.run("describe-image-scan-findings", "--repository-name", "multi", "--image-id", id)
			var f findings
			if err == nil && json.Unmarshal(out, &f) == nil && f.ImageScanStatus.Status == "ACTIVE" {
				// textnet is built with golang.org/x/text v0.3.5: GO-2021-0113 (CVE-2021-38561) applies.
				if findEnhanced(f.ImageScanFindings.EnhancedFindings, "CVE-2021-38561") == nil {
					t.Fatalf("platform image %s: no CVE-2021-38561 in %s", img.ImageDigest, out)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("platform image %s never scanned: %v %s", img.ImageDigest, err, out)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}
