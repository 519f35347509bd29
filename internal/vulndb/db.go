package vulndb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
)

// DB is Lading's advisory database: imports and updates write batches to the Store; queries
// and the index read it. One DB serves one process; many processes may share one store.
type DB struct {
	store Store
	opts  Options
}

// Options configure a DB. The zero value works.
type Options struct {
	Logger   *slog.Logger // default: slog.Default()
	Progress Progress     // default: no progress reports
	// HTTPClient fetches from HTTP mirrors; default: a client with a 30 s header timeout.
	HTTPClient *http.Client
	// CacheDir keeps partial downloads of all.zip files so an interrupted update resumes
	// where it stopped; "" means a temporary directory (no resume across runs).
	CacheDir string
	// SkipInvalid makes imports and updates skip records that fail to parse (counted in
	// Result.Skipped) instead of failing.
	SkipInvalid bool
	// UserAgent is sent to HTTP mirrors.
	UserAgent string
	// StallTimeout ends an HTTP transfer that receives nothing for this long; default 1 min.
	StallTimeout time.Duration
}

// New returns a DB over store.
func New(store Store, opts Options) *DB {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Progress == nil {
		opts.Progress = nopProgress{}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			ResponseHeaderTimeout: 30 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   8,
		}}
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = time.Minute
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "lading-vulndb"
	}
	return &DB{store: store, opts: opts}
}

// Store returns the store the DB writes to.
func (d *DB) Store() Store { return d.store }

// Result is the outcome of an import or an update.
type Result struct {
	// Version is the database version after the batch: new if Changed, else unchanged.
	Version  int64 `json:"version"`
	Previous int64 `json:"previousVersion"`
	Changed  bool  `json:"changed"`
	BatchStats
	// Skipped counts invalid records skipped under Options.SkipInvalid.
	Skipped int `json:"skipped"`
	// Keys are the packages the batch added, changed or withdrew advisories for.
	Keys    []advisory.PackageKey `json:"-"`
	Elapsed time.Duration         `json:"elapsed"`
}

// maxAttempts bounds retries of a batch that lost a race with another batch.
const maxAttempts = 3

// Import imports all.zip files, folders in OSV's bucket layout, folders of OSV JSON records
// and single records, as one batch: either everything becomes the next version or nothing
// does. An all.zip in an ecosystem's folder is that ecosystem's complete set: current
// records of the ecosystem that it lacks are deleted.
func (d *DB) Import(ctx context.Context, paths ...string) (*Result, error) {
	srcs, err := resolveSources(paths)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	// Without a complete set there is nothing to delete, so only the digests of the records
	// imported are needed: a small import need not read the whole database's digests.
	lazy := true
	for _, s := range srcs {
		if s.snapshot != "" {
			lazy = false
		}
	}
	return d.runBatch(ctx, "import", strings.Join(paths, " "), lazy, func(a *applier) error {
		for _, s := range srcs {
			if err := a.addSource(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
}

// runBatch applies one batch, retrying when another batch committed meanwhile.
func (d *DB) runBatch(ctx context.Context, kind, source string, lazy bool, fill func(*applier) error) (*Result, error) {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		res, err := d.applyOnce(ctx, kind, source, lazy, fill)
		if errors.Is(err, ErrConflict) && attempt < maxAttempts {
			d.opts.Logger.Info("vulndb: another batch committed meanwhile; starting over", "kind", kind, "attempt", attempt)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w (the advisory database is unchanged)", kind, err)
		}
		res.Elapsed = time.Since(start)
		return res, nil
	}
}

func (d *DB) applyOnce(ctx context.Context, kind, source string, lazy bool, fill func(*applier) error) (res *Result, err error) {
	a := &applier{db: d, kind: kind, source: source, current: map[string]RecordDigest{}, byHash: map[string]string{},
		seen: map[string]seenRecord{}, snapshots: map[string]map[string]bool{}, changes: map[advisory.PackageKey]struct{}{}, lazy: lazy}
	if lazy {
		// Digests are read per record as records come (current); the version they are read
		// against is checked at commit, as in the eager case.
		a.base, err = d.store.AdvisoryVersion(ctx)
	} else {
		a.base, err = d.store.AdvisoryDigests(ctx, func(rd RecordDigest) error {
			a.current[rd.ID] = rd
			a.byHash[rd.Hash] = rd.ID
			return nil
		})
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && a.batch != nil {
			if aerr := a.batch.Abort(ctx); aerr != nil {
				d.opts.Logger.Warn("vulndb: could not remove an aborted batch; it is collected later", "err", aerr)
			}
		}
	}()
	if err := fill(a); err != nil {
		return nil, err
	}
	return a.finish(ctx)
}

type seenRecord struct {
	modified time.Time
	hash     string
	staged   bool
}

// applier diffs incoming records against the current version and stages what changed.
type applier struct {
	db           *DB
	kind, source string
	base         int64
	current      map[string]RecordDigest
	byHash       map[string]string // hash of a current record -> its id
	seen         map[string]seenRecord
	snapshots    map[string]map[string]bool // ecosystem -> ids its complete set holds
	changes      map[advisory.PackageKey]struct{}
	batch        StagedBatch
	stats        BatchStats
	skipped      int
	// lazy: current holds only the records looked up so far (there is no complete set to
	// diff against), and byHash is empty.
	lazy bool
}

// currentDigest returns the current version's digest of a record.
func (a *applier) currentDigest(ctx context.Context, id string) (RecordDigest, bool, error) {
	if d, ok := a.current[id]; ok || !a.lazy {
		return d, ok, nil
	}
	d, ok, err := a.db.store.AdvisoryDigest(ctx, id)
	if err == nil && ok {
		a.current[id] = d
	}
	return d, ok, err
}

func (a *applier) stage(ctx context.Context) (StagedBatch, error) {
	if a.batch == nil {
		b, err := a.db.store.StageAdvisories(ctx, BatchInfo{Base: a.base, Kind: a.kind, Source: a.source})
		if err != nil {
			return nil, err
		}
		a.batch = b
	}
	return a.batch, nil
}

// snapshot declares that ids is the complete set of records of ecosystem.
func (a *applier) snapshot(ecosystem string) map[string]bool {
	ids := a.snapshots[ecosystem]
	if ids == nil {
		ids = map[string]bool{}
		a.snapshots[ecosystem] = ids
	}
	return ids
}

func (a *applier) addSource(ctx context.Context, s source) error {
	p := a.db.opts.Progress
	var total int64
	if s.kind == zipSource {
		total = countZipRecords(s.path)
	}
	p.Begin("import "+s.path, "records", total)
	defer p.End()
	var ids map[string]bool
	if s.snapshot != "" {
		ids = a.snapshot(s.snapshot)
	}
	return s.each(ctx, func(where string, raw []byte) error {
		p.Advance(1)
		return a.add(ctx, where, raw, ids)
	})
}

// add diffs one raw record; snapshotIDs, when not nil, collects the ids of a complete set.
func (a *applier) add(ctx context.Context, where string, raw []byte, snapshotIDs map[string]bool) error {
	compact, hash, err := advisory.Canonicalize(raw)
	if err == nil {
		// A record identical to a current one needs no parsing: most of a sync is unchanged.
		if id, ok := a.byHash[hash]; ok && !a.seen[id].staged {
			if snapshotIDs != nil {
				snapshotIDs[id] = true
			}
			if _, dup := a.seen[id]; !dup {
				a.seen[id] = seenRecord{modified: a.current[id].Modified, hash: hash}
				a.stats.Unchanged++
			}
			return nil
		}
	}
	var adv *advisory.Advisory
	if err == nil {
		adv, err = advisory.ParseCanonical(compact, hash)
	}
	if err != nil {
		if a.db.opts.SkipInvalid {
			a.skipped++
			a.db.opts.Logger.Warn("vulndb: skipping invalid record", "where", where, "err", err)
			return nil
		}
		return fmt.Errorf("%s: %w", where, err)
	}
	if snapshotIDs != nil {
		snapshotIDs[adv.ID] = true
	}
	prev, dup := a.seen[adv.ID]
	if dup && (prev.hash == hash || adv.Modified.Before(prev.modified)) {
		return nil // the same record again, or an older copy of it
	}
	cur, exists, err := a.currentDigest(ctx, adv.ID)
	if err != nil {
		return err
	}
	if exists && cur.Hash == hash && !prev.staged {
		a.seen[adv.ID] = seenRecord{modified: adv.Modified, hash: hash}
		if !dup {
			a.stats.Unchanged++
		}
		return nil
	}
	b, err := a.stage(ctx)
	if err != nil {
		return err
	}
	keys := adv.Keys()
	if err := b.Put(ctx, StoredRecord{ID: adv.ID, Modified: adv.Modified, Withdrawn: adv.IsWithdrawn(), Hash: hash, Keys: keys, Raw: compact}); err != nil {
		return err
	}
	for _, k := range keys {
		a.changes[k] = struct{}{}
	}
	for _, k := range cur.Keys {
		a.changes[k] = struct{}{}
	}
	if !prev.staged {
		switch {
		case !exists:
			a.stats.Added++
		default:
			a.stats.Changed++
		}
		if adv.IsWithdrawn() {
			a.stats.Withdrawn++
		}
	}
	a.seen[adv.ID] = seenRecord{modified: adv.Modified, hash: hash, staged: true}
	return nil
}

// deletions returns the current records that complete sets in this batch lack: a record is
// deleted only when every ecosystem it affects had its complete set in the batch and none
// of them (nor any other input) holds it, so a record listed under two ecosystems survives
// an update of just one of them.
func (a *applier) deletions() []RecordDigest {
	if len(a.snapshots) == 0 {
		return nil
	}
	var out []RecordDigest
	for id, d := range a.current {
		if _, seen := a.seen[id]; seen || len(d.Keys) == 0 {
			continue
		}
		covered, present := true, false
		for _, k := range d.Keys {
			ids, ok := a.snapshots[advisory.BaseEcosystem(k.Ecosystem)]
			if !ok {
				covered = false
				break
			}
			present = present || ids[id]
		}
		if covered && !present {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(x, y RecordDigest) int { return strings.Compare(x.ID, y.ID) })
	return out
}

func (a *applier) finish(ctx context.Context) (*Result, error) {
	for _, d := range a.deletions() {
		b, err := a.stage(ctx)
		if err != nil {
			return nil, err
		}
		if err := b.Delete(ctx, d.ID); err != nil {
			return nil, err
		}
		for _, k := range d.Keys {
			a.changes[k] = struct{}{}
		}
		a.stats.Deleted++
	}
	res := &Result{Version: a.base, Previous: a.base, BatchStats: a.stats, Skipped: a.skipped}
	if a.batch == nil {
		return res, nil // nothing changed: no new version
	}
	keys := make([]advisory.PackageKey, 0, len(a.changes))
	for k := range a.changes {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, advisory.PackageKey.Compare)
	if err := a.batch.AddChanges(ctx, keys); err != nil {
		return nil, err
	}
	v, err := a.batch.Commit(ctx, a.stats)
	if err != nil {
		return nil, err
	}
	res.Version, res.Changed, res.Keys = v, true, keys
	a.db.opts.Logger.Info("vulndb: new advisory database version", "version", v, "kind", a.kind,
		"added", a.stats.Added, "changed", a.stats.Changed, "withdrawn", a.stats.Withdrawn, "deleted", a.stats.Deleted, "packages", len(keys))
	return res, nil
}

// Status describes the current database version: per ecosystem the record count and the
// newest modified time.
func (d *DB) Status(ctx context.Context) (*Status, error) {
	return d.store.AdvisoryStatus(ctx)
}

// Changes returns the package keys changed by the versions after `after`.
func (d *DB) Changes(ctx context.Context, after int64) (ChangeSet, error) {
	return d.store.AdvisoryChanges(ctx, after, nil)
}

// IndexFor builds an index holding only the advisories that affect keys (and, for
// distributions whose records may omit the release, the same package of the bare ecosystem):
// what a one-off scan of a known inventory needs, without loading the whole database.
func (d *DB) IndexFor(ctx context.Context, keys []advisory.PackageKey) (*advisory.Index, error) {
	want := make([]advisory.PackageKey, 0, len(keys))
	seen := make(map[advisory.PackageKey]bool, len(keys))
	add := func(k advisory.PackageKey) {
		if !seen[k] {
			seen[k] = true
			want = append(want, k)
		}
	}
	for _, k := range keys {
		k = advisory.MakeKey(k.Ecosystem, k.Name)
		add(k)
		if bare, ok := k.Bare(); ok {
			add(bare)
		}
	}
	var advs []*advisory.Advisory
	v, err := d.store.LoadAdvisories(ctx, want, func(r StoredRecord) error {
		a, err := advisory.ParseCanonical(r.Raw, r.Hash)
		if err != nil {
			return fmt.Errorf("stored record %s: %w", r.ID, err)
		}
		advs = append(advs, a)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return advisory.BuildIndex(v, advs), nil
}

// Query returns the vulnerabilities affecting one package version, read from the store
// (without building the whole index): `lading db query`. The result is never nil.
func (d *DB) Query(ctx context.Context, ecosystem, pkg, version string) ([]*advisory.Vulnerability, error) {
	ix, err := d.IndexFor(ctx, []advisory.PackageKey{{Ecosystem: ecosystem, Name: pkg}})
	if err != nil {
		return nil, err
	}
	vs, err := ix.Affecting(ecosystem, pkg, version)
	if vs == nil {
		vs = []*advisory.Vulnerability{}
	}
	return vs, err
}

// LoadIndex builds the index of the current version from the store.
func (d *DB) LoadIndex(ctx context.Context) (*advisory.Index, error) {
	advs, v, err := loadAll(ctx, d.store)
	if err != nil {
		return nil, err
	}
	return advisory.BuildIndex(v, advs), nil
}

// loadAll reads and parses every current record, parsing on all CPUs.
func loadAll(ctx context.Context, store StoreReader) ([]*advisory.Advisory, int64, error) {
	type job struct {
		i int
		r StoredRecord
	}
	jobs := make(chan job, 256)
	var (
		mu       sync.Mutex
		advs     []*advisory.Advisory
		firstErr error
		wg       sync.WaitGroup
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range jobs {
				a, err := advisory.ParseCanonical(j.r.Raw, j.r.Hash)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("stored record %s: %w", j.r.ID, err)
				}
				if err == nil {
					for len(advs) <= j.i {
						advs = append(advs, nil)
					}
					advs[j.i] = a
				}
				mu.Unlock()
			}
		})
	}
	n := 0
	v, err := store.LoadAdvisories(ctx, nil, func(r StoredRecord) error {
		select {
		case jobs <- job{n, r}:
			n++
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(jobs)
	wg.Wait()
	if err == nil {
		err = firstErr
	}
	if err != nil {
		return nil, 0, err
	}
	return slices.DeleteFunc(advs, func(a *advisory.Advisory) bool { return a == nil }), v, nil
}
