package console

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/vulndb"
)

const (
	testKeyID  = "LAKTESTKEY0000000000"
	testSecret = "secret-0123456789"
	evilText   = `<script>alert("x")</script>`
	layerA     = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	layerB     = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	imageDgst  = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
)

type fakeAuth struct{ failures int }

func (f *fakeAuth) SignIn(_ *http.Request, id, secret string) (auth.Principal, error) {
	if f.failures >= 3 {
		return auth.Principal{}, &auth.ThrottledError{RetryAfter: 2 * time.Second}
	}
	if id != testKeyID || subtle.ConstantTimeCompare([]byte(secret), []byte(testSecret)) != 1 {
		f.failures++
		return auth.Principal{}, auth.ErrBadCredentials
	}
	return auth.Principal{AccessKeyID: id, Name: "tester", Preset: auth.PresetAdministrator}, nil
}

func (f *fakeAuth) Principal(_ context.Context, id string) (auth.Principal, error) {
	if id != testKeyID {
		return auth.Principal{}, auth.ErrBadCredentials
	}
	return auth.Principal{AccessKeyID: id, Name: "tester", Preset: auth.PresetAdministrator}, nil
}

func (f *fakeAuth) SessionKey(context.Context) ([]byte, error) {
	return []byte("0123456789abcdef0123456789abcdef"), nil
}

// fakeAuthz allows everything but the actions in deny.
type fakeAuthz struct{ deny map[string]bool }

func (a fakeAuthz) Authorize(_ context.Context, p auth.Principal, action, resource string) error {
	if a.deny[action] {
		return &auth.AccessDeniedError{User: "arn:aws:iam::000000000000:user/" + p.Name, Principal: p, Action: action, Resource: resource}
	}
	return nil
}
func (a fakeAuthz) Allowed(ctx context.Context, p auth.Principal, action, resource string) bool {
	return a.Authorize(ctx, p, action, resource) == nil
}
func (a fakeAuthz) AllowedRepositories(ctx context.Context, p auth.Principal, action string, repos []string) ([]string, error) {
	if a.deny[action] {
		return nil, nil
	}
	return repos, nil
}
func (a fakeAuthz) AuthorizeList(ctx context.Context, p auth.Principal, action string) error {
	return a.Authorize(ctx, p, action, "*")
}
func (a fakeAuthz) RepositoryARN(name string) string {
	return "arn:aws:ecr:us-east-1:000000000000:repository/" + name
}

type fakeStore struct {
	repos  []store.Repository
	images map[string][]store.Manifest
	pol    policy.Policy
}

func (s *fakeStore) ListRepositories(_ context.Context, after string, limit int) ([]store.Repository, error) {
	var out []store.Repository
	for _, r := range s.repos {
		if r.Name > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}
func (s *fakeStore) GetRepository(_ context.Context, name string) (store.Repository, error) {
	for _, r := range s.repos {
		if r.Name == name {
			return r, nil
		}
	}
	return store.Repository{}, store.ErrRepositoryNotFound
}
func (s *fakeStore) ListImages(_ context.Context, repo, _, after string, limit int) ([]store.Manifest, error) {
	var out []store.Manifest
	for _, m := range s.images[repo] {
		if m.Digest > after && len(out) < limit {
			out = append(out, m)
		}
	}
	return out, nil
}
func (s *fakeStore) GetImage(_ context.Context, repo, digest string) (store.Manifest, error) {
	for _, m := range s.images[repo] {
		if m.Digest == digest {
			return m, nil
		}
	}
	return store.Manifest{}, store.ErrManifestNotFound
}
func (s *fakeStore) Referrers(context.Context, string, string) ([]store.Descriptor, error) {
	return nil, nil
}
func (s *fakeStore) ScanningPolicy(context.Context) (policy.Policy, error) { return s.pol, nil }
func (s *fakeStore) PutScanningPolicy(_ context.Context, p policy.Policy) error {
	s.pol = p
	return nil
}

func (s *fakeStore) WebhookCursors(context.Context) (map[string]int64, int64, error) {
	return map[string]int64{"audit": 40}, 42, nil
}

type fakeKeys struct{ keys []store.AccessKey }

func (k *fakeKeys) ListAccessKeys(context.Context) ([]store.AccessKey, error) { return k.keys, nil }
func (k *fakeKeys) CreateAccessKey(_ context.Context, ak store.AccessKey) error {
	k.keys = append(k.keys, ak)
	return nil
}
func (k *fakeKeys) DeleteAccessKey(_ context.Context, id string) error {
	for i, ak := range k.keys {
		if ak.ID == id {
			k.keys = append(k.keys[:i], k.keys[i+1:]...)
			return nil
		}
	}
	return store.ErrNotFound
}

type fakeScans struct {
	findings []store.Finding
	// inventory is the scan's stored inventory (0: none).
	inventory int64
	startErr  error
	started   int
}

func (s *fakeScans) Results(_ context.Context, repo, dgst string) (store.ImageScan, []store.Finding, error) {
	return store.ImageScan{Repository: repo, Digest: dgst, Status: scanning.StatusActive, InventoryID: s.inventory}, s.findings, nil
}
func (s *fakeScans) Summaries(_ context.Context, _ string, digests []string) (map[string]scanning.Summary, error) {
	out := map[string]scanning.Summary{}
	for _, d := range digests {
		out[d] = scanning.Summary{Scan: store.ImageScan{Status: scanning.StatusActive}, Counts: map[string]int{"CRITICAL": 1}}
	}
	return out, nil
}

// RepositoryCounts answers as basic scanning does: not per repository.
func (s *fakeScans) RepositoryCounts(context.Context) (map[string]map[string]int, bool, error) {
	return nil, false, nil
}
func (s *fakeScans) StartImageScan(context.Context, string, string) (store.ImageScan, error) {
	s.started++
	return store.ImageScan{}, s.startErr
}
func (s *fakeScans) ImageLayers(context.Context, string, string) ([]scanning.Layer, error) {
	return []scanning.Layer{{Digest: layerA, Size: 100, CreatedBy: "ADD rootfs.tar /"}, {Digest: layerB, Size: 200, CreatedBy: "COPY lib/ /opt/app/lib/ " + evilText}}, nil
}
func (s *fakeScans) PolicyChanged(context.Context) error { return nil }

type fakeFindings struct {
	listed []findings.Listed
	vulns  []findings.Vulnerability
}

func (f *fakeFindings) List(_ context.Context, in findings.ListInput) (findings.ListOutput, error) {
	var out []findings.Listed
	for _, l := range f.listed {
		if v := in.Criteria.Strings[findings.VulnerabilityID]; len(v) > 0 && v[0].Value != l.Finding.VulnerabilityID {
			continue
		}
		out = append(out, l)
	}
	return findings.ListOutput{Findings: out}, nil
}

// Trend counts the findings first observed and closed each day, as the store does.
func (f *fakeFindings) Trend(_ context.Context, from time.Time, days int) ([]findings.DayCount, error) {
	start := from.UTC().Truncate(24 * time.Hour)
	out := make([]findings.DayCount, days)
	for i := range out {
		out[i].Day = start.AddDate(0, 0, i)
	}
	index := func(t time.Time) int {
		if t.Before(start) {
			return -1
		}
		if i := int(t.Sub(start) / (24 * time.Hour)); i < days {
			return i
		}
		return -1
	}
	for _, l := range f.listed {
		if i := index(l.Finding.FirstObservedAt); i >= 0 {
			out[i].Opened++
		}
		if i := index(l.Finding.UpdatedAt); i >= 0 && l.Finding.Status == "CLOSED" {
			out[i].Closed++
		}
	}
	return out, nil
}

// Aggregate groups the ACTIVE findings as the store does for the types the overview asks for.
func (f *fakeFindings) Aggregate(_ context.Context, in findings.Aggregation) (findings.AggregationOutput, error) {
	groups := map[string]*findings.AggregateRow{}
	var keys []string
	for _, l := range f.listed {
		if l.Finding.Status != "ACTIVE" {
			continue
		}
		key := ""
		switch in.Type {
		case findings.AggregateRepository:
			key = l.Finding.Repository
		case findings.AggregateTitle:
			key = l.Finding.VulnerabilityID
		}
		g := groups[key]
		if g == nil {
			g = &findings.AggregateRow{Repository: l.Finding.Repository, VulnerabilityID: l.Finding.VulnerabilityID}
			groups[key] = g
			keys = append(keys, key)
		}
		g.Counts.All++
		switch l.Finding.Severity {
		case "CRITICAL":
			g.Counts.Critical++
		case "HIGH":
			g.Counts.High++
		case "MEDIUM":
			g.Counts.Medium++
		}
	}
	out := findings.AggregationOutput{Type: in.Type}
	for _, k := range keys {
		out.Rows = append(out.Rows, *groups[k])
	}
	return out, nil
}

func (f *fakeFindings) SearchVulnerabilities(_ context.Context, ids []string) ([]findings.Vulnerability, error) {
	var out []findings.Vulnerability
	for _, v := range f.vulns {
		if v.ID == ids[0] {
			out = append(out, v)
		}
	}
	return out, nil
}

// fixture is a console over fakes holding one repository (named with HTML in it... not
// possible for a real repository, which is why the fakes can), one image and one finding.
type fixture struct {
	t     *testing.T
	h     *Handler
	srv   *httptest.Server
	now   time.Time
	store *fakeStore
	scans *fakeScans
	keys  *fakeKeys
	authz fakeAuthz
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	fx := &fixture{t: t, now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), authz: fakeAuthz{deny: map[string]bool{}}}
	repo := "team/app"
	fx.store = &fakeStore{repos: []store.Repository{{Name: repo, TagMutability: store.TagMutable}, {Name: "other"}},
		images: map[string][]store.Manifest{repo: {{Repository: repo, Digest: imageDgst, MediaType: "application/vnd.oci.image.manifest.v1+json",
			ConfigMediaType: "application/vnd.oci.image.config.v1+json", Tags: []string{evilText, "v1"}, PushedAt: fx.now.Add(-time.Hour), ImageSize: 12345}}},
		pol: policy.DefaultPolicy()}
	score := 10.0
	detail, err := json.Marshal(scanning.Detail{Finding: match.Finding{VulnerabilityID: "CVE-2021-44228", Description: "advisory " + evilText,
		Severity: "CRITICAL", Score: &score, Packages: []match.VulnerablePackage{{Name: "log4j-core", Version: "2.14.1", FixedInVersion: "2.15.0",
			FilePath: "/opt/app/lib/log4j-core-2.14.1.jar", Layer: layerB, Ecosystem: "Maven", PackageManager: "JAR"}}}})
	if err != nil {
		t.Fatal(err)
	}
	f := store.Finding{Repository: repo, Digest: imageDgst, ScanType: policy.ScanTypeEnhanced, VulnerabilityID: "CVE-2021-44228", Status: "ACTIVE",
		Severity: "CRITICAL", Score: 10, Detail: detail, FirstObservedAt: fx.now, LastObservedAt: fx.now}
	fx.scans = &fakeScans{findings: []store.Finding{f}}
	fx.keys = &fakeKeys{keys: []store.AccessKey{{ID: testKeyID, Name: "tester", Preset: auth.PresetAdministrator}, {ID: "LAKOTHER000000000000", Name: "ci"}}}
	fds := &fakeFindings{listed: []findings.Listed{{Finding: f, Manifest: fx.store.images[repo][0]}},
		vulns: []findings.Vulnerability{{ID: "CVE-2021-44228", Description: "Log4Shell " + evilText, Severity: "CRITICAL",
			CVSS:          []advisory.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", BaseScore: 10}},
			ReferenceURLs: []string{"https://example.com/log4shell"}, Affected: []findings.AffectedPackage{{Ecosystem: "Maven", Name: "log4j-core", FixedVersions: []string{"2.15.0"}}}}}}
	h, err := New(Config{Auth: &fakeAuth{}, Authz: fx.authz, Store: fx.store, Keys: fx.keys, Scans: fx.scans, Findings: fds,
		Advisories: func(context.Context) (*vulndb.Status, error) { return &vulndb.Status{Version: 7, Records: 3}, nil },
		Webhooks: func() []events.WebhookState {
			return []events.WebhookState{{Name: "audit", Endpoint: "https://hooks.example", Failing: 2, Failures: 5, LastError: "HTTP 503 " + evilText}}
		},
		Now: func() time.Time { return fx.now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	fx.h = h
	fx.srv = httptest.NewServer(h)
	t.Cleanup(fx.srv.Close)
	return fx
}

// client is a browser-like client: a cookie jar, no redirects followed.
func (fx *fixture) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get returns the status, Location and body of a GET.
func (fx *fixture) get(c *http.Client, path string) (int, string, string) {
	fx.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fx.srv.URL+path, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		fx.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		fx.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

func (fx *fixture) post(c *http.Client, path string, form url.Values) (int, string, string) {
	fx.t.Helper()
	resp, err := c.PostForm(fx.srv.URL+path, form)
	if err != nil {
		fx.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		fx.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// signIn signs c in and returns the session's CSRF token.
func (fx *fixture) signIn(c *http.Client, secret string) (int, string) {
	fx.t.Helper()
	_, _, body := fx.get(c, Prefix+"signin")
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		fx.t.Fatalf("no CSRF token on the sign-in page:\n%s", body)
	}
	status, _, _ := fx.post(c, Prefix+"signin", url.Values{"csrf": {m[1]}, "access_key_id": {testKeyID}, "secret_access_key": {secret}})
	if status != http.StatusSeeOther {
		return status, ""
	}
	_, _, page := fx.get(c, Prefix+"settings")
	m = csrfRE.FindStringSubmatch(page)
	if m == nil {
		fx.t.Fatalf("no CSRF token on the settings page:\n%s", page)
	}
	return status, strings.ReplaceAll(m[1], "&#43;", "+")
}
