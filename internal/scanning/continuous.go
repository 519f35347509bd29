package scanning

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/lading-registry/lading/internal/match"
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
	for {
		ch, err := sub.Next(ctx)
		if err != nil {
			return
		}
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
}

// Reevaluate re-matches, from their stored inventories, the images in continuous coverage that
// hold a package the change touched (every such image when the change is Full), and writes the
// resulting finding changes and events. No layer is read. It returns how many images it
// re-evaluated.
func (s *Service) Reevaluate(ctx context.Context, ch vulndb.Change) (int, error) {
	if ch.Full {
		if v, err := s.store.Setting(ctx, evaluatedVersionSetting); err == nil && v == strconv.FormatInt(ch.To, 10) {
			return 0, nil // nothing new since this registry last caught up
		}
	}
	var keys []store.PackageKey
	if !ch.Full {
		if len(ch.Keys) == 0 {
			return 0, s.store.PutSetting(ctx, evaluatedVersionSetting, strconv.FormatInt(ch.To, 10))
		}
		keys = make([]store.PackageKey, 0, len(ch.Keys))
		for _, k := range ch.Keys {
			keys = append(keys, store.PackageKey{Ecosystem: k.Ecosystem, Name: k.Name})
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
	now := s.cfg.Now()
	var eligible []store.InventoryRef
	for _, r := range refs {
		if policy.Evaluate(pol, r.Repository, r.ScanOnPush).Frequency != policy.FrequencyContinuous {
			continue
		}
		last := r.PushedAt
		if r.LastPulledAt.After(last) {
			last = r.LastPulledAt
		}
		if now.Sub(last) > s.cfg.RescanDuration {
			continue // out of the rescan window, as Inspector stops monitoring such images
		}
		eligible = append(eligible, r)
	}
	idx := s.adv.Index()
	done := 0
	for start := 0; start < len(eligible); start += reevaluateBatch {
		batch := eligible[start:min(start+reevaluateBatch, len(eligible))]
		if err := s.reevaluateBatch(ctx, batch, idx, now); err != nil {
			return done, err
		}
		done += len(batch)
	}
	return done, s.store.PutSetting(ctx, evaluatedVersionSetting, strconv.FormatInt(ch.To, 10))
}

func (s *Service) reevaluateBatch(ctx context.Context, refs []store.InventoryRef, idx match.Advisories, now time.Time) error {
	type result struct {
		findings []match.Finding
		info     ImageInfo
	}
	// One inventory may back the same digest in several repositories: decode and match it once.
	results := map[int64]*result{}
	targets := make([]store.ScanTarget, 0, len(refs))
	for _, r := range refs {
		targets = append(targets, store.ScanTarget{Repository: r.Repository, Digest: r.Digest, ScanType: policy.ScanTypeEnhanced})
		if results[r.InventoryID] != nil {
			continue
		}
		raw, err := s.store.ImageInventory(ctx, r.InventoryID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		var inv storedInventory
		if err := decodeGzipJSON(raw, &inv); err != nil {
			return fmt.Errorf("decode inventory %d: %w", r.InventoryID, err)
		}
		fs, _ := match.Image(inv.Packages, idx, inv.History)
		results[r.InventoryID] = &result{findings: fs, info: ImageInfo{Platform: PlatformName(inv.OS)}}
	}
	byTarget := map[store.ScanTarget]store.InventoryRef{}
	for i, r := range refs {
		byTarget[targets[i]] = r
	}
	sourceUpdated := s.sourceUpdatedAt()
	return s.store.ApplyScans(ctx, targets, func(st store.ScanState) (store.ScanUpdate, error) {
		r := byTarget[st.Target]
		res := results[r.InventoryID]
		if res == nil || st.Scan == nil {
			return store.ScanUpdate{}, nil
		}
		info := res.info
		if len(st.Findings) > 0 {
			// Keep the image facts the scan recorded (architecture, author).
			if d, ok := detailOf(st.Findings[0]); ok {
				info = d.Image
			}
		}
		writes, changed, err := diffFindings(st.Target, st.Findings, res.findings, info, s.cfg.Origin, now)
		if err != nil {
			return store.ScanUpdate{}, err
		}
		scan := *st.Scan
		scan.SourceUpdatedAt, scan.UpdatedAt = sourceUpdated, now
		up := store.ScanUpdate{Scan: &scan, Findings: writes,
			Usage: []store.Usage{{Repository: r.Repository, Digest: r.Digest, ScanType: policy.ScanTypeEnhanced, Kind: store.UsageRescan, At: now}}}
		for _, f := range changed {
			ev, err := findingEvent(s.cfg.Origin, f, st.Manifest)
			if err != nil {
				return up, err
			}
			up.Events = append(up.Events, ev)
		}
		return up, nil
	})
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
	images, err := s.store.RecentImages(ctx, s.cfg.Now().Add(-s.cfg.RescanDuration))
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
		if policy.Evaluate(pol, m.Repository, flag).Frequency != policy.FrequencyContinuous {
			continue
		}
		if _, err := s.store.ImageScan(ctx, m.Repository, m.Digest, policy.ScanTypeEnhanced); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
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
