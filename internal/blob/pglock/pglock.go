// Package pglock gives the blob store's locks (blob.Locker) from PostgreSQL's advisory locks,
// so that nodes on several machines sharing one bucket exclude each other as processes sharing
// a data directory do with file locks. A lock is held by a connection of its own: when a node
// dies, its connection closes and PostgreSQL releases what it held, as the kernel does for a
// file lock.
package pglock

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/store"
)

// Locker takes advisory locks through a pool; each held lock keeps one of its connections, so
// the pool's size bounds how many uploads and commits hold locks at once (others wait for a
// connection).
type Locker struct {
	pool *pgxpool.Pool
	// space keeps these locks apart from other users of advisory locks in the same database:
	// the lock key is the first argument of the two-key form.
	space int32
	owned bool // the pool is Open's, closed by Close
}

// Space is the advisory-lock key space the blob store's locks use.
const Space int32 = 0x4c424c4b // "LBLK"

// New returns the locks of a database.
func New(pool *pgxpool.Pool) *Locker { return &Locker{pool: pool, space: Space} }

// key names a lock by a 32-bit hash of its name: two names sharing a hash share a lock, which
// makes a holder wait more than it must, never less.
func key(name string) int32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return int32(h.Sum32())
}

// Lock takes the lock on name, waiting for it when wait is set, else failing at once with
// blob.ErrLocked.
func (l *Locker) Lock(ctx context.Context, name string, wait bool) (func(), error) {
	release, err := l.lock(ctx, name, wait)
	if err != nil && ctx.Err() == nil && store.Unavailable(err) {
		// The pool's sessions may be ones the database dropped when it restarted: drop them
		// all and try once more on a new one, so that the first request after a restart
		// does not fail for a connection that was already dead.
		l.pool.Reset()
		release, err = l.lock(ctx, name, wait)
	}
	return release, err
}

func (l *Locker) lock(ctx context.Context, name string, wait bool) (func(), error) {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w: %w", name, blob.ErrUnavailable, err)
	}
	k := key(name)
	if wait {
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, $2)", l.space, k); err != nil {
			// A wait cut short by ctx leaves the server's backend waiting, deaf to the
			// socket: cancel its wait, then end the session (if the lock was granted in
			// between, the session's end releases it).
			bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = conn.Conn().PgConn().CancelRequest(bg)
			_ = conn.Hijack().Close(bg)
			return nil, unavailable(ctx, name, err)
		}
	} else {
		var got bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", l.space, k).Scan(&got); err != nil {
			_ = conn.Hijack().Close(context.WithoutCancel(ctx))
			return nil, unavailable(ctx, name, err)
		}
		if !got {
			conn.Release()
			return nil, blob.ErrLocked
		}
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var released bool
		err := conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1, $2)", l.space, k).Scan(&released)
		if err != nil || !released {
			// Closing the session releases every lock it holds.
			_ = conn.Hijack().Close(ctx)
			return
		}
		conn.Release()
	}, nil
}

// unavailable is a lock that failed: the caller's ctx ending, or else the database not
// answering (blob.ErrUnavailable: the request may succeed later, a 503).
func unavailable(ctx context.Context, name string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	return fmt.Errorf("lock %s: %w: %w", name, blob.ErrUnavailable, err)
}

// ApplicationName names the sessions of the pool Open makes, in pg_stat_activity.
const ApplicationName = "lading-blob-locks"

// Open returns the locks of the database at url, on a pool of their own of at most maxConns
// connections (each held lock keeps one; a commit holds two), closed by Close.
func Open(ctx context.Context, url string, maxConns int32) (*Locker, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("blob locks: %w", err)
	}
	cfg.MaxConns = maxConns
	// Named, so that an operator sees which sessions hold the blob store's locks.
	cfg.ConnConfig.RuntimeParams["application_name"] = ApplicationName
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("blob locks: %w", err)
	}
	l := New(pool)
	l.owned = true
	return l, nil
}

// Close closes the pool Open made (a Locker made by New leaves its pool to its owner).
func (l *Locker) Close() {
	if l.owned {
		l.pool.Close()
	}
}
