// Package postgres is Lading's metadata store on PostgreSQL (github.com/jackc/pgx/v5), for
// several registry nodes sharing one database. It keeps SQLite's tables and answers as
// store/sqlite does: internal/store/storetest holds the conformance suite both engines pass.
//
// Every write that reads before it writes runs in a SERIALIZABLE transaction, retried when
// PostgreSQL reports a serialization failure or a deadlock: SQLite's single writer decides each
// read-then-write (a push refused as unchanged, a tag that may not move) as if alone, and
// SERIALIZABLE gives the same answers with many writers on many nodes. A transaction's function
// may therefore run more than once and must set everything it returns afresh on each run. A
// write of one statement that reads nothing first (an upload touched or forgotten) runs as its
// own transaction, in one round trip: PostgreSQL makes a statement atomic.
//
// It holds every part of the store the app uses: the registry core, the outbox and webhook
// cursors, the effects of a change, scan jobs, image scan states, inventories, report jobs,
// coverage, the advisory database, findings, suppression rules and secrets; every command
// opens it with --metadata postgres://... (app.OpenMeta).
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/schema"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrNewerSchema means the database was written by a newer Lading than this one.
var ErrNewerSchema = schema.ErrNewerSchema

// DB is an open metadata store.
type DB struct {
	pool *pgxpool.Pool

	effects   store.EffectsFunc
	committed func(store.Effects)
	// writers bounds the write transactions open at once to half the pool: a transaction's
	// effects function reads through the pool (store.EffectsFunc) while the transaction holds
	// its connection, and with every connection held by such transactions none could go on.
	writers chan struct{}
	// now stamps pushes, links and upload activity; tests replace it (SetClock).
	now func() time.Time
	// findingCtx is what suppression rules are evaluated with (SetFindingContext).
	findingCtx FindingContext
}

// Open connects to the database at url (postgres://user@host:port/db?..., as libpq and pgx take
// it) and applies pending migrations.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres metadata store: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres metadata store: %w", err)
	}
	if err := migrate(ctx, pool, math.MaxInt); err != nil {
		pool.Close()
		return nil, err
	}
	return &DB{pool: pool, now: time.Now, writers: make(chan struct{}, max(1, cfg.MaxConns/2))}, nil
}

// SetClock replaces the clock that stamps pushes (pushed_at), blob links (linked_at) and upload
// activity, which lifecycle policies and garbage collection compare with their own clock. Call
// it before use.
func (db *DB) SetClock(now func() time.Time) { db.now = now }

// Close closes the connection pool.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping checks that the database answers; it backs /readyz.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping metadata store: %w", err)
	}
	return nil
}

// maxAttempts bounds the runs of a transaction that keeps losing serialization conflicts; a
// conflict costs one retry, so this many in a row means a hot row, reported to the caller.
const maxAttempts = 20

// tx runs fn in a SERIALIZABLE write transaction, committing when it returns nil, and runs it
// again after a serialization failure or deadlock.
func (db *DB) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	select {
	case db.writers <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-db.writers }()
	for attempt := 1; ; attempt++ {
		err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, fn)
		if err == nil || !retryable(err) || attempt == maxAttempts {
			return err
		}
		// Back off a little, with jitter, so that the transactions that collided do not
		// collide again in step.
		wait := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (after %d serialization conflicts: %w)", ctx.Err(), attempt, err)
		case <-time.After(wait):
		}
	}
}

// retryable reports a serialization failure or a deadlock: the transaction did nothing and
// may run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// migrationLock is the advisory lock key nodes take while migrating, so that several starting
// at once apply each migration once.
const migrationLock = 0x6c6164696e67 // "lading"

// migrate applies the pending migrations up to version upTo, each in its own transaction,
// holding a session advisory lock throughout.
func migrate(ctx context.Context, pool *pgxpool.Pool, upTo int) error {
	migs, err := schema.Load(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres metadata store: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLock)); err != nil {
		return fmt.Errorf("lock for migrations: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLock))
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	versions, err := queryAll(ctx, conn, func(r rowScanner) (int, error) {
		var v int
		return v, r.Scan(&v)
	}, "SELECT version FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	applied := make(map[int]bool, len(versions))
	for _, v := range versions {
		applied[v] = true
	}
	pending, err := schema.Pending(migs, applied, upTo)
	if err != nil {
		return err
	}
	for _, m := range pending {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// No arguments: the simple protocol, which runs a file of several statements.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations(version, name, applied_at) VALUES ($1, $2, $3)",
				m.Version, m.Name, time.Now().UnixMilli())
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	return nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// rowScanner is what a scan function reads one row from.
type rowScanner interface{ Scan(dest ...any) error }

// queryAll runs a query and returns each row as scan makes it.
func queryAll[T any](ctx context.Context, q querier, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func queryStrings(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	return queryAll(ctx, q, func(r rowScanner) (string, error) {
		var s string
		return s, r.Scan(&s)
	}, query, args...)
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// Pool is the connection pool, for whole-store tools (admin migrate) that copy tables directly.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }
