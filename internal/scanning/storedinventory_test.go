package scanning

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/inventory"
)

// bucketSample is skimSample with enough packages to fill every bucket.
func bucketSample() storedInventory {
	inv := skimSample()
	for i := range 300 {
		inv.Packages = append(inv.Packages, inventory.Package{Ecosystem: "npm", Name: fmt.Sprintf("dep-%d", i), Version: "1.0.0",
			Path: fmt.Sprintf("app/node_modules/dep-%d/package.json", i), Layer: "sha256:bb", PackageManager: inventory.ManagerNodePkg})
	}
	return inv
}

func keysOf(ks ...advisory.PackageKey) keySet {
	out := keySet{}
	for _, k := range ks {
		out[k] = struct{}{}
	}
	return out
}

// TestStoredInventoryReadsWhatTheFullDecodeHolds checks that reading a bucketed inventory for
// some keys gives the packages of the whole inventory those keys hold, in inventory order,
// and that inventories stored as one stream read the same.
func TestStoredInventoryReadsWhatTheFullDecodeHolds(t *testing.T) {
	want := bucketSample()
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
			full, err := decodeInventory(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*full, want) {
				t.Fatalf("full decode differs:\n got %+v\nwant %+v", *full, want)
			}
			for _, ks := range []keySet{
				keysOf(advisory.PackageKey{Ecosystem: "Debian:12", Name: "openssl"}),                             // source name: two packages
				keysOf(advisory.PackageKey{Ecosystem: "Debian", Name: "openssl"}),                                // the bare ecosystem
				keysOf(advisory.PackageKey{Ecosystem: "npm", Name: "dep-7"}, advisory.MakeKey("PyPI", "pyyaml")), // two buckets
				keysOf(advisory.PackageKey{Ecosystem: "npm", Name: `we"ird\name<&>`}),
				keysOf(advisory.PackageKey{Ecosystem: "npm", Name: "absent"}),
				{},
			} {
				var rd inventoryReader
				got, err := rd.read(raw, ks)
				if err != nil {
					t.Fatal(err)
				}
				wantPkgs := []inventory.Package{}
				for _, p := range want.Packages {
					if ks.holds(p) {
						wantPkgs = append(wantPkgs, p)
					}
				}
				if !reflect.DeepEqual(got.Packages, wantPkgs) || !reflect.DeepEqual(got.OS, want.OS) || !reflect.DeepEqual(got.History, want.History) {
					t.Fatalf("keys %v: got %+v, want %+v", ks, got.Packages, wantPkgs)
				}
			}
		})
	}
}

func TestStoredInventoryRefusesCorruption(t *testing.T) {
	s := bucketSample()
	raw, err := encodeBucketed(s.OS, s.Packages, s.History, s.Skipped)
	if err != nil {
		t.Fatal(err)
	}
	var rd inventoryReader
	h, _, err := rd.header(raw[len(inventoryMagic):])
	if err != nil {
		t.Fatal(err)
	}
	lying := func(edit func(*inventoryHeader)) []byte {
		h := h
		h.Buckets = append([]inventoryBucket(nil), h.Buckets...)
		edit(&h)
		var head bytes.Buffer
		if err := writeGzipJSON(&head, h); err != nil {
			t.Fatal(err)
		}
		_, body, _ := rd.header(raw[len(inventoryMagic):])
		out := appendUvarint(append([]byte(nil), inventoryMagic...), head.Len())
		out = append(out, head.Bytes()...)
		return append(out, body...)
	}
	for name, bad := range map[string][]byte{
		"truncated":   raw[:len(raw)-10],
		"header only": raw[:len(inventoryMagic)+3],
		"position out of range": lying(func(h *inventoryHeader) {
			h.Buckets[0].Ordinals = append([]int{h.Packages}, h.Buckets[0].Ordinals[1:]...)
		}),
		"fewer packages counted": lying(func(h *inventoryHeader) { h.Packages-- }),
		"bucket count":           lying(func(h *inventoryHeader) { h.Buckets = h.Buckets[:4] }),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeInventory(bad); !errors.Is(err, ErrCorruptInventory) {
				t.Fatalf("got %v, want ErrCorruptInventory", err)
			}
		})
	}
}

func appendUvarint(b []byte, n int) []byte {
	for n >= 0x80 {
		b = append(b, byte(n)|0x80)
		n >>= 7
	}
	return append(b, byte(n))
}

// FuzzDecodeInventory checks that no stored inventory, however damaged, makes decoding panic
// or run away.
func FuzzDecodeInventory(f *testing.F) {
	s := skimSample() // small seeds: the fuzzer mutates them far faster
	raw, err := encodeBucketed(s.OS, s.Packages, s.History, s.Skipped)
	if err != nil {
		f.Fatal(err)
	}
	single, err := encodeGzipJSON(s)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add(single)
	f.Add(append(append([]byte(nil), inventoryMagic...), 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		full, err := decodeInventory(b)
		if err == nil && full == nil {
			t.Fatal("no inventory and no error")
		}
		var rd inventoryReader
		_, _ = rd.read(b, keysOf(advisory.PackageKey{Ecosystem: "npm", Name: "lodash"}))
	})
}

// encodeBucketed encodes an inventory in sixteen buckets, the layout image inventories were
// stored in before parts (inventoryparts.go), which the store may still hold.
func encodeBucketed(osInfo *inventory.OSInfo, pkgs []inventory.Package, history map[string]string, skipped []inventory.Skipped) ([]byte, error) {
	var parts [inventoryBuckets][]inventory.Package
	h := inventoryHeader{OS: osInfo, History: history, Skipped: skipped, Packages: len(pkgs), Buckets: make([]inventoryBucket, inventoryBuckets)}
	for i, p := range pkgs {
		b := bucketOf(p)
		parts[b] = append(parts[b], p)
		h.Buckets[b].Ordinals = append(h.Buckets[b].Ordinals, i)
	}
	// One compressor for every part: each new one allocates about a megabyte, which was a
	// third of a small image's scan (BenchmarkScanOnPushThroughput).
	zw, err := kgzip.NewWriterLevel(io.Discard, kgzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	var body bytes.Buffer
	for b, ps := range parts {
		if len(ps) == 0 {
			continue
		}
		n := body.Len()
		if err := writeGzipJSONWith(zw, &body, storedInventory{Packages: ps}); err != nil {
			return nil, err
		}
		h.Buckets[b].Size = body.Len() - n
	}
	var head bytes.Buffer
	if err := writeGzipJSONWith(zw, &head, h); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(inventoryMagic)+binary.MaxVarintLen64+head.Len()+body.Len())
	out = append(out, inventoryMagic...)
	out = binary.AppendUvarint(out, uint64(head.Len()))
	out = append(out, head.Bytes()...)
	return append(out, body.Bytes()...), nil
}
