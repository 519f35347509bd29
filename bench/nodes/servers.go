package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
	"github.com/lading-registry/lading/internal/testserver"
)

// proc is one server process of the run (a Lading node or versitygw).
type proc struct {
	name string
	addr string // host:port
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // of cmd.Wait, once done is closed
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startProc runs cmd with its output in logPath and waits until ready reports true.
func startProc(ctx context.Context, name, addr, logPath string, cmd *exec.Cmd, ready func() bool) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, addr: addr, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !ready() {
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited during start-up (%v); see %s", name, p.err, logPath)
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s not ready on %s after 60s; see %s", name, addr, logPath)
		}
	}
	return p, nil
}

// stop ends the process with SIGTERM, then SIGKILL if it lingers.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// startNode runs `lading serve` on a free port with the run's admin credentials, env and args,
// and waits until /readyz answers 200.
func startNode(ctx context.Context, bin, dir string, env []string, args ...string) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	argv := append([]string{"serve", "--addr", addr, "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn", "--db-source", "none"}, args...)
	cmd := exec.Command(bin, argv...)
	cmd.Env = append(append(os.Environ(), "LADING_ADMIN_ACCESS_KEY_ID="+testserver.AccessKeyID,
		"LADING_ADMIN_SECRET_ACCESS_KEY="+testserver.SecretAccessKey), env...)
	probe := &http.Client{Timeout: 5 * time.Second}
	return startProc(ctx, "lading "+filepath.Base(dir), addr, filepath.Join(dir, "lading.log"), cmd, func() bool {
		resp, err := probe.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// startS3 runs versitygw on a posix directory under dir, with the bucket the nodes share.
func startS3(ctx context.Context, bin, dir string) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "s3")
	if err := os.MkdirAll(filepath.Join(root, testserver.S3Bucket), 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--port", addr, "posix", root)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+testserver.S3AccessKey, "ROOT_SECRET_KEY="+testserver.S3SecretKey)
	return startProc(ctx, "versitygw", addr, filepath.Join(dir, "versitygw.log"), cmd, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
}

// s3Env is what the nodes need to reach versitygw through the standard AWS chain, with nothing
// read from the user's own AWS configuration.
func s3Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + testserver.S3AccessKey, "AWS_SECRET_ACCESS_KEY=" + testserver.S3SecretKey, "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true", "AWS_PROFILE="}
}

// secretKeyEnv is a fresh LADING_SECRET_KEY the nodes share (it seals the stored access keys).
func secretKeyEnv() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return auth.SecretKeyEnv + "=" + base64.StdEncoding.EncodeToString(key), nil
}

// database is a PostgreSQL database made for the run on server (the tests' server, pgtest's
// $LADING_TEST_POSTGRES), dropped by drop.
type database struct {
	server *url.URL
	name   string
}

func createDatabase(ctx context.Context, server string) (*database, error) {
	u, err := url.Parse(server)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pgtest.EnvURL, err)
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	d := &database{server: u, name: "lading_bench_nodes_" + hex.EncodeToString(suffix[:])}
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL at %s (set %s to another server): %w", u.Redacted(), pgtest.EnvURL, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{d.name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	return d, nil
}

// URL is the --metadata URL of the database.
func (d *database) URL() string {
	u := *d.server
	u.Path = "/" + d.name
	return u.String()
}

func (d *database) drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.server.String())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.name}.Sanitize()+" WITH (FORCE)")
	return err
}

// backends are the pids of the PostgreSQL server processes connected to the database (on
// this machine): their CPU time is part of what the three nodes cost.
func (d *database) backends() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		// A backend retitles itself "postgres: [CLUSTER: ]USER DATABASE HOST(PORT) STATE".
		if f := strings.Fields(strings.ReplaceAll(string(cmdline), "\x00", " ")); len(f) >= 3 && f[0] == "postgres:" && slices.Contains(f, d.name) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// userHZ is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on Linux's common ABIs).
const userHZ = 100

// cpuSeconds is the CPU time (user and system, all threads) process pid has used so far; 0 for
// a process that is gone (a PostgreSQL backend that closed).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, field 2, is in parentheses and may hold spaces: count from after it.
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if errors.Join(err1, err2) != nil {
		return 0
	}
	return float64(utime+stime) / userHZ
}
