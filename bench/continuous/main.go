// Command continuous benchmarks continuous scanning, as issue 6 asks: a store holding the
// inventories of many images (100,000 by default) built on a few hundred base images, then one
// new advisory that affects about 1% of them; it measures the time from the start of the
// advisory's import until every finding and outbox event it causes is written, and prints the
// figures with the store's size on disk.
//
// Run it from the repository root:
//
//	go run ./bench/continuous
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/lading-registry/lading/bench/internal/cli"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/vulndb"
)

type config struct {
	gen             genConfig
	workdir         string
	cache           string
	keep            bool
	affected        float64
	target          time.Duration
	cpuprofile      string
	setupProfile    string
	setupMemProfile string
	metadata        string // -metadata: also measure on PostgreSQL (postgres.go)
	pgLog           bool   // -pglog: the server logs every statement of the measured PostgreSQL database
}

func main() {
	var cfg config
	flag.IntVar(&cfg.gen.images, "images", 100000, "images in the registry")
	flag.IntVar(&cfg.gen.bases, "bases", 300, "base images they are built on")
	flag.IntVar(&cfg.gen.repos, "repos", 0, "repositories (default: images/20)")
	flag.IntVar(&cfg.gen.minPkgs, "min-packages", 100, "fewest packages in an image")
	flag.IntVar(&cfg.gen.maxPkgs, "max-packages", 800, "most packages in an image")
	flag.Float64Var(&cfg.gen.fresh, "fresh", 0.97, "probability that a package is at the newest version no advisory affects (lower: more findings per image)")
	flag.Uint64Var(&cfg.gen.seed, "seed", 1, "seed of the generator")
	flag.Float64Var(&cfg.affected, "affected", 0.01, "share of the images the new advisory affects")
	flag.DurationVar(&cfg.target, "target", time.Second, "target for import to all findings and events written")
	flag.StringVar(&cfg.workdir, "workdir", os.TempDir(), "where to make the run's temporary directory (100,000 images need about 10 GiB)")
	flag.StringVar(&cfg.cache, "cache", "", "folder keeping the store as set up: reused when it holds one made with the same flags, else written (saves the setup when measuring again)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory")
	flag.StringVar(&cfg.setupProfile, "setupprofile", "", "write a CPU profile of the setup to this file")
	flag.StringVar(&cfg.setupMemProfile, "setupmemprofile", "", "write a heap profile of the setup to this file, once every image is written (what the loader keeps, before it writes the counts and the index)")
	flag.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of the measured part (import to last event) to this file")
	flag.BoolVar(&cfg.pgLog, "pglog", false, "with -metadata: have the server log every statement of the measured database with its duration (log_min_duration_statement = 0), to profile PostgreSQL's part from the server's log")
	flag.StringVar(&cfg.metadata, "metadata", "", "also measure on PostgreSQL: the store copied (metamigrate) into a database on this server, postgres://user@host:port/db (any database, for CREATE DATABASE); kept as a template named after the setup when -cache is set")
	flag.Parse()
	if cfg.gen.repos == 0 {
		cfg.gen.repos = max(1, cfg.gen.images/20)
	}
	if cfg.gen.images < 1 || cfg.gen.bases < 1 || cfg.gen.repos > cfg.gen.images || cfg.gen.minPkgs < 1 || cfg.gen.maxPkgs < cfg.gen.minPkgs ||
		cfg.affected <= 0 || cfg.affected > 1 {
		cli.BadFlags("invalid flags")
	}
	cli.Run(func(ctx context.Context, out io.Writer) error { return run(ctx, cfg, out) })
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func run(ctx context.Context, cfg config, w io.Writer) error {
	dir, err := os.MkdirTemp(cfg.workdir, "lading-contbench-")
	if err != nil {
		return err
	}
	if cfg.keep {
		fmt.Fprintln(w, "keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	fmt.Fprintf(w, "continuous scanning benchmark: %d images, %d bases, %d repositories, %d-%d packages per image, %.1f%% affected\n",
		cfg.gen.images, cfg.gen.bases, cfg.gen.repos, cfg.gen.minPkgs, cfg.gen.maxPkgs, cfg.affected*100)
	fmt.Fprintf(w, "machine: %d CPUs, %s, load average %s\n", runtime.NumCPU(), runtime.Version(), loadAverage())

	dbPath := filepath.Join(dir, "lading.db")
	setupStart := time.Now()
	if cfg.setupProfile != "" {
		f, err := os.Create(cfg.setupProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	st, err := setupStore(ctx, cfg, dbPath, w)
	if err != nil {
		return err
	}
	setup := time.Since(setupStart)
	if cfg.setupProfile != "" {
		pprof.StopCPUProfile()
	}
	var pg *pgBench
	if cfg.metadata != "" {
		if pg, err = preparePostgres(ctx, cfg, dbPath, st, w); err != nil {
			return err
		}
		defer func() {
			if err := pg.close(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
			}
		}()
	}

	// Reopen: the setup's WAL is checkpointed and its connections' caches dropped, as after a
	// restart; the advisory index is loaded before the clock starts, as a server keeps it.
	db, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	quiet := slog.New(slog.DiscardHandler)
	watcher := vulndb.NewWatcher(db, vulndb.WatcherOptions{Logger: quiet})
	if _, err := watcher.Refresh(ctx); err != nil {
		return err
	}
	vdb := vulndb.New(db, vulndb.Options{Logger: quiet})
	origin := events.Origin{Account: "123456789012", Region: "us-east-1"}
	svc := scanning.New(db, nil, watcher, scanning.Config{Origin: origin, Logger: quiet})
	before, err := countRows(ctx, db, st.vulnID, 0)
	if err != nil {
		return err
	}
	sizeBefore := storeSize(dbPath)
	free, err := freeBytes(ctx, db)
	if err != nil {
		return err
	}
	runtime.GC()
	fmt.Fprintf(w, "load average before the measurement: %s\n", loadAverage())

	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	t0 := time.Now()
	res, err := vdb.Import(ctx, st.advisoryPath)
	if err != nil {
		pprof.StopCPUProfile()
		return err
	}
	t1 := time.Now()
	ch, err := watcher.Refresh(ctx)
	if err != nil || ch == nil {
		pprof.StopCPUProfile()
		return fmt.Errorf("index refresh: change %v, %w", ch, err)
	}
	t2 := time.Now()
	n, err := svc.Reevaluate(ctx, *ch)
	t3 := time.Now()
	pprof.StopCPUProfile()
	if err != nil {
		return fmt.Errorf("re-evaluate: %w", err)
	}
	after, err := countRows(ctx, db, st.vulnID, t2.UnixMilli())
	if err != nil {
		return err
	}
	sizeAfter := storeSize(dbPath)
	total := t3.Sub(t0)

	fmt.Fprintf(w, "\nadvisory %s: %s %s, all versions up to %s (held by %d images; %d packages changed, version %d -> %d, full=%v)\n",
		st.vulnID, st.key.Ecosystem, st.key.Name, st.lastAffected, st.holders, len(res.Keys), ch.From, ch.To, ch.Full)
	rows := [][2]string{
		{"setup (corpus, advisories, images, index)", setup.Round(time.Millisecond).String()},
		{"import of the advisory (vulndb.Import)", t1.Sub(t0).Round(time.Microsecond).String()},
		{"index refresh (Watcher.Refresh)", t2.Sub(t1).Round(time.Microsecond).String()},
		{"re-evaluation (Service.Reevaluate)", t3.Sub(t2).Round(time.Microsecond).String()},
		{"total, import to last event written", total.Round(time.Microsecond).String()},
		{"images re-evaluated", fmt.Sprint(n)},
		{"new ACTIVE findings of the advisory", fmt.Sprint(after.newActive - before.newActive)},
		{"findings observed (lastObservedAt moved)", fmt.Sprint(after.observed)},
		{"finding rows written", fmt.Sprint(after.rowsWritten)},
		{"\"Inspector2 Finding\" events written", fmt.Sprint(after.findingEvents - before.findingEvents)},
		{"scan usage rows written", fmt.Sprint(after.usage - before.usage)},
		{"store on disk before (file + WAL)", sizeBefore.String()},
		{"store on disk after (file + WAL)", sizeAfter.String()},
		{"free pages in the file before", fmt.Sprintf("%.2f GiB (left by migrations; VACUUM returns them)", float64(free)/(1<<30))},
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		fmt.Fprintf(w, "%-44s %s\n", r[0], r[1])
	}
	verdict := "PASS"
	var problems []string
	if total >= cfg.target {
		verdict = "FAIL"
	}
	if got := after.newActive - before.newActive; got != st.holders || n != st.holders {
		problems = append(problems, fmt.Sprintf("expected %d new findings and images re-evaluated, got %d and %d", st.holders, got, n))
	}
	if after.rowsWritten != st.holders {
		problems = append(problems, fmt.Sprintf("expected %d finding rows written (the new findings), got %d", st.holders, after.rowsWritten))
	}
	if got := after.findingEvents - before.findingEvents; got != st.holders {
		problems = append(problems, fmt.Sprintf("expected %d finding events, got %d", st.holders, got))
	}
	if len(problems) > 0 {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%-44s %s (target < %s)\n", "result", verdict, cfg.target)
	// Issue 15's store target, 2.5 GiB at 100,000 images, in proportion for other sizes; a
	// figure, not part of the verdict (the exit status is about the time and the checks).
	sizeTarget := int64(storeTargetPerImage * float64(cfg.gen.images))
	sizeVerdict := "PASS"
	if sizeBefore.file+sizeBefore.wal > sizeTarget {
		sizeVerdict = "FAIL"
	}
	fmt.Fprintf(w, "%-44s %s (%s per image; target <= %.2f GiB)\n", "store size", sizeVerdict,
		byteCount((sizeBefore.file+sizeBefore.wal)/int64(max(cfg.gen.images, 1))), float64(sizeTarget)/(1<<30))
	if free > 0 {
		inUse := sizeBefore.file + sizeBefore.wal - free
		inUseVerdict := "PASS"
		if inUse > sizeTarget {
			inUseVerdict = "FAIL"
		}
		fmt.Fprintf(w, "%-44s %s (%.2f GiB, %s per image)\n", "store size without free pages", inUseVerdict,
			float64(inUse)/(1<<30), byteCount(inUse/int64(max(cfg.gen.images, 1))))
	}
	fmt.Fprintf(w, "load average after: %s\n", loadAverage())
	if pg != nil {
		pgProblems, err := pg.measure(ctx, cfg, st, sqliteFigures{reevaluate: t3.Sub(t2), total: total, size: sizeBefore.file + sizeBefore.wal}, w)
		if err != nil {
			return err
		}
		problems = append(problems, pgProblems...)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

type counts struct {
	newActive, findingEvents, usage, observed, rowsWritten int
}

// countQuery is one count countRows reads into dst.
type countQuery struct {
	dst  *int
	sql  string
	args []any
}

// countQueries are the counts read before (since 0: those that need no time) and after the
// re-evaluation, on either engine: ph(n) is the engine's n-th placeholder.
func countQueries(c *counts, vulnID string, since int64, ph func(int) string) []countQuery {
	qs := []countQuery{
		{&c.newActive, "SELECT count(*) FROM findings WHERE vulnerability_id = " + ph(1) + " AND status = 'ACTIVE'", []any{vulnID}},
		{&c.findingEvents, "SELECT count(*) FROM outbox WHERE detail_type = 'Inspector2 Finding'", nil},
		{&c.usage, "SELECT count(*) FROM scan_usage", nil},
	}
	if since == 0 {
		return qs
	}
	return append(qs,
		// lastObservedAt as the store reads it (migration 0021): while ACTIVE, the later of the
		// finding's own time and its image's.
		countQuery{&c.observed, `SELECT count(*) FROM findings f JOIN image_scans s ON s.repository = f.repository AND s.image_digest = f.image_digest
			AND s.scan_type = f.scan_type WHERE CASE WHEN f.status = 'ACTIVE' AND s.findings_observed_at > f.last_observed_at
			THEN s.findings_observed_at ELSE f.last_observed_at END >= ` + ph(1), []any{since}},
		// Finding rows the re-evaluation wrote (each written row carries its own time): an
		// unchanged finding is observed by its image's time, not by rewriting its row.
		countQuery{&c.rowsWritten, "SELECT count(*) FROM findings WHERE last_observed_at >= " + ph(1) + " OR updated_at >= " + ph(2),
			[]any{since, since}})
}

func countRows(ctx context.Context, db *sqlite.DB, vulnID string, since int64) (counts, error) {
	var c counts
	qs := countQueries(&c, vulnID, since, func(int) string { return "?" })
	for i, q := range qs {
		// The two counts over every finding read SQLite's rows as the findings view does
		// (0045, 0053, 0055: status X'01' is ACTIVE, times after first_observed_at), without
		// the view's joins per row: a target's image scan is looked up once and its rows read
		// in key order (CROSS JOIN keeps that order). Through the view they took an hour at
		// 1,000,000 images.
		switch q.dst {
		case &c.observed:
			qs[i].sql = `SELECT count(*) FROM scan_targets t CROSS JOIN image_scans s CROSS JOIN finding_rows f
				WHERE s.repository = t.repository AND s.image_digest = t.image_digest AND s.scan_type = t.scan_type AND f.target_id = t.id
				AND CASE WHEN f.status IN (X'01', 'ACTIVE') AND s.findings_observed_at > f.first_observed_at + f.last_observed_after
					THEN s.findings_observed_at ELSE f.first_observed_at + f.last_observed_after END >= ?`
		case &c.rowsWritten:
			qs[i].sql = `SELECT count(*) FROM finding_rows WHERE first_observed_at + last_observed_after >= ? OR first_observed_at + updated_after >= ?`
		}
	}
	for _, q := range qs {
		if err := db.Reader().QueryRowContext(ctx, q.sql, q.args...).Scan(q.dst); err != nil {
			return c, err
		}
	}
	return c, nil
}

type diskSize struct{ file, wal int64 }

func (d diskSize) String() string {
	return fmt.Sprintf("%.2f GiB (%d + %d bytes)", float64(d.file+d.wal)/(1<<30), d.file, d.wal)
}

// storeTargetPerImage is the store size per image of issue 15's target (2.5 GiB at 100,000 images).
const storeTargetPerImage = 2.5 * (1 << 30) / 100000

// byteCount is n bytes in KB (1,000 bytes).
func byteCount(n int64) string { return fmt.Sprintf("%.1f KB", float64(n)/1000) }

// freeBytes is the size of the store file's free pages: what a migration dropping an index
// leaves in the file until a VACUUM.
func freeBytes(ctx context.Context, db *sqlite.DB) (int64, error) {
	var pages, size int64
	if err := db.Reader().QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&pages); err != nil {
		return 0, fmt.Errorf("freelist: %w", err)
	}
	if err := db.Reader().QueryRowContext(ctx, "PRAGMA page_size").Scan(&size); err != nil {
		return 0, fmt.Errorf("page size: %w", err)
	}
	return pages * size, nil
}

func storeSize(path string) diskSize {
	var d diskSize
	if fi, err := os.Stat(path); err == nil {
		d.file = fi.Size()
	}
	if fi, err := os.Stat(path + "-wal"); err == nil {
		d.wal = fi.Size()
	}
	return d
}

// policyContinuous is the registry configuration of the benchmark: enhanced scanning, every
// repository scanned continuously.
func policyContinuous() policy.Policy {
	return policy.Policy{ScanType: policy.ScanTypeEnhanced, Rules: []policy.Rule{{Frequency: policy.FrequencyContinuous,
		Filters: []policy.Filter{{Value: "*", Type: policy.FilterTypeWildcard}}}}}
}
