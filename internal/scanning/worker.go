package scanning

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning/pipeline"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// defaultLease is how long a claimed job stays leased without a heartbeat (Config.ScanLease);
// a worker extends it every lease/3 while it scans, so a job whose worker died is free again
// within the lease.
const defaultLease = 30 * time.Second

// JobStore is what the workers need beyond Store: lease upkeep.
type JobStore interface {
	ExtendScanLease(ctx context.Context, id int64, owner string, t time.Time) error
	RunningScanJobs(ctx context.Context) ([]store.ScanJob, error)
}

// Run starts the scan workers and continuous re-evaluation, and returns when ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if s.cfg.Workers == 0 {
		return nil
	}
	// Matching against an index that has not loaded yet would report nothing.
	select {
	case <-s.adv.Ready():
	case <-ctx.Done():
		return nil
	}
	s.releaseOrphans(ctx)
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.worker(ctx)
		}()
	}
	once := func(name string, run func(context.Context)) {
		if s.cfg.Leases == nil {
			run(ctx)
			return
		}
		s.cfg.Leases.Run(ctx, name, run)
	}
	wg.Go(func() { once("duty/continuous-scanning", s.continuous) })
	wg.Go(func() { once("duty/scan-expiry", s.expiry) })
	wg.Wait()
	return nil
}

// releaseOrphans requeues the jobs that a previous process on this host was running when it
// died, so they need not wait for their lease to run out.
func (s *Service) releaseOrphans(ctx context.Context) {
	js, ok := s.store.(JobStore)
	if !ok {
		return
	}
	jobs, err := js.RunningScanJobs(ctx)
	if err != nil {
		s.cfg.Logger.Warn("list running scan jobs", "err", err)
		return
	}
	host, _, _ := strings.Cut(s.owner, "/")
	for _, j := range jobs {
		h, pid, ok := strings.Cut(j.LeaseOwner, "/")
		if !ok || h != host || j.LeaseOwner == s.owner {
			continue
		}
		if n, err := strconv.Atoi(pid); err == nil && processAlive(n) {
			continue
		}
		if err := s.store.ReleaseScanJob(ctx, j.ID); err == nil {
			s.cfg.Logger.Info("requeued scan interrupted by a restart", "repository", j.Repository, "digest", j.Digest)
		}
	}
}

func processAlive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

func (s *Service) worker(ctx context.Context) {
	poll := time.NewTicker(2 * time.Second)
	defer poll.Stop()
	for ctx.Err() == nil {
		job, ok, err := s.store.ClaimScanJob(ctx, s.owner, s.cfg.Now(), s.cfg.ScanLease)
		if err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("claim scan job", "err", err)
		}
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			case <-poll.C: // jobs queued by another node
			}
			continue
		}
		s.runJob(ctx, job)
	}
}

// lockImage serialises work on one image digest in this process (a scan and a re-evaluation
// of the same image must not interleave their read-modify-write of findings).
func (s *Service) lockImage(dgst string) func() {
	v, _ := s.imageLocks.LoadOrStore(dgst, &sync.Mutex{})
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func (s *Service) runJob(ctx context.Context, job store.ScanJob) {
	log := s.cfg.Logger.With("repository", job.Repository, "digest", job.Digest, "scan_type", job.ScanType, "trigger", job.Trigger)
	scanCtx, cancel := context.WithTimeout(ctx, s.cfg.ScanTimeout)
	defer cancel()
	stopHeartbeat := s.heartbeat(scanCtx, job)
	err := s.scan(scanCtx, job)
	stopHeartbeat()
	switch {
	case err == nil:
		log.Info("scan complete")
		return
	case ctx.Err() != nil:
		// Shutting down: the job stays leased and is taken up again after the restart.
		return
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrBadImage):
	case job.Attempts < s.cfg.MaxAttempts:
		log.Warn("scan failed; will retry", "attempt", job.Attempts, "err", err)
		if rerr := s.store.ReleaseScanJob(ctx, job.ID); rerr != nil {
			log.Warn("requeue scan", "err", rerr)
		}
		return
	}
	if ferr := s.fail(ctx, job, s.describeFailure(log, err)); ferr != nil {
		log.Warn("record failed scan", "err", ferr)
	}
}

func (s *Service) heartbeat(ctx context.Context, job store.ScanJob) func() {
	js, ok := s.store.(JobStore)
	if !ok {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(s.cfg.ScanLease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				_ = js.ExtendScanLease(ctx, job.ID, s.owner, s.cfg.Now().Add(s.cfg.ScanLease))
			}
		}
	}()
	return func() { close(done) }
}

// fail records a scan that cannot complete, with the description clients see, and ends its
// job.
func (s *Service) fail(ctx context.Context, job store.ScanJob, desc string) error {
	now := s.cfg.Now()
	target := store.ScanTarget{Repository: job.Repository, Digest: job.Digest, ScanType: job.ScanType, JobID: job.ID}
	return s.store.ApplyScans(ctx, []store.ScanTarget{target}, func(st store.ScanState) (store.ScanUpdate, error) {
		scan := store.ImageScan{Status: StatusFailed, Description: desc, UpdatedAt: now, CompletedAt: now}
		if st.Scan != nil {
			scan.Frequency, scan.InventoryID, scan.LastScanStartedAt, scan.SourceUpdatedAt = st.Scan.Frequency, st.Scan.InventoryID, st.Scan.LastScanStartedAt, st.Scan.SourceUpdatedAt
		}
		up := store.ScanUpdate{Scan: &scan}
		ev, err := s.completionEvent(job.ScanType, st.Manifest, StatusFailed, nil)
		if err != nil {
			return up, err
		}
		up.Events = append(up.Events, ev)
		return up, nil
	})
}

func (s *Service) completionEvent(scanType string, m store.Manifest, status string, counts map[string]int) (store.OutboxEvent, error) {
	sc := events.ScanCompleted{Repository: m.Repository, Digest: m.Digest, Tags: m.Tags, Status: status, SeverityCounts: counts, At: s.cfg.Now()}
	if scanType == policy.ScanTypeEnhanced {
		if status == StatusActive || status == StatusComplete {
			sc.Status = "INITIAL_SCAN_COMPLETE"
		}
		return s.cfg.Origin.InspectorScan(sc)
	}
	return s.cfg.Origin.ImageScan(sc)
}

// scan runs one job: inventory (reading only layers not read before), match, and the write of
// findings, status, usage and events in one transaction.
func (s *Service) scan(ctx context.Context, job store.ScanJob) error {
	defer s.lockImage(job.Digest)()
	m, err := s.store.GetManifest(ctx, job.Repository, job.Digest)
	if errors.Is(err, store.ErrManifestNotFound) || errors.Is(err, store.ErrRepositoryNotFound) {
		// Deleted while queued: the delete removed the job too, or will; nothing to do.
		return s.store.ApplyScans(ctx, []store.ScanTarget{{Repository: job.Repository, Digest: job.Digest, ScanType: job.ScanType, JobID: job.ID}},
			func(store.ScanState) (store.ScanUpdate, error) { return store.ScanUpdate{}, nil })
	}
	if err != nil {
		return err
	}
	started := s.cfg.Now()
	img, err := s.loadImage(ctx, job.Repository, m)
	if err != nil {
		return err
	}
	log := s.cfg.Logger.With("digest", job.Digest)
	inv, err := s.scanner(job.ScanType, log).Inventory(ctx, s.pipelineLayers(img))
	if err != nil {
		return layerFault(err)
	}
	head, parts, err := s.partEncoder.Encode(inv.OS, inv.Packages, inv.History, inv.Skipped)
	if err != nil {
		return err
	}
	osName := ""
	if inv.OS != nil {
		osName = inv.OS.Ecosystem
	}
	invID, err := s.store.PutImageInventory(ctx, job.Digest, string(modeOf(job.ScanType)), inventory.Fingerprint(modeOf(job.ScanType)), osName, storeKeys(inv.Keys), len(inv.Packages), head, parts)
	if err != nil {
		return err
	}
	pol, err := s.store.ScanningPolicy(ctx)
	if err != nil {
		return err
	}
	repo, err := s.store.GetRepository(ctx, job.Repository)
	if err != nil {
		return err
	}
	decision := policy.Evaluate(pol, job.Repository, repo.ScanOnPush)
	info := ImageInfo{Architecture: img.config.Architecture, Author: img.config.Author, Platform: PlatformName(inv.OS)}
	facts, err := json.Marshal(info)
	if err != nil {
		return err
	}
	// An advisory change published while this scan matched is not re-evaluated for this image
	// when continuous scanning looked for affected images before this scan's row was written:
	// so match again, from the inventory, until the index in use is still current once the
	// write has committed (after which a change re-evaluates the stored image).
	for again := false; ; again = true {
		idx, err := s.adv.Current(ctx)
		if err != nil {
			return err
		}
		unknown, err := s.applyScan(ctx, job, inv, idx, decision, info, facts, invID, started, again)
		if err != nil {
			return err
		}
		continuous := job.ScanType == policy.ScanTypeEnhanced && decision.Frequency == policy.FrequencyContinuous
		if !continuous || s.adv.Index().Version() == idx.Version() {
			if n := match.NotEvaluatedPackages(unknown); n > 0 {
				s.metrics.notEvaluated.WithLabelValues(kindScan).Add(float64(n))
				log.Info("packages not evaluated: the scan cannot vouch for them", "packages", n, "first", unknown[0])
			}
			if s.cfg.Scanned != nil {
				if err := s.cfg.Scanned(ctx, job.Repository, job.Digest, job.ScanType); err != nil && ctx.Err() == nil {
					log.Warn("after the scan", "err", err)
				}
			}
			return nil
		}
		log.Debug("advisory index changed during the scan: matching again", "from", idx.Version(), "to", s.adv.Index().Version())
	}
}

// applyScan matches the inventory against idx and writes the scan's findings, status, usage and
// events in one transaction. It returns what could not be evaluated. again is a match repeated
// for an index that changed meanwhile: the job is done and the scan counted and announced, so
// only the findings and their events are written.
func (s *Service) applyScan(ctx context.Context, job store.ScanJob, inv *pipeline.Inventory, idx *advisory.Index, decision policy.Decision,
	info ImageInfo, facts []byte, invID int64, started time.Time, again bool) ([]match.NotEvaluated, error) {

	var findings []match.Finding
	var unknown []match.NotEvaluated
	status, desc := StatusComplete, DescComplete
	switch {
	case job.ScanType == policy.ScanTypeBasic && inv.OS == nil:
		// Without an operating system basic scanning has nothing it supports (its packages
		// have no ecosystem, so they matched nothing either).
		status, desc = StatusUnsupported, DescUnsupported
	default:
		m := pipeline.Match(inv.Packages, idx, inv.History)
		findings, unknown = m.Findings, m.NotEvaluated
		if job.ScanType == policy.ScanTypeEnhanced && decision.Frequency == policy.FrequencyContinuous {
			status, desc = StatusActive, DescActive
		}
	}
	frequency := decision.Frequency
	if job.Trigger == store.TriggerManual {
		frequency = policy.FrequencyManual
	}
	now := s.cfg.Now()
	target := store.ScanTarget{Repository: job.Repository, Digest: job.Digest, ScanType: job.ScanType, JobID: job.ID}
	if again {
		target.JobID = 0
	}
	err := s.store.ApplyScans(ctx, []store.ScanTarget{target}, func(st store.ScanState) (store.ScanUpdate, error) {
		if err := closingDetails(ctx, &st, findings, nil); err != nil {
			return store.ScanUpdate{}, err
		}
		writes, changed, err := diffFindings(target, st.Findings, findings, info, s.cfg.Origin, now)
		if err != nil {
			return store.ScanUpdate{}, err
		}
		scan := store.ImageScan{Status: status, Description: desc, Frequency: frequency, InventoryID: invID,
			LastScanStartedAt: started, CompletedAt: now, SourceUpdatedAt: s.sourceUpdatedAt(), UpdatedAt: now, ImageFacts: facts}
		if err := setNotEvaluated(&scan, unknown); err != nil {
			return store.ScanUpdate{}, err
		}
		if st.Scan != nil && job.ScanType == policy.ScanTypeBasic && job.Trigger == store.TriggerManual && !st.Scan.LastScanStartedAt.IsZero() {
			scan.LastScanStartedAt = st.Scan.LastScanStartedAt // the quota counts from the accepted request
		}
		up := store.ScanUpdate{Scan: &scan, Findings: writes}
		if !again {
			kind := store.UsageInitial
			if st.Scan != nil && !st.Scan.CompletedAt.IsZero() {
				kind = store.UsageRescan
			}
			up.Usage = append(up.Usage, store.Usage{Repository: job.Repository, Digest: job.Digest, ScanType: job.ScanType, Kind: kind, At: now})
		}
		// The events are built once the store has applied the suppression rules to the
		// findings written: they say SUPPRESSED, and the counts leave those out.
		up.Announce = func(written []store.Finding) ([]store.OutboxEvent, error) {
			var evs []store.OutboxEvent
			if job.ScanType == policy.ScanTypeEnhanced {
				for _, f := range withSuppression(changed, written) {
					ev, err := f.event(s.cfg.Origin, st.Manifest)
					if err != nil {
						return nil, err
					}
					evs = append(evs, ev)
				}
			}
			if again {
				return evs, nil
			}
			ev, err := s.completionEvent(job.ScanType, st.Manifest, status, severityCounts(written))
			if err != nil {
				return nil, err
			}
			return append(evs, ev), nil
		}
		return up, nil
	})
	return unknown, err
}

// sourceUpdatedAt is when the advisory index in use last changed.
func (s *Service) sourceUpdatedAt() time.Time {
	if t := s.indexChangedAt.Load(); t != nil {
		return *t
	}
	return s.cfg.Now()
}

// packageKeys are the distinct advisory keys of an inventory, for the inverted index.
func packageKeys(pkgs []inventory.Package) []store.PackageKey { return storeKeys(pipeline.Keys(pkgs)) }

func storeKeys(keys []advisory.PackageKey) []store.PackageKey {
	if len(keys) == 0 {
		return nil
	}
	out := make([]store.PackageKey, len(keys))
	for i, k := range keys {
		out[i] = store.PackageKey(k)
	}
	return out
}
