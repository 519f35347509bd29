// Command nodes benchmarks Lading on several nodes against one node, as issue 15 asks: the
// push and pull throughput of three nodes on one PostgreSQL database and one S3 bucket
// (versitygw) against one node on the embedded defaults (SQLite and files), on the same
// machine, with a client spreading its requests over the nodes; and 64 concurrent pushes of
// images sharing layers across the three nodes, every image then pulled back and checked byte
// for byte. It prints each figure, the ratio, the target and PASS or FAIL.
//
// Run it from the repository root:
//
//	go run ./bench/nodes
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/lading-registry/lading/bench/internal/cli"
	"github.com/lading-registry/lading/bench/internal/machine"
	"github.com/lading-registry/lading/bench/internal/proc"
	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
	"github.com/lading-registry/lading/internal/testserver"
)

type config struct {
	repo        string // repository root, where ./cmd/lading builds
	workRoot    string
	keep        bool
	reps        int
	workers     int
	smallImages int
	smallSize   int64
	largeImages int
	largeSize   int64
	concurrent  int
	nodes       int
	postgres    string
	versitygw   string
	profiles    string // where the nodes write CPU profiles, if set
	diagnose    bool   // also measure one node on PostgreSQL + S3
}

func main() {
	var cfg config
	var smallKiB, largeMiB int64
	flag.StringVar(&cfg.repo, "repo", ".", "root of the Lading repository (where ./cmd/lading is)")
	flag.StringVar(&cfg.workRoot, "workdir", os.TempDir(), "where to make the run's temporary directory")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (data, bucket and logs) after the run")
	flag.IntVar(&cfg.reps, "reps", 3, "repetitions of each throughput measurement")
	flag.IntVar(&cfg.workers, "workers", 8, "images pushed or pulled at once in the throughput measurements")
	flag.IntVar(&cfg.smallImages, "small-images", 200, "small images pushed then pulled in each repetition")
	flag.Int64Var(&smallKiB, "small-kib", 16, "size of a small image's layer in KiB")
	flag.IntVar(&cfg.largeImages, "large-images", 4, "large images pushed then pulled in each repetition")
	flag.Int64Var(&largeMiB, "large-mib", 32, "size of a large image's layer in MiB")
	flag.IntVar(&cfg.concurrent, "concurrent", 64, "images sharing base layers pushed all at once across the nodes")
	flag.IntVar(&cfg.nodes, "nodes", 3, "nodes on PostgreSQL + S3")
	flag.StringVar(&cfg.postgres, "postgres", pgtest.ServerURL(), "PostgreSQL server the run creates (and drops) its database on (default: $"+pgtest.EnvURL+" or the tests' server)")
	flag.BoolVar(&cfg.diagnose, "single-shared", true, "also measure one node on PostgreSQL + S3, to tell what the shared stores cost from what several nodes cost")
	flag.StringVar(&cfg.profiles, "cpuprofile", "", "write each node's CPU profile into this directory (one.pprof, shared1.pprof, ...), to see where the time goes")
	flag.StringVar(&cfg.versitygw, "versitygw", "", "versitygw binary (default: PATH or $(go env GOPATH)/bin)")
	flag.Parse()
	cfg.smallSize, cfg.largeSize = smallKiB<<10, largeMiB<<20
	if cfg.reps < 1 || cfg.workers < 1 || cfg.smallImages < 1 || cfg.smallSize < 1 || cfg.largeImages < 1 || cfg.largeSize < 1 ||
		cfg.concurrent < 1 || cfg.nodes < 1 {
		cli.BadFlags("invalid flags")
	}
	cli.Run(func(ctx context.Context, out io.Writer) error { return run(ctx, cfg, out) })
}

// progress writes a progress line on standard error, stamped with the seconds since start.
var progress = cli.Progress()

// registry is one registry under test: its nodes, what they share, and a client spreading
// requests over them.
type registry struct {
	name   string
	nodes  []*proc.Proc
	s3     *proc.Proc // nil on the embedded defaults
	db     *database  // nil on the embedded defaults
	client *client
}

// cpu is the CPU time its processes used so far: the nodes, and versitygw and the database's
// PostgreSQL backends when it has them, in that order.
func (r *registry) cpu() [3]float64 {
	var c [3]float64
	for _, n := range r.nodes {
		c[0] += cpuSeconds(n.Pid())
	}
	if r.s3 != nil {
		c[1] = cpuSeconds(r.s3.Pid())
	}
	if r.db != nil {
		for _, pid := range r.db.backends() {
			c[2] += cpuSeconds(pid)
		}
	}
	return c
}

func (r *registry) stop() {
	for _, n := range r.nodes {
		n.Stop()
	}
	if r.s3 != nil {
		r.s3.Stop()
	}
	if r.client != nil {
		r.client.transport.CloseIdleConnections()
	}
}

func run(ctx context.Context, cfg config, out io.Writer) (err error) {
	if cfg.repo, err = filepath.Abs(cfg.repo); err != nil {
		return err
	}
	if cfg.profiles != "" {
		if cfg.profiles, err = filepath.Abs(cfg.profiles); err != nil {
			return err
		}
		if err := os.MkdirAll(cfg.profiles, 0o755); err != nil {
			return err
		}
	}
	work, err := os.MkdirTemp(cfg.workRoot, "lading-bench-nodes-")
	if err != nil {
		return err
	}
	loadStart := machine.LoadAverage()
	var regs []*registry
	defer func() {
		if err != nil && ctx.Err() == nil {
			dumpLogs(work)
		}
		for _, r := range regs {
			r.stop()
		}
		for _, r := range regs {
			if r.db != nil {
				if dropErr := r.db.drop(); dropErr != nil {
					progress("drop database %s: %v", r.db.name, dropErr)
				}
			}
		}
		if cfg.keep {
			progress("kept %s", work)
		} else if rmErr := os.RemoveAll(work); rmErr != nil && err == nil {
			err = rmErr
		}
	}()

	progress("building ./cmd/lading")
	bin := filepath.Join(work, "lading")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/lading")
	build.Dir = cfg.repo
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, b)
	}
	gw, err := findVersitygw(ctx, cfg.versitygw)
	if err != nil {
		return err
	}

	progress("starting one node on the embedded defaults (SQLite and files)")
	one := &registry{name: "1 node (SQLite+fs)"}
	regs = append(regs, one)
	n, err := startNode(ctx, bin, filepath.Join(work, "one"), nil, profileFlag(cfg, "one")...)
	if err != nil {
		return err
	}
	one.nodes = []*proc.Proc{n}
	one.client = newClient([]string{n.Addr})

	progress("starting %d nodes on PostgreSQL (%s) and versitygw", cfg.nodes, cfg.postgres)
	many, err := startShared(ctx, cfg, bin, gw, filepath.Join(work, "shared"), cfg.nodes)
	if many != nil {
		regs = append(regs, many)
	}
	if err != nil {
		return err
	}
	measured := []*registry{one, many}
	if cfg.diagnose {
		progress("starting 1 node on PostgreSQL and versitygw")
		single, err := startShared(ctx, cfg, bin, gw, filepath.Join(work, "single"), 1)
		if single != nil {
			regs = append(regs, single)
		}
		if err != nil {
			return err
		}
		measured = append(measured, single)
	}

	res, err := measureThroughput(ctx, cfg, measured)
	if err != nil {
		return err
	}
	conc, err := measureConcurrent(ctx, cfg, many)
	if err != nil {
		return err
	}
	report(out, cfg, res, conc, loadStart)
	return nil
}

// startShared starts n nodes on a database and a versitygw bucket of their own, sharing a
// secret key, one at a time (the first makes the tables, the others find them). The registry
// it returns, even with an error, holds what was started, to be stopped and dropped.
func startShared(ctx context.Context, cfg config, bin, gw, dir string, n int) (*registry, error) {
	r := &registry{name: fmt.Sprintf("%d nodes (PostgreSQL+S3)", n)}
	if n == 1 {
		r.name = "1 node (PostgreSQL+S3)"
	}
	db, err := createDatabase(ctx, cfg.postgres)
	if err != nil {
		return nil, err
	}
	r.db = db
	if r.s3, err = startS3(ctx, gw, filepath.Join(dir, "s3")); err != nil {
		return r, err
	}
	secret, err := secretKeyEnv()
	if err != nil {
		return r, err
	}
	env := append(s3Env(), secret)
	blobs := "s3://" + testserver.S3Bucket + "?endpoint=http://" + r.s3.Addr + "&region=us-east-1"
	var addrs []string
	for i := range n {
		name := fmt.Sprint(filepath.Base(dir), i+1)
		args := append([]string{"--metadata", db.URL(), "--blobs", blobs}, profileFlag(cfg, name)...)
		node, err := startNode(ctx, bin, filepath.Join(dir, name), env, args...)
		if err != nil {
			return r, err
		}
		r.nodes = append(r.nodes, node)
		addrs = append(addrs, node.Addr)
	}
	r.client = newClient(addrs)
	return r, nil
}

// profileFlag is the flag that makes node name write its CPU profile, when asked for.
func profileFlag(cfg config, name string) []string {
	if cfg.profiles == "" {
		return nil
	}
	return []string{"--cpuprofile", filepath.Join(cfg.profiles, name+".pprof")}
}

// findVersitygw is the versitygw binary: the flag's, on PATH, or in $(go env GOPATH)/bin.
func findVersitygw(ctx context.Context, explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw not found: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 (or .ci/install-tools)")
}

// dumpLogs prints the end of every log of the run, to explain a failure.
func dumpLogs(work string) {
	var logs []string
	_ = filepath.WalkDir(work, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".log") {
			logs = append(logs, path)
		}
		return nil
	})
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil || len(b) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		fmt.Fprintf(os.Stderr, "--- %s\n%s\n", l, strings.Join(lines[max(0, len(lines)-20):], "\n"))
	}
}
