// Package pgtest gives tests PostgreSQL databases of their own, on the server named by
// $LADING_TEST_POSTGRES (default: postgres://postgres@127.0.0.1:5432/test, trust auth, as
// .ci/run ensures). A test package creates one database for its run (New) and a schema per
// test (Schema), which costs far less than a database per test.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
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

// URL is the database's connection URL.
func (d *Database) URL() string { return d.url.String() }

// Schema creates a fresh, empty schema in the database and returns a URL whose connections
// work in it (search_path), so that each test starts from nothing. The schema goes with the
// database.
func (d *Database) Schema(tb testing.TB) string {
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
	u := *d.url
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}
