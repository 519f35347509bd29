// Command console benchmarks the web console's pages on the registry store that
// bench/continuous builds (100,000 images by default): each page's HTML rendered by the
// console's handler in-process (session check, authorization, the domain's queries, the
// template), 50 requests each after a first, and the p95 compared with the target: < 100 ms
// for every page, < 200 ms for the overview (issue 14).
//
// Run it from the repository root:
//
//	go run ./bench/console -cache DIR                          # builds DIR with bench/continuous if needed
//	go run ./bench/console -cache DIR -images 10000 -bases 100 # a smaller store
//	go run ./bench/console -store PATH/lading.db               # any Lading store
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/bench/internal/machine"
	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/console"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/kev"
	"github.com/lading-registry/lading/internal/reports"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/suppression"
)

const (
	account = "123456789012"
	region  = "us-east-1"
)

type config struct {
	cache, store  string
	images, bases int
	requests      int
	// budget bounds the time spent on one page: a page far over its target is measured with
	// fewer requests (the count is printed).
	budget time.Duration
	// only: the pages whose name matches (all when empty); cpuProfile: where their requests'
	// CPU time goes (pprof), written there.
	only, cpuProfile string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.cache, "cache", "", "bench/continuous cache folder: its store is used, and built there first when missing")
	flag.StringVar(&cfg.store, "store", "", "a Lading store (lading.db) to read instead")
	flag.IntVar(&cfg.images, "images", 100000, "images of the store bench/continuous builds (with -cache)")
	flag.IntVar(&cfg.bases, "bases", 300, "base images of the store bench/continuous builds (with -cache)")
	flag.IntVar(&cfg.requests, "requests", 50, "requests of each page after the first (the p95 is compared with the target)")
	flag.DurationVar(&cfg.budget, "budget", time.Minute, "time spent on one page at most: a slower page is measured with fewer requests (at least 5)")
	flag.StringVar(&cfg.only, "pages", "", "measure only the pages whose name matches this regular expression (and skip the overview's queries one by one)")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the pages' requests to this file")
	flag.Parse()
	if (cfg.cache == "") == (cfg.store == "") || cfg.requests < 1 {
		fmt.Fprintln(os.Stderr, "bench: give one of -cache and -store")
		flag.Usage()
		os.Exit(2)
	}
	if err := run(context.Background(), cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// storePath returns the store to read, building the bench/continuous cache when it holds
// none of this size.
func storePath(ctx context.Context, cfg config, w io.Writer) (string, error) {
	if cfg.store != "" {
		return cfg.store, nil
	}
	raw, err := os.ReadFile(filepath.Join(cfg.cache, "setup.json"))
	var setup struct {
		Flags string `json:"flags"`
	}
	if err == nil && json.Unmarshal(raw, &setup) == nil && strings.Contains(setup.Flags, fmt.Sprintf(" images=%d bases=%d ", cfg.images, cfg.bases)) {
		return filepath.Join(cfg.cache, "lading.db"), nil
	}
	fmt.Fprintf(w, "building the store of %d images on %d bases with bench/continuous (-cache %s)\n", cfg.images, cfg.bases, cfg.cache)
	cmd := exec.CommandContext(ctx, "go", "run", "./bench/continuous", "-cache", cfg.cache, "-images", fmt.Sprint(cfg.images), "-bases", fmt.Sprint(cfg.bases))
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("bench/continuous: %w", err)
	}
	return filepath.Join(cfg.cache, "lading.db"), nil
}

// admin is the signed-in key: the console's sign-in is not measured, its session check on
// every request is.
var admin = auth.Principal{AccessKeyID: "LAKBENCH000000000000", Name: "bench", Preset: auth.PresetAdministrator}

type signer struct{}

func (signer) SignIn(_ *http.Request, id, _ string) (auth.Principal, error) {
	if id != admin.AccessKeyID {
		return auth.Principal{}, auth.ErrBadCredentials
	}
	return admin, nil
}
func (signer) Principal(_ context.Context, id string) (auth.Principal, error) {
	if id != admin.AccessKeyID {
		return auth.Principal{}, auth.ErrBadCredentials
	}
	return admin, nil
}
func (signer) SessionKey(context.Context) ([]byte, error) {
	return []byte("bench-session-key-0123456789abcdef"), nil
}

// configs serves an image configuration for any digest. bench/continuous stores no blob
// content (its images' config digests name nothing), and the image page reads each layer's
// Dockerfile step from the config: this one has a step per layer. Reading a config of a few
// kilobytes from disk is not what the page spends its time on.
type configs struct{}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func (configs) Open(context.Context, digest.Digest) (blob.ReadSeekCloser, error) {
	var hist []map[string]string
	for i := range 12 {
		hist = append(hist, map[string]string{"created_by": fmt.Sprintf("RUN step %d", i+1)})
	}
	b, err := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "history": hist, "rootfs": map[string]any{"type": "layers"}})
	if err != nil {
		return nil, err
	}
	return nopCloser{strings.NewReader(string(b))}, nil
}

type page struct {
	name   string
	path   string
	target time.Duration // 0: for reference
}

func run(ctx context.Context, cfg config, w io.Writer) error {
	path, err := storePath(ctx, cfg, w)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Console benchmark on %s\nmachine: %d CPUs (%s), %s, load average %s\n", path, runtime.NumCPU(), machine.CPUModel(), runtime.Version(), machine.LoadAverage())
	open := time.Now()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(w, "store opened (and migrated) in %s\n", time.Since(open).Round(time.Millisecond))

	// What the pages are asked about: the store's counts, a repository in the middle, its
	// newest image, the most widespread vulnerability.
	r := db.Reader()
	var nFindings, nImages, nRepos int
	// rare: a vulnerability ACTIVE in about 1% of the images.
	var repo, image, vuln, rare string
	for _, q := range []struct {
		dst  any
		sql  string
		args []any
	}{
		{&nFindings, "SELECT count(*) FROM findings", nil},
		{&nImages, "SELECT count(*) FROM manifests", nil},
		{&nRepos, "SELECT count(*) FROM repositories", nil},
		{&repo, "SELECT name FROM repositories ORDER BY name LIMIT 1 OFFSET ?", nil},
		{&vuln, `SELECT vulnerability_id FROM vulnerability_finding_counts WHERE scan_type = 'ENHANCED'
			GROUP BY vulnerability_id ORDER BY sum(n_all) DESC, vulnerability_id LIMIT 1`, nil},
		{&rare, `SELECT vulnerability_id FROM vulnerability_finding_counts WHERE scan_type = 'ENHANCED'
			GROUP BY vulnerability_id HAVING sum(n_all) >= ? ORDER BY sum(n_all), vulnerability_id LIMIT 1`, nil},
	} {
		args := q.args
		switch q.dst {
		case &repo:
			args = []any{nRepos / 2}
		case &rare:
			args = []any{max(1, nImages/100)}
		}
		if err := r.QueryRowContext(ctx, q.sql, args...).Scan(q.dst); err != nil {
			return fmt.Errorf("%s: %w", q.sql, err)
		}
	}
	if err := r.QueryRowContext(ctx, "SELECT digest FROM manifests WHERE repository = ? ORDER BY pushed_at DESC LIMIT 1", repo).Scan(&image); err != nil {
		return err
	}
	var imageFindings int
	_ = r.QueryRowContext(ctx, "SELECT count(*) FROM findings WHERE repository = ? AND image_digest = ?", repo, image).Scan(&imageFindings)
	fmt.Fprintf(w, "store: %d findings, %d images, %d repositories; repository %s, image %s (%d findings), vulnerabilities %s (the most widespread), %s (in about 1%% of the images)\n\n",
		nFindings, nImages, nRepos, repo, image, imageFindings, vuln, rare)

	cat, err := kev.Embedded()
	if err != nil {
		return err
	}
	quiet := slog.New(slog.DiscardHandler)
	svc := findings.NewService(db, nil, cat, account, region)
	scans := scanning.New(db, configs{}, nil, scanning.Config{Logger: quiet})
	cov := findings.NewCoverage(db, scans, account, region)
	h, err := console.New(console.Config{
		Auth: signer{}, Authz: auth.NewAuthorizer(db, auth.AuthorizerOptions{RegistryID: account, Region: region}), Store: db, Keys: db,
		Scans: scans, Findings: svc, Coverage: cov,
		Rules:  suppression.NewService(db, account, region, scanning.AnnounceListed(eventsOrigin()), nil),
		Rescan: scans, SBOMs: reports.New(db, svc, nil, reports.Config{Dir: filepath.Join(os.TempDir(), "lading-bench-console-reports"), Account: account, Region: region, Logger: quiet}),
		Logger: quiet,
	})
	if err != nil {
		return err
	}
	cookies, err := signIn(h)
	if err != nil {
		return err
	}
	repoQ := url.Values{"name": {repo}}.Encode()
	imageQ := url.Values{"repository": {repo}, "digest": {image}}.Encode()
	pages := []page{
		{"overview", "/console/", 200 * time.Millisecond},
		{"repositories, first page (by name)", "/console/repositories", 100 * time.Millisecond},
		{"repositories, sorted by critical findings", "/console/repositories?sort=critical&order=desc", 100 * time.Millisecond},
		{"repositories, filtered by name", "/console/repositories?q=" + url.QueryEscape(repo), 100 * time.Millisecond},
		{"repository (its images)", "/console/repository?" + repoQ, 100 * time.Millisecond},
		{"image (layers and findings)", "/console/image?" + imageQ, 100 * time.Millisecond},
		{"image, CRITICAL findings", "/console/image?" + imageQ + "&severity=CRITICAL", 100 * time.Millisecond},
		{"vulnerability " + vuln + " (where it is active)", "/console/vulnerability?" + url.Values{"id": {vuln}}.Encode(), 100 * time.Millisecond},
		{"vulnerability " + rare + " (1% of images)", "/console/vulnerability?" + url.Values{"id": {rare}}.Encode(), 100 * time.Millisecond},
		{"coverage, first page", "/console/coverage", 100 * time.Millisecond},
		{"coverage, one repository", "/console/coverage?" + url.Values{"repository": {repo}}.Encode(), 100 * time.Millisecond},
		{"coverage, status INACTIVE", "/console/coverage?status=INACTIVE", 100 * time.Millisecond},
		{"coverage, status ACTIVE", "/console/coverage?status=ACTIVE", 100 * time.Millisecond},
		{"settings", "/console/settings", 100 * time.Millisecond},
		{"image SBOM download, CycloneDX (not a page)", "/console/image/sbom?" + imageQ + "&format=CYCLONEDX_1_4", 0},
	}
	if cfg.only != "" {
		re, err := regexp.Compile(cfg.only)
		if err != nil {
			return fmt.Errorf("-pages: %w", err)
		}
		pages = slices.DeleteFunc(pages, func(p page) bool { return !re.MatchString(p.name) })
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Fprintf(w, "%-58s %9s %9s %9s %9s %4s %9s  %s\n", "page", "first", "median", "p95", "max", "n", "bytes", "target (p95)")
	failed := false
	for _, p := range pages {
		var times []time.Duration
		size := 0
		began := time.Now()
		for i := 0; i <= cfg.requests; i++ {
			if i > 5 && time.Since(began) > cfg.budget {
				break
			}
			start := time.Now()
			n, err := get(h, p.path, cookies)
			times = append(times, time.Since(start))
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			size = n
		}
		first := times[0]
		rest := slices.Clone(times[1:])
		slices.Sort(rest)
		p95 := rest[(len(rest)*95+99)/100-1]
		verdict := "(reference)"
		if p.target > 0 {
			verdict = fmt.Sprintf("< %s: PASS", p.target)
			if p95 >= p.target {
				verdict, failed = fmt.Sprintf("< %s: FAIL", p.target), true
			}
		}
		fmt.Fprintf(w, "%-58s %9s %9s %9s %9s %4d %9d  %s\n", p.name, round(first), round(rest[len(rest)/2]), round(p95), round(rest[len(rest)-1]), len(rest), size, verdict)
	}
	if cfg.only == "" {
		if err := overviewParts(ctx, w, svc, cov); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\np95 of n requests after the first (which may read pages from disk; n < %d when the page took over %s); load average after: %s\n",
		cfg.requests, cfg.budget, machine.LoadAverage())
	if failed {
		return errors.New("a target was missed")
	}
	return nil
}

func round(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs in through the console's form and returns the session's cookies.
func signIn(h http.Handler) ([]*http.Cookie, error) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://bench/console/signin", nil))
	m := csrfRE.FindStringSubmatch(rec.Body.String())
	if m == nil {
		return nil, errors.New("no CSRF token on the sign-in page")
	}
	form := url.Values{"csrf": {strings.ReplaceAll(m[1], "&#43;", "+")}, "access_key_id": {admin.AccessKeyID}, "secret_access_key": {"x"}}
	req := httptest.NewRequest(http.MethodPost, "http://bench/console/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	rec2 := httptest.NewRecorder()
	h.ServeHTTP(rec2, req)
	if rec2.Code != http.StatusSeeOther {
		return nil, fmt.Errorf("sign-in: HTTP %d: %s", rec2.Code, rec2.Body)
	}
	return rec2.Result().Cookies(), nil
}

// get renders a page and returns its size.
func get(h http.Handler, path string, cookies []*http.Cookie) (int, error) {
	req := httptest.NewRequest(http.MethodGet, "http://bench"+path, nil)
	req.Header.Set("Accept", "text/html")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return 0, fmt.Errorf("GET %s: HTTP %d: %.300s", path, rec.Code, rec.Body)
	}
	return rec.Body.Len(), nil
}

func eventsOrigin() events.Origin { return events.Origin{Account: account, Region: region} }

// overviewParts times the domain queries the overview makes, one by one: where its time goes.
func overviewParts(ctx context.Context, w io.Writer, svc *findings.Service, cov *findings.Coverage) error {
	ten := 10
	agg := func(in findings.Aggregation) func() error {
		return func() error { _, err := svc.Aggregate(ctx, in); return err }
	}
	start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -13)
	parts := []struct {
		name string
		run  func() error
	}{
		{"ListFindingAggregations FINDING_TYPE (severity counts)", agg(findings.Aggregation{Op: "B", Type: findings.AggregateFindingType})},
		{"ListFindingAggregations TITLE by ALL, 10 (top vulnerabilities)", agg(findings.Aggregation{Op: "B", Type: findings.AggregateTitle,
			SortBy: findings.SortByAll, SortOrder: findings.Desc, MaxResults: &ten})},
		{"ListFindingAggregations REPOSITORY by CRITICAL, 10 (top repositories)", agg(findings.Aggregation{Op: "B", Type: findings.AggregateRepository,
			SortBy: findings.SortByCritical, SortOrder: findings.Desc, MaxResults: &ten})},
		{"ListCoverageStatistics images by SCAN_STATUS_CODE (scanned / not)", func() error {
			_, err := cov.Statistics(ctx, findings.StatisticsInput{Op: "B", GroupBy: findings.GroupScanStatusCode, Criteria: findings.CoverageCriteria{
				Strings: map[findings.Field][]findings.StringFilter{findings.CovResourceType: {{Comparison: findings.Equals, Value: findings.ResourceImage}}}}})
			return err
		}},
		{"finding trend: opened and closed per day, 14 days", func() error {
			_, err := svc.Trend(ctx, start, 14)
			return err
		}},
	}
	fmt.Fprintf(w, "\nthe overview's queries, one by one (5 runs after the first):\n%-70s %9s %9s\n", "query", "first", "median")
	for _, p := range parts {
		var times []time.Duration
		for range 6 {
			t := time.Now()
			if err := p.run(); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			times = append(times, time.Since(t))
		}
		rest := slices.Clone(times[1:])
		slices.Sort(rest)
		fmt.Fprintf(w, "%-70s %9s %9s\n", p.name, round(times[0]), round(rest[len(rest)/2]))
	}
	return nil
}
