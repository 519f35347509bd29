package testserver

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
)

// ClusterEnv names the variable that makes Serve start a cluster of that many nodes (PostgreSQL
// + S3 behind a round-robin front) instead of one node on the embedded defaults.
const ClusterEnv = "LADING_TEST_CLUSTER"

// ClusterSize is the number of nodes $LADING_TEST_CLUSTER asks for; 0 means one node on the
// embedded defaults (SQLite and files in the data directory).
func ClusterSize(t testing.TB) int {
	t.Helper()
	v := os.Getenv(ClusterEnv)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a number of nodes", ClusterEnv, v)
	}
	return n
}

// Serve starts what the test environment asks for: one node on the embedded defaults, or, with
// $LADING_TEST_CLUSTER=N, N nodes on one PostgreSQL schema and one bucket behind a round-robin
// front. Either way clients use the returned server's Addr/URL, and RunStore reaches its store.
func Serve(t testing.TB, bin string, extra ...string) *Server {
	t.Helper()
	if n := ClusterSize(t); n > 0 {
		return StartCluster(t, bin, n, extra...).Front
	}
	return Start(t, bin, extra...)
}

// Cluster is several `lading serve` processes sharing a PostgreSQL schema, a versitygw bucket
// and a secret key, behind a local reverse proxy that sends each request to the next node, as
// a load balancer without affinity does.
type Cluster struct {
	Nodes    []*Server
	Front    *Server // the proxy, as a Server: Addr, URL and DockerConfig are what clients use
	Metadata string  // the --metadata URL
	S3       *S3

	mu     sync.Mutex
	next   int
	down   map[int]bool // nodes the front skips, as a load balancer's health check would
	served []int        // requests the front sent to each node
	last   int          // the node the latest request went to
}

// StartCluster starts n nodes on a fresh PostgreSQL schema (pgtest) and a fresh bucket, and the
// round-robin front. Everything stops when the test ends.
func StartCluster(t testing.TB, bin string, n int, extra ...string) *Cluster {
	t.Helper()
	db := pgtest.New(t)
	c := &Cluster{Metadata: db.Schema(t), S3: StartS3(t), down: map[int]bool{}}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	env := append(c.S3.Env(), auth.SecretKeyEnv+"="+base64.StdEncoding.EncodeToString(key))
	args := append([]string{"--metadata", c.Metadata, "--blobs", c.S3.URL()}, extra...)
	for i := range n {
		s := &Server{Bin: bin, DataDir: filepath.Join(t.TempDir(), "data"), Addr: FreeAddr(t), Args: args}
		s.Env = append([]string{"LADING_ADMIN_ACCESS_KEY_ID=" + AccessKeyID, "LADING_ADMIN_SECRET_ACCESS_KEY=" + SecretAccessKey}, env...)
		// One at a time: the first creates the schema's tables, the others find them.
		if err := s.Restart(); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		t.Cleanup(func() {
			s.Kill()
			if t.Failed() {
				t.Logf("node %d log (last 4 KiB):\n%s", i, tail([]byte(s.Logs()), 4096))
			}
		})
		c.Nodes = append(c.Nodes, s)
	}
	c.served = make([]int, n)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front := &http.Server{Handler: &httputil.ReverseProxy{
		// The Host header stays the front's, so the URLs the nodes write (upload Locations,
		// token realms) lead back through it.
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: c.pick().Addr})
			r.Out.Host = r.In.Host
		},
		// Idle connections are dropped well before a node's own idle timeout (2 minutes), as a
		// load balancer's must be: else the node may close one just as the front sends a
		// request on it, and a POST or PATCH on a closed connection is not retried.
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true, IdleConnTimeout: 30 * time.Second},
		// A node killed mid-request: the client sees what a load balancer gives, a 502.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}}
	go func() {
		if err := front.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("cluster front: %v", err)
		}
	}()
	t.Cleanup(func() { _ = front.Close() })
	c.Front = &Server{Bin: bin, DataDir: c.Nodes[0].DataDir, Addr: ln.Addr().String(), Args: args, Env: c.Nodes[0].Env, Cluster: c}
	return c
}

// pick is the next node the front sends a request to, skipping nodes taken down.
func (c *Cluster) pick() *Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range c.Nodes {
		i := c.next % len(c.Nodes)
		c.next++
		if !c.down[i] {
			c.served[i]++
			c.last = i
			return c.Nodes[i]
		}
	}
	return c.Nodes[0] // all down: the request fails as it would behind a real balancer
}

// Served is how many requests the front has sent to each node.
func (c *Cluster) Served() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.served...)
}

// Last is the node the front sent its latest request to.
func (c *Cluster) Last() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Kill kill -9s node i and takes it out of the front's rotation.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	c.down[i] = true
	c.mu.Unlock()
	c.Nodes[i].Kill()
}

// Restart starts node i again and puts it back into the rotation once it is ready.
func (c *Cluster) Restart(i int) error {
	if err := c.Nodes[i].Restart(); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.down, i)
	c.mu.Unlock()
	return nil
}

// NodeURL is node i's own base URL, for requests that must reach one node.
func (c *Cluster) NodeURL(i int) string {
	return (&url.URL{Scheme: "http", Host: c.Nodes[i].Addr}).String()
}

// StoreFlags name the server's store to a lading command: its data directory, and on a
// cluster the PostgreSQL schema every node shares.
func (s *Server) StoreFlags() []string {
	flags := []string{"--data-dir", s.DataDir}
	if s.Cluster != nil {
		flags = append(flags, "--metadata", s.Cluster.Metadata)
	}
	return flags
}

// RunStore runs a lading command on the server's store (StoreFlags appended) with the server's
// environment (on a cluster: the shared secret key and S3 credentials), returning its output.
func (s *Server) RunStore(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.RunStoreErr(args...)
	if err != nil {
		t.Fatalf("lading %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// RunStoreErr is RunStore returning the error.
func (s *Server) RunStoreErr(args ...string) (string, error) {
	cmd := exec.Command(s.Bin, append(args, s.StoreFlags()...)...)
	cmd.Env = append(os.Environ(), s.Env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w\nstderr: %s", err, stderr.String())
	}
	return stdout.String(), nil
}

// Pid is the process id of the server's current process (0 when it is not running).
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}
