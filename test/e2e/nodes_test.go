package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/testserver"
)

// scanJobStates counts the scan jobs of the schema at url by state.
func scanJobStates(t *testing.T, conn *pgx.Conn) map[string]int {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT state, count(*) FROM scan_jobs GROUP BY state")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var (
			state string
			n     int
		)
		if err := rows.Scan(&state, &n); err != nil {
			t.Fatal(err)
		}
		out[state] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAPIOnlyNode: a node started with --scan-workers 0 queues the scan of an image pushed to
// it but claims no job; a scan-only node (--api=false), started later on the same store, runs
// it and serves no registry API.
func TestAPIOnlyNode(t *testing.T) {
	crane := testserver.Tool(t, "crane")
	url, s3 := sharedStore(t)
	api := testserver.Start(t, ladingBin, "--metadata", url, "--blobs", s3.URL(), "--scan-workers", "0")
	ctx := context.Background()
	if _, err := adminECR(api).CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("apionly/app"),
		ImageScanningConfiguration: &ecrtypes.ImageScanningConfiguration{ScanOnPush: true}}); err != nil {
		t.Fatal(err)
	}
	_, img, _ := testImages(t)
	run(t, []string{"DOCKER_CONFIG=" + api.DockerConfig(t)}, crane, "push", "--insecure", singleLayout(t, img, nil), api.Addr+"/apionly/app:v1")
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Long enough for a worker to have claimed it, had the node any.
	time.Sleep(2 * time.Second)
	if got := scanJobStates(t, conn); got["queued"] != 1 || len(got) != 1 {
		t.Fatalf("scan jobs on the API-only node: %v, want one queued", got)
	}

	// The worker is a scan-only node: it answers probes and no client.
	worker := testserver.Start(t, ladingBin, "--metadata", url, "--blobs", s3.URL(), "--scan-workers", "1", "--api=false")
	resp, err := http.Get(worker.URL() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /v2/ on a scan-only node: %d, want 404", resp.StatusCode)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(scanJobStates(t, conn)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the worker node did not run the scan: %v", scanJobStates(t, conn))
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, err := adminECR(api).DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("apionly/app"),
		ImageId: &ecrtypes.ImageIdentifier{ImageTag: aws.String("v1")}})
	if err != nil {
		t.Fatal(err)
	}
	// The test image has no OS: its scan ends UNSUPPORTED_IMAGE; either way it ran.
	if st := out.ImageScanStatus; st == nil || (st.Status != ecrtypes.ScanStatusComplete && st.Status != ecrtypes.ScanStatusUnsupportedImage) {
		t.Fatalf("scan status seen by the API-only node: %+v, want a finished scan", st)
	}
}

// proxy forwards TCP connections to target until closed; closing it also cuts the open
// connections, which is PostgreSQL becoming unreachable as far as a node can tell.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func startProxy(t *testing.T, addr, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
			go func() { _, _ = io.Copy(c, u); _ = c.Close() }()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// readyz is the status of a node's readiness probe.
func readyz(t *testing.T, s *testserver.Server) int {
	t.Helper()
	resp, err := http.Get(s.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestReadyzWithoutPostgres: while the node's PostgreSQL connection is cut (a proxy in
// between closes), /readyz answers 503; once it is back, 200 again, without a restart.
func TestReadyzWithoutPostgres(t *testing.T) {
	pg := pgtest.New(t)
	u, err := neturl.Parse(pg.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	addr := testserver.FreeAddr(t)
	p := startProxy(t, addr, target)
	u.Host = addr
	s := testserver.Start(t, ladingBin, "--metadata", u.String())
	if got := readyz(t, s); got != http.StatusOK {
		t.Fatalf("/readyz = %d with PostgreSQL reachable", got)
	}
	p.close()
	if got := readyz(t, s); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d with PostgreSQL unreachable, want 503", got)
	}
	startProxy(t, addr, target)
	deadline := time.Now().Add(15 * time.Second)
	for readyz(t, s) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz not 200 again 15 s after PostgreSQL came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readyzBody is a node's readiness answer.
func readyzBody(t *testing.T, s *testserver.Server) string {
	t.Helper()
	resp, err := http.Get(s.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSharedSettingsAcrossNodes: the registry scanning configuration put through one node is
// what the other answers at once (it is read from the store, not cached); an advisory import
// into the shared store is taken into every node's advisory index by its version poll (every
// second), without a restart. The bound below is generous (a loaded machine); the time each
// node took is logged.
func TestSharedSettingsAcrossNodes(t *testing.T) {
	url, s3 := sharedStore(t)
	// The fixture's advisories are years old: no age limit, so /readyz says "ok" with the version.
	a := testserver.Start(t, ladingBin, "--metadata", url, "--blobs", s3.URL(), "--scan-workers", "0", "--max-db-age", "0")
	b := testserver.Start(t, ladingBin, "--metadata", url, "--blobs", s3.URL(), "--scan-workers", "0", "--max-db-age", "0")
	ctx := context.Background()

	if _, err := adminECR(a).PutRegistryScanningConfiguration(ctx, &ecr.PutRegistryScanningConfigurationInput{
		ScanType: ecrtypes.ScanTypeEnhanced,
		Rules: []ecrtypes.RegistryScanningRule{{ScanFrequency: ecrtypes.ScanFrequencyContinuousScan,
			RepositoryFilters: []ecrtypes.ScanningRepositoryFilter{{Filter: aws.String("*"), FilterType: ecrtypes.ScanningRepositoryFilterTypeWildcard}}}},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := adminECR(b).GetRegistryScanningConfiguration(ctx, &ecr.GetRegistryScanningConfigurationInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got.ScanningConfiguration == nil || got.ScanningConfiguration.ScanType != ecrtypes.ScanTypeEnhanced {
		t.Fatalf("node b's scanning configuration right after node a's change: %+v, want ENHANCED", got.ScanningConfiguration)
	}

	for _, s := range []*testserver.Server{a, b} {
		if body := readyzBody(t, s); strings.Contains(body, "advisories: ok") {
			t.Fatalf("advisories before any import: %q", body)
		}
	}
	testserver.Run(t, ladingBin, "db", "import", "--metadata", url, "--data-dir", t.TempDir(), "--log-level", "warn",
		testfiles.Path(t, "osv-mini", "Maven", "all.zip"))
	imported := time.Now()
	for name, s := range map[string]*testserver.Server{"a": a, "b": b} {
		for !strings.Contains(readyzBody(t, s), "advisories: ok: version ") {
			if time.Since(imported) > 10*time.Second {
				t.Fatalf("node %s has not loaded the imported advisories 10 s after the import: %q", name, readyzBody(t, s))
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("node %s serves the imported advisories %v after the import ended", name, time.Since(imported).Round(time.Millisecond))
	}
}
