package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/store"
)

// testRepositorySettings: settings, resource tags and listings of repositories.
func testRepositorySettings(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	created, err := db.CreateRepository(ctx, store.Repository{Name: "team/app", ScanOnPush: true, Tags: map[string]string{"env": "prod", "team": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if created.TagMutability != store.TagMutable || created.EncryptionType != "AES256" || created.CreatedAt.IsZero() {
		t.Fatalf("defaults not filled in: %+v", created)
	}
	if _, err := db.CreateRepository(ctx, store.Repository{Name: "team/app"}); !errors.Is(err, store.ErrRepositoryExists) {
		t.Fatalf("second create: %v", err)
	}
	got, err := db.GetRepository(ctx, "team/app")
	if err != nil || !got.ScanOnPush || !got.CreatedAt.Equal(created.CreatedAt) || !maps.Equal(got.Tags, created.Tags) {
		t.Fatalf("GetRepository = %+v, %v; created %+v", got, err, created)
	}
	if _, err := db.GetRepository(ctx, "nope"); !errors.Is(err, store.ErrRepositoryNotFound) {
		t.Fatalf("missing repository: %v", err)
	}
	updated, err := db.UpdateRepository(ctx, "team/app", func(r *store.Repository) error {
		r.TagMutability, r.ScanOnPush = store.TagImmutable, false
		return nil
	})
	if err != nil || updated.TagMutability != store.TagImmutable || updated.ScanOnPush {
		t.Fatalf("UpdateRepository = %+v, %v", updated, err)
	}
	refused := errors.New("refused")
	if _, err := db.UpdateRepository(ctx, "team/app", func(r *store.Repository) error { r.KMSKey = "k"; return refused }); !errors.Is(err, refused) {
		t.Fatalf("an update whose function fails: %v", err)
	}
	if got, _ := db.GetRepository(ctx, "team/app"); got.KMSKey != "" || got.TagMutability != store.TagImmutable {
		t.Fatalf("a refused update was stored: %+v", got)
	}
	if _, err := db.UpdateRepository(ctx, "nope", func(*store.Repository) error { return nil }); !errors.Is(err, store.ErrRepositoryNotFound) {
		t.Fatalf("update of a missing repository: %v", err)
	}
	if err := db.TagRepository(ctx, "team/app", map[string]string{"env": "dev", "cost": "1"}); err != nil {
		t.Fatal(err)
	}
	if err := db.UntagRepository(ctx, "team/app", []string{"team", "absent"}); err != nil {
		t.Fatal(err)
	}
	if tags, err := db.ResourceTags(ctx, "team/app"); err != nil || !maps.Equal(tags, map[string]string{"env": "dev", "cost": "1"}) {
		t.Fatalf("ResourceTags = %v, %v", tags, err)
	}
	for _, err := range []error{
		db.TagRepository(ctx, "nope", map[string]string{"a": "b"}),
		db.UntagRepository(ctx, "nope", []string{"a"}),
	} {
		if !errors.Is(err, store.ErrRepositoryNotFound) {
			t.Fatalf("tags of a missing repository: %v", err)
		}
	}
	if _, err := db.ResourceTags(ctx, "nope"); !errors.Is(err, store.ErrRepositoryNotFound) {
		t.Fatalf("ResourceTags of a missing repository: %v", err)
	}
	// Listings are in bytewise order (upper case before lower, '-' before '/'), whatever the
	// engine's locale, and page after a name.
	for _, name := range []string{"Zed", "team-x", "team/b", "alpha"} {
		if _, err := db.CreateRepository(ctx, store.Repository{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for after := ""; ; {
		page, err := db.ListRepositories(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			names = append(names, r.Name)
		}
		after = page[len(page)-1].Name
	}
	if want := []string{"Zed", "alpha", "team-x", "team/app", "team/b"}; !slices.Equal(names, want) {
		t.Fatalf("ListRepositories = %v, want %v", names, want)
	}
}

func testAccessKeys(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	for i, id := range []string{"LAKB", "LAKA"} {
		if err := db.CreateAccessKey(ctx, store.AccessKey{ID: id, Secret: "s-" + id, Description: "d", Name: "user-" + id,
			Preset: "AdministratorAccess", CreatedAt: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateAccessKey(ctx, store.AccessKey{ID: "LAKA", Secret: "x", Name: "other"}); !errors.Is(err, store.ErrAccessKeyFound) {
		t.Fatalf("same id: %v", err)
	}
	if err := db.CreateAccessKey(ctx, store.AccessKey{ID: "LAKC", Secret: "x", Name: "user-LAKA"}); !errors.Is(err, store.ErrAccessKeyNameTaken) {
		t.Fatalf("same name: %v", err)
	}
	k, err := db.AccessKey(ctx, "LAKA")
	want := store.AccessKey{ID: "LAKA", Secret: "s-LAKA", Description: "d", Name: "user-LAKA", Preset: "AdministratorAccess", CreatedAt: t0.Add(time.Second)}
	if err != nil || !reflect.DeepEqual(k, want) {
		t.Fatalf("AccessKey = %+v, %v; want %+v", k, err, want)
	}
	keys, err := db.ListAccessKeys(ctx)
	if err != nil || len(keys) != 2 || keys[0].ID != "LAKB" || keys[1].ID != "LAKA" {
		t.Fatalf("ListAccessKeys (oldest first) = %+v, %v", keys, err)
	}
	if err := db.DeleteAccessKey(ctx, "LAKB"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteAccessKey(ctx, "LAKB"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted twice: %v", err)
	}
	if _, err := db.AccessKey(ctx, "LAKB"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted key: %v", err)
	}
}

// testSettings: SettingOrInit stores one value however many callers race to initialise it.
func testSettings(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	if _, err := db.Setting(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unset: %v", err)
	}
	if err := db.PutSetting(ctx, "k", "1"); err != nil {
		t.Fatal(err)
	}
	if err := db.PutSetting(ctx, "k", "2"); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Setting(ctx, "k"); err != nil || v != "2" {
		t.Fatalf("Setting = %q, %v", v, err)
	}
	if v, err := db.SettingOrInit(ctx, "k", func() (string, error) { return "", errors.New("called") }); err != nil || v != "2" {
		t.Fatalf("SettingOrInit of a set key = %q, %v", v, err)
	}
	failed := errors.New("no randomness")
	if _, err := db.SettingOrInit(ctx, "fresh", func() (string, error) { return "", failed }); !errors.Is(err, failed) {
		t.Fatalf("init failing: %v", err)
	}
	var wg sync.WaitGroup
	got := make([]string, 8)
	errs := make([]error, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = db.SettingOrInit(ctx, "fresh", func() (string, error) { return fmt.Sprint("value-", i), nil })
		}()
	}
	wg.Wait()
	stored, err := db.Setting(ctx, "fresh")
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if errs[i] != nil || got[i] != stored {
			t.Fatalf("caller %d got %q, %v; stored %q", i, got[i], errs[i], stored)
		}
	}
}

// testGarbageCollection: links older than the grace and referenced by no manifest of their
// repository go; content stays while any link or reference names it.
func testGarbageCollection(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	clk := newClock(time.UnixMilli(1_700_000_000_000))
	db.SetClock(clk.Now)
	cfg, layer, loose, fresh := fakeDigest("c"), fakeDigest("1"), fakeDigest("2"), fakeDigest("3")
	for _, d := range []string{cfg, layer, loose} {
		if err := db.LinkBlob(ctx, "app", d, 5, true); err != nil {
			t.Fatal(err)
		}
	}
	m := manifest("app", fakeDigest("m"))
	refs := []store.Reference{{Kind: store.RefConfig, Digest: cfg, Size: 5, Required: true}, {Kind: store.RefLayer, Digest: layer, Size: 5, Required: true}}
	if _, err := db.PutManifest(ctx, m, refs, []string{"v1"}, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// The same loose blob in another repository, and a blob linked after the cutoff.
	if n, err := db.MountBlob(ctx, "other", "app", loose, true); err != nil || n != 5 {
		t.Fatalf("MountBlob = %d, %v", n, err)
	}
	if _, err := db.MountBlob(ctx, "other", "app", fakeDigest("9"), true); !errors.Is(err, store.ErrBlobUnknown) {
		t.Fatalf("mount of an unknown blob: %v", err)
	}
	clk.add(2 * time.Hour)
	if err := db.LinkBlob(ctx, "app", fresh, 7, false); err != nil {
		t.Fatal(err)
	}
	// A client told that "other"'s link exists re-stamps it, so it survives too.
	if n, err := db.CheckBlob(ctx, "other", loose); err != nil || n != 5 {
		t.Fatalf("CheckBlob = %d, %v", n, err)
	}
	if _, err := db.CheckBlob(ctx, "other", fresh); !errors.Is(err, store.ErrBlobUnknown) {
		t.Fatalf("CheckBlob of a blob not linked there: %v", err)
	}
	cutoff := clk.Now().Add(-time.Hour)
	want := []store.BlobLink{{Repository: "app", Digest: loose, Size: 5, LinkedAt: time.UnixMilli(1_700_000_000_000).UTC()}}
	dry, err := db.PruneBlobLinks(ctx, cutoff, true)
	if err != nil || !reflect.DeepEqual(dry, want) {
		t.Fatalf("dry run = %+v, %v; want %+v", dry, err, want)
	}
	inUse, err := db.BlobsInUse(ctx, cutoff)
	if err != nil || !maps.Equal(inUse, map[string]bool{cfg: true, layer: true, loose: true, fresh: true}) {
		t.Fatalf("BlobsInUse(dry run) = %v, %v", inUse, err)
	}
	if ok, _ := db.BlobLinked(ctx, loose); !ok {
		t.Fatal("a dry run removed a link")
	}
	pruned, err := db.PruneBlobLinks(ctx, cutoff, false)
	if err != nil || !reflect.DeepEqual(pruned, want) {
		t.Fatalf("PruneBlobLinks = %+v, %v; want %+v", pruned, err, want)
	}
	if repos, err := db.BlobRepositories(ctx, loose, 10); err != nil || !slices.Equal(repos, []string{"other"}) {
		t.Fatalf("BlobRepositories = %v, %v", repos, err)
	}
	// Once the manifest goes, its blobs' links are prunable; the content stays while a link does.
	if _, err := db.DeleteManifest(ctx, "app", m.Digest, false); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.BlobInUse(ctx, layer); err != nil || !ok {
		t.Fatalf("BlobInUse(linked layer) = %v, %v", ok, err)
	}
	if _, err := db.PruneBlobLinks(ctx, cutoff, false); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.BlobInUse(ctx, layer); err != nil || ok {
		t.Fatalf("BlobInUse(unlinked layer) = %v, %v", ok, err)
	}
	inUse, err = db.BlobsInUse(ctx, time.Time{})
	if err != nil || !maps.Equal(inUse, map[string]bool{loose: true, fresh: true}) {
		t.Fatalf("BlobsInUse = %v, %v", inUse, err)
	}
	if n, err := db.AnyBlobSize(ctx, fresh); err != nil || n != 7 {
		t.Fatalf("AnyBlobSize = %d, %v", n, err)
	}
}

func testUploadSessions(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	clk := newClock(t0)
	db.SetClock(clk.Now)
	if err := db.CreateUpload(ctx, "u1", "nope", false); !errors.Is(err, store.ErrRepositoryNotFound) {
		t.Fatalf("upload to a missing repository: %v", err)
	}
	for _, id := range []string{"u1", "u2"} {
		if err := db.CreateUpload(ctx, id, "app", true); err != nil {
			t.Fatal(err)
		}
	}
	clk.add(time.Hour)
	if err := db.TouchUpload(ctx, "u2"); err != nil {
		t.Fatal(err)
	}
	sessions, err := db.UploadSessions(ctx)
	if err != nil || !maps.Equal(sessions, map[string]time.Time{"u1": t0, "u2": t0.Add(time.Hour)}) {
		t.Fatalf("UploadSessions = %v, %v", sessions, err)
	}
	cutoff := t0.Add(time.Minute)
	if gone, err := db.DeleteUploadIfIdle(ctx, "u2", cutoff); err != nil || gone {
		t.Fatalf("an active session: %v, %v", gone, err)
	}
	if gone, err := db.DeleteUploadIfIdle(ctx, "u1", cutoff); err != nil || !gone {
		t.Fatalf("an idle session: %v, %v", gone, err)
	}
	if err := db.DeleteUpload(ctx, "u2"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UploadRepository(ctx, "u2"); !errors.Is(err, store.ErrUploadNotFound) {
		t.Fatalf("deleted session: %v", err)
	}
}

func testLifecyclePolicies(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	if err := db.PutLifecyclePolicy(ctx, "nope", "{}"); !errors.Is(err, store.ErrRepositoryNotFound) {
		t.Fatalf("policy of a missing repository: %v", err)
	}
	for _, name := range []string{"b", "a"} {
		if _, err := db.CreateRepository(ctx, store.Repository{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.LifecyclePolicy(ctx, "a"); !errors.Is(err, store.ErrLifecyclePolicyNotFound) {
		t.Fatalf("no policy: %v", err)
	}
	for _, r := range []string{"b", "a"} {
		if err := db.PutLifecyclePolicy(ctx, r, "policy-"+r); err != nil {
			t.Fatal(err)
		}
	}
	at := time.UnixMilli(1_700_000_000_000).UTC()
	if err := db.MarkLifecycleEvaluated(ctx, "a", "policy-a", at); err != nil {
		t.Fatal(err)
	}
	// A run of a policy replaced meanwhile is not recorded against the new one.
	if err := db.MarkLifecycleEvaluated(ctx, "b", "old policy", at); err != nil {
		t.Fatal(err)
	}
	all, err := db.LifecyclePolicies(ctx)
	want := []store.LifecyclePolicy{{Repository: "a", Text: "policy-a", LastEvaluatedAt: at}, {Repository: "b", Text: "policy-b"}}
	if err != nil || !reflect.DeepEqual(all, want) {
		t.Fatalf("LifecyclePolicies = %+v, %v; want %+v", all, err, want)
	}
	if p, err := db.DeleteLifecyclePolicy(ctx, "a"); err != nil || p != want[0] {
		t.Fatalf("DeleteLifecyclePolicy = %+v, %v", p, err)
	}
	if _, err := db.DeleteLifecyclePolicy(ctx, "a"); !errors.Is(err, store.ErrLifecyclePolicyNotFound) {
		t.Fatalf("deleted twice: %v", err)
	}

	if _, err := db.LifecyclePreview(ctx, "b"); !errors.Is(err, store.ErrLifecyclePreviewNotFound) {
		t.Fatalf("no preview: %v", err)
	}
	preview := store.LifecyclePreview{Repository: "b", Text: "policy-b", Status: "COMPLETE", CreatedAt: at,
		Results: []store.LifecyclePreviewResult{{Digest: fakeDigest("1"), Tags: []string{"v1"}, PushedAt: at, RulePriority: 1}}}
	if err := db.PutLifecyclePreview(ctx, preview); err != nil {
		t.Fatal(err)
	}
	if got, err := db.LifecyclePreview(ctx, "b"); err != nil || !reflect.DeepEqual(got, preview) {
		t.Fatalf("LifecyclePreview = %+v, %v; want %+v", got, err, preview)
	}
	empty := store.LifecyclePreview{Repository: "b", Text: "p2", Status: "IN_PROGRESS", CreatedAt: at.Add(time.Second)}
	if err := db.PutLifecyclePreview(ctx, empty); err != nil {
		t.Fatal(err)
	}
	if got, err := db.LifecyclePreview(ctx, "b"); err != nil || got.Status != "IN_PROGRESS" || got.Results == nil || len(got.Results) != 0 {
		t.Fatalf("replaced preview = %+v, %v", got, err)
	}
	// Policies and previews go with their repository.
	if _, err := db.DeleteRepository(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateRepository(ctx, store.Repository{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.LifecyclePolicy(ctx, "b"); !errors.Is(err, store.ErrLifecyclePolicyNotFound) {
		t.Fatalf("policy outlived its repository: %v", err)
	}
	if _, err := db.LifecyclePreview(ctx, "b"); !errors.Is(err, store.ErrLifecyclePreviewNotFound) {
		t.Fatalf("preview outlived its repository: %v", err)
	}
}

// testLifecycleImagesAndExpiry: index children and generated SBOMs are not candidates, and an
// image is expired only as the policy saw it.
func testLifecycleImagesAndExpiry(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	clk := newClock(t0)
	db.SetClock(clk.Now)
	a, b, child, idx, sbom := fakeDigest("a"), fakeDigest("b"), fakeDigest("c"), fakeDigest("d"), fakeDigest("e")
	put := func(d string, refs []store.Reference, tags []string, edit func(*store.Manifest), opts store.PutOptions) {
		t.Helper()
		m := manifest("app", d)
		if edit != nil {
			edit(&m)
		}
		opts.CreateRepository = true
		if _, err := db.PutManifest(ctx, m, refs, tags, opts); err != nil {
			t.Fatal(err)
		}
		clk.add(time.Second)
	}
	put(a, nil, []string{"v2", "v1"}, nil, store.PutOptions{})
	put(b, nil, nil, nil, store.PutOptions{})
	put(child, nil, nil, nil, store.PutOptions{})
	put(idx, []store.Reference{{Kind: store.RefManifest, Digest: child, Size: 10, Required: true}}, []string{"multi"},
		func(m *store.Manifest) { m.MediaType = "application/vnd.oci.image.index.v1+json" }, store.PutOptions{})
	put(sbom, nil, nil, func(m *store.Manifest) {
		m.Subject = a
		m.ArtifactType = "application/vnd.cyclonedx+json"
		m.Annotations = map[string]string{store.AnnotationGeneratedSBOM: "true"}
	}, store.PutOptions{Generated: true})

	imgs, err := db.LifecycleImages(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range imgs {
		got = append(got, fmt.Sprintf("%s %v %d", m.Digest[len(m.Digest)-1:], m.Tags, m.PushedAt.Sub(t0)/time.Second))
	}
	if want := []string{"a [v1 v2] 0", "b [] 1", "d [multi] 3"}; !slices.Equal(got, want) {
		t.Fatalf("LifecycleImages = %q, want %q", got, want)
	}
	if _, err := db.LifecycleImages(ctx, "nope"); !errors.Is(err, store.ErrRepositoryNotFound) {
		t.Fatalf("missing repository: %v", err)
	}
	for _, tc := range []struct {
		name     string
		digest   string
		tags     []string
		pushedAt time.Time
		want     bool
	}{
		{"tags differ", a, []string{"v1"}, t0, false},
		{"pushed again since", a, []string{"v1", "v2"}, t0.Add(time.Hour), false},
		{"an index's child", child, nil, t0.Add(2 * time.Second), false},
		{"as seen, tags in any order", a, []string{"v2", "v1"}, t0, true},
		{"gone already", a, []string{"v1", "v2"}, t0, false},
		{"untagged", b, nil, t0.Add(time.Second), true},
	} {
		if deleted, err := db.ExpireImage(ctx, "app", tc.digest, tc.tags, tc.pushedAt); err != nil || deleted != tc.want {
			t.Fatalf("%s: ExpireImage = %v, %v; want %v", tc.name, deleted, err, tc.want)
		}
	}
	// The generated SBOM went with its subject.
	if _, err := db.GetManifest(ctx, "app", sbom); !errors.Is(err, store.ErrManifestNotFound) {
		t.Fatalf("SBOM of an expired image: %v", err)
	}
	if _, err := db.GetManifest(ctx, "app", child); err != nil {
		t.Fatalf("an index's child: %v", err)
	}
}
