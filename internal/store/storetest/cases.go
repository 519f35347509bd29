package storetest

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/pullgate"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

func testPutManifestChecksReferences(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
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

func testIndexChildrenAndDeletion(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
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

func testImmutableTags(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
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

// testRefuseUnchanged: a push that changes nothing is refused inside the transaction that would
// write it, and only then; concurrent identical pushes see exactly one success.
func testRefuseUnchanged(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
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

func testListingsPaginate(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
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

func testReferrers(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
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

func testUploadsAndPulls(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
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

func testDeleteRepository(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
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

func testUnlinkBlobReferencedByManifest(t *testing.T, open Opener) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		kind string
	}{
		{"config", store.RefConfig},
		{"layer", store.RefLayer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := open(t)
			for _, d := range []string{"sha256:cfg", "sha256:layer", "sha256:loose"} {
				if err := db.LinkBlob(ctx, "app", d, 5, true); err != nil {
					t.Fatal(err)
				}
			}
			target := map[string]string{store.RefConfig: "sha256:cfg", store.RefLayer: "sha256:layer"}[tc.kind]
			refs := []store.Reference{
				{Kind: store.RefConfig, Digest: "sha256:cfg", Size: 5, Required: true},
				{Kind: store.RefLayer, Digest: "sha256:layer", Size: 5, Required: true},
			}
			if _, err := db.PutManifest(ctx, manifest("app", "sha256:m1"), refs, []string{"v1"}, store.PutOptions{CreateRepository: true}); err != nil {
				t.Fatal(err)
			}

			err := db.UnlinkBlob(ctx, "app", target)
			var ref *store.BlobReferencedError
			if !errors.Is(err, store.ErrBlobReferenced) || !errors.As(err, &ref) {
				t.Fatalf("unlink of a referenced %s: %v", tc.kind, err)
			}
			if ref.Repository != "app" || ref.Digest != target || ref.Manifest != "sha256:m1" {
				t.Errorf("error names %+v", ref)
			}
			// The refused unlink was rolled back: the blob is still linked.
			if size, err := db.BlobSize(ctx, "app", target); err != nil || size != 5 {
				t.Fatalf("blob after refused unlink: %d %v", size, err)
			}
			// A blob no manifest references goes; an unknown one is still ErrBlobUnknown.
			if err := db.UnlinkBlob(ctx, "app", "sha256:loose"); err != nil {
				t.Fatalf("unreferenced blob: %v", err)
			}
			if err := db.UnlinkBlob(ctx, "app", "sha256:loose"); !errors.Is(err, store.ErrBlobUnknown) {
				t.Fatalf("unlinked twice: %v", err)
			}
			// Another repository's manifest does not hold this repository's link.
			if err := db.LinkBlob(ctx, "other", target, 5, true); err != nil {
				t.Fatal(err)
			}
			if err := db.UnlinkBlob(ctx, "other", target); err != nil {
				t.Fatalf("blob referenced only in another repository: %v", err)
			}
			// With the manifest gone, the blob can go.
			if _, err := db.DeleteManifest(ctx, "app", "sha256:m1", true); err != nil {
				t.Fatal(err)
			}
			if err := db.UnlinkBlob(ctx, "app", target); err != nil {
				t.Fatalf("unlink after the manifest was deleted: %v", err)
			}
			if _, err := db.BlobSize(ctx, "app", target); !errors.Is(err, store.ErrBlobUnknown) {
				t.Fatalf("blob still linked: %v", err)
			}
		})
	}
}

// testUnlinkBlobOfIndexChild: an index references manifests, not blobs, so its child's blobs
// are held by the child and go once the child is gone.
func testUnlinkBlobOfIndexChild(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	if err := db.LinkBlob(ctx, "app", "sha256:cfg", 5, true); err != nil {
		t.Fatal(err)
	}
	child := manifest("app", "sha256:child")
	if _, err := db.PutManifest(ctx, child, []store.Reference{{Kind: store.RefConfig, Digest: "sha256:cfg", Size: 5, Required: true}}, nil, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	idx := manifest("app", "sha256:index")
	idx.MediaType = "application/vnd.oci.image.index.v1+json"
	if _, err := db.PutManifest(ctx, idx, []store.Reference{{Kind: store.RefManifest, Digest: child.Digest, Size: child.Size, Required: true}}, nil, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	var ref *store.BlobReferencedError
	if err := db.UnlinkBlob(ctx, "app", "sha256:cfg"); !errors.As(err, &ref) || ref.Manifest != child.Digest {
		t.Fatalf("config of an index's child: %v", err)
	}
	for _, d := range []string{idx.Digest, child.Digest} {
		if _, err := db.DeleteManifest(ctx, "app", d, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.UnlinkBlob(ctx, "app", "sha256:cfg"); err != nil {
		t.Fatalf("after the manifests were deleted: %v", err)
	}
}

func testPutManifestChecksSizes(t *testing.T, open Opener) {
	ctx := context.Background()
	const cfgSize, layerSize = 5, 7
	child := manifest("app", "sha256:child") // Size 10
	for _, tc := range []struct {
		name    string
		digest  string
		refs    []store.Reference
		wantErr *store.SizeMismatchError // nil: accepted
	}{
		{
			name:   "sizes as stored",
			digest: "sha256:ok",
			refs: []store.Reference{
				{Kind: store.RefConfig, Digest: "sha256:cfg", Size: cfgSize, Required: true},
				{Kind: store.RefLayer, Digest: "sha256:layer", Size: layerSize, Required: true},
			},
		},
		{
			name:   "layer size+1",
			digest: "sha256:big-layer",
			refs: []store.Reference{
				{Kind: store.RefConfig, Digest: "sha256:cfg", Size: cfgSize, Required: true},
				{Kind: store.RefLayer, Digest: "sha256:layer", Size: layerSize + 1, Required: true},
			},
			wantErr: &store.SizeMismatchError{Kind: store.RefLayer, Digest: "sha256:layer", DescriptorSize: layerSize + 1, StoredSize: layerSize},
		},
		{
			name:   "config size-1",
			digest: "sha256:small-config",
			refs: []store.Reference{
				{Kind: store.RefConfig, Digest: "sha256:cfg", Size: cfgSize - 1, Required: true},
			},
			wantErr: &store.SizeMismatchError{Kind: store.RefConfig, Digest: "sha256:cfg", DescriptorSize: cfgSize - 1, StoredSize: cfgSize},
		},
		{
			// The registry does not hold a non-distributable layer, so it has no size to compare.
			name:   "non-distributable layer linked with another size",
			digest: "sha256:foreign",
			refs: []store.Reference{
				{Kind: store.RefConfig, Digest: "sha256:cfg", Size: cfgSize, Required: true},
				{Kind: store.RefLayer, Digest: "sha256:layer", Size: layerSize + 1, Required: false},
			},
		},
		{
			name:   "index child as stored",
			digest: "sha256:index-ok",
			refs:   []store.Reference{{Kind: store.RefManifest, Digest: child.Digest, Size: child.Size, Required: true}},
		},
		{
			name:    "index child size+1",
			digest:  "sha256:index-big",
			refs:    []store.Reference{{Kind: store.RefManifest, Digest: child.Digest, Size: child.Size + 1, Required: true}},
			wantErr: &store.SizeMismatchError{Kind: store.RefManifest, Digest: child.Digest, DescriptorSize: child.Size + 1, StoredSize: child.Size},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := open(t)
			if err := db.LinkBlob(ctx, "app", "sha256:cfg", cfgSize, true); err != nil {
				t.Fatal(err)
			}
			if err := db.LinkBlob(ctx, "app", "sha256:layer", layerSize, true); err != nil {
				t.Fatal(err)
			}
			if _, err := db.PutManifest(ctx, child, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
				t.Fatal(err)
			}
			_, err := db.PutManifest(ctx, manifest("app", tc.digest), tc.refs, []string{"v1"}, store.PutOptions{CreateRepository: true})
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if _, err := db.GetManifest(ctx, "app", tc.digest); err != nil {
					t.Fatalf("accepted manifest not stored: %v", err)
				}
				return
			}
			var got *store.SizeMismatchError
			if !errors.Is(err, store.ErrSizeMismatch) || !errors.As(err, &got) {
				t.Fatalf("want a size mismatch, got %v", err)
			}
			if *got != *tc.wantErr {
				t.Errorf("mismatch %+v, want %+v", *got, *tc.wantErr)
			}
			// Nothing of the refused push is visible.
			if _, err := db.GetManifest(ctx, "app", tc.digest); !errors.Is(err, store.ErrManifestNotFound) {
				t.Errorf("refused manifest stored: %v", err)
			}
			if _, err := db.ResolveTag(ctx, "app", "v1"); !errors.Is(err, store.ErrTagNotFound) {
				t.Errorf("tag of a refused manifest: %v", err)
			}
		})
	}
}

func testImageQueries(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	if _, err := db.CreateRepository(ctx, store.Repository{Name: "app"}); err != nil {
		t.Fatal(err)
	}
	cfg, layer := fakeDigest("c1"), fakeDigest("l1")
	for _, b := range []struct {
		d    string
		size int64
	}{{cfg, 10}, {layer, 100}} {
		if err := db.LinkBlob(ctx, "app", b.d, b.size, false); err != nil {
			t.Fatal(err)
		}
	}
	img := func(d string, tags ...string) {
		t.Helper()
		m := store.Manifest{Repository: "app", Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json",
			ConfigMediaType: "application/vnd.oci.image.config.v1+json", ConfigDigest: cfg, Size: 2, Content: []byte("{}")}
		refs := []store.Reference{{Kind: store.RefConfig, Digest: cfg, Size: 10, Required: true}, {Kind: store.RefLayer, Digest: layer, Size: 100, Required: true}}
		if _, err := db.PutManifest(ctx, m, refs, tags, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	a, b, idx := fakeDigest("a"), fakeDigest("b"), fakeDigest("f")
	img(a, "v1", "latest")
	img(b)
	if _, err := db.PutManifest(ctx, store.Manifest{Repository: "app", Digest: idx, MediaType: "application/vnd.oci.image.index.v1+json", Size: 2, Content: []byte("{}")},
		[]store.Reference{{Kind: store.RefManifest, Digest: a, Size: 2, Required: true}, {Kind: store.RefManifest, Digest: b, Size: 2, Required: true}}, []string{"multi"}, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	ids, err := db.ListImageIDs(ctx, "app", store.TagStatusAny, "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.ImageID{{Digest: a, Tag: "latest"}, {Digest: a, Tag: "v1"}, {Digest: b}, {Digest: idx, Tag: "multi"}}
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("ListImageIDs = %v, want %v", ids, want)
	}
	// Paging resumes after the last key, inside one digest's tags too.
	ids, _ = db.ListImageIDs(ctx, "app", store.TagStatusAny, a, "latest", 2)
	if !reflect.DeepEqual(ids, want[1:3]) {
		t.Fatalf("page = %v", ids)
	}
	ids, _ = db.ListImageIDs(ctx, "app", store.TagStatusUntagged, "", "", 100)
	if !reflect.DeepEqual(ids, []store.ImageID{{Digest: b}}) {
		t.Fatalf("untagged = %v", ids)
	}
	if _, err := db.ListImageIDs(ctx, "nope", "", "", "", 1); !errors.Is(err, store.ErrRepositoryNotFound) {
		t.Fatalf("missing repo: %v", err)
	}

	imgs, err := db.ListImages(ctx, "app", store.TagStatusTagged, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || imgs[0].Digest != a || !reflect.DeepEqual(imgs[0].Tags, []string{"latest", "v1"}) || imgs[0].ImageSize != 110 {
		t.Fatalf("tagged images = %+v", imgs)
	}
	// An index reports the largest child, not the sum.
	if imgs[1].Digest != idx || imgs[1].ImageSize != 110 {
		t.Fatalf("index image = %+v", imgs[1])
	}
	got, err := db.GetImage(ctx, "app", b)
	if err != nil || len(got.Tags) != 0 || got.ConfigMediaType == "" {
		t.Fatalf("GetImage = %+v, %v", got, err)
	}

	// Untagging: one of two tags leaves the image; the last tag of an index child is refused.
	if _, deleted, err := db.UntagImage(ctx, "app", "v1"); err != nil || deleted {
		t.Fatalf("untag v1: deleted=%v err=%v", deleted, err)
	}
	if _, _, err := db.UntagImage(ctx, "app", "latest"); !errors.Is(err, store.ErrReferencedByIndex) {
		t.Fatalf("untag latest: %v", err)
	}
	if _, deleted, err := db.UntagImage(ctx, "app", "multi"); err != nil || !deleted {
		t.Fatalf("untag multi: deleted=%v err=%v", deleted, err)
	}
	if _, err := db.GetImage(ctx, "app", idx); !errors.Is(err, store.ErrManifestNotFound) {
		t.Fatalf("index still there: %v", err)
	}
	if _, _, err := db.UntagImage(ctx, "app", "multi"); !errors.Is(err, store.ErrTagNotFound) {
		t.Fatalf("untag twice: %v", err)
	}
	ref, err := db.ReferencingManifest(ctx, "app", layer)
	if err != nil || (ref.Digest != a && ref.Digest != b) || string(ref.Content) != "{}" {
		t.Fatalf("ReferencingManifest = %+v, %v", ref, err)
	}
}

func testScanningPolicyRoundTrip(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	p, err := db.ScanningPolicy(ctx)
	if err != nil || !reflect.DeepEqual(p, policy.DefaultPolicy()) {
		t.Fatalf("default = %+v, %v", p, err)
	}
	want := policy.Policy{ScanType: policy.ScanTypeEnhanced, Rules: []policy.Rule{{
		Frequency: policy.FrequencyContinuous, Filters: []policy.Filter{{Value: "prod", Type: policy.FilterTypeWildcard}}}}}
	if err := db.PutScanningPolicy(ctx, want); err != nil {
		t.Fatal(err)
	}
	p, err = db.ScanningPolicy(ctx)
	if err != nil || !reflect.DeepEqual(p, want) {
		t.Fatalf("stored = %+v, %v", p, err)
	}
}

func testAccessKeyPolicies(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	if err := db.CreateAccessKey(ctx, store.AccessKey{ID: "LAKCI", Secret: "s", Name: "ci", Preset: "AmazonEC2ContainerRegistryReadOnly"}); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateAccessKeyPolicy(ctx, "LAKCI", "", `{"Statement":[]}`); err != nil {
		t.Fatal(err)
	}
	k, err := db.AccessKey(ctx, "LAKCI")
	if err != nil || k.Name != "ci" || k.Preset != "" || k.Policy != `{"Statement":[]}` {
		t.Fatalf("after the update: %+v, %v", k, err)
	}
	if err := db.UpdateAccessKeyPolicy(ctx, "LAKNONE", "", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("updating a missing key: %v", err)
	}
	if err := db.CreateAccessKey(ctx, store.AccessKey{ID: "LAKNAMELESS", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	if k, _ := db.AccessKey(ctx, "LAKNAMELESS"); k.Name != "LAKNAMELESS" {
		t.Fatalf("a key without a name is named %q", k.Name)
	}
}

func testResourcePolicies(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	if _, err := db.CreateRepository(ctx, store.Repository{Name: "app"}); err != nil {
		t.Fatal(err)
	}
	if reg, repo, err := db.ResourcePolicies(ctx, "app"); err != nil || reg != "" || repo != "" {
		t.Fatalf("none set: %q %q %v", reg, repo, err)
	}
	if _, err := db.RepositoryPolicy(ctx, "app"); !errors.Is(err, store.ErrRepositoryPolicyNotFound) {
		t.Fatalf("no policy: %v", err)
	}
	if _, err := db.RepositoryPolicy(ctx, "missing"); !errors.Is(err, store.ErrRepositoryNotFound) {
		t.Fatalf("no repository: %v", err)
	}
	if err := db.PutRepositoryPolicy(ctx, "missing", "{}"); !errors.Is(err, store.ErrRepositoryNotFound) {
		t.Fatalf("policy of a missing repository: %v", err)
	}
	for _, p := range []string{"repo-1", "repo-2"} {
		if err := db.PutRepositoryPolicy(ctx, "app", p); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutRegistryPolicy(ctx, "reg"); err != nil {
		t.Fatal(err)
	}
	if reg, repo, err := db.ResourcePolicies(ctx, "app"); err != nil || reg != "reg" || repo != "repo-2" {
		t.Fatalf("set: %q %q %v", reg, repo, err)
	}
	if _, err := db.CreateRepository(ctx, store.Repository{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	if reg, repos, err := db.RepositoryPolicies(ctx, []string{"web", "app", "missing"}); err != nil || reg != "reg" || !maps.Equal(repos, map[string]string{"app": "repo-2"}) {
		t.Fatalf("RepositoryPolicies: %q %v %v", reg, repos, err)
	}
	if reg, repos, err := db.RepositoryPolicies(ctx, []string{"web"}); err != nil || reg != "reg" || len(repos) != 0 {
		t.Fatalf("RepositoryPolicies of one without: %q %v %v", reg, repos, err)
	}
	if old, err := db.DeleteRegistryPolicy(ctx); err != nil || old != "reg" {
		t.Fatalf("delete registry policy: %q %v", old, err)
	}
	if _, err := db.DeleteRegistryPolicy(ctx); !errors.Is(err, store.ErrRegistryPolicyNotFound) {
		t.Fatalf("delete again: %v", err)
	}
	if _, err := db.DeleteRepository(ctx, "app", true); err != nil {
		t.Fatal(err)
	}
	// The policy went with its repository: a new one of the same name starts without.
	if _, err := db.CreateRepository(ctx, store.Repository{Name: "app"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteRepositoryPolicy(ctx, "app"); !errors.Is(err, store.ErrRepositoryPolicyNotFound) {
		t.Fatalf("the policy outlived its repository: %v", err)
	}
}

func testRepositoryPullGates(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	p := pullgate.Policy{Severity: "HIGH", Grace: 72 * time.Hour, Exempt: []string{"ci"}}
	if err := db.SetRepositoryPullGate(ctx, "prod/api", p); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRepositoryPullGate(ctx, "bad", pullgate.Policy{Severity: "SEVERE"}); err == nil {
		t.Error("an unknown severity was stored")
	}
	got, ok, err := db.RepositoryPullGate(ctx, "prod/api")
	if err != nil || !ok || got.Severity != "HIGH" || got.Grace != p.Grace || !slices.Equal(got.Exempt, p.Exempt) {
		t.Errorf("RepositoryPullGate = %+v, %v, %v", got, ok, err)
	}
	if all, err := db.RepositoryPullGates(ctx); err != nil || len(all) != 1 {
		t.Errorf("RepositoryPullGates = %v, %v", all, err)
	}
	if found, err := db.DeleteRepositoryPullGate(ctx, "prod/api"); err != nil || !found {
		t.Errorf("delete: %v, %v", found, err)
	}
	if _, ok, err := db.RepositoryPullGate(ctx, "prod/api"); err != nil || ok {
		t.Errorf("after delete: %v, %v", ok, err)
	}
}

// testAnnotationsWithNUL: a referrer whose annotation holds a NUL (a client's to choose) is
// stored, and neither breaks the listings nor the deletion of its subject, which takes the SBOM
// referrers Lading generated with it and leaves the others.
func testAnnotationsWithNUL(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	subject := manifest("nul", fakeDigest("a"))
	if _, err := db.PutManifest(ctx, subject, nil, []string{"v1"}, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	for i, ann := range []map[string]string{{"k": "a \x00 b"}, {store.AnnotationGeneratedSBOM: "true", "x": "\x00"}} {
		m := manifest("nul", fakeDigest(string(rune('b'+i))))
		m.Subject = subject.Digest
		m.Annotations = ann
		if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	imgs, err := db.ListImages(ctx, "nul", "", "", 100)
	if err != nil || len(imgs) != 2 {
		t.Fatalf("images %d (%v): want the subject and the client's referrer, not the generated SBOM", len(imgs), err)
	}
	if _, err := db.DeleteManifest(ctx, "nul", subject.Digest, true); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetManifest(ctx, "nul", fakeDigest("c")); !errors.Is(err, store.ErrManifestNotFound) {
		t.Errorf("generated SBOM after its subject was deleted: %v", err)
	}
	if m, err := db.GetManifest(ctx, "nul", fakeDigest("b")); err != nil || m.Annotations["k"] != "a \x00 b" {
		t.Errorf("the client's referrer: %+v, %v", m.Annotations, err)
	}
}
