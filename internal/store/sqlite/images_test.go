package sqlite

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// digest returns a fake but well-formed sha256 digest ending in c.
func fakeDigest(c string) string {
	d := "sha256:"
	for len(d)+len(c) < 71 {
		d += "0"
	}
	return d + c
}

func TestImageQueries(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
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

func TestScanningPolicyRoundTrip(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
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
