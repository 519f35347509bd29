package scanning

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"sync"

	kgzip "github.com/klauspost/compress/gzip"

	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/match"
)

// Image inventories are now stored in parts (inventoryparts.go); the two layouts before, which
// stores may still hold and are read, are the bucketed one described here and, before it, a
// single gzip'd JSON stream (storedInventory), which is also the layout of one part.
//
// A bucketed image inventory is split into buckets by the name of each package's advisory key,
// each bucket compressed on its own, so that a re-evaluation decompresses and reads only the
// buckets that can hold the keys a change touched (one bucket in sixteen for one key) instead
// of the whole inventory. A key and the same name in its bare ecosystem ("Debian:12" and
// "Debian") share a bucket, as the name alone picks it.
//
// Layout: inventoryMagic, the uvarint length of the gzip'd JSON header, the header, then the
// buckets' gzip'd JSON ({"packages":[...]}), in order, of the sizes the header gives.
// Inventories stored before are a single gzip'd JSON stream (storedInventory); both are read.
const inventoryBuckets = 16

// inventoryMagic opens a bucketed inventory; a single gzip stream opens with 1f 8b.
var inventoryMagic = []byte("LADINV\x01\n")

// ErrCorruptInventory means a stored inventory does not decode.
var ErrCorruptInventory = errors.New("stored inventory is corrupt")

type inventoryHeader struct {
	OS       *inventory.OSInfo   `json:"os,omitempty"`
	History  map[string]string   `json:"history,omitempty"`
	Skipped  []inventory.Skipped `json:"skipped,omitempty"`
	Packages int                 `json:"packages"`
	Buckets  []inventoryBucket   `json:"buckets"`
}

type inventoryBucket struct {
	Size int `json:"size"` // bytes of the bucket's gzip'd JSON; 0 when it holds no package
	// Ordinals are the positions in the inventory of the bucket's packages, in bucket order.
	Ordinals []int `json:"ordinals,omitempty"`
}

// bucketOfName is the bucket of packages whose advisory key has this name.
func bucketOfName(name string) int {
	h := fnv.New32a()
	_, _ = io.WriteString(h, name)
	return int(h.Sum32() % inventoryBuckets)
}

// bucketOf is a package's bucket; packages without an ecosystem, which no key selects, go to
// the first.
func bucketOf(p inventory.Package) int {
	if p.Ecosystem == "" {
		return 0
	}
	return bucketOfName(match.Key(p).Name)
}

// writeGzipJSONWith writes v as one gzip member through zw, reset to write to w.
func writeGzipJSONWith(zw *kgzip.Writer, w io.Writer, v any) error {
	zw.Reset(w)
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		return err
	}
	return zw.Close()
}

// gzipWriters keeps the writers EncodeInventory resets for each part: a compressor's state is
// about a megabyte, and a scan (or the bench's loader, on every core) encodes many inventories.
// A reset writer writes the same bytes as a new one of its level. Only a cache: no answer
// depends on it.
var gzipWriters = sync.Pool{New: func() any {
	zw, err := kgzip.NewWriterLevel(io.Discard, kgzip.BestSpeed)
	if err != nil {
		return err
	}
	return zw
}}

// getGzipWriter takes a writer of level BestSpeed from gzipWriters; put it back when done.
func getGzipWriter() (*kgzip.Writer, error) {
	switch v := gzipWriters.Get().(type) {
	case *kgzip.Writer:
		return v, nil
	case error:
		return nil, v
	default:
		return nil, fmt.Errorf("gzip writer pool: %T", v)
	}
}

func writeGzipJSON(w io.Writer, v any) error {
	zw, err := kgzip.NewWriterLevel(w, kgzip.BestSpeed)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		return err
	}
	return zw.Close()
}

// decodeInventory decodes a whole stored inventory.
func decodeInventory(raw []byte) (*storedInventory, error) {
	var rd inventoryReader
	return rd.read(raw, nil)
}

// inventoryReader decompresses stored inventories, reusing its buffers.
type inventoryReader struct {
	zr   *kgzip.Reader
	buf  bytes.Buffer
	zbuf []byte // zstd's output, reused
}

// read decodes a stored inventory keeping only the packages whose keys ks holds (every
// package when ks is nil), in inventory order. Of a bucketed inventory only the buckets
// that can hold those keys are read.
func (rd *inventoryReader) read(raw []byte, ks keySet) (*storedInventory, error) {
	keep := func(inventory.Package) bool { return true }
	if ks != nil {
		keep = ks.holds
	}
	if !bytes.HasPrefix(raw, inventoryMagic) {
		inv, _, err := rd.readStream(raw, keep)
		return inv, err
	}
	h, body, err := rd.header(raw[len(inventoryMagic):])
	if err != nil {
		return nil, err
	}
	var want [inventoryBuckets]bool
	for b := range want {
		want[b] = ks == nil
	}
	for k := range ks {
		want[bucketOfName(k.Name)] = true
	}
	inv := &storedInventory{OS: h.OS, History: h.History, Skipped: h.Skipped, Packages: []inventory.Package{}}
	type placed struct {
		at int
		p  inventory.Package
	}
	var got []placed
	off := 0
	for b, bk := range h.Buckets {
		data := body[off : off+bk.Size]
		off += bk.Size
		if !want[b] || bk.Size == 0 {
			continue
		}
		part, kept, err := rd.readStream(data, keep)
		if err != nil {
			return nil, fmt.Errorf("%w: bucket %d: %w", ErrCorruptInventory, b, err)
		}
		for i, p := range part.Packages {
			if kept[i] >= len(bk.Ordinals) {
				return nil, fmt.Errorf("%w: bucket %d holds more packages than its header says", ErrCorruptInventory, b)
			}
			got = append(got, placed{bk.Ordinals[kept[i]], p})
		}
	}
	slices.SortFunc(got, func(a, b placed) int { return a.at - b.at })
	for _, g := range got {
		inv.Packages = append(inv.Packages, g.p)
	}
	return inv, nil
}

// header decodes a bucketed inventory's header and checks it against the rest, which it
// returns.
func (rd *inventoryReader) header(b []byte) (inventoryHeader, []byte, error) {
	var h inventoryHeader
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return h, nil, fmt.Errorf("%w: bad header length", ErrCorruptInventory)
	}
	head, body := b[k:k+int(n)], b[k+int(n):]
	if err := rd.gunzip(head); err != nil {
		return h, nil, fmt.Errorf("%w: header: %w", ErrCorruptInventory, err)
	}
	if err := json.Unmarshal(rd.buf.Bytes(), &h); err != nil {
		return h, nil, fmt.Errorf("%w: header: %w", ErrCorruptInventory, err)
	}
	if len(h.Buckets) != inventoryBuckets || h.Packages < 0 {
		return h, nil, fmt.Errorf("%w: header names %d buckets", ErrCorruptInventory, len(h.Buckets))
	}
	total, count := 0, 0
	for _, bk := range h.Buckets {
		if bk.Size < 0 || bk.Size > len(body)-total {
			return h, nil, fmt.Errorf("%w: bucket sizes exceed the inventory", ErrCorruptInventory)
		}
		total += bk.Size
		count += len(bk.Ordinals)
		for _, o := range bk.Ordinals {
			if o < 0 || o >= h.Packages {
				return h, nil, fmt.Errorf("%w: package position %d out of range", ErrCorruptInventory, o)
			}
		}
	}
	if count != h.Packages || total != len(body) {
		return h, nil, fmt.Errorf("%w: header does not describe the buckets", ErrCorruptInventory)
	}
	return h, body, nil
}

// inflate decompresses one stored stream into rd.buf: zstd (inventory parts, partcodec.go) or
// gzip (everything else, and parts stored before parts were zstd).
func (rd *inventoryReader) inflate(raw []byte) error {
	if !bytes.HasPrefix(raw, zstdMagic) {
		return rd.gunzip(raw)
	}
	c, err := partCodec()
	if err != nil {
		return err
	}
	out, err := c.dec.DecodeAll(raw, rd.zbuf[:0])
	if err != nil {
		return err
	}
	rd.zbuf = out
	rd.buf.Reset()
	rd.buf.Write(out)
	return nil
}

func (rd *inventoryReader) gunzip(raw []byte) error {
	var err error
	if rd.zr == nil {
		rd.zr, err = kgzip.NewReader(bytes.NewReader(raw))
	} else {
		err = rd.zr.Reset(bytes.NewReader(raw))
	}
	if err != nil {
		return err
	}
	rd.buf.Reset()
	_, err = io.Copy(&rd.buf, rd.zr)
	return err
}

// readStream decodes one gzip'd JSON inventory (a whole older inventory, or a bucket) keeping
// the packages keep selects, in order, and returns their positions in the stream. keep sees a
// package with only Ecosystem, Name, SourceName and PackageManager set; the packages it
// selects are decoded in full. The result is the full decode's, filtered.
func (rd *inventoryReader) readStream(raw []byte, keep func(inventory.Package) bool) (*storedInventory, []int, error) {
	inv, kept, _, err := rd.readStreamCounting(raw, keep)
	return inv, kept, err
}

// readStreamCounting is readStream, also returning how many packages the stream holds.
func (rd *inventoryReader) readStreamCounting(raw []byte, keep func(inventory.Package) bool) (*storedInventory, []int, int, error) {
	if err := rd.inflate(raw); err != nil {
		return nil, nil, 0, err
	}
	var kept []int
	n := 0
	counted := func(p inventory.Package) bool {
		i := n
		n++
		if keep(p) {
			kept = append(kept, i)
			return true
		}
		return false
	}
	inv, err := skimInventory(rd.buf.Bytes(), counted)
	if !errors.Is(err, errNotSkimmable) {
		return inv, kept, n, err
	}
	kept, n = nil, 0
	var full storedInventory
	if err := json.NewDecoder(bytes.NewReader(rd.buf.Bytes())).Decode(&full); err != nil {
		return nil, nil, 0, err
	}
	pkgs := full.Packages[:0]
	for _, p := range full.Packages {
		if counted(p) {
			pkgs = append(pkgs, p)
		}
	}
	full.Packages = pkgs
	return &full, kept, n, nil
}

// DecodeStoredInventory decodes a stored image inventory (any layout) into the packages and
// operating system it holds, reading its parts from parts: for SBOMs of scanned images.
func DecodeStoredInventory(ctx context.Context, parts PartStore, raw []byte) (*inventory.Image, error) {
	var rd inventoryReader
	inv, err := rd.readStored(ctx, raw, nil, storeParts{parts})
	if err != nil {
		return nil, err
	}
	return &inventory.Image{OS: inv.OS, Packages: inv.Packages, Skipped: inv.Skipped}, nil
}
