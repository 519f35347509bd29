package pglock_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/blob/pglock"
	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
)

// newPool is a pool on the test server, closed when tb ends.
func newPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	p, err := pgxpool.New(context.Background(), pgtest.ServerURL())
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.Ping(context.Background()); err != nil {
		tb.Fatalf("PostgreSQL at %s: %v", pgtest.ServerURL(), err)
	}
	tb.Cleanup(p.Close)
	return p
}

// namedPool is a pool whose sessions carry a unique application_name made from prefix, so a
// test can tell them apart from other tests' sessions on the same server.
func namedPool(tb testing.TB, prefix string) (*pgxpool.Pool, string) {
	tb.Helper()
	app := prefix + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cfg, err := pgxpool.ParseConfig(pgtest.ServerURL())
	if err != nil {
		tb.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p, app
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
	// The abandoned wait's session ends on its own time: wait for it, boundedly.
	bounded, cancelBounded := context.WithTimeout(ctx, 10*time.Second)
	defer cancelBounded()
	u, err := b.Lock(bounded, name, true)
	if err != nil {
		t.Fatalf("after a cancelled wait: %v", err)
	}
	u()
}

// TestLockDiesWithItsHolder: a node that dies (its session ends) frees what it held.
func TestLockDiesWithItsHolder(t *testing.T) {
	ctx := context.Background()
	// The holder's sessions are told apart by name: other tests (other packages' too) hold
	// advisory locks on the same server at the same time.
	holderPool, app := namedPool(t, "pglock-holder")
	admin := newPool(t)
	holder, other := pglock.New(holderPool), pglock.New(newPool(t))
	name := "blobs/sha256/" + time.Now().Format(time.RFC3339Nano)
	holderUnlock, err := holder.Lock(ctx, name, true)
	if err != nil {
		t.Fatal(err)
	}
	// The dead session's connection goes back to nothing: its unlock closes it, so the
	// pool can close.
	defer holderUnlock()
	// End the holder's session, as a crash would.
	var pids []int32
	rows, err := admin.Query(ctx, `SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.classid = $1::int::oid AND l.granted AND a.application_name = $2`, pglock.Space, app)
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

// TestLockAfterSessionsDropped: when the database drops the pool's idle sessions (as a
// restart does), the next Lock does not fail on a dead one: it takes a new session.
func TestLockAfterSessionsDropped(t *testing.T) {
	ctx := context.Background()
	pool, app := namedPool(t, "pglock-dropped")
	l := pglock.New(pool)
	var unlocks []func()
	for i := range 2 { // on one session, idle in the pool once released
		unlock, err := l.Lock(ctx, "uploads/dropped-"+strconv.Itoa(i), false)
		if err != nil {
			t.Fatal(err)
		}
		unlocks = append(unlocks, unlock)
	}
	for _, unlock := range unlocks {
		unlock()
	}
	admin := newPool(t)
	var n int
	if err := admin.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&n); err != nil || n == 0 {
		t.Fatalf("terminated %d sessions (%v), want the idle one", n, err)
	}
	for i := range 2 {
		unlock, err := l.Lock(ctx, "uploads/after-"+strconv.Itoa(i), false)
		if err != nil {
			t.Fatalf("lock %d after the sessions were dropped: %v", i, err)
		}
		unlock()
	}
}

// TestManyLocksOneSession: a node holding many locks at once (uploads in progress) holds them
// on one session, not a connection each, and its own locks still exclude each other.
func TestManyLocksOneSession(t *testing.T) {
	ctx := context.Background()
	pool, app := namedPool(t, "pglock-many")
	l, other := pglock.New(pool), pglock.New(newPool(t))
	base := "uploads/" + app + "-"
	var unlocks []func()
	for i := range 40 {
		unlock, err := l.Lock(ctx, base+strconv.Itoa(i), true)
		if err != nil {
			t.Fatal(err)
		}
		unlocks = append(unlocks, unlock)
	}
	admin := newPool(t)
	var sessions, held int
	if err := admin.QueryRow(ctx, `SELECT count(DISTINCT a.pid), count(l.pid) FROM pg_stat_activity a
		LEFT JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'advisory' AND l.classid = $1::int::oid AND l.granted
		WHERE a.application_name = $2`, pglock.Space, app).Scan(&sessions, &held); err != nil {
		t.Fatal(err)
	}
	if sessions != 1 || held != 40 {
		t.Fatalf("40 locks held on %d sessions with %d advisory locks, want 1 session holding 40", sessions, held)
	}
	if _, err := other.Lock(ctx, base+"7", false); !errors.Is(err, blob.ErrLocked) {
		t.Fatalf("another node took a held lock: %v", err)
	}
	// The node's own locks exclude each other though they share a session.
	if _, err := l.Lock(ctx, base+"7", false); !errors.Is(err, blob.ErrLocked) {
		t.Fatalf("the same node took a lock it holds: %v", err)
	}
	got := make(chan time.Time, 1)
	go func() {
		u, err := l.Lock(ctx, base+"7", true)
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- time.Now()
		u()
	}()
	time.Sleep(100 * time.Millisecond)
	released := time.Now()
	for _, unlock := range unlocks {
		unlock()
	}
	if at, ok := <-got; !ok || at.Before(released) {
		t.Fatalf("the waiter got the lock at %v, before it was released at %v", at, released)
	}
	u, err := other.Lock(ctx, base+"7", false)
	if err != nil {
		t.Fatalf("after the node released its locks: %v", err)
	}
	u()
}
