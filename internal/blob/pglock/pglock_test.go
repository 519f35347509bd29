package pglock_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/blob/pglock"
)

// serverURL is the PostgreSQL server of the tests (as internal/store/postgres/pgtest names it):
// advisory locks need no database of their own, and each test's lock names are its own.
func serverURL() string {
	if u := os.Getenv("LADING_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// NewPool is a pool on the test server, closed when tb ends.
func newPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	p, err := pgxpool.New(context.Background(), serverURL())
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.Ping(context.Background()); err != nil {
		tb.Fatalf("PostgreSQL at %s: %v", serverURL(), err)
	}
	tb.Cleanup(p.Close)
	return p
}

func TestLocksExcludeAcrossPools(t *testing.T) {
	ctx := context.Background()
	// Two pools are two nodes.
	a, b := pglock.New(newPool(t)), pglock.New(newPool(t))
	name := "uploads/" + t.Name() + time.Now().Format(time.RFC3339Nano)

	unlock, err := a.Lock(ctx, name, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock(ctx, name, false); !errors.Is(err, blob.ErrLocked) {
		t.Fatalf("second holder without waiting: %v", err)
	}
	other, err := b.Lock(ctx, name+"x", false)
	if err != nil {
		t.Fatalf("another name: %v", err)
	}
	other()

	got := make(chan time.Time)
	go func() {
		u, err := b.Lock(ctx, name, true)
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		at := time.Now()
		u()
		got <- at
	}()
	time.Sleep(200 * time.Millisecond)
	released := time.Now()
	unlock()
	if at, ok := <-got; !ok || at.Before(released) {
		t.Fatalf("the waiter got the lock at %v, before it was released at %v", at, released)
	}

	// A wait cut short gives up, and leaves the lock usable.
	unlock, err = a.Lock(ctx, name, false)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(short, name, true); err == nil {
		t.Fatal("a cancelled wait took the lock")
	}
	unlock()
	u, err := b.Lock(ctx, name, false)
	if err != nil {
		t.Fatalf("after a cancelled wait: %v", err)
	}
	u()
}

// TestLockDiesWithItsHolder: a node that dies (its session ends) frees what it held.
func TestLockDiesWithItsHolder(t *testing.T) {
	ctx := context.Background()
	holderPool, admin := newPool(t), newPool(t)
	holder, other := pglock.New(holderPool), pglock.New(newPool(t))
	name := "blobs/sha256/" + time.Now().Format(time.RFC3339Nano)
	holderUnlock, err := holder.Lock(ctx, name, true)
	if err != nil {
		t.Fatal(err)
	}
	// The dead session's connection goes back to nothing: its unlock closes it, so the
	// pool can close.
	defer holderUnlock()
	// End every session of the holder's pool but the admin's, as a crash would.
	var pids []int32
	rows, err := admin.Query(ctx, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int::oid AND granted", pglock.Space)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var pid int32
		if err := rows.Scan(&pid); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if err := rows.Err(); err != nil || len(pids) == 0 {
		t.Fatalf("no advisory lock held (%v)", err)
	}
	if _, err := other.Lock(ctx, name, false); !errors.Is(err, blob.ErrLocked) {
		t.Fatalf("while held: %v", err)
	}
	for _, pid := range pids {
		if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		u, err := other.Lock(ctx, name, false)
		if err == nil {
			u()
			return
		}
		if !errors.Is(err, blob.ErrLocked) || time.Now().After(deadline) {
			t.Fatalf("after the holder died: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
