// Package console is Lading's fourth face: a web console under /console/, rendered on the
// server with html/template from what the domain packages answer (the findings service and its
// aggregations, Inspector's coverage, the suppression rules, the scanning service, the reports'
// SBOMs, the store's repositories and images, the scanning policy). It holds no
// rules of its own: permissions are internal/auth's, validation is the domain's. Templates and
// static assets are embedded; the front-end packages (htmx, Pico CSS) are vendored at pinned
// versions by scripts/vendor-console, and every page works read-only without JavaScript.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/suppression"
	"github.com/lading-registry/lading/internal/vulndb"
)

// Prefix is where the console is served.
const Prefix = "/console/"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Authenticator checks the access keys people sign in with (internal/auth).
type Authenticator interface {
	SignIn(r *http.Request, id, secret string) (auth.Principal, error)
	Principal(ctx context.Context, id string) (auth.Principal, error)
	SessionKey(ctx context.Context) ([]byte, error)
}

// Authorizer decides what the signed-in key may see and do (internal/auth), with the same
// actions as the ECR and Inspector faces.
type Authorizer interface {
	Authorize(ctx context.Context, p auth.Principal, action, resource string) error
	Allowed(ctx context.Context, p auth.Principal, action, resource string) bool
	AuthorizeList(ctx context.Context, p auth.Principal, action string) error
	// AllowedRepositories filters repository names as Allowed would, in one read of the
	// policies.
	AllowedRepositories(ctx context.Context, p auth.Principal, action string, repos []string) ([]string, error)
	RepositoryARN(name string) string
}

// Store is what the console reads and writes in the metadata store: repositories, images and
// the registry scanning configuration.
type Store interface {
	ListRepositories(ctx context.Context, after string, limit int) ([]store.Repository, error)
	GetRepository(ctx context.Context, name string) (store.Repository, error)
	ListImages(ctx context.Context, repo, tagStatus, afterDigest string, limit int) ([]store.Manifest, error)
	GetImage(ctx context.Context, repo, digest string) (store.Manifest, error)
	Referrers(ctx context.Context, repo, digest string) ([]store.Descriptor, error)
	ScanningPolicy(ctx context.Context) (policy.Policy, error)
	PutScanningPolicy(ctx context.Context, p policy.Policy) error
	// WebhookCursors are the webhooks' delivery positions in the outbox, and its end.
	WebhookCursors(ctx context.Context) (positions map[string]int64, end int64, err error)
}

// Keys manages access keys (the sealed key store, so that a created secret is encrypted).
type Keys interface {
	ListAccessKeys(ctx context.Context) ([]store.AccessKey, error)
	CreateAccessKey(ctx context.Context, k store.AccessKey) error
	DeleteAccessKey(ctx context.Context, id string) error
}

// Scans is the scanning service: results, summaries, manual scans and layers.
type Scans interface {
	Results(ctx context.Context, repo, dgst string) (store.ImageScan, []store.Finding, error)
	Summaries(ctx context.Context, repo string, digests []string) (map[string]scanning.Summary, error)
	// RepositoryCounts: every repository's counts at once, when the scan type allows (ok).
	RepositoryCounts(ctx context.Context) (counts map[string]map[string]int, ok bool, err error)
	StartImageScan(ctx context.Context, repo, dgst string) (store.ImageScan, error)
	ImageLayers(ctx context.Context, repo, dgst string) ([]scanning.Layer, error)
	PolicyChanged(ctx context.Context) error
}

// Findings is the findings service, as the Inspector face uses it.
type Findings interface {
	List(ctx context.Context, in findings.ListInput) (findings.ListOutput, error)
	Aggregate(ctx context.Context, in findings.Aggregation) (findings.AggregationOutput, error)
	SearchVulnerabilities(ctx context.Context, ids []string) ([]findings.Vulnerability, error)
	Trend(ctx context.Context, from time.Time, days int) ([]findings.DayCount, error)
}

// AdvisoryStatus says which advisory database version the node has (what /readyz reads).
type AdvisoryStatus func(ctx context.Context) (*vulndb.Status, error)

// Link is a labelled URL.
type Link struct{ Label, URL string }

// Coverage is Inspector's coverage (findings.Coverage): each image's scan status and reason,
// listed and counted as ListCoverage and ListCoverageStatistics answer.
type Coverage interface {
	List(ctx context.Context, in findings.CoverageInput) (findings.CoverageOutput, error)
	Statistics(ctx context.Context, in findings.StatisticsInput) (findings.StatisticsOutput, error)
}

// Rules are the suppression rules (suppression.Service), with its validation.
type Rules interface {
	List(ctx context.Context, in suppression.ListInput) (suppression.ListOutput, error)
	Create(ctx context.Context, in suppression.Input) (suppression.Rule, error)
	Update(ctx context.Context, arn string, in suppression.Input) (suppression.Rule, error)
	Delete(ctx context.Context, arn string) (suppression.Rule, error)
}

// RescanConfig is Inspector's ECR rescan configuration (scanning.Service): how long an image
// stays in continuous coverage.
type RescanConfig interface {
	Rescan(ctx context.Context) (policy.Rescan, policy.Window, error)
	SetRescan(ctx context.Context, r policy.Rescan) error
}

// SBOMs writes an image's SBOM, as an SBOM export does (reports.Service.ImageSBOM).
type SBOMs interface {
	ImageSBOM(ctx context.Context, repo, digest, format string, w io.Writer) error
}

// Config is what the console is built from.
type Config struct {
	Auth       Authenticator
	Authz      Authorizer
	Store      Store
	Keys       Keys
	Scans      Scans
	Findings   Findings
	Advisories AdvisoryStatus
	// Webhooks is this node's view of the event webhooks' deliveries (events.Dispatcher's);
	// nil when none are configured.
	Webhooks func() []events.WebhookState
	// MaxDBAge is how old the newest advisory may be before the overview says the database is
	// not current (as /readyz; 0: no limit).
	MaxDBAge time.Duration
	// SessionTTL is how long a sign-in lasts (default 12 h).
	SessionTTL time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
	// Coverage, Rules, Rescan and SBOMs are optional: without one, its page or section is not
	// shown.
	Coverage Coverage
	Rules    Rules
	Rescan   RescanConfig
	SBOMs    SBOMs
}

// Handler serves the console.
type Handler struct {
	cfg    Config
	pages  map[string]*template.Template
	static http.Handler
	mux    *http.ServeMux
}

// New builds the console; it fails only if its embedded templates do not parse.
func New(cfg Config) (*Handler, error) {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{cfg: cfg, pages: map[string]*template.Template{}}
	for _, name := range []string{"signin", "overview", "repositories", "repository", "image", "vulnerability", "coverage", "settings", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		h.pages[name] = t
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	h.static = http.StripPrefix(Prefix+"static/", http.FileServerFS(sub))
	h.mux = http.NewServeMux()
	h.routes()
	return h, nil
}

// Handles reports requests for the console: its paths, and a browser's GET of / (which is
// redirected here).
func (h *Handler) Handles(r *http.Request) bool {
	p := r.URL.Path
	return p == "/console" || strings.HasPrefix(p, Prefix) || isBrowserRoot(r)
}

func isBrowserRoot(r *http.Request) bool {
	return r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		strings.Contains(r.Header.Get("Accept"), "text/html")
}

// RouteName names a console request for metrics and logs.
func (h *Handler) RouteName(r *http.Request) string {
	if isBrowserRoot(r) {
		return "console_root"
	}
	_, pattern := h.mux.Handler(r)
	if pattern == "" {
		return "console_other"
	}
	return "console " + pattern
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isBrowserRoot(r) || r.URL.Path == "/console" {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	hdr := w.Header()
	// The console's own assets only; no framing (clickjacking of the forms).
	hdr.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) routes() {
	m := h.mux
	m.Handle("GET "+Prefix+"static/", h.static)
	m.HandleFunc("GET "+Prefix+"signin", h.signInPage)
	m.HandleFunc("POST "+Prefix+"signin", h.signIn)
	m.HandleFunc("POST "+Prefix+"signout", h.session(h.signOut))
	m.HandleFunc("GET "+Prefix+"{$}", h.session(h.overview))
	m.HandleFunc("GET "+Prefix+"repositories", h.session(h.repositories))
	m.HandleFunc("GET "+Prefix+"repository", h.session(h.repository))
	m.HandleFunc("POST "+Prefix+"repository/scan", h.session(h.startScan))
	m.HandleFunc("GET "+Prefix+"image", h.session(h.image))
	m.HandleFunc("GET "+Prefix+"image/sbom", h.session(h.imageSBOM))
	m.HandleFunc("GET "+Prefix+"vulnerability", h.session(h.vulnerability))
	m.HandleFunc("GET "+Prefix+"coverage", h.session(h.coverage))
	m.HandleFunc("GET "+Prefix+"settings", h.session(h.settings))
	m.HandleFunc("POST "+Prefix+"settings/scanning", h.session(h.putScanning))
	m.HandleFunc("POST "+Prefix+"settings/rescan", h.session(h.putRescan))
	m.HandleFunc("POST "+Prefix+"settings/rules", h.session(h.createRule))
	m.HandleFunc("POST "+Prefix+"settings/rules/update", h.session(h.updateRule))
	m.HandleFunc("POST "+Prefix+"settings/rules/delete", h.session(h.deleteRule))
	m.HandleFunc("POST "+Prefix+"settings/keys", h.session(h.createKey))
	m.HandleFunc("POST "+Prefix+"settings/keys/delete", h.session(h.deleteKey))
	m.HandleFunc(Prefix, h.session(func(w http.ResponseWriter, r *http.Request, s *sessionCtx) {
		h.fail(w, r, s, errNotFound)
	}))
}

// permit reports whether a request to a page of an optional service may go on: the service is
// there (present; else the 404 page) and the key may do action on every resource (else the
// refusal). When not, the answer has been written.
func (h *Handler) permit(w http.ResponseWriter, r *http.Request, s *sessionCtx, present bool, action string) bool {
	if !present {
		h.fail(w, r, s, errNotFound)
		return false
	}
	if err := h.cfg.Authz.Authorize(r.Context(), s.Principal, action, "*"); err != nil {
		h.fail(w, r, s, err)
		return false
	}
	return true
}

// Errors a page answers with its own page.
var (
	errNotFound   = errors.New("not found")
	errBadRequest = errors.New("bad request")
)

// fail renders the page of an error: 404 for what does not exist, 403 for what the key may
// not see, 400 for a refused form, 500 (logged, not shown) for anything else.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, s *sessionCtx, err error) {
	status, title, msg := http.StatusInternalServerError, "Something went wrong", "The console could not answer; the server log says why."
	var denied *auth.AccessDeniedError
	switch {
	case errors.Is(err, errNotFound), errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrRepositoryNotFound),
		errors.Is(err, store.ErrManifestNotFound), errors.Is(err, scanning.ErrNotAnImage):
		status, title, msg = http.StatusNotFound, "Not found", "There is no such page, repository, image or vulnerability here."
	case errors.As(err, &denied):
		status, title, msg = http.StatusForbidden, "Access denied", denied.Error()
	case errors.Is(err, errBadRequest):
		status, title, msg = http.StatusBadRequest, "Bad request", strings.TrimPrefix(err.Error(), errBadRequest.Error()+": ")
	default:
		h.cfg.Logger.ErrorContext(r.Context(), "console", "path", r.URL.Path, "err", err)
	}
	h.render(w, r, s, status, "error", "error", map[string]any{"Title": title, "Message": msg, "Status": status})
}
