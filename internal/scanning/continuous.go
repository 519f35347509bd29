package scanning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning/pipeline"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/vulndb"
)

// evaluatedVersionSetting records the advisory database version continuous scanning has applied,
// so a restart re-evaluates only when the database moved meanwhile.
const evaluatedVersionSetting = "scanning.evaluated_advisory_version"

// reevaluateBatch bounds the images re-evaluated in one transaction.
const reevaluateBatch = 2000

// continuous follows the advisory database and re-evaluates the images it affects.
func (s *Service) continuous(ctx context.Context) {
	sub := s.adv.Subscribe()
	defer sub.Close()
	// Changes published before this subscription (while another node held the lease, or
	// before this one started) are caught up with as a Full change: Reevaluate does nothing
	// when the registry already evaluated the current version.
	if idx, err := s.adv.Current(ctx); err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.Warn("continuous scanning: read the advisory index", "err", err)
		}
	} else {
		s.reevaluate(ctx, vulndb.Change{To: idx.Version(), Full: true})
	}
	for {
		ch, err := sub.Next(ctx)
		if err != nil {
			return
		}
		s.reevaluate(ctx, ch)
	}
}

// reevaluate applies one change of the advisory index, retrying a failed re-evaluation.
func (s *Service) reevaluate(ctx context.Context, ch vulndb.Change) {
	now := s.cfg.Now()
	s.indexChangedAt.Store(&now)
	n, err := s.Reevaluate(ctx, ch)
	// A failed re-evaluation (the store busy, say) is retried: the change's keys would
	// otherwise be lost, since the next change carries only its own.
	for attempt, wait := 1, time.Second; err != nil && ctx.Err() == nil && attempt < 5; attempt, wait = attempt+1, wait*2 {
		s.cfg.Logger.Warn("continuous scan re-evaluation failed; retrying", "from", ch.From, "to", ch.To, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		n, err = s.Reevaluate(ctx, ch)
	}
	switch {
	case err != nil && ctx.Err() == nil:
		s.cfg.Logger.Warn("continuous scan re-evaluation failed", "from", ch.From, "to", ch.To, "err", err)
	case err == nil && n > 0:
		s.cfg.Logger.Info("advisories changed: images re-evaluated", "from", ch.From, "to", ch.To, "packages", len(ch.Keys), "images", n,
			"elapsed", s.cfg.Now().Sub(now).String())
	}
}

// Reevaluate re-matches, from their stored inventories, the images in continuous coverage that
// hold a package the change touched (every such image when the change is Full), and writes the
// resulting finding changes and events. No layer is read. It returns how many images it
// re-evaluated.
//
// For a change with known keys only the packages whose advisories changed are matched again,
// with the packages of the stored findings those matches touch (see changedFindings); the
// other findings of the image stay as they are, only observed again. A Full change matches
// every package of every image.
func (s *Service) Reevaluate(ctx context.Context, ch vulndb.Change) (int, error) {
	if ch.Full {
		if v, err := s.store.Setting(ctx, evaluatedVersionSetting); err == nil && v == strconv.FormatInt(ch.To, 10) {
			return 0, nil // nothing new since this registry last caught up
		}
	}
	var keys []store.PackageKey
	var changed keySet
	if !ch.Full {
		if len(ch.Keys) == 0 {
			return 0, s.store.PutSetting(ctx, evaluatedVersionSetting, strconv.FormatInt(ch.To, 10))
		}
		keys = make([]store.PackageKey, 0, len(ch.Keys))
		changed = make(keySet, len(ch.Keys))
		for _, k := range ch.Keys {
			keys = append(keys, store.PackageKey{Ecosystem: k.Ecosystem, Name: k.Name})
			changed[k] = struct{}{}
		}
	}
	refs, err := s.store.InventoriesHolding(ctx, policy.ScanTypeEnhanced, keys)
	if err != nil {
		return 0, err
	}
	pol, err := s.store.ScanningPolicy(ctx)
	if err != nil {
		return 0, err
	}
	if pol.ScanType != policy.ScanTypeEnhanced {
		return 0, s.store.PutSetting(ctx, evaluatedVersionSetting, strconv.FormatInt(ch.To, 10))
	}
	_, window, err := s.Rescan(ctx)
	if err != nil {
		return 0, err
	}
	now := s.cfg.Now()
	var eligible []store.InventoryRef
	for _, r := range refs {
		if policy.Evaluate(pol, r.Repository, r.ScanOnPush).Frequency != policy.FrequencyContinuous {
			continue
		}
		if !window.Covers(r.PushedAt, r.LastPulledAt, now) {
			continue // out of the rescan window, as Inspector stops monitoring such images
		}
		eligible = append(eligible, r)
	}
	// The parts that hold the changed keys: an inventory's other parts are not read, even when
	// their bucket masks (32 bits, a coarse filter) say they might hold them.
	var holding map[string]bool
	if changed != nil && len(eligible) > 0 {
		hashes, err := s.store.InventoryPartsHolding(ctx, keys)
		if err != nil {
			return 0, err
		}
		holding = make(map[string]bool, len(hashes))
		for _, h := range hashes {
			holding[string(h)] = true
		}
	}
	idx := s.adv.Index()
	done := 0
	// The batches select the same findings: the store may carry what it worked out of the
	// selection from one to the next.
	memo := &store.SelectionMemo{}
	for start := 0; start < len(eligible); start += reevaluateBatch {
		batch := eligible[start:min(start+reevaluateBatch, len(eligible))]
		if err := s.reevaluateBatch(ctx, batch, idx, changed, holding, memo, now); err != nil {
			return done, err
		}
		done += len(batch)
	}
	return done, s.store.PutSetting(ctx, evaluatedVersionSetting, strconv.FormatInt(ch.To, 10))
}

// selectingStore is a store that can hand a re-evaluation partial scan states: only the
// findings holding a changed key (store.FindingSelection), the others observed again unread.
type selectingStore interface {
	ApplyScansSelected(ctx context.Context, targets []store.ScanTarget, sel store.FindingSelection,
		update func(store.ScanState) (store.ScanUpdate, error)) error
}

// wholeState makes a partial scan state whole: every finding of the target, for what compares
// an update with all of them.
func wholeState(ctx context.Context, st *store.ScanState) error {
	if !st.Partial {
		return nil
	}
	fs, err := st.All(ctx)
	if err != nil {
		return err
	}
	st.Findings, st.Partial = fs, false
	return nil
}

// keySet is the set of package keys a change touched.
type keySet map[advisory.PackageKey]struct{}

// holds reports whether the advisories matched against p may have changed: see holdsKey.
func (ks keySet) holds(p inventory.Package) bool {
	if p.Ecosystem == "" {
		return false
	}
	return ks.holdsKey(match.Key(p))
}

// holdsKey reports whether the advisories of key k may have changed: k is in the set, or k
// without the release, since a record of the bare ecosystem ("Debian") applies to every
// release.
func (ks keySet) holdsKey(k advisory.PackageKey) bool {
	if _, ok := ks[k]; ok {
		return true
	}
	if base := advisory.BaseEcosystem(k.Ecosystem); base != k.Ecosystem {
		_, ok := ks[advisory.PackageKey{Ecosystem: base, Name: k.Name}]
		return ok
	}
	return false
}

// loadedInventory is what re-evaluation needs of one stored inventory.
type loadedInventory struct {
	os      *inventory.OSInfo
	history map[string]string
	// pkgs are the packages a change with known keys touched.
	pkgs []inventory.Package
	// matched is the match of every package, for a Full change.
	matched pipeline.Matched
}

func (s *Service) reevaluateBatch(ctx context.Context, refs []store.InventoryRef, idx *advisory.Index, changed keySet, holding map[string]bool,
	memo *store.SelectionMemo, now time.Time) error {
	// Inventories load on all cores while the store applies the targets in order, each
	// waiting for its own. One inventory may back the same digest in several repositories:
	// it is loaded once.
	ctx, cancel := context.WithCancel(ctx)
	loads := s.startLoads(ctx, refs, idx, changed, holding)
	defer loads.wait()
	defer cancel()
	targets := make([]store.ScanTarget, 0, len(refs))
	byTarget := make(map[store.ScanTarget]store.InventoryRef, len(refs))
	for _, r := range refs {
		t := store.ScanTarget{Repository: r.Repository, Digest: r.Digest, ScanType: policy.ScanTypeEnhanced}
		targets = append(targets, t)
		byTarget[t] = r
	}
	sourceUpdated := s.sourceUpdatedAt()
	// Packages not evaluated per target, counted once the transaction commits (a target's
	// entry is replaced should its update run again). Updates of different targets may run
	// at once (Store.ApplyScans).
	unknownByTarget := make(map[store.ScanTarget]int, len(refs))
	var unknownMu sync.Mutex
	apply := s.store.ApplyScans
	if sel, ok := s.store.(selectingStore); ok && changed != nil {
		// Only the findings the change may touch are read; the others are observed again.
		apply = func(ctx context.Context, targets []store.ScanTarget, update func(store.ScanState) (store.ScanUpdate, error)) error {
			return sel.ApplyScansSelected(ctx, targets, store.FindingSelection{Keys: func(k store.PackageKey) bool {
				return changed.holdsKey(advisory.PackageKey(k))
			}, Memo: memo}, update)
		}
	}
	err := apply(ctx, targets, func(st store.ScanState) (store.ScanUpdate, error) {
		r := byTarget[st.Target]
		inv, err := loads.get(ctx, r.InventoryID)
		if err != nil {
			return store.ScanUpdate{}, err
		}
		if inv == nil || st.Scan == nil || st.Scan.Status == StatusExpired || st.Scan.Status == StatusFindingsUnavailable {
			// Gone, or out of continuous scanning: a window grown since does not revive an
			// expired image, as Inspector's does not.
			return store.ScanUpdate{}, nil
		}
		info, err := imageFacts(ctx, &st, inv.os)
		if err != nil {
			return store.ScanUpdate{}, err
		}
		var writes []store.Finding
		var changedFindings []changedFinding
		var unknown []match.NotEvaluated
		ok := false
		if changed != nil {
			var fresh []match.NotEvaluated
			writes, changedFindings, fresh, ok, err = s.changedFindings(ctx, &st, r.InventoryID, inv, idx, changed, info, now)
			if err != nil {
				return store.ScanUpdate{}, err
			}
			if ok {
				// Entries of untouched packages stand; those of touched ones are replaced.
				old, err := NotEvaluatedOf(*st.Scan)
				if err != nil {
					return store.ScanUpdate{}, err
				}
				for _, n := range old {
					if !changed.holdsKey(n.Key()) {
						unknown = append(unknown, n)
					}
				}
				unknown = append(unknown, fresh...)
			}
		}
		if !ok {
			fresh := inv.matched
			if err := wholeState(ctx, &st); err != nil {
				return store.ScanUpdate{}, err
			}
			if changed != nil {
				// The stored findings are not what the partial match can build on: match it all.
				if fresh, err = s.matchAll(ctx, r.InventoryID, idx); err != nil {
					return store.ScanUpdate{}, err
				}
			}
			unknown = fresh.NotEvaluated
			if err := closingDetails(ctx, &st, fresh.Findings, nil); err != nil {
				return store.ScanUpdate{}, err
			}
			if writes, changedFindings, err = diffFindings(st.Target, st.Findings, fresh.Findings, info, s.cfg.Origin, now); err != nil {
				return store.ScanUpdate{}, err
			}
		}
		scan := *st.Scan
		scan.SourceUpdatedAt, scan.UpdatedAt = sourceUpdated, now
		if scan.ImageFacts, err = json.Marshal(info); err != nil {
			return store.ScanUpdate{}, err
		}
		if err := setNotEvaluated(&scan, unknown); err != nil {
			return store.ScanUpdate{}, err
		}
		unknownMu.Lock()
		unknownByTarget[st.Target] = scan.NotEvaluatedPackages
		unknownMu.Unlock()
		up := store.ScanUpdate{Scan: &scan, Findings: writes, Observed: now,
			Usage: []store.Usage{{Repository: r.Repository, Digest: r.Digest, ScanType: policy.ScanTypeEnhanced, Kind: store.UsageRescan, At: now}}}
		if len(changedFindings) > 0 {
			// Built here, where updates run side by side, as they are unless a suppression
			// rule matches; Announce runs in the store's single writer, after the rules.
			unsuppressed := make([]store.OutboxEvent, len(changedFindings))
			for i, f := range changedFindings {
				f.Suppressed = false
				if unsuppressed[i], err = f.event(s.cfg.Origin, st.Manifest); err != nil {
					return store.ScanUpdate{}, err
				}
			}
			up.Announce = func(written []store.Finding) ([]store.OutboxEvent, error) {
				evs := make([]store.OutboxEvent, 0, len(changedFindings))
				for i, f := range withSuppression(changedFindings, written) {
					if !f.Suppressed {
						evs = append(evs, unsuppressed[i])
						continue
					}
					ev, err := f.event(s.cfg.Origin, st.Manifest)
					if err != nil {
						return nil, err
					}
					evs = append(evs, ev)
				}
				return evs, nil
			}
		}
		return up, nil
	})
	if err != nil {
		return err
	}
	n := 0
	for _, k := range unknownByTarget {
		n += k
	}
	s.metrics.notEvaluated.WithLabelValues(kindReevaluation).Add(float64(n))
	return nil
}

// inventoryLoads are the inventories of a batch, loading in the background.
type inventoryLoads struct {
	ready  map[int64]chan struct{} // closed once the inventory is loaded (or failed)
	failed chan struct{}           // closed on the first error
	mu     sync.Mutex
	loaded map[int64]*loadedInventory
	err    error
	wg     sync.WaitGroup
	// parts decodes each part the batch's inventories share once.
	parts *partMemo
}

// startLoads loads the distinct inventories of refs, in order, on all cores. For a change
// with known keys only the packages the change touched are kept; for a Full change every
// package is matched; holding, when not nil, are the only parts read. An inventory that is
// gone loads as nil.
func (s *Service) startLoads(ctx context.Context, refs []store.InventoryRef, idx *advisory.Index, changed keySet, holding map[string]bool) *inventoryLoads {
	l := &inventoryLoads{ready: make(map[int64]chan struct{}, len(refs)), failed: make(chan struct{}), loaded: make(map[int64]*loadedInventory, len(refs)),
		parts: newPartMemo(s.store, changed, holding)}
	ids := make(chan int64, len(refs))
	for _, r := range refs {
		if l.ready[r.InventoryID] == nil {
			l.ready[r.InventoryID] = make(chan struct{})
			ids <- r.InventoryID
		}
	}
	close(ids)
	for range min(runtime.GOMAXPROCS(0), len(l.ready)) {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var rd inventoryReader
			for id := range ids {
				if ctx.Err() != nil {
					return
				}
				inv, err := s.loadInventory(ctx, &rd, l.parts, id, idx, changed)
				l.mu.Lock()
				if err != nil && l.err == nil {
					l.err = err
					close(l.failed)
				}
				l.loaded[id] = inv
				l.mu.Unlock()
				close(l.ready[id])
			}
		}()
	}
	return l
}

// get waits for an inventory of the batch.
func (l *inventoryLoads) get(ctx context.Context, id int64) (*loadedInventory, error) {
	select {
	case <-l.ready[id]:
	case <-l.failed:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	return l.loaded[id], nil
}

// wait returns once every loader has stopped.
func (l *inventoryLoads) wait() { l.wg.Wait() }

func (s *Service) loadInventory(ctx context.Context, rd *inventoryReader, parts partSource, id int64, idx *advisory.Index, keys keySet) (*loadedInventory, error) {
	raw, err := s.store.ImageInventory(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	inv, err := rd.readStored(ctx, raw, keys, parts)
	if err != nil {
		return nil, fmt.Errorf("decode inventory %d: %w", id, err)
	}
	if keys == nil {
		return &loadedInventory{os: inv.OS, history: inv.History, matched: pipeline.Match(inv.Packages, idx, inv.History)}, nil
	}
	return &loadedInventory{os: inv.OS, history: inv.History, pkgs: inv.Packages}, nil
}

// matchAll matches every package of a stored inventory.
func (s *Service) matchAll(ctx context.Context, id int64, idx *advisory.Index) (pipeline.Matched, error) {
	raw, err := s.store.ImageInventory(ctx, id)
	if err != nil {
		return pipeline.Matched{}, err
	}
	var rd inventoryReader
	inv, err := rd.readStored(ctx, raw, nil, storeParts{s.store})
	if err != nil {
		return pipeline.Matched{}, fmt.Errorf("decode inventory %d: %w", id, err)
	}
	return pipeline.Match(inv.Packages, idx, inv.History), nil
}

// changedFindings computes what diffFindings would compute from a match of every package,
// matching only the packages the change touched. It relies on the stored ACTIVE findings
// being the match of every package against the advisories before the change (what the scan
// and every re-evaluation since wrote):
//
//   - a package whose key the change did not touch matches what it matched before, so a
//     vulnerability none of the touched packages matches, now or before, is unchanged;
//   - the touched vulnerabilities T are those the touched packages match now, and the stored
//     findings holding a package of a touched key (their package keys say which);
//   - each vulnerability of T is built again from every package matching it: the touched
//     packages, and the untouched ones its stored finding lists (an untouched package
//     matching it now matched it before), so the inventory packages of those keys are
//     matched too, in inventory order as the scan's match step sees them.
//
// Only the details of findings that close are read. It reports false, and computes nothing,
// when a stored finding's packages cannot be told (its detail does not decode). unknown is
// what the touched packages could not be evaluated against.
func (s *Service) changedFindings(ctx context.Context, st *store.ScanState, invID int64, inv *loadedInventory, idx *advisory.Index, changed keySet,
	info ImageInfo, now time.Time) (writes []store.Finding, changedOut []changedFinding, unknown []match.NotEvaluated, ok bool, err error) {
	var touchedPkgs []inventory.Package
	for _, p := range inv.pkgs {
		if changed.holds(p) {
			touchedPkgs = append(touchedPkgs, p)
		}
	}
	m := pipeline.Match(touchedPkgs, idx, inv.history)
	fresh, unknown := m.Findings, m.NotEvaluated
	touched := make(map[string]bool, len(fresh))
	for _, f := range fresh {
		touched[f.VulnerabilityID] = true
	}
	if st.Partial && len(touched) > 0 {
		// The stored findings of the vulnerabilities the touched packages match now, which a
		// partial state holds only when they name a changed key: their other packages and
		// their first observation carry over.
		ids := make([]string, 0, len(touched))
		for id := range touched {
			ids = append(ids, id)
		}
		more, err := st.More(ctx, ids)
		if err != nil {
			return nil, nil, nil, false, err
		}
		if len(more) > 0 {
			st.Findings = store.WithFindings(st.Findings, more)
		}
	}
	// Findings stored without their package keys (written by an older Lading) are told by
	// their detail.
	if err := loadDetails(ctx, st, func(f store.Finding) bool { return f.Status == FindingActive && f.PackageKeys == nil }); err != nil {
		return nil, nil, nil, false, err
	}
	keysOf := make(map[string][]store.PackageKey, len(st.Findings))
	for _, f := range st.Findings {
		if f.Status != FindingActive {
			continue
		}
		fk := f.PackageKeys
		if fk == nil {
			d, err := DecodeDetail(f)
			if err != nil {
				// Its packages cannot be told: the caller matches every package instead,
				// which rewrites the detail.
				s.cfg.Logger.Warn("re-evaluation: a stored finding does not decode; matching the whole image", "err", err)
				return nil, nil, nil, false, nil
			}
			fk = findingKeys(d.Finding)
		}
		keysOf[f.VulnerabilityID] = fk
		for _, k := range fk {
			if changed.holdsKey(advisory.PackageKey(k)) {
				touched[f.VulnerabilityID] = true
				break
			}
		}
	}
	// Every vulnerability of T is built from all its packages: add the keys its stored
	// finding lists.
	keys := make(keySet, len(changed))
	for k := range changed {
		keys[k] = struct{}{}
	}
	for id, fk := range keysOf {
		if !touched[id] {
			continue
		}
		for _, k := range fk {
			if vk := advisory.PackageKey(k); !changed.holdsKey(vk) {
				keys[vk] = struct{}{}
			}
		}
	}
	if len(keys) > len(changed) {
		// The touched vulnerabilities also hold packages of other keys: read them too.
		raw, err := s.store.ImageInventory(ctx, invID)
		if err != nil {
			return nil, nil, nil, false, err
		}
		var rd inventoryReader
		sel, err := rd.readStored(ctx, raw, keys, storeParts{s.store})
		if err != nil {
			return nil, nil, nil, false, fmt.Errorf("decode inventory %d of %s@%s: %w", invID, st.Target.Repository, st.Target.Digest, err)
		}
		fresh = pipeline.Match(sel.Packages, idx, inv.history).Findings
	}
	kept := fresh[:0]
	for _, f := range fresh {
		if touched[f.VulnerabilityID] {
			kept = append(kept, f)
		}
	}
	if err := closingDetails(ctx, st, kept, touched); err != nil {
		return nil, nil, nil, false, err
	}
	writes, changedOut, err = diffTouched(st.Target, st.Findings, kept, touched, info, s.cfg.Origin, now)
	return writes, changedOut, unknown, true, err
}

// imageFacts returns the image facts (architecture, author, platform) the image's findings
// were written with: those its scan state records, else (a scan written before the state
// recorded them) those of its first ACTIVE finding, which every ACTIVE finding shares (a scan
// writes all of them with the facts it read, a re-evaluation writes the findings it changes
// with the facts read here); without findings, what the inventory tells.
func imageFacts(ctx context.Context, st *store.ScanState, osInfo *inventory.OSInfo) (ImageInfo, error) {
	var info ImageInfo
	if st.Scan != nil && len(st.Scan.ImageFacts) > 0 && json.Unmarshal(st.Scan.ImageFacts, &info) == nil {
		return info, nil
	}
	if err := wholeState(ctx, st); err != nil {
		return info, err
	}
	info = ImageInfo{Platform: PlatformName(osInfo)}
	i := slices.IndexFunc(st.Findings, func(f store.Finding) bool { return f.Status == FindingActive })
	if i < 0 {
		i = 0
	}
	if i >= len(st.Findings) {
		return info, nil
	}
	id := st.Findings[i].VulnerabilityID
	if err := loadDetails(ctx, st, func(f store.Finding) bool { return f.VulnerabilityID == id }); err != nil {
		return info, err
	}
	if d, ok := detailOf(st.Findings[i]); ok {
		info = d.Image
	}
	return info, nil
}

// PolicyChanged brings existing images into coverage after the registry scanning
// configuration changed: images pushed or pulled within the rescan window, in repositories the
// new configuration scans continuously, that have no enhanced scan yet, are queued.
func (s *Service) PolicyChanged(ctx context.Context) error {
	pol, err := s.store.ScanningPolicy(ctx)
	if err != nil {
		return err
	}
	if pol.ScanType != policy.ScanTypeEnhanced {
		return nil
	}
	_, window, err := s.Rescan(ctx)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	since := time.Time{} // a lifetime window: every image
	if window.Push > 0 {
		since = now.Add(-max(window.Push, window.Pull))
	}
	images, err := s.store.RecentImages(ctx, since)
	if err != nil {
		return err
	}
	var jobs []store.ScanJob
	repoFlags := map[string]bool{}
	for _, m := range images {
		if !IsImage(m) {
			continue
		}
		flag, ok := repoFlags[m.Repository]
		if !ok {
			r, err := s.store.GetRepository(ctx, m.Repository)
			if err != nil {
				continue
			}
			flag, repoFlags[m.Repository] = r.ScanOnPush, r.ScanOnPush
		}
		if policy.Evaluate(pol, m.Repository, flag).Frequency != policy.FrequencyContinuous || !window.Covers(m.PushedAt, m.LastPulledAt, now) {
			continue
		}
		// An image scanned before enhanced scanning was last disabled is scanned again.
		if sc, err := s.store.ImageScan(ctx, m.Repository, m.Digest, policy.ScanTypeEnhanced); err == nil && sc.Status != StatusFindingsUnavailable {
			continue
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		jobs = append(jobs, store.ScanJob{Repository: m.Repository, Digest: m.Digest, ScanType: policy.ScanTypeEnhanced, Trigger: store.TriggerCoverage})
	}
	if len(jobs) == 0 {
		return nil
	}
	if err := s.store.EnqueueScans(ctx, jobs...); err != nil {
		return err
	}
	s.cfg.Logger.Info("images brought into continuous coverage", "images", len(jobs))
	s.Wake()
	return nil
}

// packageOf is the part of an inventory package a finding's package records that decides its
// advisory key.
func packageOf(vp match.VulnerablePackage) inventory.Package {
	return inventory.Package{Ecosystem: vp.Ecosystem, Name: vp.Name, SourceName: vp.SourceName, PackageManager: vp.PackageManager}
}
