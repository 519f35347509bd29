package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/store"
)

// testEffectsCommitWithTheChange: the events and scan jobs a change causes are written in its
// transaction, reported once it commits, and vanish with it when it fails.
func testEffectsCommitWithTheChange(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	var mu sync.Mutex
	var reported []store.Effects
	var failPush error
	db.SetEffects(func(_ context.Context, c store.Change) (store.Effects, error) {
		mu.Lock()
		fail := failPush
		mu.Unlock()
		if fail != nil && c.Kind == store.ChangePush {
			return store.Effects{}, fail
		}
		detail, _ := json.Marshal(map[string]any{"kind": c.Kind, "digest": c.Manifest.Digest, "tags": c.Tags, "deleted": c.ManifestDeleted,
			"created": c.Created, "scanOnPush": c.RepositoryScanOnPush})
		eff := store.Effects{Events: []store.OutboxEvent{{DetailType: "ECR Image Action", Source: "aws.ecr", Detail: detail}}}
		if c.Kind == store.ChangePush && c.Created {
			eff.Scans = []store.ScanJob{{Repository: c.Repository, Digest: c.Manifest.Digest, ScanType: "BASIC", Trigger: store.TriggerPush,
				Pending: &store.ImageScan{Status: "PENDING", Description: "queued"}}}
		}
		return eff, nil
	}, func(e store.Effects) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, e)
	})
	details := func() []string {
		t.Helper()
		evs, err := db.ReadOutbox(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs {
			out = append(out, string(e.Detail))
		}
		return out
	}
	if _, err := db.CreateRepository(ctx, store.Repository{Name: "app", ScanOnPush: true}); err != nil {
		t.Fatal(err)
	}
	a, b := fakeDigest("a"), fakeDigest("b")
	for _, d := range []string{a, b} {
		if _, err := db.PutManifest(ctx, manifest("app", d), nil, []string{"t-" + d[len(d)-1:]}, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		`{"created":true,"deleted":false,"digest":"` + a + `","kind":"PUSH","scanOnPush":true,"tags":["t-a"]}`,
		`{"created":true,"deleted":false,"digest":"` + b + `","kind":"PUSH","scanOnPush":true,"tags":["t-b"]}`,
	}
	if got := details(); !slices.Equal(got, want) {
		t.Fatalf("events after the pushes:\n%s\nwant\n%s", got, want)
	}
	if n, err := db.PendingScanJobs(ctx); err != nil || n != 2 {
		t.Fatalf("PendingScanJobs = %d, %v; want 2", n, err)
	}
	if s, err := db.ImageScan(ctx, "app", a, "BASIC"); err != nil || s.Status != "PENDING" || s.Description != "queued" {
		t.Fatalf("pending scan state = %+v, %v", s, err)
	}
	mu.Lock()
	if len(reported) != 2 || len(reported[0].Scans) != 1 || len(reported[0].Events) != 1 {
		t.Fatalf("reported after commit: %+v", reported)
	}
	failPush = errors.New("effects failed")
	mu.Unlock()

	// A change whose effects fail is not made, and writes nothing.
	c := fakeDigest("c")
	if _, err := db.PutManifest(ctx, manifest("app", c), nil, []string{"t-c"}, store.PutOptions{}); err == nil {
		t.Fatal("a push whose effects failed succeeded")
	}
	if _, err := db.GetManifest(ctx, "app", c); !errors.Is(err, store.ErrManifestNotFound) {
		t.Fatalf("the failed push left its manifest: %v", err)
	}
	if got := details(); len(got) != 2 {
		t.Fatalf("the failed push left events: %s", got)
	}

	// Deletes report themselves, and the manifest's scan job and state go with it.
	if _, err := db.DeleteTag(ctx, "app", "t-b"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteManifest(ctx, "app", a, false); err != nil {
		t.Fatal(err)
	}
	got := details()
	want = append(want,
		`{"created":false,"deleted":false,"digest":"`+b+`","kind":"DELETE","scanOnPush":true,"tags":["t-b"]}`,
		`{"created":false,"deleted":true,"digest":"`+a+`","kind":"DELETE","scanOnPush":true,"tags":["t-a"]}`)
	if !slices.Equal(got, want) {
		t.Fatalf("events after the deletes:\n%s\nwant\n%s", got, want)
	}
	if _, err := db.ImageScan(ctx, "app", a, "BASIC"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("scan state of a deleted manifest: %v", err)
	}
	if n, err := db.PendingScanJobs(ctx); err != nil || n != 1 {
		t.Fatalf("PendingScanJobs after the delete = %d, %v; want 1", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 4 {
		t.Fatalf("%d changes reported, want 4 (the failed push is not)", len(reported))
	}
}

// testScanJobLeases: one job per image and scan type; claims take the oldest, and a job whose
// lease ran out is claimed again.
func testScanJobLeases(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	now := time.UnixMilli(1_700_000_000_000).UTC()
	job := func(d string) store.ScanJob {
		return store.ScanJob{Repository: "app", Digest: fakeDigest(d), ScanType: "BASIC", Trigger: store.TriggerManual}
	}
	if err := db.EnqueueScans(ctx, job("1"), job("2"), job("1")); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PendingScanJobs(ctx); err != nil || n != 2 {
		t.Fatalf("PendingScanJobs = %d, %v; want 2 (one per image)", n, err)
	}
	claim := func(owner string, at time.Time) (store.ScanJob, bool) {
		t.Helper()
		j, ok, err := db.ClaimScanJob(ctx, owner, at, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return j, ok
	}
	first, ok := claim("w1", now)
	if !ok || first.Digest != fakeDigest("1") || first.Attempts != 1 || first.Trigger != store.TriggerManual || first.CreatedAt.IsZero() {
		t.Fatalf("first claim = %+v, %v", first, ok)
	}
	second, ok := claim("w2", now)
	if !ok || second.Digest != fakeDigest("2") {
		t.Fatalf("second claim = %+v, %v", second, ok)
	}
	if j, ok := claim("w3", now.Add(30*time.Second)); ok {
		t.Fatalf("claimed a leased job: %+v", j)
	}
	// w1 keeps its lease alive; a heartbeat from someone else changes nothing.
	if err := db.ExtendScanLease(ctx, first.ID, "w1", now.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := db.ExtendScanLease(ctx, second.ID, "w1", now.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	running, err := db.RunningScanJobs(ctx)
	if err != nil || len(running) != 2 {
		t.Fatalf("RunningScanJobs = %+v, %v", running, err)
	}
	owners := map[int64]string{}
	for _, j := range running {
		owners[j.ID] = j.LeaseOwner
	}
	if owners[first.ID] != "w1" || owners[second.ID] != "w2" {
		t.Fatalf("lease owners %v", owners)
	}
	// w2 died: its job is claimed again after its lease, w1's is not.
	again, ok := claim("w3", now.Add(2*time.Minute))
	if !ok || again.ID != second.ID || again.Attempts != 2 {
		t.Fatalf("claim after the lease ran out = %+v, %v", again, ok)
	}
	if j, ok := claim("w4", now.Add(2*time.Minute)); ok {
		t.Fatalf("claimed a job whose lease was extended: %+v", j)
	}
	if err := db.ReleaseScanJob(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	if j, ok := claim("w4", now.Add(2*time.Minute)); !ok || j.ID != first.ID || j.Attempts != 2 {
		t.Fatalf("claim of a released job = %+v, %v", j, ok)
	}
}

func testImageScanStates(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	at := time.UnixMilli(1_700_000_000_000).UTC()
	s := store.ImageScan{Repository: "app", Digest: fakeDigest("1"), ScanType: "ENHANCED", Status: "ACTIVE", Description: "ok",
		Frequency: "CONTINUOUS_SCAN", LastScanStartedAt: at, CompletedAt: at.Add(time.Second), SourceUpdatedAt: at.Add(-time.Hour),
		UpdatedAt: at.Add(time.Second), ImageFacts: []byte(`{"os":"debian"}`), NotEvaluated: []byte(`[{"p":1}]`), NotEvaluatedPackages: 1}
	if err := db.PutImageScan(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := db.ImageScan(ctx, "app", s.Digest, "ENHANCED")
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("ImageScan = %+v, %v; want %+v", got, err, s)
	}
	// Facts written empty are kept; what was not evaluated is replaced.
	s2 := s
	s2.Status, s2.ImageFacts, s2.NotEvaluated, s2.NotEvaluatedPackages = "SCAN_ELIGIBILITY_EXPIRED", nil, nil, 0
	if err := db.PutImageScan(ctx, s2); err != nil {
		t.Fatal(err)
	}
	got, err = db.ImageScan(ctx, "app", s.Digest, "ENHANCED")
	if err != nil || got.Status != s2.Status || string(got.ImageFacts) != `{"os":"debian"}` || got.NotEvaluated != nil || got.NotEvaluatedPackages != 0 {
		t.Fatalf("after a second write = %+v, %v", got, err)
	}
	if _, err := db.ImageScan(ctx, "app", s.Digest, "BASIC"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another scan type: %v", err)
	}
	var digests []string
	for i := range 3 {
		d := fakeDigest(fmt.Sprint(i + 2))
		digests = append(digests, d)
		if err := db.PutImageScan(ctx, store.ImageScan{Repository: "app", Digest: d, ScanType: "BASIC", Status: "COMPLETE", UpdatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := db.ImageScans(ctx, "app", append(digests[:2], s.Digest, fakeDigest("9")))
	if err != nil || len(all) != 3 || len(all[digests[0]]) != 1 || all[s.Digest][0].ScanType != "ENHANCED" {
		t.Fatalf("ImageScans = %+v, %v", all, err)
	}
}
