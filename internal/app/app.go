// Package app wires Lading together: it opens the stores, builds the HTTP faces and the
// background workers from a Config, and runs them until the context ends.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/console"
	"github.com/lading-registry/lading/internal/ecr"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/gc"
	"github.com/lading-registry/lading/internal/inspector"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/kev"
	"github.com/lading-registry/lading/internal/lease"
	"github.com/lading-registry/lading/internal/lifecycle"
	"github.com/lading-registry/lading/internal/oci"
	"github.com/lading-registry/lading/internal/pullgate"
	"github.com/lading-registry/lading/internal/reports"
	"github.com/lading-registry/lading/internal/sbom"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/suppression"
	"github.com/lading-registry/lading/internal/vulndb"
)

// Config is everything `lading serve` can be told.
type Config struct {
	Addr          string
	TLS           TLS
	DataDir       string
	Region        string
	RegistryID    string
	CreateOnPush  bool
	AnonymousPull bool
	UploadTTL     time.Duration
	// MaxBlobSize refuses blobs larger than this many bytes (0: no limit).
	MaxBlobSize int64
	// MinFreeSpace is the free space, in bytes, kept on the data dir's volume: uploads are
	// refused rather than let the disk fill (0: none kept).
	MinFreeSpace int64
	// AuthThrottle slows down failed authentication (zero fields take auth's defaults).
	AuthThrottle auth.ThrottleConfig
	// Bootstrap admin credentials; empty means "generate on first start".
	AdminAccessKeyID     string
	AdminSecretAccessKey string
	Version              string
	Logger               *slog.Logger

	// Advisory database sync: source (a mirror URL or folder; "none" disables) and interval.
	DBSource       string
	DBSyncInterval time.Duration
	// DBPollInterval is how often the advisory database version is checked, so that imports
	// by other processes are picked up (default 1 s).
	DBPollInterval time.Duration
	// MaxDBAge is how old the newest advisory may be before /readyz says the database is not
	// current (0: no limit).
	MaxDBAge time.Duration

	ScanWorkers int
	ScanTimeout time.Duration
	// GzipDecoder is the --gzip-decoder setting for the scans' gzip layers (inventory.GzipProgram).
	GzipDecoder string
	ScanLease   time.Duration // how soon another node takes the scan of a node that died
	// NoAPI serves only /healthz, /readyz and /metrics: a node that does background work
	// (scans, reports, its share of the leased duties) and answers no client.
	NoAPI bool
	// LeaseTTL is how long a node's lease on a once-per-registry duty (garbage collection,
	// lifecycle, advisory sync, upload purge, continuous re-evaluation) or on a webhook's
	// delivery lasts unrenewed: how long the other nodes wait before taking over from a node
	// that died (default 15 s).
	LeaseTTL       time.Duration
	RescanDuration time.Duration
	// ReportsDir is where SBOM exports and findings reports are written ("" : <DataDir>/reports).
	ReportsDir string
	// AttachSBOM attaches each scanned image's SBOM as an OCI referrer.
	AttachSBOM bool

	EventWebhooks      []string
	EventWebhookSecret string
	EventsConfig       string

	// SecretKey is the base64 key stored secrets are encrypted with (auth.SecretKeyEnv); empty
	// means the key file in the data directory.
	SecretKey string

	// GCInterval is how often garbage collection runs (0: never); GCGrace spares links and
	// blobs younger than it (see internal/gc).
	GCInterval time.Duration
	GCGrace    time.Duration
	// LifecycleInterval is how often repositories' lifecycle policies run (0: never).
	LifecycleInterval time.Duration
	// Now is the clock that stamps pushes and blob links and that lifecycle policies and garbage
	// collection compare them with (default time.Now); tests move it.
	Now func() time.Time

	// ConsoleSessionTTL is how long a web console sign-in lasts (0: console.DefaultSessionTTL).
	ConsoleSessionTTL time.Duration

	// AuditLog is where every mutating call and every refusal is written, one JSON line each:
	// a file, "-" for standard output, "" for nowhere.
	AuditLog string

	// PullGate is the registry's default pull-time policy gate (repositories may override it).
	PullGate pullgate.Policy

	// Metadata is the metadata store: "" for SQLite in DataDir, or a postgres:// URL.
	Metadata string
	// Blobs is where blobs are kept: "" for files in DataDir, or s3://bucket?endpoint=...&region=...
	Blobs string
	// S3Redirect answers blob GETs, and GetDownloadUrlForLayer, with presigned URLs of the bucket.
	S3Redirect bool
}

// App is a built, not yet running, Lading server.
type App struct {
	cfg       Config
	vulns     *vulndb.DB
	watcher   *vulndb.Watcher
	syncer    *vulndb.Syncer
	events    *events.Dispatcher
	scans     *scanning.Service
	lifecycle *lifecycle.Service
	gate      *pullgate.Gate
	log       *slog.Logger
	meta      Meta
	blobs     *blob.Store
	auth      *auth.Authenticator
	keys      *auth.SealedKeys
	authz     *auth.Authorizer
	audit     *auditor
	handler   http.Handler
	registry  *prometheus.Registry
	dbHealth  *dbHealth
	// kev is the KEV catalogue compiled in: which CVEs are known to be exploited.
	kev *kev.Catalog
	// reports runs Inspector's SBOM exports and findings reports.
	reports *reports.Service
	// closeLocks closes the blob store's locks (a pool of their own on PostgreSQL).
	closeLocks func()
	// leases runs the once-per-registry duties and each webhook's delivery on one node at a
	// time among the nodes sharing the metadata store.
	leases *lease.Runner
}

// Open prepares the data directory, the stores and the handlers.
func Open(ctx context.Context, cfg Config) (*App, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.UploadTTL <= 0 {
		cfg.UploadTTL = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.RegistryID) != 12 || strings.Trim(cfg.RegistryID, "0123456789") != "" {
		return nil, fmt.Errorf("registry id %q: must be 12 digits", cfg.RegistryID)
	}
	meta, err := OpenMeta(ctx, cfg.DataDir, cfg.Metadata, cfg.Logger)
	if err != nil {
		return nil, err
	}
	meta.SetClock(cfg.Now)
	keys, err := OpenKeys(ctx, meta, cfg.DataDir, cfg.SecretKey, cfg.Logger)
	if err != nil {
		_ = meta.Close()
		return nil, err
	}
	locks, closeLocks, err := OpenBlobLocks(ctx, cfg.Metadata)
	if err != nil {
		_ = meta.Close()
		return nil, err
	}
	opened := false
	defer func() {
		if !opened {
			closeLocks()
		}
	}()
	blobs, err := OpenBlobs(ctx, cfg.DataDir, cfg.Blobs, BlobOptions{MaxBlobSize: cfg.MaxBlobSize, MinFreeSpace: cfg.MinFreeSpace,
		S3Redirect: cfg.S3Redirect, Now: cfg.Now, Locker: locks})
	if err != nil {
		_ = meta.Close()
		return nil, err
	}
	if err := blobs.Ping(ctx); err != nil {
		// Not fatal: blob operations answer 503 and /readyz fails until the storage answers.
		cfg.Logger.Warn("blob store unavailable at start", "err", err)
	}
	if err := auth.Bootstrap(ctx, keys, cfg.DataDir, cfg.AdminAccessKeyID, cfg.AdminSecretAccessKey, cfg.Logger); err != nil {
		_ = meta.Close()
		return nil, fmt.Errorf("bootstrap admin: %w", err)
	}
	catalog, err := kev.Embedded()
	if err != nil {
		_ = meta.Close()
		return nil, err
	}
	// Suppression rules compare criteria on the account, resource ids and known exploits.
	meta.SetFindingContext(store.FindingContext{Account: cfg.RegistryID, Region: cfg.Region, Exploited: catalog.IDs()})
	a := &App{cfg: cfg, log: cfg.Logger, meta: meta, blobs: blobs, keys: keys, auth: auth.NewAuthenticator(keys, auth.Options{Throttle: cfg.AuthThrottle}),
		authz: auth.NewAuthorizer(meta, auth.AuthorizerOptions{RegistryID: cfg.RegistryID, Region: cfg.Region, AnonymousPull: cfg.AnonymousPull}), kev: catalog}
	auditLog, closeAudit, err := openAuditLog(cfg.AuditLog)
	if err != nil {
		_ = meta.Close()
		return nil, err
	}
	a.audit = &auditor{w: auditLog, close: closeAudit, origin: events.Origin{Account: cfg.RegistryID, Region: cfg.Region},
		outbox: meta, log: cfg.Logger.With("component", "audit")}
	a.registry = prometheus.NewRegistry()
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lading_uploads_in_progress", Help: "Blob upload sessions open.",
	}, func() float64 {
		// A scrape has no context of its own: bound the wait on a slow store.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := meta.CountUploads(ctx)
		if err != nil {
			return math.NaN() // unknown, not zero
		}
		return float64(n)
	}))
	if err := a.openScanning(ctx); err != nil {
		_ = closeAudit()
		_ = meta.Close()
		return nil, err
	}
	a.dbHealth = &dbHealth{db: a.vulns, maxAge: cfg.MaxDBAge, version: func() int64 {
		if ix := a.watcher.Index(); ix != nil {
			return ix.Version()
		}
		return 0
	}}
	a.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lading_advisory_db_age_seconds", Help: "Age of the newest advisory in the database (-1: none).",
	}, func() float64 { return a.dbHealth.age(context.Background()) }))
	a.lifecycle = lifecycle.New(meta, cfg.Now, a.log.With("component", "lifecycle"))
	if a.gate, err = pullgate.New(meta, cfg.PullGate, cfg.RegistryID, a.scans.CurrentScanType, cfg.Now); err != nil {
		_ = closeAudit()
		_ = meta.Close()
		return nil, fmt.Errorf("--pull-gate-*: %w", err)
	}
	a.gate.WithPage(console.ImageURL)
	if a.handler, err = a.buildHandler(); err != nil {
		_ = closeAudit()
		_ = meta.Close()
		return nil, err
	}
	a.closeLocks, opened = closeLocks, true
	return a, nil
}

// openScanning builds the advisory database, the event dispatcher and the scanning service,
// and makes manifest changes write their events and scan jobs in their own transactions.
func (a *App) openScanning(ctx context.Context) error {
	cfg := a.cfg
	a.vulns = vulndb.New(a.meta, vulndb.Options{Logger: a.log.With("component", "vulndb"), CacheDir: filepath.Join(cfg.DataDir, vulnDBCacheDir)})
	poll := cfg.DBPollInterval
	if poll <= 0 {
		poll = time.Second
	}
	a.watcher = vulndb.NewWatcher(a.meta, vulndb.WatcherOptions{PollInterval: poll, Logger: a.log.With("component", "vulndb")})
	source := cfg.DBSource
	if source == "" {
		source = vulndb.DefaultSource
	}
	a.syncer = vulndb.NewSyncer(a.vulns, vulndb.SyncerOptions{Source: source, Interval: cfg.DBSyncInterval})
	origin := events.Origin{Account: cfg.RegistryID, Region: cfg.Region}
	hooks, err := events.LoadWebhooks(events.Settings{URLs: cfg.EventWebhooks, Secret: cfg.EventWebhookSecret, ConfigFile: cfg.EventsConfig}, os.Getenv)
	if err != nil {
		return err
	}
	a.leases = lease.NewRunner(a.meta, lease.NewHolder(), cfg.LeaseTTL, a.log.With("component", "lease"))
	a.events, err = events.NewDispatcher(ctx, a.meta, hooks, events.Options{Logger: a.log.With("component", "events"), Registerer: a.registry,
		Leases: a.leases})
	if err != nil {
		return err
	}
	// CloudTrail-shaped events are written only when a webhook asks for them.
	a.audit.trail, a.audit.notify = events.AnyWants(hooks, events.DetailTypeAPICall), a.events.Notify
	scratch := filepath.Join(cfg.DataDir, scratchDir)
	if err := os.MkdirAll(scratch, privateDir); err != nil {
		return err
	}
	gzipProgram, err := inventory.GzipProgram(cfg.GzipDecoder)
	if err != nil {
		return fmt.Errorf("--gzip-decoder: %w", err)
	}
	if gzipProgram != "" {
		a.log.Info("large gzip layers are decoded by a child process", "program", gzipProgram)
	}
	var scanned func(ctx context.Context, repo, digest, scanType string) error
	if cfg.AttachSBOM {
		scanned = sbom.NewAttacher(a.meta, a.blobs, sbom.AttacherConfig{ToolVersion: cfg.Version, Now: cfg.Now,
			Logger: a.log.With("component", "sbom")}).Attach
	}
	a.scans = scanning.New(a.meta, a.blobs, a.watcher, scanning.Config{
		Origin: origin, Workers: cfg.ScanWorkers, ScanTimeout: cfg.ScanTimeout, ScanLease: cfg.ScanLease, RescanDuration: cfg.RescanDuration,
		ScratchDir: scratch, Logger: a.log.With("component", "scanning"), Notify: a.events.Notify, Registerer: a.registry,
		Scanned: scanned, Leases: a.leases, GzipProgram: gzipProgram,
	})
	a.meta.SetEffects(a.scans.Effects, a.scans.Committed)
	return nil
}

// Close releases the stores and the audit log.
func (a *App) Close() error {
	err := errors.Join(a.audit.close(), a.meta.Close())
	a.closeLocks()
	return err
}

// Authorizer decides permissions for every face; the faces wired outside this package (the
// Inspector face, the console) call its Check.
func (a *App) Authorizer() *auth.Authorizer { return a.authz }

// Handler is the whole HTTP surface (for tests that serve it themselves).
func (a *App) Handler() http.Handler { return a.handler }

func (a *App) buildHandler() (http.Handler, error) {
	m := newMetrics(a.registry)
	registry := oci.NewHandler(a.meta, a.blobs, oci.Config{CreateOnPush: a.cfg.CreateOnPush, Authorizer: a.authz, Logger: a.log, PullGate: a.gate})
	v2 := auth.RegistryMiddleware(a.auth, a.cfg.AnonymousPull, a.log, registry)
	ecrAPI := ecr.NewHandler(a.meta, a.blobs, a.auth, ecr.Config{RegistryID: a.cfg.RegistryID, Region: a.cfg.Region, Logger: a.log, Scans: a.scans,
		Lifecycle: a.lifecycle, Authorizer: a.authz, Policies: a.meta, Exploits: a.kev})
	findingsSvc := findings.NewService(a.meta, a.watcher, a.kev, a.cfg.RegistryID, a.cfg.Region)
	coverage := findings.NewCoverage(a.meta, a.scans, a.cfg.RegistryID, a.cfg.Region)
	rules := suppression.NewService(a.meta, a.cfg.RegistryID, a.cfg.Region,
		scanning.AnnounceListed(events.Origin{Account: a.cfg.RegistryID, Region: a.cfg.Region}), a.cfg.Now)
	inspectorCfg := inspector.Config{Authorizer: a.authz, RegistryID: a.cfg.RegistryID, Region: a.cfg.Region,
		Coverage: coverage, Scanning: a.scans, Rules: rules, Logger: a.log}
	reportsDir := a.cfg.ReportsDir
	if reportsDir == "" {
		reportsDir = filepath.Join(a.cfg.DataDir, reportsDirName)
	}
	a.reports = reports.New(a.meta, findingsSvc, inspector.NewFindingEncoder(findingsSvc, inspectorCfg), reports.Config{Dir: reportsDir,
		Account: a.cfg.RegistryID, Region: a.cfg.Region, ToolVersion: a.cfg.Version, Now: a.cfg.Now, Logger: a.log.With("component", "reports")})
	inspectorCfg.Reports = a.reports
	inspectorAPI := inspector.NewHandler(a.auth, findingsSvc, inspectorCfg)
	downloads := inspector.NewDownloads(a.auth, a.auth, a.reports, a.authz)
	consoleUI, err := console.New(console.Config{Auth: a.auth, Authz: a.authz, Store: a.meta, Keys: a.keys, Scans: a.scans, Findings: findingsSvc,
		Advisories: a.dbHealth.current, Webhooks: a.events.Webhooks, MaxDBAge: a.cfg.MaxDBAge, SessionTTL: a.cfg.ConsoleSessionTTL,
		Coverage: coverage, Rules: rules, Rescan: a.scans, SBOMs: a.reports, Logger: a.log.With("component", "console")})
	if err != nil {
		return nil, err
	}
	metricsHandler := promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{})
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case a.cfg.NoAPI && p != "/healthz" && p != "/readyz" && p != "/metrics":
			http.Error(w, "this node serves no API (--api=false)", http.StatusNotFound)
		case p == "/v2" || strings.HasPrefix(p, "/v2/"):
			v2.ServeHTTP(w, r)
		case isECR(r):
			ecrAPI.ServeHTTP(w, r)
		case consoleUI.Handles(r):
			consoleUI.ServeHTTP(w, r)
		case inspectorAPI.Handles(r):
			inspectorAPI.ServeHTTP(w, r)
		case strings.HasPrefix(p, inspector.ReportFilesPath):
			downloads.ServeHTTP(w, r)
		case p == "/healthz":
			_, _ = w.Write([]byte("ok\n"))
		case p == "/readyz":
			if err := a.meta.Ping(r.Context()); err != nil {
				http.Error(w, "metadata store unavailable", http.StatusServiceUnavailable)
				return
			}
			if err := a.blobs.Ping(r.Context()); err != nil {
				a.log.WarnContext(r.Context(), "readiness: blob store unavailable", "err", err)
				http.Error(w, "blob store unavailable", http.StatusServiceUnavailable)
				return
			}
			// A stale advisory database does not take the registry out of service: pushes and
			// pulls work. It is said, for whoever watches the probe.
			_, _ = w.Write([]byte("ready\n" + a.dbHealth.detail(r.Context()) + "\n"))
		case p == "/metrics":
			metricsHandler.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
	route := func(r *http.Request) string {
		switch p := r.URL.Path; {
		case p == "/v2" || strings.HasPrefix(p, "/v2/"):
			return oci.RouteName(r)
		case isECR(r):
			return ecrAPI.RouteName(r)
		case consoleUI.Handles(r):
			return consoleUI.RouteName(r)
		case inspectorAPI.Handles(r):
			return inspectorAPI.RouteName(r)
		case strings.HasPrefix(p, inspector.ReportFilesPath):
			return "report_file"
		case p == "/healthz", p == "/readyz", p == "/metrics":
			return strings.TrimPrefix(p, "/")
		default:
			return "other"
		}
	}
	return observe(m, a.log, route, a.audit.record, mux), nil
}

// isECR reports requests for the ECR face: JSON 1.1 calls on POST / (the ECR handler answers
// an unknown X-Amz-Target itself) and the layer URLs GetDownloadUrlForLayer hands out.
func isECR(r *http.Request) bool {
	p := r.URL.Path
	return (p == "/" && r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("X-Amz-Target"), ecr.TargetPrefix)) ||
		strings.HasPrefix(p, ecr.DownloadPath+"/")
}

// Serve listens on cfg.Addr and serves until ctx ends, then shuts down gracefully: in-flight
// requests finish (upload sessions stay resumable; they are on disk).
func (a *App) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return a.ServeListener(ctx, ln)
}

// ServeListener is Serve on an existing listener.
func (a *App) ServeListener(ctx context.Context, ln net.Listener) error {
	tlsCfg, err := a.tlsConfig()
	if err != nil {
		return err
	}
	srv := &http.Server{
		TLSConfig:         tlsCfg,
		Handler:           a.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	bg, stopBG := context.WithCancel(ctx)
	var workers sync.WaitGroup
	// A duty that must run once for the registry runs on the node holding its lease (any
	// node, when several share the store; the node itself, when alone). Upload purge would
	// be safe on every node (deleting a session twice is a no-op), but it lists every
	// session: once is enough. The watcher runs on every node: each keeps its own advisory
	// index for its scans; the re-evaluation an advisory change starts is a leased duty of
	// the scanning service, and each webhook's delivery a lease of the dispatcher.
	leased := func(name string, run func(context.Context)) func(context.Context) {
		return func(ctx context.Context) { a.leases.Run(ctx, "duty/"+name, run) }
	}
	for _, run := range []func(context.Context){
		leased("upload-purge", a.purgeUploads),
		func(ctx context.Context) {
			if o, ok := a.meta.(storeOptimizer); ok {
				leased("store-optimize", func(ctx context.Context) { optimizeStore(ctx, o, a.log) })(ctx)
			}
		},
		func(ctx context.Context) {
			if a.cfg.GCInterval > 0 {
				leased("gc", a.collectGarbage)(ctx)
			}
		},
		func(ctx context.Context) {
			if a.cfg.LifecycleInterval > 0 {
				leased("lifecycle", func(ctx context.Context) { a.lifecycle.Loop(ctx, a.cfg.LifecycleInterval) })(ctx)
			}
		},
		func(ctx context.Context) { _ = a.watcher.Run(ctx) },
		leased("advisory-sync", func(ctx context.Context) {
			_ = a.syncer.Run(ctx)
			<-ctx.Done() // with no source Run returns at once: keep the lease rather than call it again
		}),
		func(ctx context.Context) { _ = a.events.Run(ctx) },
		func(ctx context.Context) { _ = a.scans.Run(ctx) },
		a.reports.Run,
	} {
		workers.Add(1)
		go func() {
			defer workers.Done()
			run(bg)
		}()
	}
	// Background work stops before the caller closes the stores.
	defer func() { stopBG(); workers.Wait() }()

	errc := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			// ServeTLS also offers HTTP/2; the certificate comes from TLSConfig.GetCertificate.
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	a.log.Info("lading serving", "addr", ln.Addr().String(), "tls", tlsCfg != nil, "data_dir", a.cfg.DataDir, "version", a.cfg.Version)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down: waiting for in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// every runs fn each d until ctx ends; the first run is d after the start.
func every(ctx context.Context, d time.Duration, fn func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn(ctx)
	}
}

// purgeUploads removes upload sessions idle for longer than the TTL.
func (a *App) purgeUploads(ctx context.Context) {
	every(ctx, min(a.cfg.UploadTTL/4, 10*time.Minute), a.purgeUploadsOnce)
}

func (a *App) purgeUploadsOnce(ctx context.Context) {
	cutoff := time.Now().Add(-a.cfg.UploadTTL)
	ids, err := a.meta.DeleteUploadsBefore(ctx, cutoff)
	if err != nil {
		a.log.Warn("purge upload sessions", "err", err)
		return
	}
	for _, id := range ids {
		_ = a.blobs.Cancel(ctx, id)
	}
	// Sessions whose metadata never got written (a crash in between) are found by age.
	orphans, err := a.blobs.PurgeUploads(ctx, cutoff)
	if err != nil {
		a.log.Warn("purge upload data", "err", err)
	}
	if n := len(ids) + len(orphans); n > 0 {
		a.log.Info("purged abandoned uploads", "count", n)
	}
}

// storeOptimizer is a metadata store whose query planner wants its statistics refreshed as the
// store grows (SQLite; PostgreSQL's autovacuum does it by itself).
type storeOptimizer interface {
	Optimize(ctx context.Context) error
}

// optimizeStore refreshes the store's planner statistics every hour: a registry that starts
// empty and grows would otherwise be planned for as it was when it opened.
func optimizeStore(ctx context.Context, o storeOptimizer, log *slog.Logger) {
	every(ctx, time.Hour, func(ctx context.Context) {
		if err := o.Optimize(ctx); err != nil && ctx.Err() == nil {
			log.Warn("refresh the store's planner statistics", "err", err)
		}
	})
}

// collectGarbage runs garbage collection every GCInterval.
func (a *App) collectGarbage(ctx context.Context) {
	if a.cfg.GCInterval <= 0 {
		return
	}
	every(ctx, a.cfg.GCInterval, func(ctx context.Context) {
		if _, err := a.CollectGarbage(ctx, false); err != nil && ctx.Err() == nil {
			a.log.Warn("garbage collection", "err", err)
		}
	})
}

// CollectGarbage runs one garbage collection with the server's settings.
func (a *App) CollectGarbage(ctx context.Context, dryRun bool) (gc.Report, error) {
	return gc.New(a.meta, a.blobs).Run(ctx, gc.Options{Grace: a.cfg.GCGrace, UploadTTL: a.cfg.UploadTTL, DryRun: dryRun,
		Now: a.cfg.Now, Logger: a.log.With("component", "gc")})
}

// RunLifecycle applies every repository's lifecycle policy once, as the schedule does.
func (a *App) RunLifecycle(ctx context.Context) error {
	_, err := a.lifecycle.Run(ctx)
	return err
}

// CollectGarbage runs one garbage collection on a data directory, beside a server using it
// or not (`lading admin gc`): SQLite's WAL lets both write, and the blob store's locks (flocks,
// or PostgreSQL's advisory locks with --metadata postgres://) hold across processes.
func CollectGarbage(ctx context.Context, dataDir, metadata, blobsSpec string, o gc.Options) (gc.Report, error) {
	meta, err := OpenMeta(ctx, dataDir, metadata, o.Logger)
	if err != nil {
		return gc.Report{}, err
	}
	defer meta.Close()
	// The server's locks: a collection beside it must exclude its commits.
	locks, closeLocks, err := OpenBlobLocks(ctx, metadata)
	if err != nil {
		return gc.Report{}, err
	}
	defer closeLocks()
	blobs, err := OpenBlobs(ctx, dataDir, blobsSpec, BlobOptions{Locker: locks})
	if err != nil {
		return gc.Report{}, err
	}
	return gc.New(meta, blobs).Run(ctx, o)
}

// DataDir is the data directory the app serves.
func (a *App) DataDir() string { return a.cfg.DataDir }
