package vulndb

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
)

// Change tells subscribers that the database moved from one version to another.
type Change struct {
	From, To int64
	// Keys are the packages whose advisories were added, changed or withdrawn.
	Keys []advisory.PackageKey
	// Full means the keys are unknown (the watcher started, or fell too far behind):
	// re-evaluate everything.
	Full bool
}

// merge folds a later change into c.
func (c Change) merge(d Change) Change {
	out := Change{From: c.From, To: d.To, Full: c.Full || d.Full}
	if out.Full {
		return out
	}
	set := make(map[advisory.PackageKey]struct{}, len(c.Keys)+len(d.Keys))
	for _, k := range c.Keys {
		set[k] = struct{}{}
	}
	for _, k := range d.Keys {
		set[k] = struct{}{}
	}
	out.Keys = slices.SortedFunc(maps.Keys(set), advisory.PackageKey.Compare)
	return out
}

// Watcher keeps an in-memory Index of the store's current version: it polls the version
// (cheap), and when it moves, rebuilds only the packages the new versions changed. Every
// process serving scans runs one, so an import made by another process or node is seen
// within one poll interval.
type Watcher struct {
	store    StoreReader
	log      *slog.Logger
	interval time.Duration
	cur      atomic.Pointer[advisory.Index]

	refresh   sync.Mutex // one refresh at a time
	mu        sync.Mutex
	subs      map[*Subscription]struct{}
	ready     chan struct{} // closed after the first successful refresh
	readyOnce sync.Once
}

// WatcherOptions configure a Watcher.
type WatcherOptions struct {
	// PollInterval is how often the version is checked; default 2 s.
	PollInterval time.Duration
	Logger       *slog.Logger
}

// fullReloadKeys is the change-set size above which reloading everything is cheaper.
const fullReloadKeys = 5000

// NewWatcher returns a watcher whose index is empty until the first Refresh.
func NewWatcher(store StoreReader, opts WatcherOptions) *Watcher {
	if opts.PollInterval <= 0 {
		opts.PollInterval = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	w := &Watcher{store: store, log: opts.Logger, interval: opts.PollInterval, subs: map[*Subscription]struct{}{}, ready: make(chan struct{})}
	w.cur.Store(advisory.EmptyIndex())
	return w
}

// Index returns the current index snapshot. It never returns nil; before the first
// refresh it is empty (see Ready).
func (w *Watcher) Index() *advisory.Index { return w.cur.Load() }

// Current brings the index up to the store's version and returns it: a scan that starts
// right after an import by another process (`lading db import`, another node) matches
// against that import rather than against the index of the last poll. Checking the version
// is one cheap read; a rebuild, when the version moved, is what the next poll would do anyway.
func (w *Watcher) Current(ctx context.Context) (*advisory.Index, error) {
	if _, err := w.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("refresh the advisory index: %w", err)
	}
	return w.Index(), nil
}

// Ready is closed once the index reflects the store (after the first successful refresh):
// scans should wait for it rather than match against the empty index.
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// Run refreshes now and then every poll interval until ctx is done. Failed refreshes are
// logged and retried; the last good index stays in use.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		if _, err := w.Refresh(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("vulndb: advisory index refresh failed; keeping the current index", "version", w.Index().Version(), "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Refresh brings the index up to the store's version. It reports the change, if any,
// after notifying subscribers.
func (w *Watcher) Refresh(ctx context.Context) (*Change, error) {
	w.refresh.Lock()
	defer w.refresh.Unlock()
	v, err := w.store.AdvisoryVersion(ctx)
	if err != nil {
		return nil, err
	}
	cur := w.cur.Load()
	if v == cur.Version() {
		w.readyOnce.Do(func() { close(w.ready) })
		return nil, nil
	}
	var next *advisory.Index
	var ch Change
	if cur.Version() > 0 && v > cur.Version() {
		next, ch, err = w.incremental(ctx, cur)
		if err != nil {
			return nil, err
		}
	}
	if next == nil {
		start := time.Now()
		advs, version, err := loadAll(ctx, w.store)
		if err != nil {
			return nil, err
		}
		next = advisory.BuildIndex(version, advs)
		if ch.To != version || len(ch.Keys) == 0 {
			ch = Change{From: cur.Version(), To: version, Full: true}
		}
		w.log.Info("vulndb: advisory index loaded", "version", version, "advisories", next.Stats().Advisories,
			"packages", next.Stats().Packages, "elapsed", time.Since(start).Round(time.Millisecond))
	}
	w.cur.Store(next)
	w.readyOnce.Do(func() { close(w.ready) })
	w.publish(ch)
	return &ch, nil
}

// incremental rebuilds the packages changed since cur. It returns a nil index when a full
// reload is needed, with the change set if it is known.
func (w *Watcher) incremental(ctx context.Context, cur *advisory.Index) (*advisory.Index, Change, error) {
	var advs []*advisory.Advisory
	cs, err := w.store.AdvisoryChanges(ctx, cur.Version(), func(r StoredRecord) error {
		if a := cur.Advisory(r.ID); a != nil && a.Hash == r.Hash {
			advs = append(advs, a) // unchanged: no need to parse it again
			return nil
		}
		a, err := advisory.ParseCanonical(r.Raw, r.Hash)
		if err != nil {
			return fmt.Errorf("stored record %s: %w", r.ID, err)
		}
		advs = append(advs, a)
		return nil
	})
	if err != nil {
		return nil, Change{}, err
	}
	ch := Change{From: cur.Version(), To: cs.To, Keys: cs.Keys}
	if !cs.Complete {
		return nil, Change{}, nil
	}
	if len(cs.Keys) > fullReloadKeys {
		return nil, ch, nil
	}
	next := cur.WithChanges(cs.To, cs.Keys, advs)
	w.log.Debug("vulndb: advisory index refreshed", "from", cur.Version(), "to", cs.To, "packages", len(cs.Keys))
	return next, ch, nil
}

// Subscribe returns a subscription to index changes. Changes that arrive while the
// subscriber is busy are merged, never dropped and never blocking the watcher.
func (w *Watcher) Subscribe() *Subscription {
	s := &Subscription{w: w, ready: make(chan struct{}, 1)}
	w.mu.Lock()
	w.subs[s] = struct{}{}
	w.mu.Unlock()
	return s
}

func (w *Watcher) publish(ch Change) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for s := range w.subs {
		s.push(ch)
	}
}

// Subscription receives the changes of a Watcher's index.
type Subscription struct {
	w       *Watcher
	mu      sync.Mutex
	pending *Change
	ready   chan struct{}
}

func (s *Subscription) push(ch Change) {
	s.mu.Lock()
	if s.pending == nil {
		s.pending = &ch
	} else {
		m := s.pending.merge(ch)
		s.pending = &m
	}
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Ready is signalled when a change is pending; call Next to take it.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Next waits for the next change (all changes since the last call, merged).
func (s *Subscription) Next(ctx context.Context) (Change, error) {
	for {
		s.mu.Lock()
		if p := s.pending; p != nil {
			s.pending = nil
			s.mu.Unlock()
			return *p, nil
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return Change{}, ctx.Err()
		case <-s.ready:
		}
	}
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.w.mu.Lock()
	delete(s.w.subs, s)
	s.w.mu.Unlock()
}

// Syncer updates the database from a mirror on a schedule: what `lading serve` runs.
type Syncer struct {
	db   *DB
	opts SyncerOptions
	mu   sync.Mutex
	st   SyncStatus
}

// SyncerOptions configure a Syncer.
type SyncerOptions struct {
	// Source is the mirror (see DB.Update); NoSource ("none") disables syncing.
	Source     string
	Ecosystems []string
	// Interval between syncs; default 1 h.
	Interval time.Duration
}

// SyncStatus describes the syncer's last attempts.
type SyncStatus struct {
	LastAttempt time.Time `json:"lastAttempt,omitzero"`
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
	LastResult  *Result   `json:"lastResult,omitempty"`
}

// NewSyncer returns a syncer for db.
func NewSyncer(db *DB, opts SyncerOptions) *Syncer {
	if opts.Interval <= 0 {
		opts.Interval = time.Hour
	}
	return &Syncer{db: db, opts: opts}
}

// Run syncs now and then every interval until ctx is done; with source "none" it returns
// at once. A failed sync is logged and leaves the database as it was.
func (s *Syncer) Run(ctx context.Context) error {
	if s.opts.Source == NoSource {
		s.db.opts.Logger.Info("vulndb: advisory sync disabled (source none)")
		return nil
	}
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		s.SyncOnce(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// SyncOnce runs one sync and records its outcome.
func (s *Syncer) SyncOnce(ctx context.Context) (*Result, error) {
	start := time.Now()
	res, err := s.db.Update(ctx, s.opts.Source, s.opts.Ecosystems)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.LastAttempt = start
	if err != nil {
		s.st.LastError = err.Error()
		if ctx.Err() == nil {
			s.db.opts.Logger.Error("vulndb: advisory sync failed; the database is unchanged", "source", s.opts.Source, "err", err)
		}
		return nil, err
	}
	s.st.LastSuccess, s.st.LastError, s.st.LastResult = start, "", res
	s.db.opts.Logger.Info("vulndb: advisory sync done", "source", s.opts.Source, "version", res.Version, "changed", res.Changed, "elapsed", res.Elapsed.Round(time.Millisecond))
	return res, nil
}

// Status reports the last sync attempts.
func (s *Syncer) Status() SyncStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}
