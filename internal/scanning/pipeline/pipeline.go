// Package pipeline is the one scan of an image that `lading scan`, the registry's scan workers
// and continuous re-evaluation share: each layer read once through internal/inventory (or its
// inventory taken from a cache keyed by layer digest), the layers merged, the package keys
// computed, the advisories of those keys looked up, and the packages matched.
//
// It knows neither the metadata store nor the blob store, so that `lading scan` runs it
// without a server: layers come as streams (Opener), and the layer cache and the advisories
// through small interfaces their users implement.
package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/match"
)

// Opener opens a layer blob as stored (compressed or not) for one read from the start.
// imagesrc.Layer has it; the registry opens its blob store.
type Opener interface {
	Open(ctx context.Context) (io.ReadCloser, error)
}

// Layer is one layer of an image.
type Layer struct {
	// Digest is the digest of the blob as stored: it keys the cache and names the layer in
	// findings (ECR's sourceLayerHash).
	Digest string
	// Size is the blob's size in bytes, or -1 when unknown (for progress only).
	Size int64
	// CreatedBy is the image history's created_by for the layer, if known.
	CreatedBy string
	Content   Opener
}

// AbsentError is what an Opener returns for a layer whose content is absent by design (a
// non-distributable layer a registry never held): the scan records Reason as skipped for the
// layer and goes on without it.
type AbsentError struct{ Reason string }

func (e *AbsentError) Error() string { return e.Reason }

// ErrUnreadableLayer wraps the failure to read a layer's content as a layer (not a tar
// archive, a corrupt or truncated stream): the image's fault rather than the scanner's.
var ErrUnreadableLayer = errors.New("not a readable layer")

// LayerError names the layer a scan failed on.
type LayerError struct {
	Digest string
	Err    error
}

func (e *LayerError) Error() string { return "layer " + e.Digest + ": " + e.Err.Error() }

func (e *LayerError) Unwrap() error { return e.Err }

// Cache keeps layer inventories by layer digest and mode, so that a layer shared by several
// images is read once.
type Cache interface {
	// Get returns the cached inventory of a layer, or false when there is none; an entry that
	// cannot be used counts as none, so the layer is read again.
	Get(ctx context.Context, digest string, mode inventory.Mode) (*inventory.LayerInventory, bool, error)
	Put(ctx context.Context, digest string, mode inventory.Mode, li *inventory.LayerInventory) error
}

// Advisories gives what matching needs for an image's package keys. The registry hands its
// in-memory index of every advisory; `lading scan` loads just those of the keys.
type Advisories interface {
	For(ctx context.Context, keys []advisory.PackageKey) (match.Advisories, error)
}

// AdvisoriesFunc is an Advisories of a function.
type AdvisoriesFunc func(ctx context.Context, keys []advisory.PackageKey) (match.Advisories, error)

// For calls f.
func (f AdvisoriesFunc) For(ctx context.Context, keys []advisory.PackageKey) (match.Advisories, error) {
	return f(ctx, keys)
}

// Index is the Advisories of an index that already holds every advisory.
func Index(adv match.Advisories) Advisories {
	return AdvisoriesFunc(func(context.Context, []advisory.PackageKey) (match.Advisories, error) { return adv, nil })
}

// Scanner runs the pipeline. The zero value scans in enhanced mode, without a cache.
type Scanner struct {
	// Mode selects the extractors (inventory.ModeEnhanced when empty).
	Mode inventory.Mode
	// ScratchDir is where layer reads spill large files (inventory.Options.ScratchDir).
	ScratchDir string
	// Cache, when set, is asked for each layer before it is read and given what was read.
	Cache  Cache
	Logger *slog.Logger
	// Progress, when set, wraps the stream of layer i (of those given) as it is read; layers
	// the cache holds are not read. `lading scan` draws progress on a terminal with it.
	// Layers are read concurrently: Progress and the readers it returns must be safe for that.
	Progress func(i int, l Layer, r io.Reader) io.Reader
	// LayerDone, when set, is told each layer's inventory once it is read or taken from the
	// cache (`lading scan` counts the packages found with it). Calls do not overlap, but come
	// in the order layers finish.
	LayerDone func(i int, l Layer, li *inventory.LayerInventory)
	// Parallel is how many layers of the image are read at once (default GOMAXPROCS; 1 reads
	// them one by one).
	Parallel int
	// Slots, when set, is shared by every scan of a process: each layer read holds one of its
	// units, so that the layers read at once in the process stay within its size whatever the
	// number of concurrent scans. Its size should be the Parallel of the scans.
	Slots *semaphore.Weighted
	// MemoryBytes bounds the file content held in memory by the layer reads of one scan
	// (default 8 MiB), split evenly between the layers read at once; a file that does not fit
	// spills to ScratchDir (the page cache, not the process's memory). Decompressors and the
	// inventories found come on top.
	MemoryBytes int64
	// KeepOSOwned reports language packages an OS package installed on their own too
	// (inventory.MergeOptions); by default they are reported once, as the OS package.
	KeepOSOwned bool
	// GzipProgram is the gzip decoder run for large gzip layers (inventory.Options.GzipProgram);
	// "" decodes them in process.
	GzipProgram string
}

// Inventory is an image's merged inventory with what matching and storing it need.
type Inventory struct {
	*inventory.Image
	// History maps a layer digest to its created_by, for the layers that have one.
	History map[string]string
	// Keys are the distinct advisory keys of the packages, in package order.
	Keys []advisory.PackageKey
}

// Result is a scanned image: its inventory and the match.
type Result struct {
	*Inventory
	Matched
}

// Matched is the match of packages against advisories.
type Matched struct {
	Findings []match.Finding
	// NotEvaluated are the packages whose version could not be compared (they were matched
	// only against what needs no ordering) and the advisories whose ranges could not be
	// evaluated: what the scan cannot vouch for.
	NotEvaluated []match.NotEvaluated
}

func (s Scanner) mode() inventory.Mode {
	if s.Mode == "" {
		return inventory.ModeEnhanced
	}
	return s.Mode
}

func (s Scanner) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// Scan inventories the layers, lowest first, and matches the packages against the advisories
// of their keys.
func (s Scanner) Scan(ctx context.Context, layers []Layer, adv Advisories) (*Result, error) {
	inv, err := s.Inventory(ctx, layers)
	if err != nil {
		return nil, err
	}
	a, err := adv.For(ctx, inv.Keys)
	if err != nil {
		return nil, fmt.Errorf("load advisories: %w", err)
	}
	m := Match(inv.Packages, a, inv.History)
	if len(m.NotEvaluated) > 0 {
		s.logger().Debug("packages not evaluated", "packages", match.NotEvaluatedPackages(m.NotEvaluated), "entries", len(m.NotEvaluated))
	}
	return &Result{Inventory: inv, Matched: m}, nil
}

// defaultMemoryBytes is Scanner.MemoryBytes's default. Executables and archives are what
// fill it: with 64 MiB, a scan of an image with gcc, LLVM and a JDK held each big executable
// in the heap (880 MB allocated over the scan) and peaked at 140 MiB of RSS, most of it
// garbage between collections; with 8 MiB the big files go to scratch files, the peak is
// about 60 MiB and the CPU time the same (bench/scanner, apt-like image).
const defaultMemoryBytes = 8 << 20

func (s Scanner) parallel() int {
	if s.Parallel > 0 {
		return s.Parallel
	}
	return runtime.GOMAXPROCS(0)
}

// layerLimits are the limits of one layer read: its share of the scan's memory budget.
func (s Scanner) layerLimits() inventory.Limits {
	total := s.MemoryBytes
	if total <= 0 {
		total = defaultMemoryBytes
	}
	return inventory.Limits{MaxMemoryBytes: max(total/int64(s.parallel()), 1<<20)}
}

// Inventory reads each layer once (or takes its inventory from the cache) and merges them.
// Up to Parallel layers are read at once; each layer's inventory depends on its content alone
// (whiteouts and opaque directories are applied by the merge, lowest layer first), so the
// result is the same as reading them in order. The first layer that fails stops the others.
func (s Scanner) Inventory(ctx context.Context, layers []Layer) (*Inventory, error) {
	read := make([]*inventory.LayerInventory, len(layers))
	history := map[string]string{}
	for _, l := range layers {
		if l.CreatedBy != "" {
			history[l.Digest] = l.CreatedBy
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.parallel())
	var doneMu sync.Mutex
	for _, i := range largestFirst(layers) {
		l := layers[i]
		// Stop handing out layers once one failed: its error is the answer.
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			li, err := s.layer(gctx, i, l)
			if err != nil {
				return &LayerError{Digest: l.Digest, Err: err}
			}
			read[i] = li
			if s.LayerDone != nil {
				doneMu.Lock()
				defer doneMu.Unlock()
				s.LayerDone(i, l, li)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	img := inventory.MergeWith(read, inventory.MergeOptions{KeepOSOwned: s.KeepOSOwned})
	return &Inventory{Image: img, History: history, Keys: Keys(img.Packages)}, nil
}

// largestFirst is the order in which Inventory hands out the layers: by size, largest first
// (those of unknown size last, in their order). A scan lasts as long as its busiest reader,
// and an image's largest layer is often its last (an application's binaries over a small
// base): handed out last, it was read alone while the other readers had nothing left to do
// (go-app: 76-88 ms for its layers, its largest started after 21-30 ms).
func largestFirst(layers []Layer) []int {
	order := make([]int, len(layers))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(layers[b].Size, layers[a].Size) })
	return order
}

func (s Scanner) layer(ctx context.Context, i int, l Layer) (*inventory.LayerInventory, error) {
	mode := s.mode()
	if s.Cache != nil {
		li, ok, err := s.Cache.Get(ctx, l.Digest, mode)
		if err != nil {
			return nil, err
		}
		if ok {
			return li, nil
		}
	}
	if s.Slots != nil {
		if err := s.Slots.Acquire(ctx, 1); err != nil {
			return nil, err
		}
		defer s.Slots.Release(1)
	}
	rc, err := l.Content.Open(ctx)
	if absent, ok := errors.AsType[*AbsentError](err); ok {
		// Not cached: the content may yet arrive.
		return &inventory.LayerInventory{Fingerprint: inventory.Fingerprint(mode), Digest: l.Digest, Mode: mode,
			Skipped: []inventory.Skipped{{Layer: l.Digest, Reason: absent.Reason}}}, nil
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var r io.Reader = rc
	if s.Progress != nil {
		r = s.Progress(i, l, r)
	}
	li, err := inventory.ScanLayer(ctx, r, l.Digest, inventory.Options{Mode: mode, ScratchDir: s.ScratchDir, Logger: s.Logger,
		Limits: s.layerLimits(), GzipProgram: s.GzipProgram, LayerSize: l.Size})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", ErrUnreadableLayer, err)
	}
	if s.Cache != nil {
		if err := s.Cache.Put(ctx, l.Digest, mode, li); err != nil {
			return nil, err
		}
	}
	return li, nil
}

// Keys are the distinct advisory keys of packages, in package order; packages without an
// ecosystem (OS packages of an unknown release) have none.
func Keys(pkgs []inventory.Package) []advisory.PackageKey {
	seen := map[advisory.PackageKey]bool{}
	var out []advisory.PackageKey
	for _, p := range pkgs {
		if p.Ecosystem == "" {
			continue
		}
		if k := match.Key(p); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// Match matches packages against advisories: the step a scan and a re-evaluation of stored
// inventories share. history maps a layer digest to its created_by.
func Match(pkgs []inventory.Package, adv match.Advisories, history map[string]string) Matched {
	fs, unknown := match.Image(pkgs, adv, history)
	return Matched{Findings: fs, NotEvaluated: unknown}
}
