package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Credentials of Lading's bootstrap admin for the run. Distribution runs without auth, as
// configured in peers-setup.md.
const (
	ladingUser   = "admin"
	ladingSecret = "secret"
)

// server is one HTTP server process under test.
type server struct {
	name  string
	addr  string // host:port
	cmd   *exec.Cmd
	done  chan struct{}
	err   error // of cmd.Wait, once done is closed
	log   string
	basic bool // whether requests need Lading's Basic credentials
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start runs cmd, logging to logPath, and waits until probe answers with any HTTP status.
func start(ctx context.Context, name, addr, logPath, probeMethod, probePath string, basic bool, cmd *exec.Cmd) (*server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{name: name, addr: addr, cmd: cmd, done: make(chan struct{}), log: logPath, basic: basic}
	go func() {
		s.err = cmd.Wait()
		_ = logf.Close()
		close(s.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, probeMethod, "http://"+addr+probePath, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("%s exited before serving (%v); see %s", name, s.err, logPath)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s did not answer on %s within 30s; see %s", name, addr, logPath)
		}
	}
}

func startLading(ctx context.Context, bin, dir string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", addr, "--data-dir", data, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "LADING_ADMIN_ACCESS_KEY_ID="+ladingUser, "LADING_ADMIN_SECRET_ACCESS_KEY="+ladingSecret)
	return start(ctx, "lading", addr, filepath.Join(dir, "lading.log"), http.MethodGet, "/v2/", true, cmd)
}

func startDistribution(ctx context.Context, bin, dir string) (*server, error) {
	addr, err := freeAddr()
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
	addr, err := freeAddr()
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

// stop ends the server with SIGTERM, then SIGKILL if it lingers.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// peakRSS is the process's high-water resident set size so far (VmHWM), in bytes.
func (s *server) peakRSS() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse VmHWM %q: %w", v, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// userHZ is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on Linux's common ABIs).
const userHZ = 100

// cpuSeconds is the CPU time (user and system, all threads) the process has used so far. Unlike
// wall time it barely depends on what else the machine runs, so it shows each server's cost even
// on a busy machine.
func (s *server) cpuSeconds() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces: count from after it.
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc stat: %w", err)
	}
	return float64(utime+stime) / userHZ, nil
}

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
