package scanning

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/vulndb"
)

// Scan statuses, as ECR names them.
const (
	StatusInProgress  = "IN_PROGRESS"
	StatusComplete    = "COMPLETE"
	StatusFailed      = "FAILED"
	StatusUnsupported = "UNSUPPORTED_IMAGE"
	StatusActive      = "ACTIVE"
	StatusPending     = "PENDING"
)

// Status descriptions ECR uses.
const (
	DescComplete    = "The scan was completed successfully."
	DescActive      = "Continuous scan is selected for image."
	DescUnsupported = "The operating system and/or package manager are not supported."
)

// Errors of StartImageScan, for the ECR face to name.
var (
	ErrQuotaExceeded      = errors.New("the image was scanned less than 24 hours ago")
	ErrUnsupportedImage   = errors.New("the image's operating system is not supported")
	ErrEnhancedManualScan = errors.New("manual scans are not supported under enhanced scanning")
	ErrNotAnImage         = errors.New("the manifest is an index or an artifact, not an image")
)

// BasicScanInterval is how often an image may be scanned with basic scanning.
const BasicScanInterval = 24 * time.Hour

// Store is what scanning needs from the metadata store.
type Store interface {
	ScanningPolicy(ctx context.Context) (policy.Policy, error)
	GetRepository(ctx context.Context, name string) (store.Repository, error)
	GetManifest(ctx context.Context, repo, digest string) (store.Manifest, error)
	BlobSize(ctx context.Context, repo, digest string) (int64, error)
	EnqueueScans(ctx context.Context, jobs ...store.ScanJob) error
	ClaimScanJob(ctx context.Context, owner string, now time.Time, lease time.Duration) (store.ScanJob, bool, error)
	ReleaseScanJob(ctx context.Context, id int64) error
	ImageScan(ctx context.Context, repo, digest, scanType string) (store.ImageScan, error)
	PutImageScan(ctx context.Context, s store.ImageScan) error
	// ApplyScans may call update for several distinct targets at once (store.DistinctTargets),
	// ahead of its writes: an update must be safe for concurrent use.
	ApplyScans(ctx context.Context, targets []store.ScanTarget, update func(store.ScanState) (store.ScanUpdate, error)) error
	LayerInventory(ctx context.Context, layerDigest, mode, fingerprint string) ([]byte, error)
	PutLayerInventory(ctx context.Context, layerDigest, mode, fingerprint string, inventory []byte) error
	PutImageInventory(ctx context.Context, digest, mode, fingerprint string, os string, keys []store.PackageKey, packages int, inventory []byte, parts []store.InventoryPart) (int64, error)
	ImageInventory(ctx context.Context, id int64) ([]byte, error)
	InventoryParts(ctx context.Context, hashes [][]byte) ([][]byte, error)
	InventoriesHolding(ctx context.Context, scanType string, keys []store.PackageKey) ([]store.InventoryRef, error)
	InventoryPartsHolding(ctx context.Context, keys []store.PackageKey) ([][]byte, error)
	RecentImages(ctx context.Context, since time.Time) ([]store.Manifest, error)
	Setting(ctx context.Context, key string) (string, error)
	PutSetting(ctx context.Context, key, value string) error
}

// Blobs opens blob content.
type Blobs interface {
	Open(ctx context.Context, d digest.Digest) (blob.ReadSeekCloser, error)
}

// Advisories is the live advisory index.
type Advisories interface {
	Index() *advisory.Index
	// Current is Index after catching up with the store's version.
	Current(ctx context.Context) (*advisory.Index, error)
	Subscribe() *vulndb.Subscription
	Ready() <-chan struct{}
}

// LeaseRunner runs work only while this node holds the lease name, cancelling it when the
// lease is lost (internal/lease).
type LeaseRunner interface {
	Run(ctx context.Context, name string, work func(ctx context.Context))
}

// Config tunes the scanning service.
type Config struct {
	Origin events.Origin
	// Workers is how many scans run at once on this node; with 0, the node queues scans but
	// runs none, and leaves continuous re-evaluation to the nodes that scan.
	Workers int
	// ScanTimeout bounds one scan; a scan that takes longer fails with a reason.
	ScanTimeout time.Duration
	// ScanLease is how long a claimed scan job stays leased without a heartbeat: a job whose
	// node died is taken by another node after it (default 30s).
	ScanLease time.Duration
	// RescanDuration is how long after its push (or last pull) an image stays in continuous
	// coverage, as Inspector's ECR rescan duration.
	RescanDuration time.Duration
	ScratchDir     string
	// GzipProgram is the gzip decoder run for large gzip layers (inventory.Options.GzipProgram).
	GzipProgram string
	// MaxAttempts bounds retries of a scan that failed for a reason worth retrying.
	MaxAttempts int
	Now         func() time.Time
	Logger      *slog.Logger
	// Notify is called after events were written (to wake the event dispatcher).
	Notify func()
	// Registerer, when set, receives the service's metrics.
	Registerer prometheus.Registerer
	// Leases, when set, has continuous re-evaluation and the rescan-window expiry run on one
	// node at a time among the nodes sharing the store (each is once per registry; every
	// node's scan workers still claim jobs). Nil: this node does both.
	Leases LeaseRunner
	// Scanned, when set, is called after a scan job's results are written (its inventory
	// stored), while the image is still locked against another scan of it: the SBOM
	// referrer is attached there. An error is logged; the scan stands.
	Scanned func(ctx context.Context, repo, digest, scanType string) error
}

// Service runs scans and keeps findings current.
type Service struct {
	store   Store
	results ResultStore
	blobs   Blobs
	adv     Advisories
	cfg     Config
	owner   string
	wake    chan struct{}
	// imageLocks serialises scans and re-evaluations of one image digest inside this process.
	imageLocks sync.Map
	// indexChangedAt is when the advisory index last changed (vulnerabilitySourceUpdatedAt).
	indexChangedAt atomic.Pointer[time.Time]
	metrics        *metrics
	// layerMemo keeps recently used layer inventories decoded, for every scan of the node.
	layerMemo *layerMemo
	// partEncoder compresses the inventory parts of the node's scans, a base's parts once.
	partEncoder *PartEncoder
	// layerSlots bounds the layers read at once by all the node's scans to the core count,
	// whatever the number of workers, so memory stays bounded (pipeline.Scanner.Slots).
	layerSlots *semaphore.Weighted
}

// New returns a scanning service.
func New(st interface {
	Store
	ResultStore
}, blobs Blobs, adv Advisories, cfg Config) *Service {
	cfg.Workers = max(cfg.Workers, 0) // 0: this node scans nothing (another node does)
	if cfg.ScanTimeout <= 0 {
		cfg.ScanTimeout = 10 * time.Minute
	}
	if cfg.ScanLease <= 0 {
		cfg.ScanLease = defaultLease
	}
	if cfg.RescanDuration <= 0 {
		cfg.RescanDuration = 14 * 24 * time.Hour
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ScratchDir == "" {
		cfg.ScratchDir = os.TempDir()
	}
	if cfg.Notify == nil {
		cfg.Notify = func() {}
	}
	host, _ := os.Hostname()
	return &Service{store: st, results: st, blobs: blobs, adv: adv, cfg: cfg, wake: make(chan struct{}, 1),
		owner: host + "/" + strconv.Itoa(os.Getpid()), metrics: newMetrics(cfg.Registerer),
		layerMemo: newLayerMemo(maxMemoLayers), partEncoder: NewPartEncoder(partEncoderBudget), layerSlots: semaphore.NewWeighted(int64(runtime.GOMAXPROCS(0)))}
}

// Wake tells the workers that jobs may be waiting.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Committed is the store's after-commit hook: new jobs wake the workers, new events the
// dispatcher.
func (s *Service) Committed(eff store.Effects) {
	if len(eff.Scans) > 0 {
		s.Wake()
	}
	if len(eff.Events) > 0 {
		s.cfg.Notify()
	}
}

// IsImage reports whether a manifest is a runnable image (not an index or an artifact), the
// only kind ECR scans.
func IsImage(m store.Manifest) bool {
	switch m.MediaType {
	case "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json":
	default:
		return false
	}
	switch m.ConfigMediaType {
	case "application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json":
		return m.ArtifactType == ""
	}
	return false
}

// Effects computes what a manifest change causes: the "ECR Image Action" event, and a scan job
// when the registry's scanning configuration scans the repository on push. It runs inside the
// change's transaction (see store.EffectsFunc).
func (s *Service) Effects(ctx context.Context, c store.Change) (store.Effects, error) {
	var eff store.Effects
	if c.Generated {
		// Lading's own SBOM referrers: no client pushed or deleted anything.
		return eff, nil
	}
	action := events.ImageAction{Repository: c.Repository, Digest: c.Manifest.Digest,
		ManifestMediaType: c.Manifest.MediaType, ArtifactMediaType: c.Manifest.ConfigMediaType, At: s.cfg.Now()}
	tags := c.Tags
	if len(tags) == 0 {
		tags = []string{""}
	}
	switch c.Kind {
	case store.ChangePush:
		action.Action = events.ActionPush
	case store.ChangeDelete:
		action.Action = events.ActionDelete
	}
	for _, tag := range tags {
		a := action
		a.Tag = tag
		ev, err := s.cfg.Origin.ImageAction(a)
		if err != nil {
			return eff, err
		}
		eff.Events = append(eff.Events, ev)
	}
	if c.Kind != store.ChangePush || !c.Created || !IsImage(c.Manifest) {
		return eff, nil
	}
	pol, err := s.store.ScanningPolicy(ctx)
	if err != nil {
		return eff, fmt.Errorf("read scanning policy: %w", err)
	}
	d := policy.Evaluate(pol, c.Repository, c.RepositoryScanOnPush)
	if d.ScanOnPush {
		st := policyScanType(pol)
		pending := &store.ImageScan{Status: StatusInProgress, Frequency: d.Frequency}
		if st == policy.ScanTypeEnhanced {
			pending.Status = StatusPending
		}
		eff.Scans = append(eff.Scans, store.ScanJob{Repository: c.Repository, Digest: c.Manifest.Digest,
			ScanType: st, Trigger: store.TriggerPush, Pending: pending})
	}
	return eff, nil
}

func policyScanType(p policy.Policy) string {
	if p.ScanType == policy.ScanTypeEnhanced {
		return policy.ScanTypeEnhanced
	}
	return policy.ScanTypeBasic
}

// StartImageScan is ECR's manual scan: basic scanning only, once per image per 24 hours
// (the push scan included). An image without a supported operating system is refused
// synchronously, as ECR refuses it.
func (s *Service) StartImageScan(ctx context.Context, repo, dgst string) (store.ImageScan, error) {
	pol, err := s.store.ScanningPolicy(ctx)
	if err != nil {
		return store.ImageScan{}, err
	}
	if pol.ScanType == policy.ScanTypeEnhanced {
		return store.ImageScan{}, ErrEnhancedManualScan
	}
	m, err := s.store.GetManifest(ctx, repo, dgst)
	if err != nil {
		return store.ImageScan{}, err
	}
	if !IsImage(m) {
		return store.ImageScan{}, ErrNotAnImage
	}
	now := s.cfg.Now()
	prev, err := s.store.ImageScan(ctx, repo, dgst, policy.ScanTypeBasic)
	hadPrev := err == nil
	switch {
	case hadPrev:
		if !prev.LastScanStartedAt.IsZero() && now.Sub(prev.LastScanStartedAt) < BasicScanInterval {
			return prev, ErrQuotaExceeded
		}
	case !errors.Is(err, store.ErrNotFound):
		return store.ImageScan{}, err
	}
	img, err := s.loadImage(ctx, repo, m)
	if err != nil {
		return store.ImageScan{}, err
	}
	inv, err := s.scanner(policy.ScanTypeBasic, s.cfg.Logger).Inventory(ctx, s.pipelineLayers(img))
	if err != nil {
		return store.ImageScan{}, layerFault(err)
	}
	if inv.OS == nil {
		return store.ImageScan{}, ErrUnsupportedImage
	}
	scan := store.ImageScan{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeBasic, Status: StatusInProgress,
		Frequency: policy.FrequencyManual, LastScanStartedAt: now, UpdatedAt: now}
	if hadPrev {
		scan.CompletedAt, scan.SourceUpdatedAt, scan.InventoryID = prev.CompletedAt, prev.SourceUpdatedAt, prev.InventoryID
	}
	if err := s.store.PutImageScan(ctx, scan); err != nil {
		return scan, err
	}
	if err := s.store.EnqueueScans(ctx, store.ScanJob{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeBasic, Trigger: store.TriggerManual}); err != nil {
		return scan, err
	}
	s.Wake()
	return scan, nil
}
