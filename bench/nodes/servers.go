package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
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
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/bench/internal/proc"
	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
	"github.com/lading-registry/lading/internal/testserver"
)

// startNode runs `lading serve` on a free port with the run's admin credentials, env and args,
// and waits until /readyz answers 200.
func startNode(ctx context.Context, bin, dir string, env []string, args ...string) (*proc.Proc, error) {
	addr, err := proc.FreeAddr()
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
	return proc.Start(ctx, "lading "+filepath.Base(dir), addr, filepath.Join(dir, "lading.log"), cmd, time.Minute, func(ctx context.Context) bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		if err != nil {
			return false
		}
		resp, err := probe.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// startS3 runs versitygw on a posix directory under dir, with the bucket the nodes share.
func startS3(ctx context.Context, bin, dir string) (*proc.Proc, error) {
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "s3")
	if err := os.MkdirAll(filepath.Join(root, testserver.S3Bucket), 0o755); err != nil {
		return nil, err
	}
	// Keep-alive as S3 itself does it: versitygw closes every connection without it, and the
	// nodes spent a tenth of their CPU dialling again.
	cmd := exec.Command(bin, "--port", addr, "--keep-alive", "posix", root)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+testserver.S3AccessKey, "ROOT_SECRET_KEY="+testserver.S3SecretKey)
	return proc.Start(ctx, "versitygw", addr, filepath.Join(dir, "versitygw.log"), cmd, time.Minute, func(context.Context) bool {
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

// cpuSeconds is the CPU time process pid has used so far; 0 for a process that is gone (a
// PostgreSQL backend that closed).
func cpuSeconds(pid int) float64 {
	s, err := proc.CPUSeconds(pid)
	if err != nil {
		return 0
	}
	return s
}
