package scanning

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

// partsSample is an image on a shared base (sha256:base) whose own layers add packages that
// sort between the base's, so that the inventory's order alternates between parts; app names
// the image's own layers.
func partsSample(app string) storedInventory {
	inv := storedInventory{
		OS:      &inventory.OSInfo{ID: "debian", VersionID: "12", Ecosystem: "Debian:12", Path: "etc/os-release", Layer: "sha256:base"},
		History: map[string]string{"sha256:base": "ADD rootfs.tar /", "sha256:" + app + "-os": "RUN apt-get install", "sha256:" + app: "RUN npm ci"},
		Skipped: []inventory.Skipped{{Path: "big.jar", Layer: "sha256:" + app, Reason: "too big"}},
	}
	// The image's own layers add versions of its own, so that images do not share those parts.
	for i := range 120 {
		layer, version := "sha256:base", "1.0-1"
		if i%5 == 3 {
			layer, version = "sha256:"+app+"-os", "1.0-1+"+app
		}
		inv.Packages = append(inv.Packages, inventory.Package{Ecosystem: "Debian:12", Name: fmt.Sprintf("lib%03d", i), Version: version,
			SourceName: fmt.Sprintf("src%03d", i/3), Arch: "amd64", Path: "var/lib/dpkg/status", Layer: layer, PackageManager: inventory.ManagerOS})
	}
	for i := range 40 {
		inv.Packages = append(inv.Packages, inventory.Package{Ecosystem: "npm", Name: fmt.Sprintf("dep-%d", i), Version: "1.0.0-" + app,
			Path: fmt.Sprintf("app/node_modules/dep-%d/package.json", i), Layer: "sha256:" + app, PackageManager: inventory.ManagerNodePkg})
	}
	// A package of the base again after the image's own: the order is not by layer.
	inv.Packages = append(inv.Packages, inventory.Package{Ecosystem: "PyPI", Name: "pyyaml", Version: "6.0", Path: "usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA",
		Layer: "sha256:base", PackageManager: inventory.ManagerPythonPkg})
	return inv
}

// mapParts is a PartStore in memory that counts the parts it returns.
type mapParts struct {
	mu      sync.Mutex
	parts   map[string][]byte
	fetched map[string]int
}

func newMapParts() *mapParts { return &mapParts{parts: map[string][]byte{}, fetched: map[string]int{}} }

func (m *mapParts) put(ps []store.InventoryPart) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range ps {
		m.parts[string(p.Hash)] = p.Data
	}
}

func (m *mapParts) InventoryParts(_ context.Context, hashes [][]byte) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([][]byte, len(hashes))
	for i, h := range hashes {
		d, ok := m.parts[string(h)]
		if !ok {
			return nil, fmt.Errorf("part %x: %w", h, store.ErrNotFound)
		}
		m.fetched[string(h)]++
		out[i] = d
	}
	return out, nil
}

// TestInventoryPartsRoundTrip checks that an inventory stored in parts reads back as it was
// (packages in the same order, OS, history, skipped entries), whole and for some keys, and
// that only the parts that can hold the keys are fetched.
func TestInventoryPartsRoundTrip(t *testing.T) {
	ctx := context.Background()
	want := partsSample("app1")
	head, parts, err := EncodeInventory(want.OS, want.Packages, want.History, want.Skipped)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 3 {
		t.Fatalf("%d parts, want one per layer (3)", len(parts))
	}
	ps := newMapParts()
	ps.put(parts)
	var rd inventoryReader
	full, err := rd.readStored(ctx, head, nil, storeParts{ps})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*full, want) {
		t.Fatalf("full decode differs:\n got %+v\nwant %+v", *full, want)
	}
	img, err := DecodeStoredInventory(ctx, ps, head)
	if err != nil || !reflect.DeepEqual(img.Packages, want.Packages) || !reflect.DeepEqual(img.OS, want.OS) || !reflect.DeepEqual(img.Skipped, want.Skipped) {
		t.Fatalf("DecodeStoredInventory = %+v, %v", img, err)
	}
	for _, tc := range []struct {
		name  string
		ks    keySet
		parts int // fetched
	}{
		{"source name, the image's own OS layer", keysOf(advisory.PackageKey{Ecosystem: "Debian:12", Name: "src001"}), -1},
		{"bare ecosystem", keysOf(advisory.PackageKey{Ecosystem: "Debian", Name: "src004"}), -1},
		{"two ecosystems", keysOf(advisory.PackageKey{Ecosystem: "npm", Name: "dep-7"}, advisory.MakeKey("PyPI", "pyyaml")), -1},
		{"absent", keysOf(advisory.PackageKey{Ecosystem: "npm", Name: "absent"}), -1},
		{"none", keySet{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps.fetched = map[string]int{}
			got, err := rd.readStored(ctx, head, tc.ks, storeParts{ps})
			if err != nil {
				t.Fatal(err)
			}
			wantPkgs := []inventory.Package{}
			for _, p := range want.Packages {
				if tc.ks.holds(p) {
					wantPkgs = append(wantPkgs, p)
				}
			}
			if !reflect.DeepEqual(got.Packages, wantPkgs) || !reflect.DeepEqual(got.History, want.History) || !reflect.DeepEqual(got.OS, want.OS) {
				t.Fatalf("got %+v, want %+v", got.Packages, wantPkgs)
			}
			if tc.parts >= 0 && len(ps.fetched) > tc.parts {
				t.Fatalf("%d parts fetched, want at most %d", len(ps.fetched), tc.parts)
			}
		})
	}
}

// TestInventoryPartsShareTheBase stores two images on one base through the SQLite store: the
// base's part is stored once, linked twice, and each image reads back whole.
func TestInventoryPartsShareTheBase(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ids := map[string]int64{}
	for _, app := range []string{"app1", "app2"} {
		inv := partsSample(app)
		head, parts, err := EncodeInventory(inv.OS, inv.Packages, inv.History, inv.Skipped)
		if err != nil {
			t.Fatal(err)
		}
		if ids[app], err = db.PutImageInventory(ctx, "sha256:"+app, "ENHANCED", "fp", "Debian:12", packageKeys(inv.Packages), len(inv.Packages), head, parts); err != nil {
			t.Fatal(err)
		}
	}
	var parts, links int
	if err := db.Reader().QueryRowContext(ctx, "SELECT (SELECT count(*) FROM inventory_parts), (SELECT count(*) FROM inventory_part_links)").Scan(&parts, &links); err != nil {
		t.Fatal(err)
	}
	if parts != 5 || links != 6 {
		t.Fatalf("%d parts, %d links; want 5 (the base once, two layers of each image) and 6", parts, links)
	}
	for app, id := range ids {
		raw, err := db.ImageInventory(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var rd inventoryReader
		got, err := rd.readStored(ctx, raw, nil, storeParts{db})
		if want := partsSample(app); err != nil || !reflect.DeepEqual(*got, want) {
			t.Fatalf("%s reads back as %+v, %v", app, got, err)
		}
	}
}

// TestPartMemoDecodesASharedPartOnce reads many images on one base concurrently, as a
// re-evaluation's loaders do: the base's part is fetched and decoded once.
func TestPartMemoDecodesASharedPartOnce(t *testing.T) {
	ctx := context.Background()
	ps := newMapParts()
	var heads [][]byte
	var wants []storedInventory
	for i := range 12 {
		inv := partsSample(fmt.Sprintf("app%d", i))
		head, parts, err := EncodeInventory(inv.OS, inv.Packages, inv.History, inv.Skipped)
		if err != nil {
			t.Fatal(err)
		}
		ps.put(parts)
		heads, wants = append(heads, head), append(wants, inv)
	}
	// src002 is in the base; lib008 (of src002) in each image's own OS layer.
	ks := keysOf(advisory.PackageKey{Ecosystem: "Debian:12", Name: "src002"})
	memo := newPartMemo(ps, ks, nil)
	var wg sync.WaitGroup
	errs := make([]error, len(heads))
	for i := range heads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rd inventoryReader
			got, err := rd.readStored(ctx, heads[i], ks, memo)
			if err != nil {
				errs[i] = err
				return
			}
			var want []inventory.Package
			for _, p := range wants[i].Packages {
				if ks.holds(p) {
					want = append(want, p)
				}
			}
			if len(want) != 3 || !reflect.DeepEqual(got.Packages, want) {
				errs[i] = fmt.Errorf("image %d: got %+v, want %+v", i, got.Packages, want)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	// Every part that can hold the key is fetched and decoded once: the base, each image's
	// own OS layer, and those of its npm layers that fill the key's bucket.
	var rd inventoryReader
	want := map[string]bool{}
	for _, head := range heads {
		h, err := rd.partedHeader(head)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range h.Parts {
			if p.Buckets&(1<<partBucketOfName("src002")) != 0 {
				want[string(p.Hash)] = true
			}
		}
	}
	if len(want) < 1+len(heads) {
		t.Fatalf("%d parts can hold the key, want at least %d", len(want), 1+len(heads))
	}
	for h, n := range ps.fetched {
		if n != 1 || !want[h] {
			t.Fatalf("part %x fetched %d times (can hold the key: %v)", h, n, want[h])
		}
	}
	if n := memo.decodes.Load(); n != int64(len(want)) || len(ps.fetched) != len(want) {
		t.Fatalf("%d parts decoded, %d fetched; want %d", n, len(ps.fetched), len(want))
	}
}

// TestInventoryPartsRefuseCorruption checks that a damaged header or part is refused.
func TestInventoryPartsRefuseCorruption(t *testing.T) {
	ctx := context.Background()
	s := partsSample("app1")
	head, parts, err := EncodeInventory(s.OS, s.Packages, s.History, s.Skipped)
	if err != nil {
		t.Fatal(err)
	}
	var rd inventoryReader
	h, err := rd.partedHeader(head)
	if err != nil {
		t.Fatal(err)
	}
	lying := func(edit func(*partedHeader)) []byte {
		h := h
		h.Parts = append([]partRef(nil), h.Parts...)
		h.Order = append([]int(nil), h.Order...)
		edit(&h)
		var b bytes.Buffer
		b.Write(partedMagic)
		if err := writeGzipJSON(&b, h); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	good := newMapParts()
	good.put(parts)
	swapped := newMapParts() // each part stored under another's hash
	for i, p := range parts {
		swapped.put([]store.InventoryPart{{Hash: p.Hash, Data: parts[(i+1)%len(parts)].Data}})
	}
	for _, tc := range []struct {
		name string
		head []byte
		ps   PartStore
	}{
		{"truncated header", head[:len(head)-5], good},
		{"odd order", lying(func(h *partedHeader) { h.Order = h.Order[:len(h.Order)-1] }), good},
		{"run past the parts", lying(func(h *partedHeader) { h.Order[0] = len(h.Parts) }), good},
		{"more packages than the runs", lying(func(h *partedHeader) { h.Packages++ }), good},
		{"part count off", lying(func(h *partedHeader) { h.Parts[0].Packages--; h.Order[1]--; h.Packages-- }), good},
		{"short hash", lying(func(h *partedHeader) { h.Parts[1].Hash = h.Parts[1].Hash[:8] }), good},
		{"part bytes of another part", head, swapped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := rd.readStored(ctx, tc.head, nil, storeParts{tc.ps}); !errors.Is(err, ErrCorruptInventory) {
				t.Fatalf("got %v, want ErrCorruptInventory", err)
			}
		})
	}
	missing := newMapParts()
	missing.put(parts[1:])
	if _, err := rd.readStored(ctx, head, nil, storeParts{missing}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a missing part: got %v, want ErrNotFound", err)
	}
}

// TestReadStoredReadsOlderLayouts: inventories stored whole before parts (bucketed, or one
// stream) read as before.
func TestReadStoredReadsOlderLayouts(t *testing.T) {
	ctx := context.Background()
	want := partsSample("app1")
	bucketed, err := encodeBucketed(want.OS, want.Packages, want.History, want.Skipped)
	if err != nil {
		t.Fatal(err)
	}
	single, err := encodeGzipJSON(want)
	if err != nil {
		t.Fatal(err)
	}
	for name, raw := range map[string][]byte{"bucketed": bucketed, "one stream": single} {
		t.Run(name, func(t *testing.T) {
			var rd inventoryReader
			got, err := rd.readStored(ctx, raw, nil, storeParts{newMapParts()})
			if err != nil || !reflect.DeepEqual(*got, want) {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}

// FuzzDecodePartedInventory checks that no stored header, however damaged, makes reading an
// inventory in parts panic or run away.
func FuzzDecodePartedInventory(f *testing.F) {
	s := skimSample()
	head, parts, err := EncodeInventory(s.OS, s.Packages, s.History, s.Skipped)
	if err != nil {
		f.Fatal(err)
	}
	ps := newMapParts()
	ps.put(parts)
	f.Add(head)
	f.Add(append(append([]byte(nil), partedMagic...), 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		var rd inventoryReader
		full, err := rd.readStored(context.Background(), b, nil, storeParts{ps})
		if err == nil && full == nil {
			t.Fatal("no inventory and no error")
		}
		ks := keysOf(advisory.PackageKey{Ecosystem: "npm", Name: "lodash"})
		_, _ = rd.readStored(context.Background(), b, ks, newPartMemo(ps, ks, nil))
	})
}

// TestPartMemoBound checks that a full memo still reads right, fetching again what it could
// not keep.
func TestPartMemoBound(t *testing.T) {
	ctx := context.Background()
	ps := newMapParts()
	inv := partsSample("app1")
	head, parts, err := EncodeInventory(inv.OS, inv.Packages, inv.History, inv.Skipped)
	if err != nil {
		t.Fatal(err)
	}
	ps.put(parts)
	for _, tc := range []struct {
		name        string
		maxPackages int
		fetches     int // of each part, for two reads
	}{
		{"room for all", memoMaxPackages, 1},
		{"full", 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps.fetched = map[string]int{}
			memo := newPartMemo(ps, nil, nil)
			memo.maxPackages = tc.maxPackages
			for range 2 {
				var rd inventoryReader
				got, err := rd.readStored(ctx, head, nil, memo)
				if err != nil || !reflect.DeepEqual(*got, inv) {
					t.Fatalf("got %+v, %v", got, err)
				}
			}
			for _, p := range parts {
				if n := ps.fetched[string(p.Hash)]; n != tc.fetches {
					t.Fatalf("part %x fetched %d times, want %d", p.Hash, n, tc.fetches)
				}
			}
		})
	}
}

// countingStore counts the inventory parts a service fetches from the SQLite store.
type countingStore struct {
	*sqlite.DB
	mu      sync.Mutex
	fetched map[string]int
}

func (c *countingStore) InventoryParts(ctx context.Context, hashes [][]byte) ([][]byte, error) {
	c.mu.Lock()
	for _, h := range hashes {
		c.fetched[string(h)]++
	}
	c.mu.Unlock()
	return c.DB.InventoryParts(ctx, hashes)
}

// TestReevaluationLoadsFetchASharedPartOnce loads, as a re-evaluation does, the inventories of
// images on one base for a key of the base: each image reads back its packages of the key, and
// the base's part is fetched from the store once for all of them.
func TestReevaluationLoadsFetchASharedPartOnce(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	st := &countingStore{DB: db, fetched: map[string]int{}}
	svc := New(st, nil, nil, Config{})
	ks := keysOf(advisory.PackageKey{Ecosystem: "Debian:12", Name: "src002"})
	var refs []store.InventoryRef
	want := map[int64][]inventory.Package{}
	var base string
	holds := map[string]bool{} // the parts whose keys hold the key
	for i := range 8 {
		inv := partsSample(fmt.Sprintf("app%d", i))
		head, parts, err := EncodeInventory(inv.OS, inv.Packages, inv.History, inv.Skipped)
		if err != nil {
			t.Fatal(err)
		}
		base = string(parts[0].Hash)
		for _, p := range parts {
			for _, k := range p.Keys {
				if ks.holdsKey(advisory.PackageKey(k)) {
					holds[string(p.Hash)] = true
				}
			}
		}
		id, err := db.PutImageInventory(ctx, fmt.Sprintf("sha256:%d", i), "ENHANCED", "fp", "Debian:12", packageKeys(inv.Packages), len(inv.Packages), head, parts)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, store.InventoryRef{Repository: "app", Digest: fmt.Sprintf("sha256:%d", i), InventoryID: id})
		for _, p := range inv.Packages {
			if ks.holds(p) {
				want[id] = append(want[id], p)
			}
		}
	}
	hashes, err := db.InventoryPartsHolding(ctx, []store.PackageKey{{Ecosystem: "Debian:12", Name: "src002"}})
	if err != nil {
		t.Fatal(err)
	}
	fromStore := map[string]bool{}
	for _, h := range hashes {
		fromStore[string(h)] = true
	}
	if !reflect.DeepEqual(fromStore, holds) || !holds[base] {
		t.Fatalf("InventoryPartsHolding: %d parts, want the %d whose keys hold the key, the base among them", len(fromStore), len(holds))
	}
	for _, tc := range []struct {
		name    string
		holding map[string]bool
	}{
		{"bucket masks", nil},
		{"part keys", fromStore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st.fetched = map[string]int{}
			l := svc.startLoads(ctx, refs, nil, ks, tc.holding)
			defer l.wait()
			for _, r := range refs {
				got, err := l.get(ctx, r.InventoryID)
				if err != nil {
					t.Fatal(err)
				}
				if len(want[r.InventoryID]) != 3 || !reflect.DeepEqual(got.pkgs, want[r.InventoryID]) {
					t.Fatalf("inventory %d: got %+v, want %+v", r.InventoryID, got.pkgs, want[r.InventoryID])
				}
			}
			if n := st.fetched[base]; n != 1 {
				t.Fatalf("the base part was fetched %d times, want once", n)
			}
			if n := l.parts.decodes.Load(); n != int64(len(st.fetched)) {
				t.Fatalf("%d parts decoded, %d fetched", n, len(st.fetched))
			}
			// With the part keys, only the parts holding the key are fetched.
			if tc.holding != nil && len(st.fetched) != len(holds) {
				t.Fatalf("%d parts fetched, want the %d holding the key", len(st.fetched), len(holds))
			}
		})
	}
}

// A gzip writer taken again from the pool, reset after other inventories, writes the bytes a
// new writer writes: the parts' hashes (content addresses) do not depend on the pool.
// A part is found by the SHA-256 of its bytes: the shared encoder must give the bytes a fresh
// one gives, every time, or images on one base would stop sharing its part.
func TestEncodeInventoryPartsSameBytes(t *testing.T) {
	fresh := func(s storedInventory) [][]byte {
		t.Helper()
		_, parts, err := EncodeInventory(s.OS, s.Packages, s.History, s.Skipped)
		if err != nil {
			t.Fatal(err)
		}
		var data [][]byte
		for _, p := range parts {
			// Each part's JSON compressed again by an encoder made for it alone.
			rd := inventoryReader{}
			if err := rd.inflate(p.Data); err != nil {
				t.Fatal(err)
			}
			enc, err := newPartEncoder()
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, enc.EncodeAll(rd.buf.Bytes(), nil))
		}
		return data
	}
	for _, app := range []string{"app1", "app2", "app1"} {
		s := partsSample(app)
		head1, parts1, err := EncodeInventory(s.OS, s.Packages, s.History, s.Skipped)
		if err != nil {
			t.Fatal(err)
		}
		head2, parts2, err := EncodeInventory(s.OS, s.Packages, s.History, s.Skipped)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(head1, head2) || len(parts1) != len(parts2) {
			t.Fatalf("%s: two encodings differ", app)
		}
		want := fresh(s)
		for i := range parts1 {
			if !bytes.HasPrefix(parts1[i].Data, zstdMagic) {
				t.Errorf("%s: part %d is not zstd", app, i)
			}
			if !bytes.Equal(parts1[i].Data, parts2[i].Data) || !bytes.Equal(parts1[i].Data, want[i]) {
				t.Errorf("%s: part %d differs from a fresh encoder's", app, i)
			}
		}
	}
}

// withParts stores parts re-encoded by reencode in place of head's own (the header's refs
// edited by ref), and returns the header naming them.
func withParts(t *testing.T, head []byte, parts []store.InventoryPart, reencode func(storedInventory, partRef) []byte, ref func(*partRef)) ([]byte, *mapParts) {
	t.Helper()
	var rd inventoryReader
	h, err := rd.partedHeader(head)
	if err != nil {
		t.Fatal(err)
	}
	h.Parts = append([]partRef(nil), h.Parts...)
	ps := newMapParts()
	byHash := map[string][]byte{}
	for _, p := range parts {
		byHash[string(p.Hash)] = p.Data
	}
	for i, r := range h.Parts {
		if err := rd.inflate(byHash[string(r.Hash)]); err != nil {
			t.Fatal(err)
		}
		var inv storedInventory
		if err := json.Unmarshal(rd.buf.Bytes(), &inv); err != nil {
			t.Fatal(err)
		}
		data := reencode(inv, r)
		sum := sha256.Sum256(data)
		h.Parts[i].Hash = sum[:]
		ref(&h.Parts[i])
		ps.put([]store.InventoryPart{{Hash: sum[:], Data: data}})
	}
	var b bytes.Buffer
	b.Write(partedMagic)
	if err := writeGzipJSON(&b, h); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), ps
}

// TestReadStoredReadsGzipParts: parts stored before zstd (gzip'd, every package naming its
// layer, the header's refs naming none) read as before, whole and for some keys.
func TestReadStoredReadsGzipParts(t *testing.T) {
	ctx := context.Background()
	want := partsSample("app1")
	head, parts, err := EncodeInventory(want.OS, want.Packages, want.History, want.Skipped)
	if err != nil {
		t.Fatal(err)
	}
	oldHead, ps := withParts(t, head, parts, func(inv storedInventory, r partRef) []byte {
		for i := range inv.Packages {
			inv.Packages[i].Layer = r.Layer
		}
		var b bytes.Buffer
		if err := writeGzipJSON(&b, inv); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}, func(r *partRef) { r.Layer = "" })
	var rd inventoryReader
	got, err := rd.readStored(ctx, oldHead, nil, storeParts{ps})
	if err != nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("got %+v, %v", got, err)
	}
	ks := keysOf(advisory.PackageKey{Ecosystem: "npm", Name: "dep-7"})
	got, err = rd.readStored(ctx, oldHead, ks, storeParts{ps})
	if err != nil || len(got.Packages) != 1 || got.Packages[0].Name != "dep-7" || got.Packages[0].Layer != "sha256:app1" {
		t.Fatalf("for a key: got %+v, %v", got, err)
	}
}

// TestInventoryPartsShareAcrossLayers: two images whose own layers differ but add the same
// packages (a rebuild) share the part, and each reads its own layer back, also through one
// memo.
func TestInventoryPartsShareAcrossLayers(t *testing.T) {
	ctx := context.Background()
	a := partsSample("app1")
	b := partsSample("app1")
	for i := range b.Packages {
		if b.Packages[i].Layer == "sha256:app1" {
			b.Packages[i].Layer = "sha256:rebuild"
		}
	}
	ps := newMapParts()
	headA, partsA, err := EncodeInventory(a.OS, a.Packages, a.History, a.Skipped)
	if err != nil {
		t.Fatal(err)
	}
	headB, partsB, err := EncodeInventory(b.OS, b.Packages, b.History, b.Skipped)
	if err != nil {
		t.Fatal(err)
	}
	ps.put(partsA)
	ps.put(partsB)
	if len(ps.parts) != len(partsA) {
		t.Fatalf("%d distinct parts for two images of the same packages, want %d", len(ps.parts), len(partsA))
	}
	ks := keysOf(advisory.PackageKey{Ecosystem: "npm", Name: "dep-7"})
	memo := newPartMemo(ps, ks, nil)
	for _, tc := range []struct {
		head  []byte
		want  storedInventory
		layer string
	}{{headA, a, "sha256:app1"}, {headB, b, "sha256:rebuild"}} {
		var rd inventoryReader
		got, err := rd.readStored(ctx, tc.head, nil, storeParts{ps})
		if err != nil || !reflect.DeepEqual(*got, tc.want) {
			t.Fatalf("got %+v, %v", got, err)
		}
		got, err = rd.readStored(ctx, tc.head, ks, memo)
		if err != nil || len(got.Packages) != 1 || got.Packages[0].Layer != tc.layer {
			t.Fatalf("through the memo: got %+v, %v, want layer %s", got, err, tc.layer)
		}
	}
}

// TestZstdPartsRefuseCorruption: a part whose ref names its layer while a package names one
// too, or whose zstd frame is cut, is corrupt.
func TestZstdPartsRefuseCorruption(t *testing.T) {
	ctx := context.Background()
	s := partsSample("app1")
	head, parts, err := EncodeInventory(s.OS, s.Packages, s.History, s.Skipped)
	if err != nil {
		t.Fatal(err)
	}
	compressed := func(inv storedInventory) []byte {
		js, err := json.Marshal(inv)
		if err != nil {
			t.Fatal(err)
		}
		data, err := compressPart(js)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	for name, reencode := range map[string]func(storedInventory, partRef) []byte{
		"layer twice": func(inv storedInventory, _ partRef) []byte {
			inv.Packages[0].Layer = "sha256:other"
			return compressed(inv)
		},
		"cut frame": func(inv storedInventory, _ partRef) []byte {
			data := compressed(inv)
			return data[:len(data)-3]
		},
	} {
		t.Run(name, func(t *testing.T) {
			bad, ps := withParts(t, head, parts, reencode, func(*partRef) {})
			var rd inventoryReader
			if _, err := rd.readStored(ctx, bad, nil, storeParts{ps}); !errors.Is(err, ErrCorruptInventory) {
				t.Fatalf("got %v, want ErrCorruptInventory", err)
			}
		})
	}
}

// FuzzDecodePart checks that no stored part, however damaged, makes decoding panic or run
// away (the hash is taken of the fuzzed bytes, so that they reach the decompressor).
func FuzzDecodePart(f *testing.F) {
	s := skimSample()
	_, parts, err := EncodeInventory(s.OS, s.Packages, s.History, s.Skipped)
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range parts {
		f.Add(p.Data)
	}
	f.Add(append([]byte(nil), zstdMagic...))
	f.Fuzz(func(t *testing.T, b []byte) {
		sum := sha256.Sum256(b)
		var rd inventoryReader
		for _, n := range []int{0, 1, 3, 1000} {
			ref := partRef{Hash: sum[:], Packages: n}
			part, err := decodePart(&rd, ref, b, nil)
			if err == nil && (part == nil || len(part.pkgs) != n) {
				t.Fatalf("decoded %v, want %d packages", part, n)
			}
		}
	})
}

// TestPartEncoderSameAsEncodeInventory: a PartEncoder gives what EncodeInventory gives, from its
// memory for parts it compressed before (the shared base) and after its generations turned over.
func TestPartEncoderSameAsEncodeInventory(t *testing.T) {
	for _, tc := range []struct {
		name   string
		budget int
	}{{"roomy", 1 << 20}, {"a part a generation", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewPartEncoder(tc.budget)
			// "app1 again" has app1's layers, one of the base's packages at another version: the
			// base layer's part remembered for app1 is not its part.
			for _, app := range []string{"app1", "app2", "app1", "app1 again", "app2", "app1"} {
				s := partsSample(strings.TrimSuffix(app, " again"))
				if app == "app1 again" {
					s.Packages[0].Version = "1.0-2"
				}
				wantHead, wantParts, err := EncodeInventory(s.OS, s.Packages, s.History, s.Skipped)
				if err != nil {
					t.Fatal(err)
				}
				head, parts, err := e.Encode(s.OS, s.Packages, s.History, s.Skipped)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(head, wantHead) || len(parts) != len(wantParts) {
					t.Fatalf("%s: header or part count differs", app)
				}
				for i := range parts {
					if !bytes.Equal(parts[i].Hash, wantParts[i].Hash) || !bytes.Equal(parts[i].Data, wantParts[i].Data) ||
						!slices.Equal(parts[i].Keys, wantParts[i].Keys) {
						t.Errorf("%s: part %d differs", app, i)
					}
				}
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			if remembered := len(e.cur.bySum) + len(e.prev.bySum); remembered == 0 || (tc.budget == 1 && len(e.cur.bySum) != 1) {
				t.Errorf("remembers %d parts (%d in its newest generation)", remembered, len(e.cur.bySum))
			}
		})
	}
}

// TestSamePackageTellsEveryField: packages that differ in any one field are not the same (so a
// field added to the package and not compared by samePackage fails here), copies are, and
// where samePackage says same the JSON is the same.
func TestSamePackageTellsEveryField(t *testing.T) {
	full := func() inventory.Package {
		return inventory.Package{Ecosystem: "Go", Name: "golang.org/x/net", Version: "0.1.0", SourceName: "s", SourceVersion: "sv",
			Epoch: 1, Release: "r", Arch: "amd64", PURL: "pkg:golang/golang.org/x/net@0.1.0", Path: "app/bin", Layer: "sha256:l",
			PackageManager: inventory.ManagerGoBinary, FromLockfile: true,
			Symbols:          &inventory.Symbols{Packages: map[string][]string{"golang.org/x/net/html": {"Parse"}}, GOOS: "linux", GOARCH: "amd64"},
			LanguagePackages: []inventory.LanguagePackage{{Ecosystem: "PyPI", Name: "p", Version: "1", Path: "x"}}}
	}
	if !samePackage(full(), full()) {
		t.Fatal("two copies of a package are not the same")
	}
	typ := reflect.TypeFor[inventory.Package]()
	for i := range typ.NumField() {
		b := full()
		f := reflect.ValueOf(&b).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Int:
			f.SetInt(f.Int() + 1)
		case reflect.Bool:
			f.SetBool(!f.Bool())
		case reflect.Pointer, reflect.Slice, reflect.Map:
			f.Set(reflect.Zero(f.Type()))
		default:
			t.Fatalf("field %s: kind %s not covered by this test", typ.Field(i).Name, f.Kind())
		}
		if samePackage(full(), b) {
			t.Errorf("packages differing in %s are the same", typ.Field(i).Name)
		}
	}
	for _, tc := range []struct {
		name         string
		editA, editB func(*inventory.Package)
		same         bool
	}{
		{"another symbol", nil, func(p *inventory.Package) { p.Symbols.Packages["golang.org/x/net/html"] = []string{"Render"} }, false},
		{"another symbols package", nil, func(p *inventory.Package) { p.Symbols.Packages["golang.org/x/net/http2"] = nil }, false},
		{"symbols of a package nil, not empty",
			func(p *inventory.Package) { p.Symbols.Packages["golang.org/x/net/html"] = nil },
			func(p *inventory.Package) { p.Symbols.Packages["golang.org/x/net/html"] = []string{} }, false},
		{"no symbols' packages, not an empty map",
			func(p *inventory.Package) { p.Symbols.Packages = map[string][]string{} },
			func(p *inventory.Package) { p.Symbols.Packages = nil }, false},
		{"another platform", nil, func(p *inventory.Package) { p.Symbols.GOOS = "darwin" }, false},
		{"another language package", nil, func(p *inventory.Package) { p.LanguagePackages[0].Version = "2" }, false},
		{"language packages nil and empty (both omitted)",
			func(p *inventory.Package) { p.LanguagePackages = nil },
			func(p *inventory.Package) { p.LanguagePackages = []inventory.LanguagePackage{} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := full(), full()
			if tc.editA != nil {
				tc.editA(&a)
			}
			tc.editB(&b)
			if got := samePackage(a, b); got != tc.same {
				t.Fatalf("samePackage = %v, want %v", got, tc.same)
			}
			ja, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			jb, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if tc.same && !bytes.Equal(ja, jb) {
				t.Errorf("the same packages encode differently:\n%s\n%s", ja, jb)
			}
		})
	}
}

// TestPartBucketOfNameIsFNV1a: stored headers carry bucket masks made with hash/fnv's 32-bit
// FNV-1a; the allocation-free hash must give every name the same bucket.
func TestPartBucketOfNameIsFNV1a(t *testing.T) {
	names := []string{"", "a", "openssl", "log4j-core", "org.apache.logging.log4j:log4j-core", "github.com/golang/go", "Ünïcode", strings.Repeat("x", 300)}
	for i := range 2000 {
		names = append(names, fmt.Sprintf("pkg-%d", i))
	}
	for _, n := range names {
		h := fnv.New32a()
		_, _ = io.WriteString(h, n)
		if want := int(h.Sum32() % partBuckets); partBucketOfName(n) != want {
			t.Fatalf("bucket of %q: %d, hash/fnv gives %d", n, partBucketOfName(n), want)
		}
	}
}

// BenchmarkPartEncoderEncode encodes images on one base, as a scanning node does: the base's
// part is taken from the encoder, the image's own parts are encoded.
func BenchmarkPartEncoderEncode(b *testing.B) {
	e := NewPartEncoder(partEncoderBudget)
	invs := make([]storedInventory, 16)
	for i := range invs {
		invs[i] = partsSample(fmt.Sprintf("app%d", i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		inv := invs[i%len(invs)]
		if _, _, err := e.Encode(inv.OS, inv.Packages, inv.History, inv.Skipped); err != nil {
			b.Fatal(err)
		}
	}
}
