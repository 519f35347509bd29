package main

// The PostgreSQL side of the benchmark (-metadata, issue 15 point 5: "the same on PostgreSQL
// within 2x of SQLite"). The SQLite store as set up is copied into a database on the server with
// the product's own copier (metamigrate, what `lading admin migrate --to-metadata` runs) and
// VACUUM ANALYZE'd; that database is kept, named after the setup, as the template of each run's
// database (CREATE DATABASE ... TEMPLATE, a file copy), so that a rerun does not copy again. The
// run's database is measured as the SQLite store is, and dropped.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/store/metamigrate"
	"github.com/lading-registry/lading/internal/store/postgres"
	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/vulndb"
)

// pgRatio is issue 15's bound: PostgreSQL's size and re-evaluation time within 2x of SQLite's.
const pgRatio = 2.0

// pgTemplateComment marks a template database whose copy and VACUUM ANALYZE finished; one
// without it is an interrupted copy, which the next run resumes (metamigrate is resumable).
const pgTemplateComment = "lading bench/continuous: copy complete"

// pgBench is the PostgreSQL database a run measures, made from the template of its setup.
type pgBench struct {
	server   *url.URL // the -metadata URL: the server, and a database to connect to for CREATE/DROP
	template string   // the setup's copy, kept when -cache is set
	run      string   // this run's database
	dropTmpl bool
}

// sqliteFigures are the SQLite store's figures of the same run, for the comparison.
type sqliteFigures struct {
	reevaluate, total time.Duration
	size              int64
}

func (p *pgBench) dbURL(name string) string {
	u := *p.server
	u.Path = "/" + name
	return u.String()
}

func (p *pgBench) admin(ctx context.Context) (*pgx.Conn, error) {
	c, err := pgx.Connect(ctx, p.server.String())
	if err != nil {
		return nil, fmt.Errorf("postgres %s: %w", p.server.Redacted(), err)
	}
	return c, nil
}

// preparePostgres makes the run's PostgreSQL database from the SQLite store at dbPath (as set
// up, before any measurement): the setup's template is reused, resumed or copied, then cloned.
func preparePostgres(ctx context.Context, cfg config, dbPath string, st *setupResult, w io.Writer) (*pgBench, error) {
	u, err := url.Parse(cfg.metadata)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("-metadata: want postgres://user@host:port/database, got %q", cfg.metadata)
	}
	// The setup's identity: its JSON holds the flags and the advisory, stamped at setup time,
	// so a store set up again (same flags, new data) gets a template of its own.
	raw, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	p := &pgBench{server: u, template: "lading_contbench_" + hex.EncodeToString(sum[:6]),
		run: fmt.Sprintf("lading_contbench_run_%d", os.Getpid()), dropTmpl: cfg.cache == "" && !cfg.keep}
	admin, err := p.admin(ctx)
	if err != nil {
		return nil, err
	}
	defer admin.Close(context.WithoutCancel(ctx))

	var comment *string
	err = admin.QueryRow(ctx, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", p.template).Scan(&comment)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{p.template}.Sanitize()); err != nil {
			return nil, err
		}
		err = p.copyTemplate(ctx, dbPath, false, w)
	case err != nil:
		return nil, err
	case comment == nil || *comment != pgTemplateComment:
		err = p.copyTemplate(ctx, dbPath, true, w)
	default:
		fmt.Fprintf(w, "postgres: database %s reused (copied earlier from this setup)\n", p.template)
		err = p.migrateTemplate(ctx, w)
	}
	if err != nil {
		return nil, err
	}
	if err := p.dropRun(ctx, admin); err != nil {
		return nil, err
	}
	// FILE_COPY: the template's files copied and fsync'd, with checkpoints before and after, so
	// that no writeback of the copy runs during the measurements (WAL_LOG, the default, would
	// write the whole database through the WAL).
	start := time.Now()
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s STRATEGY FILE_COPY",
		pgx.Identifier{p.run}.Sanitize(), pgx.Identifier{p.template}.Sanitize())); err != nil {
		return nil, fmt.Errorf("postgres: clone the template: %w", err)
	}
	fmt.Fprintf(w, "postgres: database %s cloned from %s in %s\n", p.run, p.template, time.Since(start).Round(time.Millisecond))
	if cfg.pgLog {
		// A database's settings are not cloned with it: set on the run's own, before any
		// connection to it.
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{p.run}.Sanitize()+" SET log_min_duration_statement = 0"); err != nil {
			return nil, fmt.Errorf("postgres: -pglog: %w", err)
		}
	}
	// The clone's gigabytes may push the SQLite store out of a full page cache: it is read
	// again, as the PostgreSQL store is (prewarm) before its own measurement.
	if err := readOnce(dbPath); err != nil {
		return nil, err
	}
	return p, nil
}

func readOnce(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// copyTemplate copies the SQLite store into the template database with metamigrate (resuming
// an interrupted copy), VACUUM ANALYZEs it and marks it complete.
func (p *pgBench) copyTemplate(ctx context.Context, dbPath string, resumed bool, w io.Writer) error {
	start := time.Now()
	src, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, p.dbURL(p.template))
	if err != nil {
		return err
	}
	var rows int64
	// A resumed copy is also verified (row counts and checksums of every table), as the copier
	// offers: an interruption must not leave the benchmark measuring a partial store.
	_, err = metamigrate.Copy(ctx, src, dst.Pool(), metamigrate.Options{Verify: resumed,
		Progress: func(r metamigrate.TableReport) { rows += r.Copied }})
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("postgres: copy into %s (a rerun resumes it): %w", p.template, err)
	}
	copied := time.Since(start)
	start = time.Now()
	conn, err := pgx.Connect(ctx, p.dbURL(p.template))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		return fmt.Errorf("postgres: vacuum %s: %w", p.template, err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("COMMENT ON DATABASE %s IS '%s'", pgx.Identifier{p.template}.Sanitize(), pgTemplateComment)); err != nil {
		return err
	}
	what := "copied"
	if resumed {
		what = "copy resumed and verified"
	}
	fmt.Fprintf(w, "postgres: store %s into database %s in %s (%d rows, metamigrate.Copy), VACUUM ANALYZE in %s\n",
		what, p.template, copied.Round(time.Millisecond), rows, time.Since(start).Round(time.Millisecond))
	return nil
}

// migrateTemplate brings a template copied by an earlier Lading to this one's schema (the
// migrations Open applies), once, and VACUUM ANALYZEs it when any ran, rather than having each
// run's clone migrate.
func (p *pgBench) migrateTemplate(ctx context.Context, w io.Writer) error {
	conn, err := pgx.Connect(ctx, p.dbURL(p.template))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	latest := func() (int, error) {
		var v int
		err := conn.QueryRow(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v)
		return v, err
	}
	before, err := latest()
	if err != nil {
		return fmt.Errorf("postgres: schema of %s: %w", p.template, err)
	}
	start := time.Now()
	db, err := postgres.Open(ctx, p.dbURL(p.template))
	if err != nil {
		return fmt.Errorf("postgres: migrate %s: %w", p.template, err)
	}
	if err := db.Close(); err != nil {
		return err
	}
	after, err := latest()
	if err != nil || after == before {
		return err
	}
	migrated := time.Since(start)
	start = time.Now()
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		return fmt.Errorf("postgres: vacuum %s: %w", p.template, err)
	}
	fmt.Fprintf(w, "postgres: database %s migrated from schema %d to %d in %s, VACUUM ANALYZE in %s\n", p.template, before, after,
		migrated.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return nil
}

// dropRun drops this run's database and those of earlier runs that ended without dropping
// theirs (killed), unless another run is connected to them.
func (p *pgBench) dropRun(ctx context.Context, admin *pgx.Conn) error {
	rows, err := admin.Query(ctx, `SELECT datname FROM pg_database d WHERE datname LIKE 'lading\_contbench\_run\_%'
		AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)`)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()); err != nil {
			return fmt.Errorf("postgres: drop %s: %w", n, err)
		}
	}
	return nil
}

// close drops the run's database, and the template when it is not cached.
func (p *pgBench) close(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	admin, err := p.admin(ctx)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	names := []string{p.run}
	if p.dropTmpl {
		names = append(names, p.template)
	}
	for _, n := range names {
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()); err != nil {
			return fmt.Errorf("postgres: drop %s: %w", n, err)
		}
	}
	return nil
}

// pgSize is the store's size: every table of the schema with its indexes and TOAST.
type pgSize struct {
	total, database int64
	tables          []pgTableSize
}

type pgTableSize struct {
	name                      string
	total, heap, index, toast int64
}

func measurePGSize(ctx context.Context, conn *pgx.Conn) (pgSize, error) {
	var s pgSize
	rows, err := conn.Query(ctx, `SELECT c.relname, pg_total_relation_size(c.oid), pg_relation_size(c.oid), pg_indexes_size(c.oid),
		COALESCE(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0)
		FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
		ORDER BY 2 DESC, 1`)
	if err != nil {
		return s, err
	}
	s.tables, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgTableSize, error) {
		var t pgTableSize
		err := r.Scan(&t.name, &t.total, &t.heap, &t.index, &t.toast)
		return t, err
	})
	if err != nil {
		return s, err
	}
	for _, t := range s.tables {
		s.total += t.total
	}
	err = conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&s.database)
	return s, err
}

// prewarm reads every relation of the schema (tables, their TOAST and indexes) once into the
// kernel's page cache, as the SQLite store's file is read once before its clock starts. It
// returns false when the server lacks pg_prewarm.
func prewarm(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var avail bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_prewarm')").Scan(&avail); err != nil || !avail {
		return false, err
	}
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_prewarm"); err != nil {
		return false, err
	}
	_, err := conn.Exec(ctx, `WITH t AS (SELECT oid, reltoastrelid FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'),
		r AS (SELECT oid FROM t UNION ALL SELECT reltoastrelid FROM t WHERE reltoastrelid <> 0)
		SELECT sum(pg_prewarm(x, 'read')) FROM (SELECT oid AS x FROM r UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid IN (SELECT oid FROM r)) a`)
	return err == nil, err
}

// measure runs the benchmark's measurement on the run's database and compares it with SQLite's.
// It returns the problems of the checks (a missed ratio is a figure, not a problem).
func (p *pgBench) measure(ctx context.Context, cfg config, st *setupResult, lite sqliteFigures, w io.Writer) ([]string, error) {
	fmt.Fprintf(w, "\n--- PostgreSQL (%s) ---\n", p.dbURL(p.run))
	conn, err := pgx.Connect(ctx, p.dbURL(p.run))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var version string
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version') || ', shared_buffers ' || current_setting('shared_buffers') || ', work_mem ' || current_setting('work_mem')").Scan(&version); err != nil {
		return nil, err
	}
	// Opened (and so migrated) before it is measured: a template copied by an older schema
	// is measured, and warmed, in the schema of this code.
	db, err := postgres.Open(ctx, p.dbURL(p.run))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	size, err := measurePGSize(ctx, conn)
	if err != nil {
		return nil, err
	}
	warmed, err := prewarm(ctx, conn)
	if err != nil {
		return nil, err
	}

	quiet := slog.New(slog.DiscardHandler)
	watcher := vulndb.NewWatcher(db, vulndb.WatcherOptions{Logger: quiet})
	if _, err := watcher.Refresh(ctx); err != nil {
		return nil, err
	}
	vdb := vulndb.New(db, vulndb.Options{Logger: quiet})
	svc := scanning.New(db, nil, watcher, scanning.Config{Origin: events.Origin{Account: "123456789012", Region: "us-east-1"}, Logger: quiet})
	before, err := pgCountRows(ctx, conn, st.vulnID, 0)
	if err != nil {
		return nil, err
	}
	runtime.GC()
	fmt.Fprintf(w, "server %s; pg_prewarm read: %v\n", version, warmed)
	fmt.Fprintf(w, "load average before the measurement: %s\n", loadAverage())

	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile + ".pg")
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
	}
	t0 := time.Now()
	res, err := vdb.Import(ctx, st.advisoryPath)
	if err != nil {
		pprof.StopCPUProfile()
		return nil, err
	}
	t1 := time.Now()
	ch, err := watcher.Refresh(ctx)
	if err != nil || ch == nil {
		pprof.StopCPUProfile()
		return nil, fmt.Errorf("postgres: index refresh: change %v, %w", ch, err)
	}
	t2 := time.Now()
	n, err := svc.Reevaluate(ctx, *ch)
	t3 := time.Now()
	pprof.StopCPUProfile()
	if err != nil {
		return nil, fmt.Errorf("postgres: re-evaluate: %w", err)
	}
	after, err := pgCountRows(ctx, conn, st.vulnID, t2.UnixMilli())
	if err != nil {
		return nil, err
	}
	reeval, total := t3.Sub(t2), t3.Sub(t0)

	fmt.Fprintf(w, "\n%d packages changed, version %d -> %d, full=%v\n", len(res.Keys), ch.From, ch.To, ch.Full)
	rows := [][2]string{
		{"import of the advisory (vulndb.Import)", t1.Sub(t0).Round(time.Microsecond).String()},
		{"index refresh (Watcher.Refresh)", t2.Sub(t1).Round(time.Microsecond).String()},
		{"re-evaluation (Service.Reevaluate)", reeval.Round(time.Microsecond).String()},
		{"total, import to last event written", total.Round(time.Microsecond).String()},
		{"images re-evaluated", fmt.Sprint(n)},
		{"new ACTIVE findings of the advisory", fmt.Sprint(after.newActive - before.newActive)},
		{"findings observed (lastObservedAt moved)", fmt.Sprint(after.observed)},
		{"finding rows written", fmt.Sprint(after.rowsWritten)},
		{"\"Inspector2 Finding\" events written", fmt.Sprint(after.findingEvents - before.findingEvents)},
		{"scan usage rows written", fmt.Sprint(after.usage - before.usage)},
		{"store (tables + indexes + TOAST)", fmt.Sprintf("%.2f GiB (%d bytes; database %d bytes)", float64(size.total)/(1<<30), size.total, size.database)},
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		fmt.Fprintf(w, "%-44s %s\n", r[0], r[1])
	}
	fmt.Fprintf(w, "\nlargest tables, MiB: %-28s %9s %9s %9s %9s\n", "", "total", "heap", "indexes", "toast")
	for i, t := range size.tables {
		if i == 10 {
			break
		}
		fmt.Fprintf(w, "  %-46s %9.1f %9.1f %9.1f %9.1f\n", t.name, mib(t.total), mib(t.heap), mib(t.index), mib(t.toast))
	}

	var problems []string
	if got := after.newActive - before.newActive; got != st.holders || n != st.holders {
		problems = append(problems, fmt.Sprintf("postgres: expected %d new findings and images re-evaluated, got %d and %d", st.holders, got, n))
	}
	if got := after.findingEvents - before.findingEvents; got != st.holders {
		problems = append(problems, fmt.Sprintf("postgres: expected %d finding events, got %d", st.holders, got))
	}
	if after.rowsWritten != st.holders {
		problems = append(problems, fmt.Sprintf("postgres: expected %d finding rows written (the new findings), got %d", st.holders, after.rowsWritten))
	}
	fmt.Fprintf(w, "\nPostgreSQL against SQLite (same run; target: within %gx)\n", pgRatio)
	fmt.Fprintf(w, "  %-24s %14s %14s %7s\n", "", "SQLite", "PostgreSQL", "ratio")
	compare := func(name, a, b string, ratio float64) {
		v := "PASS"
		if ratio > pgRatio {
			v = "FAIL"
		}
		fmt.Fprintf(w, "  %-24s %14s %14s %6.2fx %s\n", name, a, b, ratio, v)
	}
	compare("store size", fmt.Sprintf("%.1f MiB", mib(lite.size)), fmt.Sprintf("%.1f MiB", mib(size.total)), float64(size.total)/float64(max(lite.size, 1)))
	compare("re-evaluation", lite.reevaluate.Round(time.Millisecond).String(), reeval.Round(time.Millisecond).String(), float64(reeval)/float64(max(lite.reevaluate, 1)))
	compare("import to last event", lite.total.Round(time.Millisecond).String(), total.Round(time.Millisecond).String(), float64(total)/float64(max(lite.total, 1)))
	if len(problems) > 0 {
		fmt.Fprintf(w, "  checks FAIL: %v\n", problems)
	}
	fmt.Fprintf(w, "load average after: %s\n", loadAverage())
	return problems, nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// pgCountRows is countRows on the PostgreSQL store.
func pgCountRows(ctx context.Context, conn *pgx.Conn, vulnID string, since int64) (counts, error) {
	var c counts
	for _, q := range countQueries(&c, vulnID, since, func(n int) string { return fmt.Sprintf("$%d", n) }) {
		if err := conn.QueryRow(ctx, q.sql, q.args...).Scan(q.dst); err != nil {
			return c, err
		}
	}
	return c, nil
}
