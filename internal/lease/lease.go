// Package lease runs work on one node at a time when several nodes share the metadata store:
// the once-per-registry background duties (garbage collection, lifecycle, advisory sync,
// upload purge) and each webhook's event delivery. A lease is a row in the store held by one
// holder until it expires; its holder renews it while the work runs, and when the holder dies
// (kill -9, lost network) another node takes the lease once it has expired and starts the
// work. Work that loses its lease is cancelled, so two nodes never run it for longer than the
// renewal interval together.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

// Store keeps the leases (store/sqlite, store/postgres).
type Store interface {
	// AcquireLease takes name for holder until ttl from now, or renews it when holder has
	// it, and returns who holds it now ("" when no one: try again).
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (string, error)
	// ReleaseLease gives up holder's lease name.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// DefaultTTL is how long a lease lasts without renewal: how long a dead holder's work waits
// before another node takes it up.
const DefaultTTL = 15 * time.Second

// MinTTL is the shortest TTL a Runner takes (a shorter one is raised to it).
const MinTTL = 30 * time.Millisecond

// NewHolder names this process among the nodes: host name, process id and a random part, so
// that a restarted process (same host and maybe the same pid) is a new holder.
func NewHolder() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Runner runs work under leases for one holder.
type Runner struct {
	st     Store
	holder string
	ttl    time.Duration
	log    *slog.Logger
}

// NewRunner returns a Runner for holder; ttl 0 means DefaultTTL.
func NewRunner(st Store, holder string, ttl time.Duration, log *slog.Logger) *Runner {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	// Renewals every third of the TTL: shorter than this would have the store do little else.
	ttl = max(ttl, MinTTL)
	if log == nil {
		log = slog.Default()
	}
	return &Runner{st: st, holder: holder, ttl: ttl, log: log}
}

// deadLocal reports whether holder is a process of this host that is no longer running: its
// pid is gone, or is this process's own pid under another holder name (a restart in a
// container, where the pid repeats).
func (r *Runner) deadLocal(holder string) bool {
	host, pid, ok := parseHolder(holder)
	myHost, myPid, _ := parseHolder(r.holder)
	if !ok || host != myHost {
		return false
	}
	if pid == myPid {
		return holder != r.holder
	}
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return errors.Is(err, fs.ErrNotExist)
}

// parseHolder splits a NewHolder name.
func parseHolder(holder string) (host string, pid int, ok bool) {
	host, rest, ok := strings.Cut(holder, "/")
	if !ok {
		return "", 0, false
	}
	p, _, ok := strings.Cut(rest, "/")
	if !ok {
		return "", 0, false
	}
	pid, err := strconv.Atoi(p)
	return host, pid, err == nil
}

// Holder is the name this runner holds leases under.
func (r *Runner) Holder() string { return r.holder }

// Run calls work whenever this holder holds the lease name, until ctx ends: it tries to take
// the lease every third of the TTL, renews it as often while work runs, and cancels work's
// context when a renewal fails (the lease was taken, or the store did not answer before the
// lease expired). Work that returns while the lease is held is called again (after a third of
// the TTL); a loop that should run for as long as the lease is held blocks until its context
// ends. On return the lease is released, so that another node need not wait for it to expire.
func (r *Runner) Run(ctx context.Context, name string, work func(ctx context.Context)) {
	every := r.ttl / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for ctx.Err() == nil {
		current, err := r.st.AcquireLease(ctx, name, r.holder, r.ttl)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("lease: cannot take", "lease", name, "err", err)
		}
		if err == nil && current != r.holder && r.deadLocal(current) {
			// A process of this host that died (kill -9, a crash) holds it: no need to wait
			// for the lease to expire, as after a restart of a single node.
			if rerr := r.st.ReleaseLease(ctx, name, current); rerr != nil {
				r.log.Warn("lease: cannot release the lease of a process that died", "lease", name, "holder", current, "err", rerr)
			} else {
				r.log.Info("lease: released the lease of a process that died", "lease", name, "holder", current)
				current, err = r.st.AcquireLease(ctx, name, r.holder, r.ttl)
			}
		}
		if err == nil && current == r.holder {
			r.log.Debug("lease taken", "lease", name, "holder", r.holder)
			r.hold(ctx, name, every, work)
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.st.ReleaseLease(rctx, name, r.holder); err != nil {
		r.log.Warn("lease: cannot release", "lease", name, "err", err)
	}
}

// hold runs work while the lease is renewed, and returns when work returns or the lease is
// lost.
func (r *Runner) hold(ctx context.Context, name string, every time.Duration, work func(ctx context.Context)) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		work(wctx)
	}()
	t := time.NewTicker(every)
	defer t.Stop()
	renewed := time.Now()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		current, err := r.st.AcquireLease(wctx, name, r.holder, r.ttl)
		switch {
		case err == nil && current == r.holder:
			renewed = time.Now()
			continue
		case err == nil:
			r.log.Warn("lease lost to another node; stopping its work", "lease", name)
		case time.Since(renewed) < r.ttl-every:
			// The store did not answer: the lease still holds for a while, try again.
			r.log.Warn("lease: cannot renew", "lease", name, "err", err)
			continue
		default:
			r.log.Warn("lease: not renewed before it expired; stopping its work", "lease", name, "err", err)
		}
		cancel()
		<-done
		return
	}
}
