package sqlite

import (
	"context"
	"errors"
	"testing"

	"github.com/lading-registry/lading/internal/store"
)

func TestUnlinkBlobReferencedByManifest(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		kind string
	}{
		{"config", store.RefConfig},
		{"layer", store.RefLayer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openTest(t)
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

// TestUnlinkBlobOfIndexChild: an index references manifests, not blobs, so its child's blobs
// are held by the child and go once the child is gone.
func TestUnlinkBlobOfIndexChild(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
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

func TestPutManifestChecksSizes(t *testing.T) {
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
			db := openTest(t)
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
