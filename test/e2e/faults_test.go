package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/testserver"
)

// do sends an authenticated request to the cluster's front and returns the response, read.
func do(t *testing.T, c *testserver.Cluster, method, location string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	url := location
	if len(url) > 0 && url[0] == '/' {
		url = c.Front.URL() + location
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(testserver.AccessKeyID, testserver.SecretAccessKey)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestKillNodeDuringChunkedUpload: a chunked upload whose first chunk went to a node that is
// then killed (kill -9) continues on the other nodes and completes with the right bytes.
func TestKillNodeDuringChunkedUpload(t *testing.T) {
	c := testserver.StartCluster(t, ladingBin, 3)
	blob := make([]byte, 11<<20)
	if _, err := rand.Read(blob); err != nil {
		t.Fatal(err)
	}
	chunks := [][]byte{blob[:5<<20], blob[5<<20 : 10<<20], blob[10<<20:]}
	resp, _ := do(t, c, http.MethodPost, "/v2/faults/app/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	off := 0
	for i, chunk := range chunks[:2] {
		resp, body := do(t, c, http.MethodPatch, loc, chunk, map[string]string{"Content-Type": "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", off, off+len(chunk)-1)})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("chunk %d: %s %s", i, resp.Status, body)
		}
		off += len(chunk)
		loc = resp.Header.Get("Location")
		if i == 0 {
			killed := c.Last()
			c.Kill(killed)
			t.Logf("killed node %d, which took the first chunk", killed)
		}
	}
	d := digest.FromBytes(blob)
	sep := "?"
	if bytes.ContainsRune([]byte(loc), '?') {
		sep = "&"
	}
	resp, body := do(t, c, http.MethodPut, loc+sep+"digest="+d.String(), chunks[2], map[string]string{"Content-Type": "application/octet-stream",
		"Content-Range": fmt.Sprintf("%d-%d", off, len(blob)-1)})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("complete upload: %s %s", resp.Status, body)
	}
	for range 2 { // two different nodes serve the pull
		resp, got := do(t, c, http.MethodGet, "/v2/faults/app/blobs/"+d.String(), nil, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, blob) {
			t.Fatalf("GET blob: %s, %d bytes, equal %v", resp.Status, len(got), bytes.Equal(got, blob))
		}
	}
}

// TestKillNodeDuringScan: the node running a scan is killed (kill -9); once its lease runs out
// (--scan-lease 2s) another node takes the job and the scan completes with its findings.
func TestKillNodeDuringScan(t *testing.T) {
	c := testserver.StartCluster(t, ladingBin, 3, "--scan-lease", "2s")
	c.Front.RunStore(t, "db", "import", "--log-level", "warn", testfiles.Path(t, "osv-mini", "Maven", "all.zip"))
	sdk := adminECR(c.Front)
	ctx := context.Background()
	if _, err := sdk.PutRegistryScanningConfiguration(ctx, &ecr.PutRegistryScanningConfigurationInput{ScanType: ecrtypes.ScanTypeEnhanced,
		Rules: []ecrtypes.RegistryScanningRule{{ScanFrequency: ecrtypes.ScanFrequencyContinuousScan,
			RepositoryFilters: []ecrtypes.ScanningRepositoryFilter{{Filter: aws.String("*"), FilterType: ecrtypes.ScanningRepositoryFilterTypeWildcard}}}}}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	src := "oci-archive:" + testfiles.Path(t, "images", "debian-family.tar") + ":neo4j-like"
	cmd := exec.Command(testserver.Tool(t, "skopeo"), "copy", "--dest-tls-verify=false", "--dest-authfile", filepath.Join(c.Front.DockerConfig(t), "config.json"),
		src, "docker://"+c.Front.Addr+"/faults/scan:v1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	// Catch the scan while a node runs it and kill that node.
	killed := -1
	for deadline := time.Now().Add(30 * time.Second); killed < 0; {
		var owner string
		err := conn.QueryRow(ctx, "SELECT lease_owner FROM scan_jobs WHERE state = 'running' LIMIT 1").Scan(&owner)
		if err == nil {
			for i, n := range c.Nodes {
				if strings.HasSuffix(owner, "/"+strconv.Itoa(n.Pid())) {
					killed = i
				}
			}
			if killed < 0 {
				t.Fatalf("the scan's owner %q is none of the nodes", owner)
			}
			c.Kill(killed)
			break
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no scan job seen running")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("killed node %d while it scanned", killed)
	for deadline := time.Now().Add(90 * time.Second); ; {
		out, err := sdk.DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("faults/scan"),
			ImageId: &ecrtypes.ImageIdentifier{ImageTag: aws.String("v1")}})
		if err == nil && out.ImageScanFindings != nil && len(out.ImageScanFindings.EnhancedFindings) > 0 {
			found := false
			for _, f := range out.ImageScanFindings.EnhancedFindings {
				if f.PackageVulnerabilityDetails != nil && aws.ToString(f.PackageVulnerabilityDetails.VulnerabilityId) == "CVE-2021-44228" {
					found = true
				}
			}
			if !found {
				t.Fatalf("the scan completed without CVE-2021-44228: %d findings", len(out.ImageScanFindings.EnhancedFindings))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scan did not complete after node %d was killed: %v", killed, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	var attempts int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM scan_jobs").Scan(&attempts); err != nil || attempts != 0 {
		t.Fatalf("%d scan jobs left after the scan completed (%v)", attempts, err)
	}
}

// TestPostgresRestartMidPush: PostgreSQL (a private server) goes down between the layers of a
// push: the registry and ECR answer 503 promptly, not 500 and not a hang; when PostgreSQL is
// back the same Lading process carries on, with no restart.
func TestPostgresRestartMidPush(t *testing.T) {
	pg := testserver.StartPostgres(t)
	srv := testserver.Start(t, ladingBin, "--metadata", pg.URL())
	c := newClient(t, srv)
	first := randomBytes(1 << 20)
	d := c.pushBlob("pg/restart", first)
	loc := c.startUpload("pg/restart")
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	second := randomBytes(1000)
	hc := &http.Client{Timeout: 30 * time.Second} // a hang fails the request
	check := func(what, method, path string, body []byte) {
		t.Helper()
		url := path
		if strings.HasPrefix(path, "/") {
			url = srv.URL() + path
		}
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(testserver.AccessKeyID, testserver.SecretAccessKey)
		resp, err := hc.Do(req)
		if err != nil {
			t.Errorf("%s while PostgreSQL is down: %v", what, err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s while PostgreSQL is down: %d %s, want 503", what, resp.StatusCode, b)
		}
	}
	check("blob PUT", http.MethodPut, loc+"?digest="+digest.FromBytes(second).String(), second)
	check("upload start", http.MethodPost, "/v2/pg/restart/blobs/uploads/", nil)
	check("blob GET", http.MethodGet, "/v2/pg/restart/blobs/"+d.String(), nil)
	check("tag list", http.MethodGet, "/v2/pg/restart/tags/list", nil)
	check("/readyz", http.MethodGet, "/readyz", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var apiErr interface{ ErrorCode() string }
	if _, err := adminECR(srv).DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{}); err == nil {
		t.Error("DescribeRepositories answered while PostgreSQL is down")
	} else if var503 := new(awshttp.ResponseError); !errors.As(err, &var503) || var503.HTTPStatusCode() != http.StatusServiceUnavailable {
		t.Errorf("DescribeRepositories while PostgreSQL is down: %v, want a 503", err)
	} else if errors.As(err, &apiErr) {
		t.Logf("DescribeRepositories: %s", apiErr.ErrorCode())
	}

	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	// The same process recovers: the pool reconnects.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(srv.URL() + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz not OK 30s after PostgreSQL came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !checkBlob(t, c, "pg/restart", d, first) {
		t.Error("the blob pushed before the restart is not served after it")
	}
	c.pushBlob("pg/restart", second)
	if _, err := adminECR(srv).DescribeRepositories(context.Background(), &ecr.DescribeRepositoriesInput{}); err != nil {
		t.Errorf("DescribeRepositories after the restart: %v", err)
	}
}

// TestKillNodeDuringEventDelivery: three nodes, one webhook that answers slowly, so that the
// push events of a batch are still being delivered when the node holding the webhook's lease
// is killed (kill -9). Another node takes the lease over and goes on from the stored cursor:
// the push event of every image, pushed before or after the kill, arrives at least once.
func TestKillNodeDuringEventDelivery(t *testing.T) {
	sink := newEventSink(t, 150*time.Millisecond)
	c := testserver.StartCluster(t, ladingBin, 3, "--event-webhook", sink.srv.URL, "--lease-ttl", "1s", "--scan-workers", "0")
	push := func(tag string) string {
		t.Helper()
		img, err := random.Image(1024, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(c.Front.Addr+"/faults/events:"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, adminAuth); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		return digestOf(t, img)
	}
	var want []string
	for i := range 12 {
		want = append(want, push(fmt.Sprint("a", i)))
	}
	for deadline := time.Now().Add(30 * time.Second); sink.delivered() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no event delivered 30 s after the pushes")
		}
		time.Sleep(10 * time.Millisecond)
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var holder string
	if err := conn.QueryRow(ctx, "SELECT holder FROM leases WHERE name LIKE 'webhook/%'").Scan(&holder); err != nil {
		t.Fatalf("the webhook's lease: %v", err)
	}
	killed := -1
	for i, n := range c.Nodes {
		if parts := strings.Split(holder, "/"); len(parts) == 3 && parts[1] == strconv.Itoa(n.Pid()) {
			killed = i
		}
	}
	if killed < 0 {
		t.Fatalf("the webhook's lease is held by %q, none of the nodes", holder)
	}
	c.Kill(killed)
	// Each event takes the sink 150 ms, so the batch cannot all be through yet: the kill
	// interrupts delivery, as the test means it to.
	if n := sink.delivered(); n >= len(want) {
		t.Fatalf("all %d events were delivered before the kill; the test did not interrupt delivery", n)
	}
	t.Logf("killed node %d, holder of the webhook's lease, after %d deliveries", killed, sink.delivered())

	for i := range 6 {
		want = append(want, push(fmt.Sprint("b", i)))
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		got := sink.pushedDigests()
		var missing []string
		for _, d := range want {
			if got[d] == 0 {
				missing = append(missing, d)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d push events never arrived after node %d was killed: %v", len(missing), len(want), killed, missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d push events arrived, %d deliveries in all (repeats are allowed: at least once)", len(want), sink.delivered())
}
