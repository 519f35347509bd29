package scan_test

import (
	"archive/tar"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	_ "modernc.org/sqlite"

	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/testserver"
)

// The "unknown" image: a Debian 12 layer whose dpkg status holds zlib1g at a version that is
// not a Debian version, libssl3 (source openssl) and libc6 (source glibc), and eight device
// nodes. Its advisories (unknownRecords) give two findings and two packages not evaluated.
const unknownStatus = `Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: x:1.2.13.dfsg-1
Description: compression library - runtime

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.0.11-1~deb12u1
Description: Secure Sockets Layer toolkit - shared libraries

Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u1
Description: GNU C Library: Shared libraries

`

// unknownLayer writes the image's one layer as a tar.
func unknownLayer(t *testing.T) string {
	t.Helper()
	osRelease, err := os.ReadFile(testfiles.Path(t, "artifacts", "dpkg", "bookworm.os-release"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "layer.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, file := range []struct{ name, content string }{{"etc/os-release", string(osRelease)}, {"var/lib/dpkg/status", unknownStatus}} {
		if err := tw.WriteHeader(&tar.Header{Name: file.name, Mode: 0o644, Size: int64(len(file.content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, file.content); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 8 {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("dev/tty%d", i), Mode: 0o620, Typeflag: tar.TypeChar, Devmajor: 4, Devminor: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// unknownArchive writes the image as a docker-archive (what docker save writes).
func unknownArchive(t *testing.T) string {
	t.Helper()
	layer, err := tarball.LayerFromFile(unknownLayer(t))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: "amd64"}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "unknown.tar")
	if err := tarball.WriteToFile(path, name.MustParseReference("notclean/unknown:1"), img); err != nil {
		t.Fatal(err)
	}
	return path
}

// unknownRecords are current Debian advisories (modified now, so the database is fresh):
// zlib (whose installed version does not compare), openssl with a fixed version that is not a
// Debian version (its range cannot be evaluated), and good ones of openssl and glibc.
func unknownRecords(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	now := time.Now().UTC().Format(time.RFC3339)
	for _, r := range []struct{ id, pkg, fixed, urgency string }{
		{"DSA-9901-1", "zlib", "1:1.3.dfsg-1", "high"},
		{"DSA-9902-1", "openssl", "x:3.0.12-1", "high"},
		{"DSA-9903-1", "openssl", "3.0.11-1~deb12u2", "high"},
		{"DSA-9904-1", "glibc", "2.36-9+deb12u4", "medium"},
	} {
		rec := map[string]any{"schema_version": "1.6.0", "id": r.id, "modified": now, "published": now,
			"upstream": []string{"CVE-2099-" + r.id[4:8]}, "summary": r.pkg + " security update",
			"affected": []any{map[string]any{"package": map[string]string{"ecosystem": "Debian:12", "name": r.pkg},
				"ecosystem_specific": map[string]string{"urgency": r.urgency},
				"ranges":             []any{map[string]any{"type": "ECOSYSTEM", "events": []any{map[string]string{"introduced": "0"}, map[string]string{"fixed": r.fixed}}}}}}}
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, r.id+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// scanRun runs `lading scan` and returns its stdout, stderr and exit status.
func scanRun(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(ladingBin, append([]string{"scan"}, args...)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// TestScanNotEvaluated: the advisory with an unparseable range and the package with an
// unparseable version are reported on every surface of `lading scan`; the table shows the
// whole installed version and one line for the eight device nodes; and with standard error
// not a terminal nothing but the report is written.
func TestScanNotEvaluated(t *testing.T) {
	data := t.TempDir()
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", data, "--log-level", "warn", unknownRecords(t))
	image := unknownArchive(t)

	table, stderr, code := scanRun(t, "--data-dir", data, "--log-level", "warn", image)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q (want 0 and nothing: stderr is not a terminal, so no progress)", code, stderr)
	}
	for _, want := range []string{
		", 3 packages, 2 findings, 2 packages not evaluated\n",
		"2 packages not evaluated (the scan cannot say they are unaffected):",
		"zlib1g", "x:1.2.13.dfsg-1", "DSA-9902-1",
		"8 device nodes skipped: /dev/tty0, /dev/tty1, /dev/tty2, /dev/tty3, /dev/tty4, /dev/tty5, /dev/tty6, /dev/tty7\n",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if strings.Count(table, "/dev/tty5") != 1 {
		t.Errorf("device nodes not on one line:\n%s", table)
	}
	// INSTALLED is the whole version, not its upstream part.
	for line := range strings.Lines(table) {
		if f := strings.Fields(line); len(f) > 5 && f[0] == "CVE-2099-9903" && (f[3] != "libssl3" || f[4] != "3.0.11-1~deb12u1" || f[5] != "3.0.11-1~deb12u2") {
			t.Errorf("row %q: want libssl3 3.0.11-1~deb12u1 fixed in 3.0.11-1~deb12u2", line)
		}
	}

	raw, _, code := scanRun(t, "--data-dir", data, "--log-level", "warn", "--format", "json", image)
	var got struct {
		ImageScanStatus struct{ Status, Description string } `json:"imageScanStatus"`
		NotEvaluated    []struct {
			Package, Version, Ecosystem, AdvisoryID, Reason string
		} `json:"notEvaluated"`
	}
	if err := json.Unmarshal([]byte(raw), &got); err != nil || code != 0 {
		t.Fatalf("json: exit %d, %v\n%s", code, err, raw)
	}
	if got.ImageScanStatus.Status != "COMPLETE" || got.ImageScanStatus.Description != "COMPLETE with 2 packages not evaluated" {
		t.Errorf("status %+v", got.ImageScanStatus)
	}
	entries := map[string]string{}
	for _, n := range got.NotEvaluated {
		entries[n.Package+"/"+n.AdvisoryID] = n.Version + " " + n.Ecosystem + " " + n.Reason
	}
	if len(entries) != 2 || !strings.HasPrefix(entries["zlib1g/"], "x:1.2.13.dfsg-1 Debian:12 ") ||
		!strings.Contains(entries["libssl3/DSA-9902-1"], `"x:3.0.12-1" is not a valid Debian version`) {
		t.Errorf("notEvaluated %+v", got.NotEvaluated)
	}

	sarif, _, _ := scanRun(t, "--data-dir", data, "--log-level", "warn", "--format", "sarif", image)
	for _, want := range []string{`"ruleId": "LADING-NOT-EVALUATED"`, "zlib1g x:1.2.13.dfsg-1 (Debian:12) was not evaluated",
		"libssl3 3.0.11-1~deb12u1 (Debian:12) was not evaluated against DSA-9902-1"} {
		if !strings.Contains(sarif, want) {
			t.Errorf("SARIF lacks %q:\n%s", want, sarif)
		}
	}
}

// TestScanCannotVouch: with an empty database, or one older than --max-db-age (osv-mini is),
// `lading scan` exits 2 and says why, unless --allow-stale-db (or a larger --max-db-age).
func TestScanCannotVouch(t *testing.T) {
	image := testfiles.Path(t, "images", "debian-family.tar") + ":neo4j-like"
	empty := t.TempDir()
	stale := t.TempDir()
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", stale, "--log-level", "warn", miniRecords(t, "Maven"))
	tests := []struct {
		name       string
		data       string
		flags      []string
		wantCode   int
		wantStderr string
	}{
		{"empty database", empty, nil, 2, "holds no advisories"},
		{"empty database, allowed", empty, []string{"--allow-stale-db"}, 0, "cannot vouch"},
		{"stale database", stale, nil, 2, "out of date"},
		{"stale database, allowed", stale, []string{"--allow-stale-db"}, 1, "cannot vouch"},
		{"stale database, larger limit", stale, []string{"--max-db-age", "1000000h"}, 1, ""},
		{"stale database, no limit", stale, []string{"--max-db-age", "0"}, 1, ""},
		{"reserved exit code", stale, []string{"--max-db-age", "0", "--exit-code", "2"}, 3, "--exit-code 2"},
		{"bad flag", stale, []string{"--max-db-age", "soon"}, 3, "invalid argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--data-dir", tc.data, "--log-level", "warn", "--exit-code", "1"}, tc.flags...)
			stdout, stderr, code := scanRun(t, append(args, image)...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.wantCode, stderr)
			}
			if !strings.Contains(stderr, tc.wantStderr) || (tc.wantStderr == "" && stderr != "") {
				t.Errorf("stderr %q, want %q", stderr, tc.wantStderr)
			}
			if (tc.wantCode == 2 || tc.wantCode == 3) && stdout != "" {
				t.Errorf("a report was written: %.200q", stdout)
			}
		})
	}
}

// TestScanIgnoreFileAndVEX: an ignored finding is left out and counted, an expired rule no
// longer ignores, and a VEX statement suppresses a finding, shown with its justification.
func TestScanIgnoreFileAndVEX(t *testing.T) {
	data := t.TempDir()
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", data, "--log-level", "warn", unknownRecords(t))
	image := unknownArchive(t)
	dir := t.TempDir()
	ignore := filepath.Join(dir, ".trivyignore")
	if err := writeFile(ignore, "# accepted risks\nCVE-2099-9904 # glibc: not reachable\nCVE-2099-9903 exp:2020-01-01\n"); err != nil {
		t.Fatal(err)
	}
	vexDoc := filepath.Join(dir, "app.openvex.json")
	if err := writeFile(vexDoc, `{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://example.com/vex/app","author":"Team","timestamp":"2026-01-01T00:00:00Z","version":1,
		"statements":[{"vulnerability":{"name":"CVE-2099-9903"},"products":[{"@id":"pkg:deb/debian/libssl3"}],
		"status":"not_affected","justification":"vulnerable_code_not_in_execute_path"}]}`); err != nil {
		t.Fatal(err)
	}
	cdxDoc := filepath.Join(dir, "app.cdx.json")
	if err := writeFile(cdxDoc, `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,
		"components":[{"type":"library","bom-ref":"ssl","name":"libssl3","purl":"pkg:deb/debian/libssl3@3.0.11-1~deb12u1?arch=amd64&distro=debian-12"}],
		"vulnerabilities":[{"id":"CVE-2099-9903","analysis":{"state":"resolved","detail":"patched in our build"},"affects":[{"ref":"ssl"}]}]}`); err != nil {
		t.Fatal(err)
	}

	// The ignore file alone: CVE-2099-9904 left out, CVE-2099-9903 still reported (its rule expired).
	table, stderr, code := scanRun(t, "--data-dir", data, "--log-level", "warn", "--exit-code", "1", "--ignore-file", ignore, image)
	if code != 1 || !strings.Contains(table, ", 1 findings, 2 packages not evaluated, 1 ignored\n") || strings.Contains(table, "CVE-2099-9904") ||
		!strings.Contains(table, "CVE-2099-9903") {
		t.Errorf("--ignore-file: exit %d\n%s", code, table)
	}
	if !strings.Contains(stderr, "ignore rule expired") || !strings.Contains(stderr, "CVE-2099-9903") {
		t.Errorf("expired rule not warned of: %q", stderr)
	}

	// With the VEX document too: CVE-2099-9903 suppressed, nothing left at or above --fail-on.
	for _, doc := range []struct{ path, why string }{
		{vexDoc, "not_affected: vulnerable_code_not_in_execute_path (" + vexDoc + ")"},
		{cdxDoc, "fixed: patched in our build (" + cdxDoc + ")"},
	} {
		table, _, code = scanRun(t, "--data-dir", data, "--log-level", "warn", "--exit-code", "1", "--ignore-file", ignore, "--vex", doc.path, image)
		if code != 0 || !strings.Contains(table, ", 0 findings, 2 packages not evaluated, 1 suppressed, 1 ignored\n") ||
			!strings.Contains(table, "1 suppressed by VEX statements:") || !strings.Contains(table, doc.why) {
			t.Errorf("--vex %s: exit %d\n%s", doc.path, code, table)
		}
		raw, _, _ := scanRun(t, "--data-dir", data, "--log-level", "warn", "--format", "json", "--ignore-file", ignore, "--vex", doc.path, image)
		var got struct {
			Suppressed []struct{ VulnerabilityID, Status, Justification string } `json:"suppressed"`
			Ignored    int                                                       `json:"ignored"`
		}
		if err := json.Unmarshal([]byte(raw), &got); err != nil || len(got.Suppressed) != 1 || got.Suppressed[0].VulnerabilityID != "CVE-2099-9903" ||
			got.Suppressed[0].Justification != doc.why || got.Ignored != 1 {
			t.Errorf("--vex %s json: %v %+v", doc.path, err, got)
		}
	}

	// A file that does not parse is an error (3), before any scan.
	bad := filepath.Join(dir, "bad.json")
	if err := writeFile(bad, `{"statements":[]}`); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := scanRun(t, "--data-dir", data, "--vex", bad, image); code != 3 || !strings.Contains(stderr, "invalid VEX document") {
		t.Errorf("bad VEX: exit %d %q", code, stderr)
	}
}

// TestStoredScanNotEvaluatedAndCorruptFinding: the registry's scan of the image says how many
// packages it could not evaluate in its status description and counts them in the metric; a
// stored finding whose detail is garbage makes DescribeImageScanFindings fail with
// ServerException, and the log names the row.
func TestStoredScanNotEvaluatedAndCorruptFinding(t *testing.T) {
	srv := testserver.Start(t, ladingBin)
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", srv.DataDir, "--log-level", "warn", unknownRecords(t))
	aws := newAWS(t, srv)
	aws.json(nil, "put-registry-scanning-configuration", "--scan-type", "BASIC",
		"--rules", `[{"repositoryFilters":[{"filter":"*","filterType":"WILDCARD"}],"scanFrequency":"SCAN_ON_PUSH"}]`)
	crane := testserver.Tool(t, "crane")
	cmd := exec.Command(crane, "append", "--insecure", "--oci-empty-base", "-f", unknownLayer(t), "-t", srv.Addr+"/notclean/unknown:1")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+srv.DockerConfig(t))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("crane append: %v\n%s", err, out)
	}
	got := aws.waitFindings("notclean/unknown", "1", "a complete scan", func(f findings) bool { return f.ImageScanStatus.Status == "COMPLETE" })
	if got.ImageScanStatus.Description != "COMPLETE with 2 packages not evaluated" {
		t.Errorf("description %q", got.ImageScanStatus.Description)
	}
	if len(got.ImageScanFindings.Findings) != 2 {
		t.Errorf("%d findings, want 2: %+v", len(got.ImageScanFindings.Findings), got.ImageScanFindings.Findings)
	}
	resp, err := http.Get(srv.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(metrics), `lading_scan_packages_not_evaluated_total{kind="scan"} 2`) {
		t.Errorf("metric not counted:\n%s", grepLines(string(metrics), "not_evaluated"))
	}

	// Garbage in one finding's stored detail, written behind the server's back.
	var images struct {
		ImageDetails []struct {
			ImageDigest string `json:"imageDigest"`
		} `json:"imageDetails"`
	}
	aws.json(&images, "describe-images", "--repository-name", "notclean/unknown")
	if len(images.ImageDetails) != 1 {
		t.Fatalf("images %+v", images)
	}
	dgst := images.ImageDetails[0].ImageDigest
	db, err := sql.Open("sqlite", "file:"+filepath.Join(srv.DataDir, "lading.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`UPDATE finding_details SET detail = '{"finding": garbage' WHERE finding_id =
		(SELECT id FROM findings WHERE repository = 'notclean/unknown' AND image_digest = ? AND vulnerability_id = 'CVE-2099-9904')`, dgst)
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("corrupt the detail: %v (%d rows)", err, n)
	}
	_, err = aws.run("describe-image-scan-findings", "--repository-name", "notclean/unknown", "--image-id", "imageTag=1")
	if err == nil || !strings.Contains(err.Error(), "ServerException") {
		t.Fatalf("describe-image-scan-findings over a corrupt finding: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		logs := srv.Logs()
		if strings.Contains(logs, "CVE-2099-9904") && strings.Contains(logs, "notclean/unknown@"+dgst) && strings.Contains(logs, "does not decode") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log does not name the row (repository, digest, vulnerability id):\n%s", tail(logs, 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
