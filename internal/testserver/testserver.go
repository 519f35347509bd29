// Package testserver runs a real `lading serve` process for end-to-end tests: built from this
// module, on a free port, with a temporary data directory and known admin credentials.
package testserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Admin credentials every test server starts with.
const (
	AccessKeyID     = "LAKTESTADMIN00000000"
	SecretAccessKey = "test-secret-access-key-0123456789abcdef0"
)

// Build compiles the lading binary into dir and returns its path.
func Build(dir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "lading")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/lading")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

// ModuleRoot walks up from the working directory to the directory holding go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Tool finds an external program on PATH or in GOPATH/bin, failing the test with how to install
// it when it is missing: these tests exercise real clients, and CI installs them (.ci/run).
func Tool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("%s is not installed; run `bash .ci/install-tools` (it installs the pinned test clients)", name)
	return ""
}

// Server is a running lading process.
type Server struct {
	Bin     string
	DataDir string
	Addr    string // host:port
	Args    []string
	Env     []string
	Cluster *Cluster // set on a cluster's front: the nodes behind it

	mu     sync.Mutex
	cmd    *exec.Cmd
	logs   *os.File
	exited chan struct{}
}

// URL is the server's base URL: https when it was started with a --tls-* flag.
func (s *Server) URL() string {
	for _, a := range s.Args {
		if strings.HasPrefix(a, "--tls-") {
			return "https://" + s.Addr
		}
	}
	return "http://" + s.Addr
}

// Start runs `lading serve` with the given extra flags on a fresh data dir and waits until it is
// ready. The process is killed when the test ends.
func Start(t testing.TB, bin string, extra ...string) *Server {
	t.Helper()
	return StartAt(t, bin, filepath.Join(t.TempDir(), "data"), extra...)
}

// StartAt is Start on a given data directory; the server's log goes beside it.
func StartAt(t testing.TB, bin, dataDir string, extra ...string) *Server {
	t.Helper()
	s := &Server{Bin: bin, DataDir: dataDir}
	s.Addr = FreeAddr(t)
	s.Args = extra
	s.Env = []string{"LADING_ADMIN_ACCESS_KEY_ID=" + AccessKeyID, "LADING_ADMIN_SECRET_ACCESS_KEY=" + SecretAccessKey}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(s.DataDir, "..", "server.log")); err == nil {
				t.Logf("server log (last 4 KiB):\n%s", tail(b, 4096))
			}
		}
	})
	return s
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// FreeAddr returns a loopback address with a port that was free a moment ago. The port is
// drawn from below the kernel's ephemeral range: one from that range (what listening on port 0
// gives) may be taken, between this call and the server's bind, as the local port of an
// outgoing connection or by another test process listening on port 0, and CI runs test
// packages side by side (a node once exited at start-up there).
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// lowestTestPort is where FreeAddr's ports start: above the well-known and most registered
// ports of the services the machine runs (PostgreSQL, Redis, RabbitMQ, NATS and others).
const lowestTestPort = 16384

func freeAddr() (string, error) {
	top := ephemeralLow()
	for range 200 {
		port := lowestTestPort + rand.IntN(top-lowestTestPort)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // in use: draw again
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		return addr, nil
	}
	return "", fmt.Errorf("no free port between %d and %d after 200 draws", lowestTestPort, top)
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's default 32768 where
// it cannot be read).
func ephemeralLow() int {
	const linuxDefault = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return linuxDefault
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return linuxDefault
	}
	low, err := strconv.Atoi(f[0])
	if err != nil || low <= lowestTestPort+1024 {
		return linuxDefault
	}
	return low
}

// Restart starts the process again on the same data dir and address (after Kill or Stop).
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	logs, err := os.OpenFile(filepath.Join(s.DataDir, "..", "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	// No advisory sync by default: tests import what they need, and only local servers are reachable.
	args := append([]string{"serve", "--addr", s.Addr, "--data-dir", s.DataDir, "--log-level", "warn", "--db-source", "none"}, s.Args...)
	cmd := exec.Command(s.Bin, args...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		_ = logs.Close()
		return err
	}
	s.cmd, s.logs, s.exited = cmd, logs, make(chan struct{})
	exited := s.exited
	go func() { _ = cmd.Wait(); _ = logs.Close(); close(exited) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Readiness only: the tests check the certificate with their clients.
	probe := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer probe.CloseIdleConnections()
	for {
		resp, err := probe.Get(s.URL() + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			// The log says why; CI shows only the test's output.
			return fmt.Errorf("lading exited during start-up; the end of %s:\n%s", filepath.Join(s.DataDir, "..", "server.log"), tail([]byte(s.Logs()), 2048))
		case <-ctx.Done():
			return fmt.Errorf("lading not ready after 30s")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Stop sends SIGTERM (a graceful shutdown) and waits for the process to end.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	<-exited
}

// Exited is closed when the current process ends.
func (s *Server) Exited() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exited
}

// Logs returns what the server wrote so far.
func (s *Server) Logs() string {
	b, _ := os.ReadFile(filepath.Join(s.DataDir, "..", "server.log"))
	return string(b)
}

// DockerConfig writes a docker config.json with the admin credentials for the server and returns
// its directory, for DOCKER_CONFIG (crane, oras) and REGISTRY_AUTH_FILE (skopeo).
func (s *Server) DockerConfig(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	auth := encodeAuth(AccessKeyID, SecretAccessKey)
	body := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, s.Addr, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Lines returns the server's log lines containing substr.
func (s *Server) Lines(substr string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s.Logs()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), substr) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// Run runs a lading command and returns its standard output, failing the test when it exits
// with an error.
func Run(t testing.TB, bin string, args ...string) string {
	t.Helper()
	out, err := RunErr(bin, args...)
	if err != nil {
		t.Fatalf("lading %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// RunErr runs a lading command, returning its standard output and, on failure, an error
// holding its standard error.
func RunErr(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w\nstderr: %s", err, stderr.String())
	}
	return stdout.String(), nil
}

// Main builds the lading binary into a temporary folder for a test package, stores its path in
// *bin, runs the tests, and removes the folder. Use it from TestMain.
func Main(m *testing.M, bin *string) int {
	dir, err := os.MkdirTemp("", "lading-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *bin, err = Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
