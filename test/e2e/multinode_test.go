package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/testserver"
)

// receiver is a webhook that counts the deliveries of each event id.
type receiver struct {
	mu   sync.Mutex
	seen map[string]int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	id := req.Header.Get(events.EventIDHeader)
	r.mu.Lock()
	r.seen[id]++
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.seen))
	for k, v := range r.seen {
		out[k] = v
	}
	return out
}

// outboxIDs is every event id in the shared outbox.
func outboxIDs(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT id FROM outbox ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// awaitDelivered waits until every outbox event has reached the receiver, and returns the ids.
func awaitDelivered(t *testing.T, conn *pgx.Conn, recv *receiver, want int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ids := outboxIDs(t, conn)
		got := recv.counts()
		missing := 0
		for _, id := range ids {
			if got[id] == 0 {
				missing++
			}
		}
		if len(ids) >= want && missing == 0 {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s, %d of %d outbox events not delivered (want at least %d events)", missing, len(ids), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMultiNodeEvents: three nodes on one PostgreSQL schema and one bucket deliver the shared
// outbox to one webhook. In steady state each event arrives exactly once, whichever node took
// the push; after kill -9 of the node holding the webhook's lease, another node takes it over
// when it expires and every event still arrives.
func TestMultiNodeEvents(t *testing.T) {
	crane := testserver.Tool(t, "crane")
	pg := pgtest.New(t)
	url := pg.Schema(t)
	s3 := testserver.StartS3(t)
	s3.SetEnv(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	t.Setenv(auth.SecretKeyEnv, base64.StdEncoding.EncodeToString(key))
	recv := &receiver{seen: map[string]int{}}
	hook := httptest.NewServer(recv)
	defer hook.Close()

	const ttl = 2 * time.Second
	nodes := map[string]*testserver.Server{}
	var order []string
	for i := range 3 {
		id := fmt.Sprintf("node%d", i+1)
		nodes[id] = testserver.Start(t, ladingBin, "--metadata", url, "--blobs", s3.URL(), "--node-id", id,
			"--lease-ttl", ttl.String(), "--event-webhook", hook.URL, "--scan-workers", "0")
		order = append(order, id)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	_, img, _ := testImages(t)
	layout := singleLayout(t, img, nil)
	push := func(node, tag string) {
		t.Helper()
		s := nodes[node]
		run(t, []string{"DOCKER_CONFIG=" + s.DockerConfig(t)}, crane, "push", "--insecure", layout, s.Addr+"/multi/app:"+tag)
	}

	// Steady state: a push on each node; every event exactly once.
	for i, node := range order {
		push(node, fmt.Sprintf("v%d", i))
	}
	ids := awaitDelivered(t, conn, recv, 3)
	// Time for a second node to deliver something again, were the lease not holding it off.
	time.Sleep(2 * time.Second)
	for id, n := range recv.counts() {
		if n != 1 {
			t.Errorf("event %s delivered %d times in steady state, want once", id, n)
		}
	}
	if len(recv.counts()) != len(outboxIDs(t, conn)) {
		t.Errorf("%d events received, %d in the outbox", len(recv.counts()), len(outboxIDs(t, conn)))
	}

	// The holder of the webhook's lease dies mid-stream.
	var holder string
	if err := conn.QueryRow(context.Background(), "SELECT holder FROM leases WHERE name = $1", "events/webhook/"+hook.URL).Scan(&holder); err != nil {
		t.Fatalf("the webhook's lease: %v", err)
	}
	victim, ok := nodes[holder]
	if !ok {
		t.Fatalf("lease held by %q, not one of the nodes", holder)
	}
	var alive []string
	for _, id := range order {
		if id != holder {
			alive = append(alive, id)
		}
	}
	push(alive[0], "before-kill")
	victim.Kill()
	<-victim.Exited()
	for i, node := range alive {
		push(node, fmt.Sprintf("after-kill-%d", i))
	}
	after := awaitDelivered(t, conn, recv, len(ids)+3)
	var newHolder string
	if err := conn.QueryRow(context.Background(), "SELECT holder FROM leases WHERE name = $1", "events/webhook/"+hook.URL).Scan(&newHolder); err != nil {
		t.Fatal(err)
	}
	if newHolder == holder {
		t.Errorf("the webhook's lease is still %s's after it was killed", holder)
	}
	t.Logf("%d events delivered; lease moved from %s to %s", len(after), holder, newHolder)
}

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
	pg := pgtest.New(t)
	url := pg.Schema(t)
	s3 := testserver.StartS3(t)
	s3.SetEnv(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	t.Setenv(auth.SecretKeyEnv, base64.StdEncoding.EncodeToString(key))
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
	pg := pgtest.New(t)
	url := pg.Schema(t)
	s3 := testserver.StartS3(t)
	s3.SetEnv(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	t.Setenv(auth.SecretKeyEnv, base64.StdEncoding.EncodeToString(key))
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
