// Package lease runs a background duty on one node of several at a time: the node holding a
// named lease in the shared store runs it, renewing the lease as it goes; when that node dies
// the lease expires and another node takes the duty over. On one node (SQLite) the same code
// takes the lease at once and keeps it.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"
)

// Store keeps the leases; store/sqlite and store/postgres implement it.
type Store interface {
	// AcquireLease takes or renews the lease name for holder until ttl from now, and reports
	// whether holder has it.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives up holder's lease name.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// DefaultTTL is how long a lease lasts unrenewed: how long a dead node's duties wait.
const DefaultTTL = 15 * time.Second

// NewHolderID is a random name for this process among the nodes.
func NewHolderID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// Holder runs duties under leases, as one node.
type Holder struct {
	st  Store
	id  string
	ttl time.Duration
	log *slog.Logger
}

// NewHolder is the node id's holder of leases lasting ttl (0: DefaultTTL).
func NewHolder(st Store, id string, ttl time.Duration, log *slog.Logger) *Holder {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if log == nil {
		log = slog.Default()
	}
	return &Holder{st: st, id: id, ttl: ttl, log: log}
}

// ID is the holder's name in the store.
func (h *Holder) ID() string { return h.id }

// Run runs fn while this node holds the lease name, until ctx ends: it tries to take the lease
// every third of the TTL; once it has it, it starts fn and renews the lease as often. When a
// renewal says the lease went to another node, or renewals fail until the lease would have
// expired, fn's context is cancelled and Run waits for fn to return before trying again, so
// two nodes never run the duty at once for longer than fn takes to notice its context.
// When ctx ends, the lease is released so that another node need not wait for it to expire.
func (h *Holder) Run(ctx context.Context, name string, fn func(ctx context.Context)) {
	t := ticker{time.NewTicker(h.ttl / 3), h.ttl / 3}
	defer t.Stop()
	for ctx.Err() == nil {
		ok, err := h.st.AcquireLease(ctx, name, h.id, h.ttl)
		if err != nil && ctx.Err() == nil {
			h.log.Warn("take lease", "lease", name, "err", err)
		}
		if ok {
			h.held(ctx, name, time.Now().Add(h.ttl), t, fn)
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// held runs fn and renews the lease until it is lost or ctx ends.
func (h *Holder) held(ctx context.Context, name string, until time.Time, t ticker, fn func(context.Context)) {
	h.log.Debug("lease taken", "lease", name, "holder", h.id)
	dctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { fn(dctx) })
	defer func() {
		stop()
		wg.Wait()
		if ctx.Err() != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := h.st.ReleaseLease(rctx, name, h.id); err != nil {
				h.log.Warn("release lease", "lease", name, "err", err)
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// The lease's end is counted from before the renewal is sent, so this node's idea of
		// it is never later than the store's.
		sent := time.Now()
		ok, err := h.st.AcquireLease(ctx, name, h.id, h.ttl)
		switch {
		case err == nil && ok:
			until = sent.Add(h.ttl)
		case err == nil:
			h.log.Warn("lease lost to another node", "lease", name)
			return
		case ctx.Err() != nil:
			return
		case time.Now().Add(t.period).After(until):
			// Stopped before the lease runs out, not at the next tick after it did.
			h.log.Warn("lease lapsed: the store did not answer", "lease", name, "err", err)
			return
		default:
			h.log.Warn("renew lease", "lease", name, "err", err)
		}
	}
}

// ticker is a time.Ticker that knows its period.
type ticker struct {
	*time.Ticker
	period time.Duration
}
