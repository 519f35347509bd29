package inventory

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/lading-registry/lading/internal/inventory/plugin"
)

// ErrCorruptLayer is returned for a layer whose tar or compressed stream breaks off or is
// damaged after its start.
var ErrCorruptLayer = errors.New("corrupt layer")

const (
	maxPathLen      = 4096
	maxTrackedPaths = 200_000
	maxReasonLen    = 300
)

// ScanLayer reads one layer's tar stream (gzip, zstd or uncompressed, detected by magic
// bytes) once, and returns what the layer contributes to any image that holds it. It reads
// only r; content too large for memory goes to a temporary directory under
// opts.ScratchDir, removed before it returns. Files that cannot be read are listed in
// Skipped; a stream that is not a tar archive, or breaks off, is an error.
func ScanLayer(ctx context.Context, r io.Reader, layerDigest string, opts Options) (*LayerInventory, error) {
	opts = opts.withDefaults()
	parent := opts.ScratchDir
	if parent == "" {
		parent = os.TempDir()
	}
	bufs := plugin.NewBuffers(parent, opts.Limits.MaxMemoryBytes)
	defer func() {
		if err := bufs.Close(); err != nil {
			opts.Logger.WarnContext(ctx, "remove scratch directory", "error", err)
		}
	}()
	ls := &layerScan{
		opts:    opts,
		lim:     opts.Limits,
		digest:  layerDigest,
		bufs:    bufs,
		files:   map[string][]fileResult{},
		paths:   map[string]struct{}{},
		links:   map[string]string{},
		nonDir:  map[string]byte{},
		require: make([]plugin.Plugin, 0, len(opts.Plugins)),
		inv: &LayerInventory{
			Fingerprint: fingerprint(opts.Plugins),
			Digest:      layerDigest,
			Mode:        opts.Mode,
		},
	}
	ls.env = &plugin.Env{Layer: layerDigest, Limits: opts.Limits, Buffers: bufs,
		Skip: func(path, reason string) { ls.skip(path, "%s", reason) }}
	start := time.Now()
	if err := ls.run(ctx, r); err != nil {
		return nil, err
	}
	inv := ls.finish()
	opts.Logger.DebugContext(ctx, "layer scanned", "layer", layerDigest, "entries", inv.Stats.Entries,
		"bytes", inv.Stats.DecompressedBytes, "packages", len(inv.Packages), "osDatabases", len(inv.OSDatabases),
		"skipped", len(inv.Skipped), "incomplete", inv.Incomplete, "duration", time.Since(start))
	return inv, nil
}

// layerScan is the state of one ScanLayer call.
type layerScan struct {
	opts   Options
	lim    Limits
	digest string
	bufs   *plugin.Buffers
	env    *plugin.Env
	inv    *LayerInventory

	// files holds what the plugins found, by path; a later entry for the same path replaces
	// an earlier one.
	files map[string][]fileResult
	paths map[string]struct{}
	// links are this layer's symbolic links (all of them, up to maxTrackedPaths), to refuse
	// entries written through them and to keep those on the way to os-release.
	links map[string]string
	// nonDir records the non-directory entries ('f' file, 'l' link, 'h' hard link, 'o' other),
	// up to maxTrackedPaths, to resolve hard links and check opaque markers.
	nonDir      map[string]byte
	skippedOver int
	// cur and require are reused for every file, as FileRequired runs for each one.
	cur     tarFile
	require []plugin.Plugin
}

// fileResult is what one plugin found in one file.
type fileResult struct {
	plugin plugin.Plugin
	info   fs.FileInfo
	found  plugin.Found
}

func (ls *layerScan) skip(p, format string, args ...any) {
	if len(ls.inv.Skipped) >= ls.lim.MaxSkippedPerLayer {
		ls.skippedOver++
		return
	}
	reason := fmt.Sprintf(format, args...)
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen] + "..."
	}
	if len(p) > maxPathLen {
		p = p[:maxPathLen] + "..."
	}
	ls.inv.Skipped = append(ls.inv.Skipped, Skipped{Path: p, Layer: ls.digest, Reason: reason})
}

func (ls *layerScan) run(ctx context.Context, r io.Reader) error {
	dr, closeDecompressor, err := decompress(ctx, plugin.ContextReader(ctx, r), ls.opts)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("layer %s: %w", ls.digest, err)
	}
	defer closeDecompressor()
	counter := &countingReader{r: dr, max: ls.lim.MaxLayerBytes}
	tr := tar.NewReader(counter)
	defer func() { ls.inv.Stats.DecompressedBytes = counter.n }()
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, plugin.ErrTooLarge) {
				ls.inv.Incomplete = true
				ls.skip("/", "rest of the layer not read: %v", err)
				return nil
			}
			if first {
				return fmt.Errorf("layer %s: %w: %v", ls.digest, ErrNotTar, err)
			}
			return fmt.Errorf("layer %s: %w after %d entries: %v", ls.digest, ErrCorruptLayer, ls.inv.Stats.Entries, err)
		}
		ls.inv.Stats.Entries++
		if err := ls.entry(ctx, tr, hdr); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, plugin.ErrTooLarge) {
				ls.inv.Incomplete = true
				ls.skip("/", "rest of the layer not read: %v", err)
				return nil
			}
			return fmt.Errorf("layer %s: %w: %v", ls.digest, ErrCorruptLayer, err)
		}
	}
}

// forget drops what earlier entries of this layer left at p: a later entry for the same
// path replaces it.
func (ls *layerScan) forget(p string) {
	delete(ls.files, p)
	delete(ls.links, p)
}

func (ls *layerScan) track(p string, kind byte) {
	if _, ok := ls.nonDir[p]; ok || len(ls.nonDir) < maxTrackedPaths {
		ls.nonDir[p] = kind
	}
}

// entry handles one tar entry. Its errors are stream errors; problems with the entry itself
// are recorded as skipped.
func (ls *layerScan) entry(ctx context.Context, tr *tar.Reader, hdr *tar.Header) error {
	p, absolute, err := cleanEntryPath(hdr.Name)
	if err != nil {
		ls.skip(hdr.Name, "entry name %s: not read", err)
		return nil
	}
	if len(p) > maxPathLen {
		ls.skip(p, "path longer than %d bytes: not read", maxPathLen)
		return nil
	}
	if p == "/" {
		return nil
	}
	if absolute {
		ls.skip(p, "absolute entry name: read as relative to the image root")
	}
	for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
		if _, ok := ls.links[dir]; ok {
			ls.skip(p, "written through %s, a symbolic link in the same layer: not read", dir)
			return nil
		}
	}
	dir, base := path.Split(p)
	dir = path.Clean(dir)
	if strings.HasPrefix(base, ".wh.") {
		ls.whiteout(p, dir, base)
		return nil
	}
	// Any entry, a directory too, replaces what an earlier entry of this layer left at p.
	ls.forget(p)
	switch hdr.Typeflag {
	case tar.TypeDir:
		delete(ls.nonDir, p)
		return nil
	case tar.TypeSymlink:
		ls.symlink(p, hdr.Linkname)
		return nil
	case tar.TypeLink:
		ls.hardlink(p, hdr.Linkname)
		return nil
	case tar.TypeReg:
		ls.track(p, 'f')
		return ls.file(ctx, tr, hdr, p)
	case tar.TypeChar, tar.TypeBlock:
		ls.track(p, 'o')
		ls.skip(p, "device node: not read")
	case tar.TypeFifo:
		ls.track(p, 'o')
		ls.skip(p, "fifo: not read")
	default:
		ls.track(p, 'o')
		ls.skip(p, "unsupported tar entry type %q: not read", hdr.Typeflag)
	}
	return nil
}

func (ls *layerScan) whiteout(p, dir, base string) {
	if base == ".wh..wh..opq" {
		if kind, ok := ls.nonDir[dir]; ok && kind != 'l' {
			ls.skip(p, "opaque-directory marker inside %s, which this layer writes as a file: ignored", dir)
			return
		}
		ls.inv.OpaqueDirs = append(ls.inv.OpaqueDirs, dir)
		return
	}
	name := strings.TrimPrefix(base, ".wh.")
	if name == "" || name == "." || name == ".." || strings.HasPrefix(name, ".wh.") {
		ls.skip(p, "malformed whiteout name: ignored")
		return
	}
	ls.inv.Whiteouts = append(ls.inv.Whiteouts, path.Join(dir, name))
}

func (ls *layerScan) symlink(p, target string) {
	if len(ls.links) < maxTrackedPaths {
		ls.links[p] = target
	}
	ls.track(p, 'l')
	if _, escapes := resolveLinkTarget(p, target); escapes {
		ls.skip(p, "symbolic link to %q leaves the image root: it is only followed inside the root", target)
	}
	// A link may replace a file or a whole directory in which a lower layer found packages.
	ls.paths[p] = struct{}{}
}

func (ls *layerScan) hardlink(p, linkname string) {
	ls.track(p, 'h')
	ls.paths[p] = struct{}{} // it replaces whatever lower layers had at p
	target, absolute, err := cleanEntryPath(linkname)
	if err != nil {
		ls.skip(p, "hard link to %q %s: not read", linkname, err)
		return
	}
	if absolute {
		ls.skip(p, "hard link to absolute name %q: read as relative to the image root", linkname)
	}
	if kind, ok := ls.nonDir[target]; !ok || kind != 'f' {
		if len(ls.nonDir) < maxTrackedPaths {
			ls.skip(p, "hard link to %s, which is not a file of this layer: not read", target)
		}
		return
	}
	// The link shares the target's content, so whatever the target holds is found here too;
	// but a database or an os-release file counts only where its plugin would read it.
	results, ok := ls.files[target]
	if !ok {
		return
	}
	var copied []fileResult
	for _, r := range results {
		if r.found.OSDatabase != "" || r.found.OSRelease != nil {
			ls.cur = tarFile{path: p[1:], info: r.info}
			if !r.plugin.FileRequired(&ls.cur) {
				continue
			}
		}
		r.found.Packages = withPath(r.found.Packages, target, p)
		copied = append(copied, r)
	}
	if len(copied) > 0 {
		ls.files[p] = copied
	}
}

// withPath copies pkgs, moving paths from oldPrefix to newPrefix.
func withPath(pkgs []Package, oldPrefix, newPrefix string) []Package {
	out := make([]Package, len(pkgs))
	for i, pkg := range pkgs {
		pkg.Path = newPrefix + strings.TrimPrefix(pkg.Path, oldPrefix)
		out[i] = pkg
	}
	return out
}

// file hands a regular file to the plugins that require it.
func (ls *layerScan) file(ctx context.Context, tr *tar.Reader, hdr *tar.Header, p string) error {
	ls.cur = tarFile{path: p[1:], info: hdr.FileInfo(), size: hdr.Size, r: tr}
	f := &ls.cur
	require := ls.require[:0]
	for _, pl := range ls.opts.Plugins {
		if pl.FileRequired(f) {
			require = append(require, pl)
		}
	}
	if f.err != nil {
		return f.err // the stream broke while a plugin looked at the head
	}
	if hdr.Mode&0o111 != 0 && ls.opts.Mode != ModeBasic {
		// It may replace an executable in which a lower layer found packages.
		ls.paths[p] = struct{}{}
	}
	if len(require) == 0 {
		return nil
	}
	ls.paths[p] = struct{}{}
	var max int64
	extract := require[:0]
	for _, pl := range require {
		if limit := pl.MaxBytes(ls.lim); hdr.Size > limit {
			ls.skip(p, "%s: %d bytes, over the %d-byte limit: not read", pl.Name(), hdr.Size, limit)
			continue
		} else if limit > max {
			max = limit
		}
		extract = append(extract, pl)
	}
	if len(extract) == 0 {
		return nil
	}
	ls.inv.Stats.FilesExtracted++
	c, err := ls.bufs.Read(io.MultiReader(bytes.NewReader(f.head), tr), hdr.Size, max)
	if err != nil {
		if errors.Is(err, plugin.ErrTooLarge) {
			ls.skip(p, "%v: not read", err)
			return nil
		}
		return err
	}
	defer c.Close()
	in := &plugin.Input{Path: p, Info: f.info, Content: c, Env: ls.env}
	results := make([]fileResult, 0, len(extract))
	for _, pl := range extract {
		found, err := extractSafely(ctx, pl, in)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			ls.skip(p, "%v", err)
		}
		for i := range found.Packages {
			if found.Packages[i].Path == "" {
				found.Packages[i].Path = p
			}
		}
		if found.Owned != nil {
			found.Owned = ls.ownedByName(pl, found.Owned)
		}
		results = append(results, fileResult{plugin: pl, info: f.info, found: found})
	}
	ls.files[p] = results
	return nil
}

// ownedByName keeps, of a package manager's record of installed files, the files that some
// other plugin of the scan reads by name (language packages' metadata: a dist-info's
// METADATA, a jar, a package.json): only those can make Merge report a language package as
// an OS package, and a layer's record lists every file of every package. The test is the
// plugins' own FileRequired on the path alone, so it holds whichever layer writes the file;
// files recognised by content (Go binaries) are not kept, and their packages are never
// OS-owned.
func (ls *layerScan) ownedByName(from plugin.Plugin, o *plugin.Owned) *plugin.Owned {
	out := &plugin.Owned{Kind: o.Kind}
	for _, pkg := range o.Packages {
		var kept []string
		for _, f := range pkg.Files {
			if !strings.HasPrefix(f, "/") || len(f) > maxPathLen {
				continue
			}
			named := plugin.NewFile(f[1:], 0o644, nil)
			if slices.ContainsFunc(ls.opts.Plugins, func(pl plugin.Plugin) bool { return pl.Name() != from.Name() && pl.FileRequired(named) }) {
				kept = append(kept, f)
			}
		}
		if len(kept) > 0 {
			pkg.Files = kept
			out.Packages = append(out.Packages, pkg)
		}
	}
	if len(out.Packages) == 0 {
		return nil
	}
	return out
}

// extractSafely runs a plugin, turning a panic on hostile input into an error: most plugins
// wrap third-party parsers.
func extractSafely(ctx context.Context, pl plugin.Plugin, in *plugin.Input) (found plugin.Found, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s failed: %v", pl.Name(), r)
		}
	}()
	return pl.Extract(ctx, in)
}

// tarFile is a regular file as FileRequired sees it: path and header, and the head of its
// content, read from the stream only when a plugin asks.
type tarFile struct {
	path string
	info fs.FileInfo
	size int64
	r    io.Reader // nil for a hard link, whose content is its target's
	head []byte
	buf  [plugin.MaxHead]byte
	err  error
}

func (f *tarFile) Path() string               { return f.path }
func (f *tarFile) Stat() (fs.FileInfo, error) { return f.info, nil }

func (f *tarFile) Head(n int) ([]byte, error) {
	n = int(min(int64(n), plugin.MaxHead, f.size))
	if f.r == nil {
		return nil, errNoContent
	}
	if len(f.head) < n && f.err == nil {
		k, err := io.ReadFull(f.r, f.buf[len(f.head):n])
		f.head = f.buf[:len(f.head)+k]
		if err != nil {
			f.err = err
		}
	}
	return f.head[:min(n, len(f.head))], f.err
}

var errNoContent = errors.New("a hard link's content is its target's")

func (ls *layerScan) finish() *LayerInventory {
	inv := ls.inv
	for _, p := range sortedKeys(ls.files) {
		for _, r := range ls.files[p] {
			switch {
			case r.found.OSRelease != nil:
				inv.OSReleaseFiles = append(inv.OSReleaseFiles, OSReleaseFile{Path: p, Content: *r.found.OSRelease})
			case r.found.OSDatabase != "":
				inv.OSDatabases = append(inv.OSDatabases, OSDatabase{Path: p, Kind: r.found.OSDatabase, Packages: r.found.Packages})
			case r.found.Owned != nil:
				inv.FileOwners = append(inv.FileOwners, FileOwners{Path: p, Kind: r.found.Owned.Kind, Packages: r.found.Owned.Packages})
			default:
				inv.Packages = append(inv.Packages, r.found.Packages...)
			}
		}
	}
	inv.Paths = sortedKeys(ls.paths)
	for _, p := range sortedKeys(ls.links) {
		if isOSReleaseLink(p, ls.links[p]) {
			inv.Symlinks = append(inv.Symlinks, Symlink{Path: p, Target: ls.links[p]})
		}
	}
	if ls.skippedOver > 0 {
		inv.Skipped = append(inv.Skipped, Skipped{Path: "/", Layer: ls.digest,
			Reason: fmt.Sprintf("%d more skipped entries not listed", ls.skippedOver)})
	}
	for i := range inv.Packages {
		inv.Packages[i].Layer = ls.digest
	}
	for i := range inv.OSDatabases {
		for j := range inv.OSDatabases[i].Packages {
			inv.OSDatabases[i].Packages[j].Layer = ls.digest
		}
	}
	return inv
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// countingReader counts the layer's decompressed bytes and fails with plugin.ErrTooLarge
// past max.
type countingReader struct {
	r   io.Reader
	n   int64
	max int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n >= c.max {
		return 0, fmt.Errorf("more than %d bytes (%w)", c.max, plugin.ErrTooLarge)
	}
	if int64(len(p)) > c.max-c.n {
		p = p[:c.max-c.n]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
