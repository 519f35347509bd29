// Package sqlite is Lading's embedded metadata store: one SQLite database in the data directory,
// opened through modernc.org/sqlite (no cgo).
//
// Writes go through a single connection (SQLite allows one writer at a time, and a single
// connection turns contention into queueing instead of SQLITE_BUSY errors); reads use a pool
// of read-only connections that see the last committed state thanks to WAL mode.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"math"
	"net/url"
	"runtime"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/schema"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrNewerSchema means the database was written by a newer Lading than this one.
var ErrNewerSchema = schema.ErrNewerSchema

// DB is an open metadata store.
type DB struct {
	write *sql.DB
	read  *sql.DB
	ckpt  *checkpointer // nil when opened for reading only
	// writes tells the checkpointer when write transactions run; nil when opened for reading only.
	writes *writeActivity
	// findingTxs numbers the transactions of ApplyScans, the writer of findings (keySetsOf).
	findingTxs atomic.Int64
	path       string

	effects   store.EffectsFunc
	committed func(store.Effects)
	// now stamps pushes, links and upload activity; tests replace it (SetClock).
	now func() time.Time
	// findingCtx is what suppression rules are evaluated with (SetFindingContext).
	findingCtx FindingContext
}

// Open opens (creating if needed) the SQLite database at path and applies pending migrations.
func Open(ctx context.Context, path string) (*DB, error) {
	w, err := openPool(path, false, 0)
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	if err := migrate(ctx, w); err != nil {
		_ = w.Close()
		return nil, err
	}
	if err := optimize(ctx, w); err != nil {
		_ = w.Close()
		return nil, err
	}
	r, err := openPool(path, true, 0)
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	n := max(4, runtime.GOMAXPROCS(0)*2)
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxIdleTime(0)
	activity := &writeActivity{}
	ckpt, err := startCheckpointer(path, checkpointSchedule{every: checkpointEvery, quiet: checkpointQuiet, maxDefer: checkpointMaxDefer}, activity)
	if err != nil {
		_ = errors.Join(r.Close(), w.Close())
		return nil, err
	}
	return &DB{write: w, read: r, ckpt: ckpt, writes: activity, path: path, now: time.Now}, nil
}

// ReaderOptions are the settings of a store opened by OpenReader.
type ReaderOptions struct {
	// CacheKiB bounds each connection's page cache (SQLite's default is 2,000 KiB). A one-off
	// reader such as `lading scan` reads each page about once, and the file's pages are in the
	// kernel's page cache anyway, so a copy in the process is memory for nothing.
	CacheKiB int
}

// OpenReader opens the database at path for reading only, with a single connection and no
// write pool, when its schema is this build's: what a command that only reads (`lading scan`)
// needs, without the migration check's write connection. A database that is missing, empty
// or behind is opened with Open (which creates or migrates it); one from a newer Lading fails
// as Open does. Writes through the returned DB fail (the connection is query_only).
func OpenReader(ctx context.Context, path string, opts ReaderOptions) (*DB, error) {
	r, err := openPool(path, true, opts.CacheKiB)
	if err != nil {
		return nil, err
	}
	r.SetMaxOpenConns(1)
	r.SetMaxIdleConns(1)
	r.SetConnMaxIdleTime(0)
	current, err := schemaCurrent(ctx, r)
	if err != nil || !current {
		_ = r.Close()
		return Open(ctx, path)
	}
	// write is the same query_only pool: a write by mistake is an error, not a nil pointer.
	return &DB{write: r, read: r, path: path, now: time.Now}, nil
}

// schemaCurrent tells whether every migration of this build, and none other, is applied.
// An error (no schema_migrations table in a new file, say) is returned for the caller to fall
// back on Open, which reports the real problem if there is one.
func schemaCurrent(ctx context.Context, db *sql.DB) (bool, error) {
	migs, err := loadMigrations()
	if err != nil {
		return false, err
	}
	rows, err := db.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return false, err
	}
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			_ = rows.Close()
			return false, err
		}
		applied[v] = true
	}
	if err := rows.Close(); err != nil {
		return false, err
	}
	pending, err := schema.Pending(migs, applied, math.MaxInt)
	if err != nil {
		return false, err
	}
	return len(pending) == 0, nil
}

// openPool opens a pool of connections to path; cacheKiB > 0 bounds each one's page cache.
func openPool(path string, readOnly bool, cacheKiB int) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_time_format", "sqlite")
	if cacheKiB > 0 {
		q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", cacheKiB))
	}
	if readOnly {
		q.Add("_pragma", "query_only(ON)")
	} else {
		q.Set("_txlock", "immediate")
		// A backstop: a checkpointer (checkpoint.go) copies the WAL back in the background.
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", writerAutoCheckpoint))
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return db, nil
}

// SetClock replaces the clock that stamps pushes (pushed_at), blob links (linked_at) and upload
// activity, which lifecycle policies and garbage collection compare with their own clock. Call
// it before use.
func (db *DB) SetClock(now func() time.Time) { db.now = now }

// optimize refreshes the statistics the query planner reads (sqlite_stat1) of tables never
// analyzed or grown or shrunk tenfold since, reading at most about a thousand rows of each
// index, as SQLite advises for long-lived connections. The findings view joins its tables
// (0045): without statistics the planner takes every table for a million rows and can read
// all of finding_rows for a page that one image's findings would give.
func optimize(ctx context.Context, w *sql.DB) error {
	if _, err := w.ExecContext(ctx, "PRAGMA analysis_limit = 1000"); err != nil {
		return fmt.Errorf("optimize: %w", err)
	}
	if _, err := w.ExecContext(ctx, "PRAGMA optimize = 0x10002"); err != nil {
		return fmt.Errorf("optimize: %w", err)
	}
	return nil
}

// Optimize refreshes the planner's statistics where tables changed much since (see optimize);
// a long-running server calls it now and then.
func (db *DB) Optimize(ctx context.Context) error { return optimize(ctx, db.write) }

// Close stops the background checkpoints and closes the connection pools.
func (db *DB) Close() error {
	var ckptErr error
	if db.ckpt != nil {
		ckptErr = db.ckpt.close()
	}
	return errors.Join(ckptErr, db.read.Close(), db.write.Close())
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

// Ping checks that the database answers; it backs /readyz.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping metadata store: %w", err)
	}
	return nil
}

// Reader returns the read-only pool, for packages that keep their own queries.
func (db *DB) Reader() *sql.DB { return db.read }

// Tx runs fn in a write transaction, committing when it returns nil.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	defer db.writing()()
	return runTx(ctx, db.write, fn)
}

// writing marks a write transaction under way for the checkpointer; the function returned
// marks it ended.
func (db *DB) writing() func() {
	if db.writes == nil {
		return func() {}
	}
	return db.writes.begin()
}

// runTx runs fn in a transaction begun on b (the write pool, or a connection taken from it),
// committing when it returns nil.
func runTx(ctx context.Context, b interface {
	BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
}, fn func(tx *sql.Tx) error) error {
	tx, err := b.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// txJournalInMemory is Tx for a transaction of many statements that may each fail halfway (a
// re-evaluation's upserts with their count triggers), whose statement journal stays in memory.
// SQLite copies the pages such a statement changes to a statement journal, in memory up to
// 64 KiB and then, for the rest of the transaction, in a temporary file: a pwrite system call
// for every page of every later statement (a fifth of the writer's time when 1,000 images took
// a new finding). temp_store = MEMORY keeps that journal in memory; as it also keeps the
// connection's sorts and temporary tables in memory, it is set for such a transaction only,
// whose statements each sort one image's rows at most, and reset after. A connection whose
// reset fails is closed rather than used again so.
func (db *DB) txJournalInMemory(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	defer db.writing()()
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA temp_store = MEMORY"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if _, resetErr := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA temp_store = DEFAULT"); resetErr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			if err == nil {
				err = fmt.Errorf("reset temp_store: %w", resetErr)
			}
		}
	}()
	return runTx(ctx, conn, fn)
}

// loadMigrations reads migrations/NNNN_name.sql (internal/store/schema).
func loadMigrations() ([]schema.Migration, error) { return schema.Load(migrationFiles, "migrations") }

func migrate(ctx context.Context, db *sql.DB) error { return migrateTo(ctx, db, math.MaxInt) }

// migrateTo applies the pending migrations up to version upTo (tests stop early to write
// data in an older schema).
func migrateTo(ctx context.Context, db *sql.DB, upTo int) error {
	migs, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := db.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			_ = rows.Close()
			return err
		}
		applied[v] = true
	}
	if err := rows.Close(); err != nil {
		return err
	}
	pending, err := schema.Pending(migs, applied, upTo)
	if err != nil {
		return err
	}
	for _, m := range pending {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("apply migration %04d_%s: %w", m.Version, m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
			m.Version, m.Name, time.Now().UnixMilli()); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit migration %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	return nil
}
