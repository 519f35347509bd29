package scanning

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning/pipeline"
	"github.com/lading-registry/lading/internal/store"
)

// An image inventory is stored in parts, one per layer: the packages of the image that layer
// added, in inventory order, without their layer, as one zstd frame of JSON
// ({"packages":[...]}, partcodec.go; parts written before are gzip'd and name the layer in
// every package). A part is kept once by its SHA-256 however many images hold it, so the
// images built on one base share the base's packages, and rebuilds whose layers add the same
// packages share those. The image's row keeps a header: the OS, history and skipped entries,
// the parts by hash with the layer that added each and a mask of the key buckets each fills
// (so a read for some keys fetches only the parts that can hold them), and the inventory's
// order as runs over the parts, so the packages come back in exactly the order the scan
// stored them (matching depends on it).
//
// A part is not bucketed inside as whole inventories were (encodeBucketed): sixteen gzip
// members per part made the parts of 2,000 generated images (bench/continuous) 23.4 MB
// instead of 14.2 MB, as most parts are an image's own layers, of a few hundred packages. A
// read for some keys decompresses a part it needs whole, and skims it (skimInventory),
// decoding only the packages it keeps; a re-evaluation decodes each part once (partMemo).
//
// Layout of the header: partedMagic, then one gzip'd JSON partedHeader.
var partedMagic = []byte("LADINV\x02\n")

// partBuckets is the number of bits of a part's key mask.
const partBuckets = 32

// partBucketOfName is the bit of a part's mask for the packages whose advisory key has name.
func partBucketOfName(name string) int {
	// FNV-1a, 32 bits, as hash/fnv's New32a computes it, without its allocation: the bits
	// of stored headers were made with it.
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	return int(h % partBuckets)
}

// partBucketOf is a package's bit; packages without an ecosystem, which no key selects,
// have the first.
func partBucketOf(p inventory.Package) int {
	if p.Ecosystem == "" {
		return 0
	}
	return partBucketOfName(match.Key(p).Name)
}

type partedHeader struct {
	OS       *inventory.OSInfo   `json:"os,omitempty"`
	History  map[string]string   `json:"history,omitempty"`
	Skipped  []inventory.Skipped `json:"skipped,omitempty"`
	Packages int                 `json:"packages"`
	Parts    []partRef           `json:"parts"`
	// Order is the inventory's order as pairs (part index, count): the next count packages of
	// the inventory are the next count of that part.
	Order []int `json:"order"`
}

type partRef struct {
	Hash     []byte `json:"hash"` // SHA-256 of the part as stored
	Packages int    `json:"packages"`
	// Layer is the layer that added the part's packages to this image, which the part's
	// packages then leave out. Empty in headers written before: their parts name it in every
	// package.
	Layer string `json:"layer,omitempty"`
	// Buckets has bit b set when the part holds packages of keys of bucket b (partBucketOfName).
	Buckets uint32 `json:"buckets"`
}

// PartStore fetches stored inventory parts by hash, in the order asked.
type PartStore interface {
	InventoryParts(ctx context.Context, hashes [][]byte) ([][]byte, error)
}

// EncodeInventory encodes an image inventory as the store keeps it: the header for the
// image's row, and its parts.
func EncodeInventory(osInfo *inventory.OSInfo, pkgs []inventory.Package, history map[string]string, skipped []inventory.Skipped) ([]byte, []store.InventoryPart, error) {
	return (*PartEncoder)(nil).Encode(osInfo, pkgs, history, skipped)
}

// PartEncoder encodes inventories as EncodeInventory does, remembering the parts it compressed
// lately by the SHA-256 of their JSON: the images built on one base hold the same base parts,
// and compressing them again for every image was a third of encoding an inventory. It also
// remembers the packages each layer's part was made of, so that a layer seen again with equal
// packages takes its part without its JSON being written and hashed again. The parts it
// returns may be shared with other calls' and must not be modified. Safe for concurrent use;
// a nil PartEncoder remembers nothing.
type PartEncoder struct {
	mu sync.Mutex
	// Two generations: a part is looked up in both, added to cur, and moved to cur when
	// found in prev; when cur holds budget bytes it becomes prev and the older one goes.
	cur, prev partGeneration
	budget    int
}

type partGeneration struct {
	bySum   map[[sha256.Size]byte]store.InventoryPart // by the SHA-256 of the part's JSON
	byLayer map[string]layerPart
	bytes   int
}

// layerPart is the part made last for a layer, and the packages it was made of (without their
// layer, as encoded). Neither is modified once remembered.
type layerPart struct {
	pkgs []inventory.Package
	part store.InventoryPart
}

func newPartGeneration() partGeneration {
	return partGeneration{bySum: map[[sha256.Size]byte]store.InventoryPart{}, byLayer: map[string]layerPart{}}
}

// partEncoderBudget is what a scanning service's PartEncoder keeps per generation: the parts
// of a few hundred base layers (a base's part is tens of kilobytes compressed).
const partEncoderBudget = 16 << 20

// packageBytes is about what a remembered package costs, counted against the budget.
const packageBytes = 256

// NewPartEncoder returns a PartEncoder that keeps up to about twice budget bytes of parts.
func NewPartEncoder(budget int) *PartEncoder {
	return &PartEncoder{cur: newPartGeneration(), prev: newPartGeneration(), budget: budget}
}

func (e *PartEncoder) lookup(k [sha256.Size]byte) (store.InventoryPart, bool) {
	if e == nil {
		return store.InventoryPart{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if p, ok := e.cur.bySum[k]; ok {
		return p, true
	}
	p, ok := e.prev.bySum[k]
	if ok {
		e.turnOver()
		e.putLocked(k, p)
	}
	return p, ok
}

// lookupLayer returns the part remembered for layer when it was made of packages equal to pkgs.
func (e *PartEncoder) lookupLayer(layer string, pkgs []inventory.Package) (store.InventoryPart, bool) {
	if e == nil {
		return store.InventoryPart{}, false
	}
	e.mu.Lock()
	lp, ok := e.cur.byLayer[layer]
	if !ok {
		if lp, ok = e.prev.byLayer[layer]; ok {
			e.turnOver()
			e.putLayerLocked(layer, lp)
		}
	}
	e.mu.Unlock()
	if !ok || !slices.EqualFunc(lp.pkgs, pkgs, samePackage) {
		return store.InventoryPart{}, false
	}
	return lp.part, true
}

func (e *PartEncoder) add(k [sha256.Size]byte, layer string, pkgs []inventory.Package, p store.InventoryPart) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.turnOver()
	e.putLocked(k, p)
	e.putLayerLocked(layer, layerPart{pkgs: pkgs, part: p})
}

// turnOver makes a new generation when the current one is full.
func (e *PartEncoder) turnOver() {
	if e.cur.bytes >= e.budget {
		e.prev, e.cur = e.cur, newPartGeneration()
	}
}

func (e *PartEncoder) putLocked(k [sha256.Size]byte, p store.InventoryPart) {
	if _, ok := e.cur.bySum[k]; !ok {
		e.cur.bytes += len(p.Data) + len(p.Hash)
	}
	e.cur.bySum[k] = p
}

func (e *PartEncoder) putLayerLocked(layer string, lp layerPart) {
	if _, ok := e.cur.byLayer[layer]; !ok {
		e.cur.bytes += len(layer) + len(lp.pkgs)*packageBytes
	}
	e.cur.byLayer[layer] = lp
}

// samePackage reports whether a and b are equal, and so encode to the same JSON: nil and empty
// maps and slices, which JSON writes differently where a field is not omitted when empty, are
// told apart there. TestSamePackageTellsEveryField fails when a field is added to the package
// and not compared here.
func samePackage(a, b inventory.Package) bool {
	return a.Ecosystem == b.Ecosystem && a.Name == b.Name && a.Version == b.Version &&
		a.SourceName == b.SourceName && a.SourceVersion == b.SourceVersion && a.Epoch == b.Epoch &&
		a.Release == b.Release && a.Arch == b.Arch && a.PURL == b.PURL && a.Path == b.Path &&
		a.Layer == b.Layer && a.PackageManager == b.PackageManager && a.FromLockfile == b.FromLockfile &&
		sameSymbols(a.Symbols, b.Symbols) && slices.Equal(a.LanguagePackages, b.LanguagePackages)
}

func sameSymbols(a, b *inventory.Symbols) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.GOOS == b.GOOS && a.GOARCH == b.GOARCH && (a.Packages == nil) == (b.Packages == nil) &&
		maps.EqualFunc(a.Packages, b.Packages, func(x, y []string) bool { return (x == nil) == (y == nil) && slices.Equal(x, y) })
}

// Encode is EncodeInventory, with the parts compressed before taken from e.
func (e *PartEncoder) Encode(osInfo *inventory.OSInfo, pkgs []inventory.Package, history map[string]string, skipped []inventory.Skipped) ([]byte, []store.InventoryPart, error) {
	h := partedHeader{OS: osInfo, History: history, Skipped: skipped, Packages: len(pkgs), Parts: []partRef{}, Order: []int{}}
	// Each package's part first, then each part's packages copied once into an array of its
	// size: grown by appends, the groups' copies were a fifth of encoding an inventory.
	partOf := map[string]int{}
	partIdx := make([]int, len(pkgs))
	var counts []int
	for k, p := range pkgs {
		i, ok := partOf[p.Layer]
		if !ok {
			i = len(counts)
			partOf[p.Layer] = i
			counts = append(counts, 0)
			h.Parts = append(h.Parts, partRef{})
		}
		partIdx[k] = i
		counts[i]++
		h.Parts[i].Buckets |= 1 << partBucketOf(p)
		if n := len(h.Order); n > 0 && h.Order[n-2] == i {
			h.Order[n-1]++
		} else {
			h.Order = append(h.Order, i, 1)
		}
	}
	// One array per part, not one for all: the encoder remembers a layer's packages, which must
	// not keep the rest of the image alive beyond what its budget counts.
	groups := make([][]inventory.Package, len(counts))
	for i, n := range counts {
		groups[i] = make([]inventory.Package, 0, n)
	}
	for k, p := range pkgs {
		groups[partIdx[k]] = append(groups[partIdx[k]], p)
	}
	zw, err := getGzipWriter()
	if err != nil {
		return nil, nil, err
	}
	defer gzipWriters.Put(zw)
	parts := make([]store.InventoryPart, 0, len(groups))
	stored := map[[sha256.Size]byte]bool{}
	var js bytes.Buffer
	for i, g := range groups {
		// The layer is the ref's, not the part's: layers of other images that added the same
		// packages (a rebuild whose dependencies did not change) share the part.
		h.Parts[i].Layer = g[0].Layer
		for j := range g {
			g[j].Layer = "" // g holds copies: the caller's packages keep theirs
		}
		part, ok := e.lookupLayer(h.Parts[i].Layer, g)
		if !ok {
			var err error
			if part, err = e.encodePart(&js, h.Parts[i].Layer, g); err != nil {
				return nil, nil, err
			}
		}
		h.Parts[i].Hash, h.Parts[i].Packages = part.Hash, len(g)
		if sum := [sha256.Size]byte(part.Hash); !stored[sum] { // two layers of the image may add the same packages
			stored[sum] = true
			parts = append(parts, part)
		}
	}
	var head bytes.Buffer
	head.Write(partedMagic)
	if err := writeGzipJSONWith(zw, &head, h); err != nil {
		return nil, nil, err
	}
	return head.Bytes(), parts, nil
}

// encodePart makes the part of the packages g that layer added, or takes the part of the same
// JSON from e.
func (e *PartEncoder) encodePart(js *bytes.Buffer, layer string, g []inventory.Package) (store.InventoryPart, error) {
	js.Reset()
	if err := json.NewEncoder(js).Encode(storedInventory{Packages: g}); err != nil {
		return store.InventoryPart{}, err
	}
	var jsonSum [sha256.Size]byte
	if e != nil {
		jsonSum = sha256.Sum256(js.Bytes())
		if part, ok := e.lookup(jsonSum); ok {
			e.add(jsonSum, layer, g, part)
			return part, nil
		}
	}
	data, err := compressPart(js.Bytes())
	if err != nil {
		return store.InventoryPart{}, err
	}
	sum := sha256.Sum256(data)
	part := store.InventoryPart{Hash: sum[:], Data: data, Keys: storeKeys(pipeline.Keys(g))}
	e.add(jsonSum, layer, g, part)
	return part, nil
}

// partedHeader decodes and checks the header of an inventory stored in parts.
func (rd *inventoryReader) partedHeader(raw []byte) (partedHeader, error) {
	var h partedHeader
	if err := rd.gunzip(raw[len(partedMagic):]); err != nil {
		return h, fmt.Errorf("%w: header: %w", ErrCorruptInventory, err)
	}
	if err := json.Unmarshal(rd.buf.Bytes(), &h); err != nil {
		return h, fmt.Errorf("%w: header: %w", ErrCorruptInventory, err)
	}
	if len(h.Order)%2 != 0 {
		return h, fmt.Errorf("%w: header: odd order", ErrCorruptInventory)
	}
	counted := make([]int, len(h.Parts))
	total := 0
	for i := 0; i < len(h.Order); i += 2 {
		p, n := h.Order[i], h.Order[i+1]
		if p < 0 || p >= len(h.Parts) || n <= 0 || n > h.Packages-total {
			return h, fmt.Errorf("%w: header: bad run %d×%d", ErrCorruptInventory, p, n)
		}
		counted[p] += n
		total += n
	}
	if total != h.Packages {
		return h, fmt.Errorf("%w: header: runs of %d packages, not %d", ErrCorruptInventory, total, h.Packages)
	}
	for i, p := range h.Parts {
		if len(p.Hash) != sha256.Size || counted[i] != p.Packages {
			return h, fmt.Errorf("%w: header: part %d does not match the order", ErrCorruptInventory, i)
		}
	}
	return h, nil
}

// decodedPart is what a read keeps of one part: the packages and their positions in the part.
type decodedPart struct {
	pkgs []inventory.Package
	at   []int
}

// partSource gives the parts an inventory read needs, decoded keeping the packages of ks (every
// package for nil).
type partSource interface {
	parts(ctx context.Context, rd *inventoryReader, refs []partRef, ks keySet) ([]*decodedPart, error)
	// mayHold reports whether the part of hash may hold packages of the keys read, beyond what
	// its bucket mask says.
	mayHold(hash []byte) bool
}

// storeParts reads parts from the store, each time.
type storeParts struct{ st PartStore }

func (storeParts) mayHold([]byte) bool { return true }

func (s storeParts) parts(ctx context.Context, rd *inventoryReader, refs []partRef, ks keySet) ([]*decodedPart, error) {
	hashes := make([][]byte, len(refs))
	for i, r := range refs {
		hashes[i] = r.Hash
	}
	raws, err := s.st.InventoryParts(ctx, hashes)
	if err != nil {
		return nil, err
	}
	out := make([]*decodedPart, len(refs))
	for i, raw := range raws {
		if out[i], err = decodePart(rd, refs[i], raw, ks); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodePart decodes a stored part, checking it is the part ref names.
func decodePart(rd *inventoryReader, ref partRef, raw []byte, ks keySet) (*decodedPart, error) {
	if sum := sha256.Sum256(raw); !bytes.Equal(sum[:], ref.Hash) {
		return nil, fmt.Errorf("%w: part %x: stored bytes do not hash to it", ErrCorruptInventory, ref.Hash)
	}
	keep := func(inventory.Package) bool { return true }
	if ks != nil {
		keep = ks.holds
	}
	inv, at, n, err := rd.readStreamCounting(raw, keep)
	if err != nil {
		return nil, fmt.Errorf("%w: part %x: %w", ErrCorruptInventory, ref.Hash, err)
	}
	if n != ref.Packages || inv.OS != nil || inv.History != nil || inv.Skipped != nil {
		return nil, fmt.Errorf("%w: part %x holds %d packages, the header says %d", ErrCorruptInventory, ref.Hash, n, ref.Packages)
	}
	return &decodedPart{pkgs: inv.Packages, at: at}, nil
}

// readStored decodes a stored image inventory of any layout keeping the packages of ks (every
// package for nil), in inventory order, getting the parts of one stored in parts from src.
func (rd *inventoryReader) readStored(ctx context.Context, raw []byte, ks keySet, src partSource) (*storedInventory, error) {
	if !bytes.HasPrefix(raw, partedMagic) {
		return rd.read(raw, ks)
	}
	h, err := rd.partedHeader(raw)
	if err != nil {
		return nil, err
	}
	inv := &storedInventory{OS: h.OS, History: h.History, Skipped: h.Skipped, Packages: []inventory.Package{}}
	var mask uint32
	for k := range ks {
		mask |= 1 << partBucketOfName(k.Name)
	}
	var refs []partRef
	var which []int
	for i, p := range h.Parts {
		if ks == nil || p.Buckets&mask != 0 && src.mayHold(p.Hash) {
			refs = append(refs, p)
			which = append(which, i)
		}
	}
	if len(refs) == 0 {
		return inv, nil
	}
	parts, err := src.parts(ctx, rd, refs, ks)
	if err != nil {
		return nil, err
	}
	// The inventory position of each package of the parts read.
	pos := make([][]int, len(h.Parts))
	for _, i := range which {
		pos[i] = make([]int, 0, h.Parts[i].Packages)
	}
	at := 0
	for i := 0; i < len(h.Order); i += 2 {
		p, n := h.Order[i], h.Order[i+1]
		if pos[p] != nil {
			for j := range n {
				pos[p] = append(pos[p], at+j)
			}
		}
		at += n
	}
	type placed struct {
		at int
		p  inventory.Package
	}
	var got []placed
	for k, part := range parts {
		layer := h.Parts[which[k]].Layer
		for j, p := range part.pkgs {
			if layer != "" {
				if p.Layer != "" {
					return nil, fmt.Errorf("%w: part %x of layer %s names a package's layer", ErrCorruptInventory, h.Parts[which[k]].Hash, layer)
				}
				p.Layer = layer // p is a copy: a memo's part is shared by images of other layers
			}
			got = append(got, placed{pos[which[k]][part.at[j]], p})
		}
	}
	slices.SortFunc(got, func(a, b placed) int { return a.at - b.at })
	for _, g := range got {
		inv.Packages = append(inv.Packages, g.p)
	}
	return inv, nil
}

// partMemo decodes each part once for a pass over many inventories read for the same keys:
// images built on one base share its part, which is decoded once rather than once per image.
// It holds at most maxPackages packages, counting a whole part when it reads every package and
// one package a part otherwise (it keeps the few of the changed keys); parts past that are
// decoded each time.
type partMemo struct {
	st          PartStore
	ks          keySet
	maxPackages int
	// holding are the parts the store says may hold packages of ks (InventoryPartsHolding),
	// the only ones read; nil reads every part whose mask allows.
	holding map[string]bool

	mu      sync.Mutex
	held    int
	entries map[string]*memoPart
	decodes atomic.Int64 // parts decoded, for tests
}

type memoPart struct {
	done chan struct{}
	part *decodedPart
	err  error
}

// memoMaxPackages bounds a pass's memo: about 100 MB of decoded packages.
const memoMaxPackages = 200_000

func newPartMemo(st PartStore, ks keySet, holding map[string]bool) *partMemo {
	return &partMemo{st: st, ks: ks, holding: holding, maxPackages: memoMaxPackages, entries: map[string]*memoPart{}}
}

func (m *partMemo) mayHold(hash []byte) bool { return m.holding == nil || m.holding[string(hash)] }

// parts decodes for the memo's keys: ks must be those (the reads of one pass all ask for them).
func (m *partMemo) parts(ctx context.Context, rd *inventoryReader, refs []partRef, _ keySet) ([]*decodedPart, error) {
	out := make([]*decodedPart, len(refs))
	// Claim the parts nobody decodes yet, fetch them in one query, decode them, and wait for
	// the others, which concurrent readers claimed.
	var mine []int
	var waits []*memoPart
	m.mu.Lock()
	for i, r := range refs {
		e := m.entries[string(r.Hash)]
		if e == nil {
			e = &memoPart{done: make(chan struct{})}
			if m.held < m.maxPackages {
				m.entries[string(r.Hash)] = e
				m.held++
				if m.ks == nil {
					m.held += r.Packages - 1
				}
			}
			mine = append(mine, i)
		}
		waits = append(waits, e)
	}
	m.mu.Unlock()
	if len(mine) > 0 {
		hashes := make([][]byte, len(mine))
		for k, i := range mine {
			hashes[k] = refs[i].Hash
		}
		raws, err := m.st.InventoryParts(ctx, hashes)
		for k, i := range mine {
			e := waits[i]
			if err != nil {
				e.err = err
			} else {
				e.part, e.err = decodePart(rd, refs[i], raws[k], m.ks)
				m.decodes.Add(1)
			}
			close(e.done)
		}
		if err != nil {
			m.forget(refs, mine)
			return nil, err
		}
	}
	for i, e := range waits {
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil {
			return nil, e.err
		}
		out[i] = e.part
	}
	return out, nil
}

// forget drops the entries of parts whose fetch failed, so that a later read fetches them again.
func (m *partMemo) forget(refs []partRef, which []int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, i := range which {
		delete(m.entries, string(refs[i].Hash))
	}
}

var (
	_ partSource = (*partMemo)(nil)
	_ partSource = storeParts{}
)
