package testserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// pgBin holds initdb and pg_ctl (Debian's PostgreSQL 15, which CI installs).
const pgBin = "/usr/lib/postgresql/15/bin"

// Postgres is a private PostgreSQL server for a test that stops and starts it (the machine's
// shared server is never restarted by tests). It runs as the postgres user when the test runs
// as root, since initdb refuses root.
type Postgres struct {
	Dir  string // the cluster's data directory
	Port int
	as   []string // the runuser prefix, or nothing
}

// StartPostgres initialises a cluster in a temporary directory and starts it on a free port,
// with trust authentication on loopback; it is stopped and removed when the test ends.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	// Not t.TempDir: its parents are root's (0700), which the postgres user cannot enter.
	dir, err := os.MkdirTemp("", "lading-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	_, port, err := net.SplitHostPort(FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &Postgres{Dir: filepath.Join(dir, "data")}
	if p.Port, err = strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, PostgreSQL needs a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		p.as = []string{"runuser", "-u", "postgres", "--"}
	}
	if out, err := p.run(filepath.Join(pgBin, "initdb"), "-D", p.Dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = p.Stop() })
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// URL is a connection URL of the server's postgres database.
func (p *Postgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.Port)
}

// Start starts the server (again) and waits until it accepts connections.
func (p *Postgres) Start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.Port, filepath.Dir(p.Dir))
	if out, err := p.run(filepath.Join(pgBin, "pg_ctl"), "start", "-w", "-D", p.Dir, "-l", filepath.Join(filepath.Dir(p.Dir), "postgres.log"), "-o", opts); err != nil {
		return fmt.Errorf("pg_ctl start: %w\n%s", err, out)
	}
	return nil
}

// Stop stops the server (fast shutdown: open connections are cut, as in a restart).
func (p *Postgres) Stop() error {
	if out, err := p.run(filepath.Join(pgBin, "pg_ctl"), "stop", "-w", "-m", "fast", "-D", p.Dir); err != nil &&
		!strings.Contains(string(out), "Is server running?") {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

func (p *Postgres) run(name string, args ...string) ([]byte, error) {
	argv := append(append(append([]string(nil), p.as...), name), args...)
	return exec.Command(argv[0], argv[1:]...).CombinedOutput()
}
