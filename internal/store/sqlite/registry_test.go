package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/store"
)

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func manifest(repo, digest string) store.Manifest {
	return store.Manifest{Repository: repo, Digest: digest, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 10, Content: []byte("{}")}
}

func TestPutManifestChecksReferences(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	if err := db.LinkBlob(ctx, "app", "sha256:cfg", 5, true); err != nil {
		t.Fatal(err)
	}
	refs := []store.Reference{
		{Kind: store.RefConfig, Digest: "sha256:cfg", Size: 5, Required: true},
		{Kind: store.RefLayer, Digest: "sha256:layer", Size: 7, Required: true},
	}
	if _, err := db.PutManifest(ctx, manifest("app", "sha256:m1"), refs, []string{"v1"}, store.PutOptions{CreateRepository: true}); !errors.Is(err, store.ErrBlobUnknown) {
		t.Fatalf("missing layer: %v", err)
	}
	// Nothing of the failed push is visible.
	if _, err := db.ResolveTag(ctx, "app", "v1"); !errors.Is(err, store.ErrTagNotFound) {
		t.Fatalf("tag visible after failed push: %v", err)
	}
	refs[1].Required = false // a non-distributable layer
	res, err := db.PutManifest(ctx, manifest("app", "sha256:m1"), refs, []string{"v1"}, store.PutOptions{CreateRepository: true})
	if err != nil || !res.Created {
		t.Fatalf("%+v %v", res, err)
	}
	m, err := db.GetManifest(ctx, "app", "sha256:m1")
	if err != nil || m.ImageSize != 12 {
		t.Fatalf("image size %d, %v", m.ImageSize, err)
	}
	res, err = db.PutManifest(ctx, manifest("app", "sha256:m1"), refs, nil, store.PutOptions{CreateRepository: true})
	if err != nil || res.Created {
		t.Fatalf("re-push: %+v %v", res, err)
	}
	if _, err := db.PutManifest(ctx, manifest("other", "sha256:m1"), refs[:1], nil, store.PutOptions{}); !errors.Is(err, store.ErrRepositoryNotFound) {
		t.Fatalf("create disabled: %v", err)
	}
}

func TestIndexChildrenAndDeletion(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	child := manifest("app", "sha256:child")
	if _, err := db.PutManifest(ctx, child, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	idx := manifest("app", "sha256:index")
	idx.MediaType = "application/vnd.oci.image.index.v1+json"
	if _, err := db.PutManifest(ctx, idx, []store.Reference{{Kind: store.RefManifest, Digest: "sha256:missing", Required: true}}, nil, store.PutOptions{CreateRepository: true}); !errors.Is(err, store.ErrManifestUnknown) {
		t.Fatalf("missing child: %v", err)
	}
	if _, err := db.PutManifest(ctx, idx, []store.Reference{{Kind: store.RefManifest, Digest: "sha256:child", Size: child.Size, Required: true}}, []string{"latest"}, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteManifest(ctx, "app", "sha256:child", false); !errors.Is(err, store.ErrReferencedByIndex) {
		t.Fatalf("child of an index deleted: %v", err)
	}
	m, err := db.DeleteManifest(ctx, "app", "sha256:index", false)
	if err != nil || len(m.Tags) != 1 || m.Tags[0] != "latest" {
		t.Fatalf("%+v %v", m, err)
	}
	if _, err := db.DeleteManifest(ctx, "app", "sha256:child", false); err != nil {
		t.Fatalf("child after index deleted: %v", err)
	}
}

func TestImmutableTags(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	if _, err := db.CreateRepository(ctx, store.Repository{Name: "imm", TagMutability: store.TagImmutable}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutManifest(ctx, manifest("imm", "sha256:a"), nil, []string{"v1"}, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutManifest(ctx, manifest("imm", "sha256:a"), nil, []string{"v1"}, store.PutOptions{}); err != nil {
		t.Fatalf("same digest again: %v", err)
	}
	if _, err := db.PutManifest(ctx, manifest("imm", "sha256:b"), nil, []string{"v1"}, store.PutOptions{}); !errors.Is(err, store.ErrTagImmutable) {
		t.Fatalf("tag moved: %v", err)
	}
	if _, err := db.PutManifest(ctx, manifest("imm", "sha256:b"), nil, []string{"v2"}, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestRefuseUnchanged: a push that changes nothing is refused inside the transaction that would
// write it, and only then; concurrent identical pushes see exactly one success.
func TestRefuseUnchanged(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	refuse := store.PutOptions{CreateRepository: true, RefuseUnchanged: true}
	for _, tc := range []struct {
		name string
		tags []string
		want error
	}{
		{"first push", []string{"v1"}, nil},
		{"same manifest, same tag", []string{"v1"}, store.ErrImageAlreadyExists},
		{"same manifest, no tag", nil, store.ErrImageAlreadyExists},
		{"same manifest, new tag", []string{"v2"}, nil},
		{"same manifest, every tag present", []string{"v1", "v2"}, store.ErrImageAlreadyExists},
		{"same manifest, one tag new", []string{"v1", "v3"}, nil},
	} {
		_, err := db.PutManifest(ctx, manifest("ru", "sha256:a"), nil, tc.tags, refuse)
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := db.PutManifest(ctx, manifest("ru", "sha256:a"), nil, []string{"v1"}, store.PutOptions{}); err != nil {
		t.Fatalf("a push that does not refuse: %v", err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.PutManifest(ctx, manifest("ru", "sha256:b"), nil, []string{"race"}, refuse)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrImageAlreadyExists):
			t.Fatal(err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent identical pushes succeeded, want 1", ok)
	}
}

func TestListingsPaginate(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	for _, tag := range []string{"c", "a", "b", "d"} {
		if _, err := db.PutManifest(ctx, manifest("pg", "sha256:"+tag), nil, []string{tag}, store.PutOptions{CreateRepository: true}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		after string
		limit int
		want  []string
	}{{"", 2, []string{"a", "b"}}, {"b", 2, []string{"c", "d"}}, {"d", 2, nil}, {"", 10, []string{"a", "b", "c", "d"}}} {
		got, err := db.ListTags(ctx, "pg", tc.after, tc.limit)
		if err != nil || len(got) != len(tc.want) {
			t.Fatalf("after %q: %v %v", tc.after, got, err)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("after %q: %v", tc.after, got)
			}
		}
	}
	if _, err := db.ListTags(ctx, "nope", "", 1); !errors.Is(err, store.ErrRepositoryNotFound) {
		t.Fatal(err)
	}
}

func TestReferrers(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	for i, at := range []string{"application/sbom", "application/sig"} {
		m := manifest("ref", "sha256:r"+string(rune('0'+i)))
		m.Subject = "sha256:subject"
		m.ArtifactType = at
		m.Annotations = map[string]string{"k": at}
		if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Referrers(ctx, "ref", "sha256:subject")
	if err != nil || len(got) != 2 || got[0].ArtifactType != "application/sbom" || got[1].Annotations["k"] != "application/sig" {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestUploadsAndPulls(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	if err := db.CreateUpload(ctx, "u1", "up", true); err != nil {
		t.Fatal(err)
	}
	if repo, err := db.UploadRepository(ctx, "u1"); err != nil || repo != "up" {
		t.Fatalf("%q %v", repo, err)
	}
	ids, err := db.DeleteUploadsBefore(ctx, time.Now().Add(time.Hour))
	if err != nil || len(ids) != 1 {
		t.Fatalf("%v %v", ids, err)
	}
	if _, err := db.UploadRepository(ctx, "u1"); !errors.Is(err, store.ErrUploadNotFound) {
		t.Fatal(err)
	}
	if _, err := db.PutManifest(ctx, manifest("up", "sha256:x"), nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	m, _ := db.GetManifest(ctx, "up", "sha256:x")
	now := time.Now()
	if err := db.MarkPulled(ctx, m, now); err != nil {
		t.Fatal(err)
	}
	m, _ = db.GetManifest(ctx, "up", "sha256:x")
	if m.LastPulledAt.UnixMilli() != now.UnixMilli() {
		t.Fatalf("pull time %v", m.LastPulledAt)
	}
}

func TestDeleteRepository(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	if _, err := db.PutManifest(ctx, manifest("del", "sha256:x"), nil, []string{"t"}, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteRepository(ctx, "del", false); !errors.Is(err, store.ErrRepositoryNotEmpty) {
		t.Fatal(err)
	}
	if _, err := db.DeleteRepository(ctx, "del", true); err != nil {
		t.Fatal(err)
	}
	if ok, _ := db.RepositoryExists(ctx, "del"); ok {
		t.Fatal("repository survived")
	}
}
