package scanning

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/advisory"
	blobfs "github.com/lading-registry/lading/internal/blob/fs"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/vulndb"
)

// clock is an injectable time source.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

type fixture struct {
	ctx   context.Context
	db    *sqlite.DB
	blobs *blobfs.Store
	svc   *Service
	clock *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	blobs, err := blobfs.New(filepath.Join(dir, "blobs"), blobfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := vulndb.NewWatcher(db, vulndb.WatcherOptions{Logger: slog.New(slog.DiscardHandler)})
	if _, err := w.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	c := &clock{now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	svc := New(db, blobs, w, Config{Origin: events.Origin{Account: "123456789012", Region: "eu-west-1"}, Workers: 1,
		ScratchDir: t.TempDir(), Now: c.Now, Logger: slog.New(slog.DiscardHandler)})
	db.SetEffects(svc.Effects, svc.Committed)
	return &fixture{ctx: ctx, db: db, blobs: blobs, svc: svc, clock: c}
}

func (f *fixture) putBlob(t testing.TB, data []byte) digest.Digest {
	t.Helper()
	id, err := f.blobs.NewUpload(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.blobs.Append(f.ctx, id, 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(data)
	if _, err := f.blobs.Commit(f.ctx, id, d); err != nil {
		t.Fatal(err)
	}
	return d
}

func gzipTar(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(content))
	}
	_ = tw.Close()
	_ = zw.Close()
	return buf.Bytes()
}

const debianRelease = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n"

const dpkgStatus = `Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.0.11-1~deb12u1
Description: Secure Sockets Layer toolkit

`

// pushImage stores a one-layer image in repo and returns its manifest digest.
func (f *fixture) pushImage(t *testing.T, repo string, files map[string]string) string {
	t.Helper()
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
		"history": []map[string]any{{"created_by": "ADD rootfs /"}}})
	d, _ := f.pushRaw(t, repo, gzipTar(t, files), cfg)
	return d
}

// pushRaw stores an image of one layer and a config as given, and returns the digests of its
// manifest and its layer.
func (f *fixture) pushRaw(t *testing.T, repo string, layerData, cfg []byte) (string, digest.Digest) {
	t.Helper()
	layer := f.putBlob(t, layerData)
	config := f.putBlob(t, cfg)
	// The store checks descriptor sizes against the linked blobs, so both are the real ones.
	layerSize, cfgSize := int64(len(layerData)), int64(len(cfg))
	for d, size := range map[digest.Digest]int64{layer: layerSize, config: cfgSize} {
		if err := f.db.LinkBlob(f.ctx, repo, d.String(), size, true); err != nil {
			t.Fatal(err)
		}
	}
	man, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": cfgSize},
		"layers": []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": layerSize}}})
	d := digest.FromBytes(man)
	m := store.Manifest{Repository: repo, Digest: d.String(), MediaType: "application/vnd.oci.image.manifest.v1+json",
		ConfigMediaType: "application/vnd.oci.image.config.v1+json", ConfigDigest: config.String(), Size: int64(len(man)), Content: man}
	if _, err := f.db.PutManifest(f.ctx, m, []store.Reference{{Kind: store.RefConfig, Digest: config.String(), Size: cfgSize, Required: true},
		{Kind: store.RefLayer, Digest: layer.String(), Size: layerSize, Required: true}}, []string{"v1"}, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	return d.String(), layer
}

// runJobs runs every queued scan job.
func (f *fixture) runJobs(t *testing.T) int {
	t.Helper()
	n := 0
	for {
		job, ok, err := f.db.ClaimScanJob(f.ctx, f.svc.owner, f.clock.Now(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return n
		}
		if err := f.svc.scan(f.ctx, job); err != nil {
			t.Fatal(err)
		}
		n++
	}
}

func TestBasicQuotaCountsFromTheLastScan(t *testing.T) {
	f := newFixture(t)
	dgst := f.pushImage(t, "app", map[string]string{"etc/os-release": debianRelease, "var/lib/dpkg/status": dpkgStatus})
	if _, err := f.svc.StartImageScan(f.ctx, "app", dgst); err != nil {
		t.Fatal(err)
	}
	if n := f.runJobs(t); n != 1 {
		t.Fatalf("%d jobs run", n)
	}
	scan, err := f.db.ImageScan(f.ctx, "app", dgst, policy.ScanTypeBasic)
	if err != nil || scan.Status != StatusComplete {
		t.Fatalf("%+v %v", scan, err)
	}
	for _, tc := range []struct {
		after time.Duration
		want  error
	}{
		{time.Minute, ErrQuotaExceeded},
		{23*time.Hour + 59*time.Minute, ErrQuotaExceeded},
		{24 * time.Hour, nil},
	} {
		f.clock.now = scan.LastScanStartedAt.Add(tc.after)
		_, err := f.svc.StartImageScan(f.ctx, "app", dgst)
		if !errors.Is(err, tc.want) && (tc.want != nil || err != nil) {
			t.Fatalf("after %s: %v, want %v", tc.after, err, tc.want)
		}
	}
}

func TestBasicScanOnPushCountsTowardTheQuota(t *testing.T) {
	f := newFixture(t)
	if err := f.db.PutScanningPolicy(f.ctx, policy.Policy{ScanType: policy.ScanTypeBasic, Rules: []policy.Rule{
		{Frequency: policy.FrequencyScanOnPush, Filters: []policy.Filter{{Value: "app", Type: policy.FilterTypeWildcard}}}}}); err != nil {
		t.Fatal(err)
	}
	dgst := f.pushImage(t, "app", map[string]string{"etc/os-release": debianRelease, "var/lib/dpkg/status": dpkgStatus})
	pending, err := f.db.ImageScan(f.ctx, "app", dgst, policy.ScanTypeBasic)
	if err != nil || pending.Status != StatusInProgress {
		t.Fatalf("queued push scan: %+v %v", pending, err)
	}
	f.runJobs(t)
	f.clock.now = f.clock.now.Add(time.Hour)
	if _, err := f.svc.StartImageScan(f.ctx, "app", dgst); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("manual scan after a push scan: %v", err)
	}
	// A repository no filter matches is not scanned on push.
	other := f.pushImage(t, "other", map[string]string{"etc/os-release": debianRelease})
	if _, err := f.db.ImageScan(f.ctx, "other", other, policy.ScanTypeBasic); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unmatched repository scanned: %v", err)
	}
}

func TestUnsupportedImageRefusedManually(t *testing.T) {
	f := newFixture(t)
	dgst := f.pushImage(t, "scratch", map[string]string{"hello.txt": "hi"})
	if _, err := f.svc.StartImageScan(f.ctx, "scratch", dgst); !errors.Is(err, ErrUnsupportedImage) {
		t.Fatalf("got %v", err)
	}
	if err := f.db.PutScanningPolicy(f.ctx, policy.Policy{ScanType: policy.ScanTypeEnhanced}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.StartImageScan(f.ctx, "scratch", dgst); !errors.Is(err, ErrEnhancedManualScan) {
		t.Fatalf("under enhanced scanning: %v", err)
	}
}

func TestDiffFindings(t *testing.T) {
	origin := events.Origin{Account: "123456789012", Region: "eu-west-1"}
	target := store.ScanTarget{Repository: "app", Digest: "sha256:1", ScanType: policy.ScanTypeEnhanced}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := match.Finding{VulnerabilityID: "CVE-1", Severity: "HIGH", Packages: []match.VulnerablePackage{{Name: "a", Version: "1"}}}
	b := match.Finding{VulnerabilityID: "CVE-2", Severity: "LOW", Packages: []match.VulnerablePackage{{Name: "b", Version: "1"}}}

	writes, changed, err := diffFindings(target, nil, []match.Finding{a, b}, ImageInfo{}, origin, t0)
	if err != nil || len(writes) != 2 || len(changed) != 2 {
		t.Fatalf("first scan: %d writes %d changes %v", len(writes), len(changed), err)
	}
	// Unchanged: only lastObservedAt moves, no event.
	t1 := t0.Add(time.Hour)
	writes2, changed2, _ := diffFindings(target, writes, []match.Finding{a, b}, ImageInfo{}, origin, t1)
	if len(changed2) != 0 || len(writes2) != 2 || !writes2[0].LastObservedAt.Equal(t1) || !writes2[0].UpdatedAt.Equal(t0) || !writes2[0].FirstObservedAt.Equal(t0) {
		t.Fatalf("unchanged: %+v %d changes", writes2[0], len(changed2))
	}
	// Changed (a fix appeared) and gone (b no longer matches).
	a2 := a
	a2.Packages = []match.VulnerablePackage{{Name: "a", Version: "1", FixedInVersion: "2"}}
	t2 := t1.Add(time.Hour)
	writes3, changed3, _ := diffFindings(target, writes2, []match.Finding{a2}, ImageInfo{}, origin, t2)
	if len(changed3) != 2 {
		t.Fatalf("%d changes", len(changed3))
	}
	status := map[string]store.Finding{}
	for _, w := range writes3 {
		status[w.VulnerabilityID] = w
	}
	if s := status["CVE-1"]; s.Status != FindingActive || !s.UpdatedAt.Equal(t2) || !s.FirstObservedAt.Equal(t0) {
		t.Fatalf("changed finding %+v", s)
	}
	if s := status["CVE-2"]; s.Status != FindingClosed || !s.UpdatedAt.Equal(t2) {
		t.Fatalf("closed finding %+v", s)
	}
	// A closed finding stays closed, without a new event; it reopens when it matches again.
	_, changed4, _ := diffFindings(target, writes3, []match.Finding{a2}, ImageInfo{}, origin, t2.Add(time.Hour))
	if len(changed4) != 0 {
		t.Fatalf("closed finding changed again: %+v", changed4)
	}
	writes5, changed5, _ := diffFindings(target, writes3, []match.Finding{a2, b}, ImageInfo{}, origin, t2.Add(2*time.Hour))
	if len(changed5) != 1 || changed5[0].VulnerabilityID != "CVE-2" || changed5[0].Status != FindingActive {
		t.Fatalf("reopened: %+v", changed5)
	}
	if writes5[0].ARN != FindingARN(origin, "app", "sha256:1", policy.ScanTypeEnhanced, writes5[0].VulnerabilityID) {
		t.Fatal("ARN not stable")
	}
}

func TestScanTimeoutMarksFailed(t *testing.T) {
	f := newFixture(t)
	f.svc.cfg.ScanTimeout = time.Nanosecond
	if err := f.db.PutScanningPolicy(f.ctx, policy.Policy{ScanType: policy.ScanTypeEnhanced}); err != nil {
		t.Fatal(err)
	}
	dgst := f.pushImage(t, "app", map[string]string{"etc/os-release": debianRelease})
	job, ok, err := f.db.ClaimScanJob(f.ctx, f.svc.owner, f.clock.Now(), time.Minute)
	if err != nil || !ok {
		t.Fatalf("no job queued by the push: %v", err)
	}
	f.svc.runJob(f.ctx, job)
	scan, err := f.db.ImageScan(f.ctx, "app", dgst, policy.ScanTypeEnhanced)
	if err != nil || scan.Status != StatusFailed || scan.Description != "the scan did not finish within 1ns" {
		t.Fatalf("%+v %v", scan, err)
	}
	if n, _ := f.db.PendingScanJobs(f.ctx); n != 0 {
		t.Fatalf("%d jobs left", n)
	}
}

func TestImageDeletedBeforeItsScan(t *testing.T) {
	f := newFixture(t)
	if err := f.db.PutScanningPolicy(f.ctx, policy.Policy{ScanType: policy.ScanTypeEnhanced}); err != nil {
		t.Fatal(err)
	}
	dgst := f.pushImage(t, "app", map[string]string{"etc/os-release": debianRelease})
	job, ok, err := f.db.ClaimScanJob(f.ctx, f.svc.owner, f.clock.Now(), time.Minute)
	if err != nil || !ok {
		t.Fatalf("no job: %v", err)
	}
	if _, err := f.db.DeleteManifest(f.ctx, "app", dgst, true); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.scan(f.ctx, job); err != nil {
		t.Fatalf("scan of a deleted image: %v", err)
	}
	if _, err := f.db.ImageScan(f.ctx, "app", dgst, policy.ScanTypeEnhanced); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("scan state written for a deleted image: %v", err)
	}
	// The delete wrote its event with the change.
	evs, err := f.db.ReadOutbox(f.ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range evs {
		if e.DetailType == events.DetailTypeImageAction {
			var d map[string]any
			_ = json.Unmarshal(e.Detail, &d)
			actions = append(actions, d["action-type"].(string))
		}
	}
	if len(actions) != 2 || actions[0] != "PUSH" || actions[1] != "DELETE" {
		t.Fatalf("image actions %v", actions)
	}
}

func TestSwitchingToContinuousBringsImagesIntoCoverage(t *testing.T) {
	f := newFixture(t)
	old := f.pushImage(t, "prod-app", map[string]string{"etc/os-release": debianRelease})
	if n := f.runJobs(t); n != 0 {
		t.Fatalf("basic scanning without rules scanned %d images on push", n)
	}
	if err := f.db.PutScanningPolicy(f.ctx, policy.Policy{ScanType: policy.ScanTypeEnhanced, Rules: []policy.Rule{
		{Frequency: policy.FrequencyContinuous, Filters: []policy.Filter{{Value: "prod", Type: policy.FilterTypeWildcard}}}}}); err != nil {
		t.Fatal(err)
	}
	other := f.pushImage(t, "test-app", map[string]string{"etc/os-release": debianRelease, "x": "y"})
	f.runJobs(t) // nothing for test-app: no filter matches it
	if err := f.svc.PolicyChanged(f.ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.runJobs(t); n != 1 {
		t.Fatalf("%d images brought into coverage, want 1", n)
	}
	scan, err := f.db.ImageScan(f.ctx, "prod-app", old, policy.ScanTypeEnhanced)
	if err != nil || scan.Status != StatusActive {
		t.Fatalf("prod-app: %+v %v", scan, err)
	}
	if _, err := f.db.ImageScan(f.ctx, "test-app", other, policy.ScanTypeEnhanced); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("test-app scanned: %v", err)
	}
}

func TestUnratedFindingMakesAValidEvent(t *testing.T) {
	origin := events.Origin{Account: "123456789012", Region: "eu-west-1"}
	target := store.ScanTarget{Repository: "app", Digest: "sha256:1", ScanType: policy.ScanTypeEnhanced}
	f := match.Finding{VulnerabilityID: "DSA-1", Severity: "UNDEFINED", Packages: []match.VulnerablePackage{{Name: "a", Version: "1"}}}
	writes, _, err := diffFindings(target, nil, []match.Finding{f}, ImageInfo{}, origin, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ev, err := findingEvent(origin, writes[0], store.Manifest{Repository: "app", Digest: "sha256:1"})
	if err != nil {
		t.Fatalf("event of an unrated finding: %v", err)
	}
	if !strings.Contains(string(ev.Detail), `"severity":"UNTRIAGED"`) {
		t.Fatalf("detail %s", ev.Detail)
	}
}

// indexChangingOnce hands out the current index once and then, before the scan that took it
// can write, imports an advisory: the race of an advisory change published mid-scan.
type indexChangingOnce struct {
	*vulndb.Watcher
	once   sync.Once
	change func()
}

func (a *indexChangingOnce) Current(ctx context.Context) (*advisory.Index, error) {
	idx, err := a.Watcher.Current(ctx)
	a.once.Do(a.change)
	return idx, err
}

// TestAdvisoryChangeDuringScanIsNotLost: an advisory that arrives while an image is matched,
// before its scan is stored (so continuous scanning cannot find the image yet), still reaches
// the image's findings.
func TestAdvisoryChangeDuringScanIsNotLost(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	quiet := slog.New(slog.DiscardHandler)
	w := vulndb.NewWatcher(f.db, vulndb.WatcherOptions{Logger: quiet})
	if _, err := w.Refresh(f.ctx); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(dir, "DSA-TEST-1.json")
	if err := os.WriteFile(rec, []byte(`{"id":"DSA-TEST-1","modified":"2026-05-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},`+
		`"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.13-1~deb12u1"}]}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	adv := &indexChangingOnce{Watcher: w, change: func() {
		if _, err := vulndb.New(f.db, vulndb.Options{Logger: quiet}).Import(f.ctx, rec); err != nil {
			t.Error(err)
		}
		if _, err := w.Refresh(f.ctx); err != nil {
			t.Error(err)
		}
	}}
	f.svc = New(f.db, f.blobs, adv, Config{Origin: events.Origin{Account: "123456789012", Region: "eu-west-1"}, Workers: 1,
		ScratchDir: t.TempDir(), Now: f.clock.Now, Logger: quiet})
	f.db.SetEffects(f.svc.Effects, f.svc.Committed)
	if err := f.db.PutScanningPolicy(f.ctx, policy.Policy{ScanType: policy.ScanTypeEnhanced, Rules: []policy.Rule{
		{Frequency: policy.FrequencyContinuous, Filters: []policy.Filter{{Value: "*", Type: policy.FilterTypeWildcard}}}}}); err != nil {
		t.Fatal(err)
	}

	d := f.pushImage(t, "app", map[string]string{"etc/os-release": debianRelease, "var/lib/dpkg/status": dpkgStatus})
	if n := f.runJobs(t); n != 1 {
		t.Fatalf("%d scans, want 1", n)
	}
	fs, err := f.db.Findings(f.ctx, "app", d, policy.ScanTypeEnhanced)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range fs {
		ids = append(ids, x.VulnerabilityID)
	}
	if !slices.Contains(ids, "DSA-TEST-1") {
		t.Fatalf("findings %v: the advisory imported during the scan is missing", ids)
	}
}

// TestScanSeesAnImportNotYetPolled: an import by another process (`lading db import` beside
// the server) that the watcher's poll has not seen yet is used by a scan that starts after it.
func TestScanSeesAnImportNotYetPolled(t *testing.T) {
	f := newFixture(t)
	rec := filepath.Join(t.TempDir(), "DSA-TEST-2.json")
	if err := os.WriteFile(rec, []byte(`{"id":"DSA-TEST-2","modified":"2026-05-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},`+
		`"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.13-1~deb12u1"}]}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := vulndb.New(f.db, vulndb.Options{Logger: slog.New(slog.DiscardHandler)}).Import(f.ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := f.db.PutScanningPolicy(f.ctx, policy.Policy{ScanType: policy.ScanTypeBasic, Rules: []policy.Rule{
		{Frequency: policy.FrequencyScanOnPush, Filters: []policy.Filter{{Value: "*", Type: policy.FilterTypeWildcard}}}}}); err != nil {
		t.Fatal(err)
	}
	d := f.pushImage(t, "app", map[string]string{"etc/os-release": debianRelease, "var/lib/dpkg/status": dpkgStatus})
	if n := f.runJobs(t); n != 1 {
		t.Fatalf("%d scans, want 1", n)
	}
	fs, err := f.db.Findings(f.ctx, "app", d, policy.ScanTypeBasic)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].VulnerabilityID != "DSA-TEST-2" {
		t.Fatalf("findings %+v, want DSA-TEST-2 from the import the watcher had not polled", fs)
	}
}
