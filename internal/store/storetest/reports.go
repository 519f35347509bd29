package storetest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/store"
)

func testReportJobs(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	first := store.ReportJob{ID: "r1", Kind: store.ReportSBOMExport, Format: "CYCLONEDX_1_4", Status: "IN_PROGRESS", Bucket: "b", KeyPrefix: "p",
		KMSKeyARN: "arn:kms", Criteria: `{"x":1}`, Owner: "host/1", CreatedAt: t0, UpdatedAt: t0}
	second := store.ReportJob{ID: "r2", Kind: store.ReportSBOMExport, Format: "SPDX_2_3", Status: "IN_PROGRESS", Bucket: "b",
		CreatedAt: t0.Add(time.Second), UpdatedAt: t0.Add(time.Second)}
	other := store.ReportJob{ID: "r3", Kind: store.ReportFindingsReport, Format: "CSV", Status: "IN_PROGRESS", Bucket: "b", CreatedAt: t0, UpdatedAt: t0}
	for _, j := range []store.ReportJob{first, second, other} {
		if err := db.CreateReportJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateReportJob(ctx, first); err == nil {
		t.Fatal("a second job with the same id was stored")
	}
	want := first
	want.Files = []string{}
	if got, err := db.ReportJob(ctx, store.ReportSBOMExport, "r1"); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ReportJob = %+v, %v; want %+v", got, err, want)
	}
	if _, err := db.ReportJob(ctx, store.ReportFindingsReport, "r1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a job of another kind: %v", err)
	}
	if got, err := db.LatestReportJob(ctx, store.ReportSBOMExport); err != nil || got.ID != "r2" {
		t.Fatalf("LatestReportJob = %+v, %v", got, err)
	}
	if _, err := db.LatestReportJob(ctx, "NONE"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("latest of no job: %v", err)
	}
	files := []string{"p/a.json", "p/b.json"}
	if ok, err := db.FinishReportJob(ctx, "r1", "SUCCEEDED", "", "", files, t0.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("FinishReportJob = %v, %v", ok, err)
	}
	// A job that ended (cancelled, say) stays as it ended.
	if ok, err := db.FinishReportJob(ctx, "r1", "FAILED", "INTERNAL_ERROR", "late", nil, t0.Add(2*time.Minute)); err != nil || ok {
		t.Fatalf("finishing an ended job = %v, %v", ok, err)
	}
	got, err := db.ReportJob(ctx, store.ReportSBOMExport, "r1")
	if err != nil || got.Status != "SUCCEEDED" || !slices.Equal(got.Files, files) || !got.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("finished job = %+v, %v", got, err)
	}
	running, err := db.RunningReportJobs(ctx)
	if err != nil || len(running) != 2 {
		t.Fatalf("RunningReportJobs = %+v, %v", running, err)
	}
	if j, err := db.ReportFile(ctx, "b", "p/b.json"); err != nil || j.ID != "r1" {
		t.Fatalf("ReportFile = %+v, %v", j, err)
	}
	for _, key := range []string{"p/c.json", "p/"} {
		if _, err := db.ReportFile(ctx, "b", key); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("ReportFile(%s): %v", key, err)
		}
	}
	if _, err := db.ReportFile(ctx, "other", "p/a.json"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a file of another bucket: %v", err)
	}
}

func testScannedImages(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	a, b, c := fakeDigest("a"), fakeDigest("b"), fakeDigest("c")
	for d, tags := range map[string][]string{a: {"v2", "v1"}, b: nil, c: nil} {
		if _, err := db.PutManifest(ctx, manifest("app", d), nil, tags, store.PutOptions{CreateRepository: true}); err != nil {
			t.Fatal(err)
		}
	}
	for d, st := range map[string]string{a: "ENHANCED", b: "ENHANCED", c: "BASIC"} {
		id, err := db.PutImageInventory(ctx, d, st, "fp", "", nil, 0, []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.PutImageScan(ctx, store.ImageScan{Repository: "app", Digest: d, ScanType: st, Status: "ACTIVE", InventoryID: id}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.ScannedImages(ctx, "ENHANCED")
	if err != nil || len(got) != 2 || got[0].Digest != a || !slices.Equal(got[0].Tags, []string{"v1", "v2"}) || got[0].InventoryID == 0 ||
		got[0].PushedAt.IsZero() || got[1].Digest != b || len(got[1].Tags) != 0 {
		t.Fatalf("ScannedImages = %+v, %v", got, err)
	}
}

// testCoverage: repositories and their images, a repository before its images, paged.
func testCoverage(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	db.SetClock(func() time.Time { return t0 })
	image := func(repo, d string, tags ...string) {
		t.Helper()
		m := manifest(repo, d)
		m.ConfigMediaType = "application/vnd.oci.image.config.v1+json"
		if _, err := db.PutManifest(ctx, m, nil, tags, store.PutOptions{CreateRepository: true}); err != nil {
			t.Fatal(err)
		}
	}
	a, b := fakeDigest("a"), fakeDigest("b")
	image("app", a, "v2", "v1")
	image("app", b)
	image("web", a)
	// An index and an artifact are not images.
	idx := manifest("app", fakeDigest("c"))
	idx.MediaType = "application/vnd.oci.image.index.v1+json"
	if _, err := db.PutManifest(ctx, idx, nil, nil, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateRepository(ctx, store.Repository{Name: "empty", ScanOnPush: true}); err != nil {
		t.Fatal(err)
	}
	invID, err := db.PutImageInventory(ctx, a, "ENHANCED", "fp", "", nil, 0, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutImageScan(ctx, store.ImageScan{Repository: "app", Digest: a, ScanType: "ENHANCED", Status: "ACTIVE", Description: "ok",
		CompletedAt: t0.Add(time.Minute), UpdatedAt: t0.Add(time.Hour), InventoryID: invID, NotEvaluatedPackages: 2}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutImageScan(ctx, store.ImageScan{Repository: "web", Digest: a, ScanType: "BASIC", Status: "COMPLETE", UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	rows, err := db.CoverageRows(ctx, nil, "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range rows {
		keys = append(keys, r.Repository+"@"+r.Digest)
	}
	if want := []string{"app@", "app@" + a, "app@" + b, "empty@", "web@", "web@" + a}; !slices.Equal(keys, want) {
		t.Fatalf("CoverageRows = %q, want %q", keys, want)
	}
	app, scanned, unscanned, empty := rows[0], rows[1], rows[2], rows[3]
	if !app.LastScannedAt.Equal(t0.Add(time.Minute)) || app.Scan != nil {
		t.Errorf("repository row %+v", app)
	}
	wantScan := findings.CoverageScan{Status: "ACTIVE", Description: "ok", NotEvaluatedPackages: 2, NoPackages: true}
	if scanned.Scan == nil || *scanned.Scan != wantScan || !slices.Equal(scanned.Tags, []string{"v1", "v2"}) ||
		!scanned.LastScannedAt.Equal(t0.Add(time.Hour)) || !scanned.PushedAt.Equal(t0) {
		t.Errorf("scanned image row %+v (scan %+v)", scanned, scanned.Scan)
	}
	if unscanned.Scan != nil || unscanned.Tags == nil || len(unscanned.Tags) != 0 || !unscanned.LastScannedAt.IsZero() {
		t.Errorf("unscanned image row %+v", unscanned)
	}
	if !empty.ScanOnPush {
		t.Errorf("repository row %+v", empty)
	}
	if rows[5].Scan != nil {
		t.Errorf("an image with only a BASIC scan: %+v", rows[5].Scan)
	}
	page, err := db.CoverageRows(ctx, []string{"web", "app"}, "app", a, 2)
	if err != nil {
		t.Fatal(err)
	}
	keys = keys[:0]
	for _, r := range page {
		keys = append(keys, r.Repository+"@"+r.Digest)
	}
	if want := []string{"app@" + b, "web@"}; !slices.Equal(keys, want) {
		t.Fatalf("page = %q, want %q", keys, want)
	}
	enhanced, err := db.EnhancedScans(ctx)
	if err != nil || len(enhanced) != 1 || enhanced[0].Digest != a || enhanced[0].Status != "ACTIVE" || !enhanced[0].PushedAt.Equal(t0) {
		t.Fatalf("EnhancedScans = %+v, %v", enhanced, err)
	}
}
