// Package pglock gives the blob store's locks (blob.Locker) from PostgreSQL's advisory locks,
// so that nodes on several machines sharing one bucket exclude each other as processes sharing
// a data directory do with file locks. A node's locks are held by one session: when the node
// dies, its connection closes and PostgreSQL releases what it held, as the kernel does for a
// file lock.
//
// One session for all of a node's locks, not a connection per lock held: with a connection
// per lock, every upload in progress (a chunk arriving, a commit holding two) kept one, and a
// few nodes under a burst of pushes ran PostgreSQL out of connections (max_connections is 100
// by default): the pushes failed with 503s. Within the node the locks exclude each other in
// memory (advisory locks are re-entrant within a session); across nodes, a lock another node
// holds is tried again until it is free, since a session cannot wait for one lock while it
// takes others.
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

// Locker takes advisory locks on one session of a pool, taken from the pool while it holds
// a lock and given back when it holds none.
type Locker struct {
	pool *pgxpool.Pool
	// space keeps these locks apart from other users of advisory locks in the same database:
	// the lock key is the first argument of the two-key form.
	space int32
	owned bool // the pool is Open's, closed by Close

	// local holds the keys this node holds or is taking; a key's channel is closed when it is
	// released. Only its owner touches a key's lock in the session.
	local chan map[int32]chan struct{}
	// sess is the session, in a one-slot channel: taking it from the channel is holding it.
	sess chan *session
}

// session is the connection holding the node's advisory locks.
type session struct {
	conn *pgxpool.Conn
	gen  uint64 // bumped with each new connection: locks taken on an older one died with it
	held int    // locks held on conn
}

// Space is the advisory-lock key space the blob store's locks use.
const Space int32 = 0x4c424c4b // "LBLK"

// New returns the locks of a database.
func New(pool *pgxpool.Pool) *Locker {
	l := &Locker{pool: pool, space: Space, local: make(chan map[int32]chan struct{}, 1), sess: make(chan *session, 1)}
	l.local <- map[int32]chan struct{}{}
	l.sess <- &session{}
	return l
}

// key names a lock by a 32-bit hash of its name: two names sharing a hash share a lock, which
// makes a holder wait more than it must, never less.
func key(name string) int32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return int32(h.Sum32())
}

// Retry pauses for a lock another node holds: short at first (an upload's chunk or a commit
// holds one for milliseconds), growing to a bound.
const (
	retryFirst = 2 * time.Millisecond
	retryMax   = 50 * time.Millisecond
)

// queryTimeout bounds one statement on the session. The statements never wait for a lock, so
// they are not cancelled with the caller's context: cancelling a statement makes pgx close
// the connection, which would release every lock the node holds.
const queryTimeout = 10 * time.Second

// Lock takes the lock on name, waiting for it when wait is set, else failing at once with
// blob.ErrLocked.
func (l *Locker) Lock(ctx context.Context, name string, wait bool) (func(), error) {
	k := key(name)
	if err := l.lockLocal(ctx, name, k, wait); err != nil {
		return nil, err
	}
	pause := retryFirst
	for {
		gen, got, err := l.try(ctx, k)
		if err != nil {
			l.unlockLocal(k)
			return nil, unavailable(ctx, name, err)
		}
		if got {
			return func() {
				l.unlock(k, gen)
				l.unlockLocal(k)
			}, nil
		}
		if !wait {
			l.unlockLocal(k)
			return nil, blob.ErrLocked
		}
		select {
		case <-ctx.Done():
			l.unlockLocal(k)
			return nil, fmt.Errorf("lock %s: %w", name, ctx.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, retryMax)
	}
}

// lockLocal makes this goroutine the node's only user of key k.
func (l *Locker) lockLocal(ctx context.Context, name string, k int32, wait bool) error {
	for {
		m := <-l.local
		busy, ok := m[k]
		if !ok {
			m[k] = make(chan struct{})
			l.local <- m
			return nil
		}
		l.local <- m
		if !wait {
			return blob.ErrLocked
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lock %s: %w", name, ctx.Err())
		case <-busy:
		}
	}
}

func (l *Locker) unlockLocal(k int32) {
	m := <-l.local
	close(m[k])
	delete(m, k)
	l.local <- m
}

// try tries once to take key k in the session, and returns the session's generation.
func (l *Locker) try(ctx context.Context, k int32) (gen uint64, got bool, err error) {
	var s *session
	select {
	case s = <-l.sess:
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
	defer func() { l.sess <- s }()
	for attempt := 0; ; attempt++ {
		if s.conn == nil {
			if s.conn, err = l.pool.Acquire(ctx); err != nil {
				return 0, false, err
			}
			s.gen++
		}
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), queryTimeout)
		err = s.conn.QueryRow(qctx, "SELECT pg_try_advisory_lock($1, $2)", l.space, k).Scan(&got)
		cancel()
		if err == nil {
			if got {
				s.held++
			}
			l.idle(s)
			return s.gen, got, nil
		}
		// The session is broken (the database restarted, or dropped it): what it held is
		// gone with it. A session the pool kept idle may have died unnoticed, so try once
		// more on a new one before calling the database unavailable.
		l.drop(s)
		if attempt > 0 || ctx.Err() != nil || !store.Unavailable(err) {
			return 0, false, err
		}
	}
}

// unlock releases key k, taken on the session's generation gen.
func (l *Locker) unlock(k int32, gen uint64) {
	s := <-l.sess
	defer func() { l.sess <- s }()
	if s.conn == nil || s.gen != gen {
		return // the session that held it ended, and the lock with it
	}
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	var released bool
	if err := s.conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1, $2)", l.space, k).Scan(&released); err != nil {
		// Ending the session releases every lock it holds; the holders' locks already went
		// with the broken connection.
		l.drop(s)
		return
	}
	if released {
		s.held--
	}
	l.idle(s)
}

// idle gives the session's connection back to the pool when it holds no lock.
func (l *Locker) idle(s *session) {
	if s.held == 0 && s.conn != nil {
		s.conn.Release()
		s.conn = nil
	}
}

// drop ends the session.
func (l *Locker) drop(s *session) {
	if s.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.conn.Hijack().Close(ctx)
	s.conn, s.held = nil, 0
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
// connections (the locks use one at a time), closed by Close.
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
