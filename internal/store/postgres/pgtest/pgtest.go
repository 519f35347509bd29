// Package pgtest gives tests PostgreSQL databases of their own, on the server named by
// $LADING_TEST_POSTGRES (default: postgres://postgres@127.0.0.1:5432/test, trust auth, as
// .ci/run ensures). A test package creates one database for its run (New) and a schema per
// test (Schema), which costs far less than a database per test; a schema a finished test used
// is emptied and handed to the next, so its tables are made once per parallel test, not once
// per test.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable that points tests at a PostgreSQL server (any database on it:
// tests create their own next to it).
const EnvURL = "LADING_TEST_POSTGRES"

// DefaultURL is the server CI runs.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// ServerURL is the server tests use.
func ServerURL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// Database is a database made for one test run, dropped when the test that made it ends.
type Database struct {
	url     *url.URL
	name    string
	schemas atomic.Int64

	mu   sync.Mutex
	free []string // schemas emptied by finished tests, their tables kept
}

// New creates a database with a unique name on ServerURL and drops it (with whatever still
// connects to it) in tb's cleanup. A server that does not answer fails the test: PostgreSQL is
// part of the test environment, not an option.
func New(tb testing.TB) *Database {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base, err := url.Parse(ServerURL())
	if err != nil {
		tb.Fatalf("%s: %v", EnvURL, err)
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	name := fmt.Sprintf("lading_test_%d_%s", time.Now().Unix(), hex.EncodeToString(suffix[:]))
	admin, err := pgx.Connect(ctx, base.String())
	if err != nil {
		tb.Fatalf("PostgreSQL at %s (set %s to another server): %v", base.Redacted(), EnvURL, err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	dropAbandoned(ctx, tb, admin)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, base.String())
		if err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
	})
	u := *base
	u.Path = "/" + name
	return &Database{url: &u, name: name}
}

// abandonedAfter is how old a test database must be before a later run drops it: its run was
// killed before its cleanup (no test runs this long).
const abandonedAfter = 24 * time.Hour

// dropAbandoned drops the test databases runs killed before their cleanup left behind; it is
// housekeeping, so a failure is only logged.
func dropAbandoned(ctx context.Context, tb testing.TB, admin *pgx.Conn) {
	rows, err := admin.Query(ctx, `SELECT datname FROM pg_database WHERE datname ~ '^lading_test_[0-9]+_[0-9a-f]+$'`)
	if err != nil {
		tb.Logf("list test databases: %v", err)
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		tb.Logf("list test databases: %v", err)
		return
	}
	for _, n := range names {
		var created int64
		if _, err := fmt.Sscanf(n, "lading_test_%d_", &created); err != nil || time.Since(time.Unix(created, 0)) < abandonedAfter {
			continue
		}
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Logf("drop abandoned test database %s: %v", n, err)
		}
	}
}

// URL is the database's connection URL.
func (d *Database) URL() string { return d.url.String() }

// Schema returns a URL whose connections work in a schema of their own (search_path) holding
// no rows, so that each test starts from nothing: a schema an earlier test left, emptied, with
// the tables a store made in it, or a new one. It goes back for reuse when tb ends (after the
// cleanups registered after this call, such as closing the store).
func (d *Database) Schema(tb testing.TB) string {
	tb.Helper()
	d.mu.Lock()
	var name string
	if n := len(d.free); n > 0 {
		name, d.free = d.free[n-1], d.free[:n-1]
	}
	d.mu.Unlock()
	if name == "" {
		name = d.create(tb)
	}
	tb.Cleanup(func() {
		if err := d.empty(name); err != nil {
			tb.Logf("schema %s not reused: %v", name, err)
			return
		}
		d.mu.Lock()
		d.free = append(d.free, name)
		d.mu.Unlock()
	})
	return d.schemaURL(name)
}

// EmptySchema returns the URL of a new schema without tables, never reused: for tests of
// what a store does to an empty database.
func (d *Database) EmptySchema(tb testing.TB) string {
	tb.Helper()
	return d.schemaURL(d.create(tb))
}

func (d *Database) create(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := fmt.Sprintf("t%d", d.schemas.Add(1))
	conn, err := pgx.Connect(ctx, d.URL())
	if err != nil {
		tb.Fatalf("connect to test database: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	return name
}

// empty deletes every row of the schema's tables but the migrations applied.
func (d *Database) empty(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.URL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'schema_migrations'", name)
	if err != nil {
		return err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	var stmts strings.Builder
	for _, t := range tables {
		// DELETE, not TRUNCATE: on tables of a few rows it skips TRUNCATE's new files.
		stmts.WriteString("DELETE FROM " + pgx.Identifier{name, t}.Sanitize() + ";")
	}
	if stmts.Len() == 0 {
		return nil
	}
	_, err = conn.Exec(ctx, stmts.String())
	return err
}

func (d *Database) schemaURL(name string) string {
	u := *d.url
	q := u.Query()
	q.Set("search_path", name)
	// A test's data need not survive a crash of the server: commits do not wait for the disk.
	q.Set("synchronous_commit", "off")
	u.RawQuery = q.Encode()
	return u.String()
}

// OlderTransaction begins, in a session of its own on the server of url, a transaction holding
// a transaction id, as another client would: PostgreSQL keeps every row version it might see
// until it ends. end commits it after delay, in the background; ended reports how that went.
func OlderTransaction(tb testing.TB, url string) (end func(delay time.Duration), ended <-chan error) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatalf("connect for an older transaction: %v", err)
	}
	tb.Cleanup(func() { conn.Close(context.WithoutCancel(ctx)) })
	if _, err := conn.Exec(ctx, "BEGIN; SELECT pg_current_xact_id()"); err != nil {
		tb.Fatalf("begin an older transaction: %v", err)
	}
	done := make(chan error, 1)
	return func(delay time.Duration) {
		go func() {
			time.Sleep(delay)
			_, err := conn.Exec(ctx, "COMMIT")
			done <- err
		}()
	}, done
}
