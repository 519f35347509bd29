package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/testserver"
)

// client is a minimal registry client with the admin's credentials.
type client struct {
	t    *testing.T
	base string
	user string
	pass string
}

func newClient(t *testing.T, srv *testserver.Server) *client {
	return &client{t: t, base: srv.URL(), user: testserver.AccessKeyID, pass: testserver.SecretAccessKey}
}

func (c *client) do(method, path string, body io.Reader, hdr map[string]string) *http.Response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

func (c *client) expect(resp *http.Response, status int) []byte {
	c.t.Helper()
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != status {
		c.t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, b)
	}
	return b
}

func (c *client) startUpload(repo string) string {
	c.t.Helper()
	resp := c.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
	c.expect(resp, http.StatusAccepted)
	return resp.Header.Get("Location")
}

func (c *client) pushBlob(repo string, data []byte) digest.Digest {
	c.t.Helper()
	d := digest.FromBytes(data)
	loc := c.startUpload(repo)
	c.expect(c.do("PUT", loc+"?digest="+d.String(), bytes.NewReader(data), nil), http.StatusCreated)
	return d
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// TestCrashDuringUploads kills the server with uploads in flight, restarts it, and checks that
// every visible blob matches its digest and every interrupted upload resumes or is refused.
func TestCrashDuringUploads(t *testing.T) {
	srv := testserver.Start(t, ladingBin)
	c := newClient(t, srv)

	// Completed before the crash: must survive intact.
	done := map[digest.Digest][]byte{}
	for range 4 {
		data := randomBytes(300 << 10)
		done[c.pushBlob("crash/repo", data)] = data
	}

	// In flight at the crash: each has sent one whole chunk and is halfway through a second.
	type inflight struct {
		loc  string
		data []byte
	}
	var uploads []inflight
	var wg sync.WaitGroup
	var writers []*io.PipeWriter
	started := make(chan struct{}, 8)
	for i := range 8 {
		data := randomBytes(2<<20 + i*4096)
		loc := c.startUpload("crash/repo")
		first := 512 << 10
		resp := c.do("PATCH", loc, bytes.NewReader(data[:first]), map[string]string{
			"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("0-%d", first-1)})
		c.expect(resp, http.StatusAccepted)
		loc = resp.Header.Get("Location")
		uploads = append(uploads, inflight{loc, data})
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("PATCH", srv.URL()+loc, pr)
			req.SetBasicAuth(testserver.AccessKeyID, testserver.SecretAccessKey)
			req.Header.Set("Content-Type", "application/octet-stream")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_ = resp.Body.Close()
			}
		}()
		go func() {
			_, _ = pw.Write(data[first : first+(len(data)-first)/2])
			started <- struct{}{}
			// Never finish: the crash cuts the request.
		}()
	}
	for range 8 {
		<-started
	}
	// Kill only once the server is writing every second chunk: bytes in socket buffers are not
	// yet an upload in flight.
	for deadline := time.Now().Add(20 * time.Second); ; {
		writing := 0
		for _, u := range uploads {
			if fi, err := os.Stat(filepath.Join(srv.DataDir, "uploads", filepath.Base(u.loc), "data")); err == nil && fi.Size() > 512<<10 {
				writing++
			}
		}
		if writing == len(uploads) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server is writing %d of %d second chunks", writing, len(uploads))
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.Kill()
	for _, pw := range writers {
		_ = pw.CloseWithError(io.ErrUnexpectedEOF) // the client side of the cut connection gives up
	}
	wg.Wait()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}

	// Every committed blob file hashes to its name.
	blobs := 0
	err := filepath.WalkDir(filepath.Join(srv.DataDir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		alg := filepath.Base(filepath.Dir(filepath.Dir(p)))
		want := digest.NewDigestFromEncoded(digest.Algorithm(alg), filepath.Base(p))
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		got, err := want.Algorithm().FromReader(f)
		if err != nil {
			return err
		}
		if got != want {
			t.Errorf("blob file %s holds content %s", p, got)
		}
		blobs++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if blobs < len(done) {
		t.Fatalf("%d blob files, want at least %d", blobs, len(done))
	}
	for d, data := range done {
		got := c.expect(c.do("GET", "/v2/crash/repo/blobs/"+d.String(), nil, nil), http.StatusOK)
		if !bytes.Equal(got, data) {
			t.Fatalf("blob %s changed across the crash", d)
		}
	}

	resumed := 0
	for _, u := range uploads {
		d := digest.FromBytes(u.data)
		c.expect(c.do("HEAD", "/v2/crash/repo/blobs/"+d.String(), nil, nil), http.StatusNotFound)
		resp := c.do("GET", u.loc, nil, nil)
		if resp.StatusCode == http.StatusNotFound {
			c.expect(resp, http.StatusNotFound) // refused cleanly: the client starts over
			continue
		}
		c.expect(resp, http.StatusNoContent)
		end, err := strconv.Atoi(strings.TrimPrefix(resp.Header.Get("Range"), "0-"))
		if err != nil || end < 512<<10-1 || end >= len(u.data) {
			t.Fatalf("upload status range %q after crash", resp.Header.Get("Range"))
		}
		next := end + 1
		resp = c.do("PATCH", resp.Header.Get("Location"), bytes.NewReader(u.data[next:]), map[string]string{
			"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("%d-%d", next, len(u.data)-1)})
		c.expect(resp, http.StatusAccepted)
		c.expect(c.do("PUT", resp.Header.Get("Location")+"?digest="+d.String(), nil, nil), http.StatusCreated)
		got := c.expect(c.do("GET", "/v2/crash/repo/blobs/"+d.String(), nil, nil), http.StatusOK)
		if !bytes.Equal(got, u.data) {
			t.Fatal("resumed blob differs")
		}
		resumed++
	}
	t.Logf("%d of %d interrupted uploads resumed after kill -9", resumed, len(uploads))
	if resumed == 0 {
		t.Fatal("no interrupted upload could be resumed")
	}
}

// TestGracefulShutdown: SIGTERM lets an in-flight chunk finish, and the session resumes after
// the restart.
func TestGracefulShutdown(t *testing.T) {
	srv := testserver.Start(t, ladingBin)
	c := newClient(t, srv)
	data := randomBytes(1 << 20)
	loc := c.startUpload("shutdown/repo")
	pr, pw := io.Pipe()
	result := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("PATCH", srv.URL()+loc, pr)
		req.SetBasicAuth(testserver.AccessKeyID, testserver.SecretAccessKey)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- -1
			return
		}
		_ = resp.Body.Close()
		result <- resp.StatusCode
	}()
	_, _ = pw.Write(data[:len(data)/2])
	// Stop only once the server is handling the request: bytes sitting in socket buffers are not
	// yet a request in flight.
	for deadline := time.Now().Add(10 * time.Second); ; {
		fi, err := os.Stat(filepath.Join(srv.DataDir, "uploads", filepath.Base(loc), "data"))
		if err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server never started receiving the chunk")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := make(chan struct{})
	go func() { srv.Stop(); close(stopped) }()
	// Shutdown has begun once the server refuses new connections.
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get(srv.URL() + "/healthz")
		if err != nil {
			break
		}
		_ = resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-stopped:
		t.Fatal("server exited with a request in flight")
	default:
	}
	_, _ = pw.Write(data[len(data)/2:])
	_ = pw.Close()
	if status := <-result; status != http.StatusAccepted {
		t.Fatalf("in-flight PATCH got %d during shutdown", status)
	}
	<-stopped
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	resp := c.do("GET", loc, nil, nil)
	c.expect(resp, http.StatusNoContent)
	if got := resp.Header.Get("Range"); got != fmt.Sprintf("0-%d", len(data)-1) {
		t.Fatalf("range after restart %q", got)
	}
	c.expect(c.do("PUT", loc+"?digest="+digest.FromBytes(data).String(), nil, nil), http.StatusCreated)
}

func TestCreateOnPushDisabled(t *testing.T) {
	srv := testserver.Start(t, ladingBin, "--create-on-push=false")
	c := newClient(t, srv)
	body := c.expect(c.do("POST", "/v2/unknown/repo/blobs/uploads/", nil, nil), http.StatusNotFound)
	if !strings.Contains(string(body), "NAME_UNKNOWN") {
		t.Fatalf("body %s", body)
	}
	m := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"artifactType":"application/vnd.lading.test"}`
	body = c.expect(c.do("PUT", "/v2/unknown/repo/manifests/v1", strings.NewReader(m),
		map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}), http.StatusNotFound)
	if !strings.Contains(string(body), "NAME_UNKNOWN") {
		t.Fatalf("body %s", body)
	}
}

func TestAuthentication(t *testing.T) {
	srv := testserver.Start(t, ladingBin)
	c := newClient(t, srv)
	c.pushBlob("auth/exists", []byte("hello"))
	anon := &client{t: t, base: srv.URL()}
	wrong := &client{t: t, base: srv.URL(), user: testserver.AccessKeyID, pass: "wrong"}
	unknown := &client{t: t, base: srv.URL(), user: "LAKNOSUCHKEY", pass: "x"}
	var bodies []string
	for _, cl := range []*client{anon, wrong, unknown} {
		for _, repo := range []string{"auth/exists", "auth/missing"} {
			resp := cl.do("GET", "/v2/"+repo+"/tags/list", nil, nil)
			body := cl.expect(resp, http.StatusUnauthorized)
			if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, `Basic realm="`) {
				t.Fatalf("challenge %q", ch)
			}
			bodies = append(bodies, string(body))
		}
	}
	for _, b := range bodies {
		if b != bodies[0] {
			t.Fatalf("401 bodies differ, revealing repository existence: %q vs %q", b, bodies[0])
		}
	}
	c.expect(c.do("GET", "/v2/", nil, nil), http.StatusOK)
}

func TestAnonymousPull(t *testing.T) {
	srv := testserver.Start(t, ladingBin, "--anonymous-pull")
	c := newClient(t, srv)
	d := c.pushBlob("anon/repo", []byte("public"))
	anon := &client{t: t, base: srv.URL()}
	if got := anon.expect(anon.do("GET", "/v2/anon/repo/blobs/"+d.String(), nil, nil), http.StatusOK); string(got) != "public" {
		t.Fatalf("got %q", got)
	}
	anon.expect(anon.do("POST", "/v2/anon/repo/blobs/uploads/", nil, nil), http.StatusUnauthorized)
}

func TestGeneratedAdminCredentials(t *testing.T) {
	srv := &testserver.Server{Bin: ladingBin, DataDir: filepath.Join(t.TempDir(), "data"), Addr: testserver.FreeAddr(t)}
	t.Cleanup(srv.Kill)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(srv.DataDir, "admin-credentials")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode %v", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	vals := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		vals[k] = v
	}
	id, secret := vals["LADING_ADMIN_ACCESS_KEY_ID"], vals["LADING_ADMIN_SECRET_ACCESS_KEY"]
	if id == "" || len(secret) < 30 {
		t.Fatalf("credentials file %q", raw)
	}
	logs := srv.Logs()
	if !strings.Contains(logs, path) {
		t.Fatalf("log does not name the credentials file:\n%s", logs)
	}
	if strings.Contains(logs, secret) {
		t.Fatal("log contains the secret")
	}
	c := &client{t: t, base: srv.URL(), user: id, pass: secret}
	c.expect(c.do("GET", "/v2/", nil, nil), http.StatusOK)
	// A second start keeps the same key.
	srv.Kill()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	c.expect(c.do("GET", "/v2/", nil, nil), http.StatusOK)
}

func TestRefusesNewerDataDir(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(dataDir, "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	raw, err := sql.Open("sqlite", filepath.Join(dataDir, "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("INSERT INTO schema_migrations VALUES (9999, 'from_the_future', 0)"); err != nil {
		t.Fatal(err)
	}
	_ = raw.Close()
	cmd := exec.Command(ladingBin, "serve", "--data-dir", dataDir, "--addr", testserver.FreeAddr(t))
	cmd.Env = append(os.Environ(), "LADING_ADMIN_ACCESS_KEY_ID=a", "LADING_ADMIN_SECRET_ACCESS_KEY=b")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("serve started against a newer data dir")
	}
	if !strings.Contains(string(out), "newer version of Lading") {
		t.Fatalf("unclear message: %s", out)
	}
}

func TestUploadTTL(t *testing.T) {
	srv := testserver.Start(t, ladingBin, "--upload-ttl", "1s")
	c := newClient(t, srv)
	loc := c.startUpload("ttl/repo")
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp := c.do("GET", loc, nil, nil)
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("abandoned upload was not cleaned up")
		}
		time.Sleep(200 * time.Millisecond)
	}
	entries, _ := os.ReadDir(filepath.Join(srv.DataDir, "uploads"))
	if len(entries) != 0 {
		t.Fatalf("%d upload directories left", len(entries))
	}
}

func TestOperationsEndpoints(t *testing.T) {
	srv := testserver.Start(t, ladingBin)
	c := newClient(t, srv)
	d := c.pushBlob("ops/repo", randomBytes(1000))
	c.expect(c.do("GET", "/v2/ops/repo/blobs/"+d.String(), nil, nil), http.StatusOK)
	c.startUpload("ops/repo")
	for _, p := range []string{"/healthz", "/readyz"} {
		c.expect(c.do("GET", p, nil, nil), http.StatusOK)
	}
	metrics := string(c.expect(c.do("GET", "/metrics", nil, nil), http.StatusOK))
	for _, want := range []string{
		`lading_http_requests_total{method="GET",route="v2_blob",status="200"} 1`,
		`lading_http_request_duration_seconds_bucket{method="PUT",route="v2_upload",status="201"`,
		`lading_http_response_bytes_total{route="v2_blob"} 1000`,
		`lading_http_request_bytes_total{route="v2_upload"} 1000`,
		`lading_uploads_in_progress 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestReadyzSaysWhetherAdvisoriesAreCurrent: the probe stays 200 (the registry serves), and says
// when scans cannot be trusted to be clean: no advisories, then advisories older than
// --max-db-age; the metric gives the age.
func TestReadyzSaysWhetherAdvisoriesAreCurrent(t *testing.T) {
	srv := testserver.Start(t, ladingBin)
	c := newClient(t, srv)
	readyz := func() string { return string(c.expect(c.do("GET", "/readyz", nil, nil), http.StatusOK)) }
	if got := readyz(); !strings.Contains(got, "advisories: not current: the advisory database holds no advisories") {
		t.Fatalf("/readyz of an empty database: %q", got)
	}
	if m := string(c.expect(c.do("GET", "/metrics", nil, nil), http.StatusOK)); !strings.Contains(m, "lading_advisory_db_age_seconds -1") {
		t.Error("metrics lack lading_advisory_db_age_seconds -1")
	}
	// osv-mini's newest records are older than the default week.
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", srv.DataDir, "--log-level", "warn", testfiles.Path(t, "osv-mini", "Debian", "all.zip"))
	for deadline := time.Now().Add(20 * time.Second); ; {
		got := readyz()
		if strings.Contains(got, "advisories: not current: the advisory database is out of date") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after importing old advisories: %q", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.Stop()
	srv.Args = append(srv.Args, "--max-db-age", "0")
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if got := readyz(); !strings.Contains(got, "advisories: ok: version 1") {
		t.Fatalf("/readyz without an age limit: %q", got)
	}
}

func TestRangeRequests(t *testing.T) {
	srv := testserver.Start(t, ladingBin)
	c := newClient(t, srv)
	data := randomBytes(10000)
	d := c.pushBlob("range/repo", data)
	resp := c.do("GET", "/v2/range/repo/blobs/"+d.String(), nil, map[string]string{"Range": "bytes=100-199"})
	got := c.expect(resp, http.StatusPartialContent)
	if !bytes.Equal(got, data[100:200]) {
		t.Fatal("range content differs")
	}
	if cr := resp.Header.Get("Content-Range"); cr != "bytes 100-199/10000" {
		t.Fatalf("Content-Range %q", cr)
	}
	sum := sha256.Sum256(data)
	if resp.Header.Get("Docker-Content-Digest") != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Fatal("digest header missing")
	}
}

func TestVersionCommand(t *testing.T) {
	out, err := exec.Command(ladingBin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "lading ") {
		t.Fatalf("version: %q %v", out, err)
	}
}
