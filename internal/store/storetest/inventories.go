package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/store"
)

// testLayerInventoryFingerprint: a cached layer inventory is found only under the fingerprint
// it was stored with, and storing it under another replaces it.
func testLayerInventoryFingerprint(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	dgst := fakeDigest("a")
	if err := db.PutLayerInventory(ctx, dgst, "ENHANCED", "fp-1", []byte("one")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mode, fingerprint string
		want              string // "" for ErrNotFound
	}{
		{"ENHANCED", "fp-1", "one"},
		{"ENHANCED", "fp-2", ""},
		{"BASIC", "fp-1", ""},
	}
	for _, tt := range tests {
		got, err := db.LayerInventory(ctx, dgst, tt.mode, tt.fingerprint)
		if tt.want == "" && !errors.Is(err, store.ErrNotFound) || tt.want != "" && (err != nil || string(got) != tt.want) {
			t.Errorf("LayerInventory(%s, %s) = %q, %v; want %q", tt.mode, tt.fingerprint, got, err, tt.want)
		}
	}
	if err := db.PutLayerInventory(ctx, dgst, "ENHANCED", "fp-2", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.LayerInventory(ctx, dgst, "ENHANCED", "fp-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the old fingerprint still finds the replaced inventory: %v", err)
	}
	if got, err := db.LayerInventory(ctx, dgst, "ENHANCED", "fp-2"); err != nil || string(got) != "two" {
		t.Errorf("got %q, %v", got, err)
	}
}

// testInventoriesHoldingBareEcosystem checks that a key of a bare ecosystem reaches the images
// holding the package in any release of it, and only those.
func testInventoriesHoldingBareEcosystem(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	images := map[string]store.PackageKey{
		fakeDigest("1"): {Ecosystem: "Debian:12", Name: "openssl"},
		fakeDigest("2"): {Ecosystem: "Debian:11", Name: "openssl"},
		fakeDigest("3"): {Ecosystem: "Debian:12", Name: "openssl-extra"},
		fakeDigest("4"): {Ecosystem: "DebianLike:1", Name: "openssl"},
		fakeDigest("5"): {Ecosystem: "Debian", Name: "openssl"},
	}
	for dgst, key := range images {
		m := store.Manifest{Repository: "app", Digest: dgst, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
		if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
			t.Fatal(err)
		}
		id, err := db.PutImageInventory(ctx, dgst, "ENHANCED", "fp", key.Ecosystem, []store.PackageKey{key}, 1, []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.PutImageScan(ctx, store.ImageScan{Repository: "app", Digest: dgst, ScanType: "ENHANCED", Status: "ACTIVE", InventoryID: id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		key  store.PackageKey
		want []string
	}{
		{store.PackageKey{Ecosystem: "Debian", Name: "openssl"}, []string{fakeDigest("1"), fakeDigest("2"), fakeDigest("5")}},
		{store.PackageKey{Ecosystem: "Debian:12", Name: "openssl"}, []string{fakeDigest("1")}},
		{store.PackageKey{Ecosystem: "Debian:1", Name: "openssl"}, nil},
	} {
		refs, err := db.InventoriesHolding(ctx, "ENHANCED", []store.PackageKey{tt.key})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range refs {
			got = append(got, r.Digest)
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Fatalf("%v: images %v, want %v", tt.key, got, tt.want)
		}
	}
}

// testImageScanNotEvaluated: what a scan could not evaluate is stored with its scan state and
// replaced by each write (a later scan that evaluated everything clears it).
func testImageScanNotEvaluated(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	dgst := fakeDigest("n")
	for _, put := range []struct {
		list string
		n    int
	}{{`[{"package":"zlib1g"}]`, 1}, {`[{"package":"a"},{"package":"b"}]`, 2}, {"", 0}} {
		if err := db.PutImageScan(ctx, store.ImageScan{Repository: "app", Digest: dgst, ScanType: "BASIC", Status: "COMPLETE",
			NotEvaluated: []byte(put.list), NotEvaluatedPackages: put.n}); err != nil {
			t.Fatal(err)
		}
		sc, err := db.ImageScan(ctx, "app", dgst, "BASIC")
		if err != nil || string(sc.NotEvaluated) != put.list || sc.NotEvaluatedPackages != put.n {
			t.Fatalf("after writing %q: %q, %d (%v)", put.list, sc.NotEvaluated, sc.NotEvaluatedPackages, err)
		}
		all, err := db.ImageScans(ctx, "app", []string{dgst})
		if err != nil || len(all[dgst]) != 1 || string(all[dgst][0].NotEvaluated) != put.list {
			t.Fatalf("ImageScans after writing %q: %+v (%v)", put.list, all, err)
		}
	}
}

// testImageInventoriesAndPruning: an image inventory is replaced in place, and garbage
// collection takes the inventories nothing needs any more, once older than the cutoff.
func testImageInventoriesAndPruning(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	layer, unused := fakeDigest("1"), fakeDigest("2")
	held, gone := fakeDigest("a"), fakeDigest("b")
	if err := db.LinkBlob(ctx, "app", layer, 3, true); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutManifest(ctx, manifest("app", held), []store.Reference{{Kind: store.RefLayer, Digest: layer, Size: 3, Required: true}}, nil, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{layer, unused} {
		if err := db.PutLayerInventory(ctx, d, "BASIC", "fp", []byte("layer-"+d)); err != nil {
			t.Fatal(err)
		}
	}
	keys := []store.PackageKey{{Ecosystem: "Alpine:v3.20", Name: "musl"}}
	id, err := db.PutImageInventory(ctx, held, "BASIC", "fp", "Alpine:v3.20", keys, 1, []byte("v1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := db.PutImageInventory(ctx, held, "BASIC", "fp2", "Alpine:v3.20", []store.PackageKey{{Ecosystem: "Alpine:v3.20", Name: "busybox"}}, 1, []byte("v2"), nil)
	if err != nil || again != id {
		t.Fatalf("replacing an inventory: id %d then %d, %v", id, again, err)
	}
	if b, err := db.ImageInventory(ctx, id); err != nil || string(b) != "v2" {
		t.Fatalf("ImageInventory = %q, %v", b, err)
	}
	if _, err := db.ImageInventory(ctx, id+1000); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown inventory: %v", err)
	}
	if err := db.PutImageScan(ctx, store.ImageScan{Repository: "app", Digest: held, ScanType: "BASIC", Status: "ACTIVE", InventoryID: id}); err != nil {
		t.Fatal(err)
	}
	// The replaced inventory's keys are gone from the index.
	for _, tc := range []struct {
		name string
		want int
	}{{"musl", 0}, {"busybox", 1}} {
		refs, err := db.InventoriesHolding(ctx, "BASIC", []store.PackageKey{{Ecosystem: "Alpine:v3.20", Name: tc.name}})
		if err != nil || len(refs) != tc.want {
			t.Fatalf("InventoriesHolding(%s) = %+v, %v; want %d", tc.name, refs, err, tc.want)
		}
	}
	all, err := db.InventoriesHolding(ctx, "BASIC", nil)
	if err != nil || len(all) != 1 || all[0].Repository != "app" || all[0].Digest != held || all[0].InventoryID != id || all[0].PushedAt.IsZero() {
		t.Fatalf("InventoriesHolding(all) = %+v, %v", all, err)
	}
	goneID, err := db.PutImageInventory(ctx, gone, "BASIC", "fp", "", nil, 0, []byte("gone"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := db.PruneInventories(ctx, time.Now().Add(-time.Hour), false); err != nil || res != (store.InventoryPrune{}) {
		t.Fatalf("nothing is old enough yet: %+v, %v", res, err)
	}
	cutoff := time.Now().Add(time.Hour)
	want := store.InventoryPrune{LayerInventories: 1, ImageInventories: 1, Bytes: int64(len("layer-"+unused) + len("gone"))}
	if res, err := db.PruneInventories(ctx, cutoff, true); err != nil || res != want {
		t.Fatalf("dry run = %+v, %v; want %+v", res, err, want)
	}
	if res, err := db.PruneInventories(ctx, cutoff, false); err != nil || res != want {
		t.Fatalf("PruneInventories = %+v, %v; want %+v", res, err, want)
	}
	if _, err := db.LayerInventory(ctx, unused, "BASIC", "fp"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unused layer inventory survived: %v", err)
	}
	if _, err := db.LayerInventory(ctx, layer, "BASIC", "fp"); err != nil {
		t.Fatalf("a used layer inventory went: %v", err)
	}
	if _, err := db.ImageInventory(ctx, goneID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unused image inventory survived: %v", err)
	}
	if _, err := db.ImageInventory(ctx, id); err != nil {
		t.Fatalf("a used image inventory went: %v", err)
	}
}

func testRecentImages(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	clk := newClock(t0)
	db.SetClock(clk.Now)
	old, pulled, fresh := fakeDigest("1"), fakeDigest("2"), fakeDigest("3")
	for _, d := range []string{old, pulled} {
		if _, err := db.PutManifest(ctx, manifest("app", d), nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
			t.Fatal(err)
		}
	}
	clk.add(48 * time.Hour)
	if _, err := db.PutManifest(ctx, manifest("b", fresh), nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	m, err := db.GetManifest(ctx, "app", pulled)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.MarkPulled(ctx, m, clk.Now()); err != nil {
		t.Fatal(err)
	}
	got, err := db.RecentImages(ctx, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range got {
		names = append(names, m.Repository+"@"+m.Digest)
	}
	if want := []string{"app@" + pulled, "b@" + fresh}; !slices.Equal(names, want) {
		t.Fatalf("RecentImages = %v, want %v", names, want)
	}
}

// testImageInventoryParts: inventories share the parts they hold alike, which are stored once;
// a part goes with the last inventory holding it, whether replaced or pruned, and stays while
// another inventory holds it.
func testImageInventoryParts(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	part := func(s string) store.InventoryPart {
		sum := sha256.Sum256([]byte(s))
		return store.InventoryPart{Hash: sum[:], Data: []byte(s)}
	}
	base, appA, appA2, appB := part("base packages"), part("app a"), part("app a, rebuilt"), part("app b")
	held, gone := fakeDigest("a"), fakeDigest("b")
	if _, err := db.PutManifest(ctx, manifest("app", held), nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	idA, err := db.PutImageInventory(ctx, held, "ENHANCED", "fp", "", nil, 2, []byte("head a"), []store.InventoryPart{base, appA})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutImageInventory(ctx, gone, "ENHANCED", "fp", "", nil, 2, []byte("head b"), []store.InventoryPart{base, appB}); err != nil {
		t.Fatal(err)
	}
	hashes := func(ps ...store.InventoryPart) [][]byte {
		var out [][]byte
		for _, p := range ps {
			out = append(out, p.Hash)
		}
		return out
	}
	got, err := db.InventoryParts(ctx, hashes(appB, base, appA, base))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"app b", "base packages", "app a", "base packages"}; len(got) != len(want) ||
		string(got[0]) != want[0] || string(got[1]) != want[1] || string(got[2]) != want[2] || string(got[3]) != want[3] {
		t.Fatalf("InventoryParts = %q, want %q", got, want)
	}
	stored := func(p store.InventoryPart) bool {
		t.Helper()
		_, err := db.InventoryParts(ctx, hashes(p))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	// Replacing A's inventory drops the part only it held, not the shared one.
	if again, err := db.PutImageInventory(ctx, held, "ENHANCED", "fp2", "", nil, 2, []byte("head a2"), []store.InventoryPart{base, appA2}); err != nil || again != idA {
		t.Fatalf("replacing an inventory: id %d then %d, %v", idA, again, err)
	}
	if stored(appA) || !stored(appA2) || !stored(base) || !stored(appB) {
		t.Fatalf("after replacing A: app a %v, app a2 %v, base %v, app b %v; want false, true, true, true", stored(appA), stored(appA2), stored(base), stored(appB))
	}
	if err := db.PutImageScan(ctx, store.ImageScan{Repository: "app", Digest: held, ScanType: "ENHANCED", Status: "ACTIVE", InventoryID: idA}); err != nil {
		t.Fatal(err)
	}
	// Pruning B's inventory takes its own part, and counts it; the base stays, A holds it.
	want := store.InventoryPrune{ImageInventories: 1, Bytes: int64(len("head b") + len("app b"))}
	cutoff := time.Now().Add(time.Hour)
	if res, err := db.PruneInventories(ctx, cutoff, true); err != nil || res != want {
		t.Fatalf("dry run = %+v, %v; want %+v", res, err, want)
	}
	if res, err := db.PruneInventories(ctx, cutoff, false); err != nil || res != want {
		t.Fatalf("PruneInventories = %+v, %v; want %+v", res, err, want)
	}
	if stored(appB) || !stored(base) || !stored(appA2) {
		t.Fatalf("after pruning B: app b %v, base %v, app a2 %v; want false, true, true", stored(appB), stored(base), stored(appA2))
	}
	if b, err := db.ImageInventory(ctx, idA); err != nil || string(b) != "head a2" {
		t.Fatalf("ImageInventory(A) = %q, %v", b, err)
	}
}

// testInventoryPartKeys: an inventory stored in parts is found by the keys of its parts, which
// are indexed once however many inventories share a part, and go with the part; an inventory
// written with its own keys and no parts (before part keys) is still found by them.
func testInventoryPartKeys(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	openssl, libc := store.PackageKey{Ecosystem: "Debian:12", Name: "openssl"}, store.PackageKey{Ecosystem: "Debian:12", Name: "libc6"}
	lodash, express, react := store.PackageKey{Ecosystem: "npm", Name: "lodash"}, store.PackageKey{Ecosystem: "npm", Name: "express"}, store.PackageKey{Ecosystem: "npm", Name: "react"}
	leftPad, koa := store.PackageKey{Ecosystem: "npm", Name: "left-pad"}, store.PackageKey{Ecosystem: "npm", Name: "koa"}
	part := func(s string, keys ...store.PackageKey) store.InventoryPart {
		sum := sha256.Sum256([]byte(s))
		return store.InventoryPart{Hash: sum[:], Data: []byte(s), Keys: keys}
	}
	base, appA, appA2, appB := part("base", openssl, libc), part("app a", lodash, openssl), part("app a2", react), part("app b", express)
	a, b, old := fakeDigest("a"), fakeDigest("b"), fakeDigest("c")
	put := func(dgst string, keys []store.PackageKey, parts ...store.InventoryPart) {
		t.Helper()
		id, err := db.PutImageInventory(ctx, dgst, "ENHANCED", "fp", "Debian:12", keys, len(keys), []byte("head "+dgst), parts)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.PutImageScan(ctx, store.ImageScan{Repository: "app", Digest: dgst, ScanType: "ENHANCED", Status: "ACTIVE", InventoryID: id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{a, b, old} {
		if _, err := db.PutManifest(ctx, manifest("app", d), nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
			t.Fatal(err)
		}
	}
	// A part of packages without keys (no ecosystem) is not one whose keys are unknown.
	put(a, []store.PackageKey{openssl, libc, lodash}, base, appA, part("keyless"))
	put(b, []store.PackageKey{openssl, libc, express}, base, appB)
	put(old, []store.PackageKey{leftPad, openssl}) // as written before part keys: its own index rows
	holding := func(key store.PackageKey) []string {
		t.Helper()
		refs, err := db.InventoriesHolding(ctx, "ENHANCED", []store.PackageKey{key})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range refs {
			got = append(got, r.Digest)
		}
		slices.Sort(got)
		return slices.Compact(got)
	}
	partsHolding := func(key store.PackageKey) []string {
		t.Helper()
		hs, err := db.InventoryPartsHolding(ctx, []store.PackageKey{key})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range hs {
			for _, p := range []store.InventoryPart{base, appA, appA2, appB, part("pruned", koa), part("after", lodash), part("keyless")} {
				if bytes.Equal(h, p.Hash) {
					got = append(got, string(p.Data))
				}
			}
		}
		slices.Sort(got)
		return got
	}
	type want = []struct {
		key    store.PackageKey
		images []string
		parts  []string
	}
	check := func(stage string, tests want) {
		t.Helper()
		for _, tt := range tests {
			if got := holding(tt.key); !slices.Equal(got, tt.images) {
				t.Errorf("%s: InventoriesHolding(%v) = %v, want %v", stage, tt.key, got, tt.images)
			}
			if got := partsHolding(tt.key); !slices.Equal(got, tt.parts) {
				t.Errorf("%s: InventoryPartsHolding(%v) = %v, want %v", stage, tt.key, got, tt.parts)
			}
		}
	}
	check("stored", want{
		{openssl, []string{a, b, old}, []string{"app a", "base"}}, // the shared part, and one more part of a
		{libc, []string{a, b}, []string{"base"}},
		{store.PackageKey{Ecosystem: "Debian", Name: "libc6"}, []string{a, b}, []string{"base"}}, // a bare ecosystem's key
		{lodash, []string{a}, []string{"app a"}},
		{leftPad, []string{old}, nil},
	})
	// A no longer holds app a, and the part goes with it; the base stays, b holds it.
	put(a, []store.PackageKey{react}, appA2)
	check("a replaced", want{
		{lodash, nil, nil},
		{react, []string{a}, []string{"app a2"}},
		{libc, []string{b}, []string{"base"}},
	})
	// The base goes with the last inventory holding it.
	put(b, []store.PackageKey{express}, appB)
	check("b replaced", want{
		{libc, nil, nil},
		{openssl, []string{old}, nil},
	})
	// A pruned inventory takes its part's keys: a part stored after it (SQLite may reuse its
	// id) holds only its own.
	if _, err := db.PutImageInventory(ctx, fakeDigest("d"), "ENHANCED", "fp", "", []store.PackageKey{koa}, 1, []byte("head d"), []store.InventoryPart{part("pruned", koa)}); err != nil {
		t.Fatal(err)
	}
	check("unscanned", want{{koa, nil, []string{"pruned"}}})
	if res, err := db.PruneInventories(ctx, time.Now().Add(time.Hour), false); err != nil || res.ImageInventories != 1 {
		t.Fatalf("PruneInventories = %+v, %v; want 1 inventory", res, err)
	}
	if _, err := db.PutImageInventory(ctx, fakeDigest("e"), "ENHANCED", "fp", "", []store.PackageKey{lodash}, 1, []byte("head e"), []store.InventoryPart{part("after", lodash)}); err != nil {
		t.Fatal(err)
	}
	check("pruned", want{
		{koa, nil, nil},
		{lodash, nil, []string{"after"}},
	})
}

// CheckUpgradedPartKeys is the check of each engine's upgrade to part keys (SQLite 0051,
// PostgreSQL 0046), on a store upgraded from one holding an inventory indexed by its own
// inventory_packages row (for npm lodash) and linking a part of hash sum stored before, whose
// keys are unknown: the part may hold any key until an inventory linking it again gives its
// keys, and the inventory written before keeps its own index row (oldIndexRows counts them).
func CheckUpgradedPartKeys(t *testing.T, db Store, sum []byte, oldIndexRows func() (int, error)) {
	t.Helper()
	ctx := context.Background()
	lodash, react := store.PackageKey{Ecosystem: "npm", Name: "lodash"}, store.PackageKey{Ecosystem: "npm", Name: "react"}
	holding := func(k store.PackageKey) int {
		t.Helper()
		hs, err := db.InventoryPartsHolding(ctx, []store.PackageKey{k})
		if err != nil {
			t.Fatal(err)
		}
		return len(hs)
	}
	if n := holding(react); n != 1 {
		t.Fatalf("before its keys are known, %d parts may hold react, want the part", n)
	}
	part := store.InventoryPart{Hash: sum, Data: []byte("base"), Keys: []store.PackageKey{lodash}}
	if _, err := db.PutImageInventory(ctx, "sha256:new", "ENHANCED", "fp", "", []store.PackageKey{lodash}, 1, []byte("head"), []store.InventoryPart{part}); err != nil {
		t.Fatal(err)
	}
	if a, b := holding(lodash), holding(react); a != 1 || b != 0 {
		t.Fatalf("with its keys: %d parts hold lodash, %d react; want 1, 0", a, b)
	}
	if rows, err := oldIndexRows(); err != nil || rows != 1 {
		t.Fatalf("%d inventory_packages rows (%v): want the old inventory's one, none for the new", rows, err)
	}
}
