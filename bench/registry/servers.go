package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lading-registry/lading/bench/internal/proc"
)

// Credentials of Lading's bootstrap admin for the run. Distribution runs without auth, as
// configured in peers-setup.md.
const (
	ladingUser   = "admin"
	ladingSecret = "secret"
)

// server is one HTTP server process under test.
type server struct {
	*proc.Proc
	basic bool // whether requests need Lading's Basic credentials
}

// start runs cmd, logging to logPath, and waits until probe answers with any HTTP status.
func start(ctx context.Context, name, addr, logPath, probeMethod, probePath string, basic bool, cmd *exec.Cmd) (*server, error) {
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	p, err := proc.Start(ctx, name, addr, logPath, cmd, 30*time.Second, func(ctx context.Context) bool {
		req, err := http.NewRequestWithContext(ctx, probeMethod, "http://"+addr+probePath, nil)
		if err != nil {
			return false
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return true
	})
	if err != nil {
		return nil, err
	}
	return &server{Proc: p, basic: basic}, nil
}

func startLading(ctx context.Context, bin, dir string) (*server, error) {
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", addr, "--data-dir", data, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "LADING_ADMIN_ACCESS_KEY_ID="+ladingUser, "LADING_ADMIN_SECRET_ACCESS_KEY="+ladingSecret)
	return start(ctx, "lading", addr, filepath.Join(dir, "lading.log"), http.MethodGet, "/v2/", true, cmd)
}

func startDistribution(ctx context.Context, bin, dir string) (*server, error) {
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	// The configuration of peers-setup.md, with logging at warn so that both servers log alike.
	config := fmt.Sprintf(`version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: %q}, delete: {enabled: true}, cache: {blobdescriptor: inmemory}}
http: {addr: %q}
health: {storagedriver: {enabled: false}}
`, filepath.Join(dir, "data"), addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "serve", cfgPath)
	// Distribution always traces; without a collector its OTLP exporter would only fail and log.
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	return start(ctx, "distribution", addr, filepath.Join(dir, "distribution.log"), http.MethodGet, "/v2/", false, cmd)
}

// startServeFile runs this program again as a bare http.ServeFile server on file: the physical
// limit of serving that file over HTTP on this machine.
func startServeFile(ctx context.Context, dir, file string) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, serveFileCommand, addr, file)
	return start(ctx, "servefile", addr, filepath.Join(dir, "servefile.log"), http.MethodHead, "/", false, cmd)
}

// serveFile is the body of the ServeFile helper process.
func serveFile(addr, file string) error {
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 30 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, file) })}
	return srv.ListenAndServe()
}

// peakRSS is the process's high-water resident set size so far (VmHWM), in bytes.
func (s *server) peakRSS() (int64, error) { return proc.PeakRSS(s.Pid()) }

// cpuSeconds is the CPU time (user and system, all threads) the server has used so far.
func (s *server) cpuSeconds() (float64, error) { return proc.CPUSeconds(s.Pid()) }

// cpuDuring returns the CPU seconds the server used while fn ran.
func (s *server) cpuDuring(fn func() error) (float64, error) {
	before, err := s.cpuSeconds()
	if err != nil {
		return 0, err
	}
	if err := fn(); err != nil {
		return 0, err
	}
	after, err := s.cpuSeconds()
	return after - before, err
}
