package inventory

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// ErrCorruptLayer is returned for a layer whose tar or compressed stream breaks off or is
// damaged after its start.
var ErrCorruptLayer = errors.New("corrupt layer")

const (
	maxPathLen          = 4096
	maxOSReleaseBytes   = 64 << 10
	maxTrackedPaths     = 200_000
	maxReasonLen        = 300
	scriptJarProbeBytes = 64 << 10
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
	sc := &scratch{parent: parent}
	defer func() {
		if err := sc.close(); err != nil {
			opts.Logger.WarnContext(ctx, "remove scratch directory", "error", err)
		}
	}()
	ls := &layerScan{
		opts:     opts,
		lim:      opts.Limits,
		digest:   layerDigest,
		bufs:     &buffers{scratch: sc, maxMemory: opts.Limits.MaxMemoryBytes},
		exts:     newScalibrExtractors(),
		filePkgs: map[string][]Package{},
		osdbs:    map[string]OSDatabase{},
		paths:    map[string]struct{}{},
		osrel:    map[string]string{},
		links:    map[string]string{},
		nonDir:   map[string]byte{},
		inv: &LayerInventory{
			SchemaVersion: SchemaVersion,
			Digest:        layerDigest,
			Mode:          opts.Mode,
		},
	}
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
	bufs   *buffers
	exts   *scalibrExtractors
	inv    *LayerInventory

	// Content found so far, by path; a later entry for the same path replaces an earlier one.
	filePkgs map[string][]Package
	osdbs    map[string]OSDatabase
	paths    map[string]struct{}
	osrel    map[string]string
	// links are this layer's symbolic links (all of them, up to maxTrackedPaths), to refuse
	// entries written through them and to keep those on the way to os-release.
	links map[string]string
	// nonDir records the non-directory entries ('f' file, 'l' link, 'h' hard link, 'o' other),
	// up to maxTrackedPaths, to resolve hard links and check opaque markers.
	nonDir      map[string]byte
	skippedOver int
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
	dr, closeDecompressor, err := decompress(ctxReader{ctx: ctx, r: r})
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
			if errors.Is(err, errTooLarge) {
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
			if errors.Is(err, errTooLarge) {
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
	delete(ls.filePkgs, p)
	delete(ls.osdbs, p)
	delete(ls.osrel, p)
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
	// The link shares the target's content, so whatever the target holds is found here too.
	if pkgs, ok := ls.filePkgs[target]; ok {
		ls.filePkgs[p] = withPath(pkgs, target, p)
	}
	if db, ok := ls.osdbs[target]; ok && classify(p, ls.opts.Mode) == classify(target, ls.opts.Mode) {
		db.Path = p
		db.Packages = withPath(db.Packages, target, p)
		ls.osdbs[p] = db
	}
	if content, ok := ls.osrel[target]; ok && classify(p, ls.opts.Mode) == kindOSRelease {
		ls.osrel[p] = content
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

var elfMagic = []byte{0x7f, 'E', 'L', 'F'}

// file handles a regular file: selects the extractor by name, or by content for executables.
func (ls *layerScan) file(ctx context.Context, tr *tar.Reader, hdr *tar.Header, p string) error {
	kind := classify(p, ls.opts.Mode)
	if kind == kindNone {
		if ls.opts.Mode == ModeBasic {
			return nil
		}
		if hdr.Mode&0o111 != 0 {
			// It may replace an executable in which a lower layer found packages.
			ls.paths[p] = struct{}{}
		}
		if hdr.Size < int64(len(elfMagic)) {
			return nil
		}
		var head [4]byte
		if _, err := io.ReadFull(tr, head[:]); err != nil {
			return err
		}
		content := io.MultiReader(bytes.NewReader(head[:]), tr)
		switch {
		case bytes.Equal(head[:], elfMagic):
			ls.paths[p] = struct{}{}
			return ls.binary(ctx, content, hdr, p)
		case hdr.Mode&0o111 != 0 && bytes.HasPrefix(head[:], []byte("#!")):
			// An executable jar behind a shell-script prefix ("fully executable" Spring Boot
			// jars): a zip's end record sits in the last bytes.
			ls.paths[p] = struct{}{}
			return ls.scriptJar(ctx, content, hdr, p)
		}
		return nil
	}
	ls.paths[p] = struct{}{}
	ls.inv.Stats.FilesExtracted++
	switch kind {
	case kindOSRelease:
		if hdr.Size > maxOSReleaseBytes {
			ls.skip(p, "os-release file of %d bytes is over the %d-byte limit: not read", hdr.Size, maxOSReleaseBytes)
			return nil
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		ls.osrel[p] = string(b)
		return nil
	case kindJava:
		return ls.withBlob(tr, hdr, p, kind, ls.lim.MaxFileBytes, func(b *blob) {
			ls.filePkgs[p] = ls.scanJavaArchive(ctx, b, p)
		})
	case kindRpm:
		return ls.withBlob(tr, hdr, p, kind, ls.lim.MaxFileBytes, func(b *blob) {
			ls.osDatabase(ctx, kind, p, hdr, b)
		})
	case kindDpkg, kindApk:
		return ls.withBlob(tr, hdr, p, kind, ls.lim.MaxMetadataBytes, func(b *blob) {
			ls.osDatabase(ctx, kind, p, hdr, b)
		})
	case kindComposerInstalled:
		return ls.withBlob(tr, hdr, p, kind, ls.lim.MaxMetadataBytes, func(b *blob) {
			pkgs, err := parseComposerInstalled(b.reader(), p)
			if err != nil {
				ls.skip(p, "composer installed.json: %v", err)
			}
			ls.filePkgs[p] = pkgs
		})
	default:
		return ls.withBlob(tr, hdr, p, kind, ls.lim.MaxMetadataBytes, func(b *blob) {
			ls.languageFile(ctx, kind, p, hdr, b)
		})
	}
}

// withBlob buffers the file's content (up to max bytes) and hands it to use. A file over the
// limit is skipped; stream errors are returned.
func (ls *layerScan) withBlob(r io.Reader, hdr *tar.Header, p string, kind fileKind, max int64, use func(*blob)) error {
	if hdr.Size > max {
		ls.skip(p, "%s of %d bytes is over the %d-byte limit: not read", kind, hdr.Size, max)
		return nil
	}
	b, err := ls.bufs.read(r, hdr.Size, max)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			ls.skip(p, "%s: %v: not read", kind, err)
			return nil
		}
		return err
	}
	defer b.close()
	use(b)
	return nil
}

func (ls *layerScan) binary(ctx context.Context, r io.Reader, hdr *tar.Header, p string) error {
	if hdr.Size > ls.lim.MaxFileBytes {
		ls.skip(p, "executable of %d bytes is over the %d-byte limit: not read", hdr.Size, ls.lim.MaxFileBytes)
		return nil
	}
	return ls.withBlob(r, hdr, p, kindNone, ls.lim.MaxFileBytes, func(b *blob) {
		pkgs, err := goBinaryPackages(b.readerAt(), b.size, p)
		if err != nil {
			ls.skip(p, "executable: %v", err)
			return
		}
		rust, err := ls.exts.cargoAuditable(ctx, p, hdr, b)
		if err != nil {
			ls.skip(p, "cargo-auditable data: %v", err)
		}
		pkgs = append(pkgs, rust...)
		if len(pkgs) > 0 {
			ls.inv.Stats.FilesExtracted++
			ls.filePkgs[p] = pkgs
		}
	})
}

func (ls *layerScan) scriptJar(ctx context.Context, r io.Reader, hdr *tar.Header, p string) error {
	if hdr.Size > ls.lim.MaxMetadataBytes {
		return nil // a large script is not worth buffering to look for a jar at its end
	}
	return ls.withBlob(r, hdr, p, kindNone, ls.lim.MaxMetadataBytes, func(b *blob) {
		if !hasZipEndRecord(b.readerAt(), b.size) {
			return
		}
		if pkgs := ls.scanJavaArchive(ctx, b, p); len(pkgs) > 0 {
			ls.inv.Stats.FilesExtracted++
			ls.filePkgs[p] = pkgs
		}
	})
}

// hasZipEndRecord reports whether the zip end-of-central-directory signature appears where a
// zip's end record can be: in the last 64 KiB + 22 bytes.
func hasZipEndRecord(ra io.ReaderAt, size int64) bool {
	n := min(size, scriptJarProbeBytes+22)
	tail := make([]byte, n)
	if _, err := ra.ReadAt(tail, size-n); err != nil && !errors.Is(err, io.EOF) {
		return false
	}
	return bytes.Contains(tail, []byte("PK\x05\x06"))
}

func (ls *layerScan) finish() *LayerInventory {
	inv := ls.inv
	for _, p := range sortedKeys(ls.filePkgs) {
		inv.Packages = append(inv.Packages, ls.filePkgs[p]...)
	}
	for _, p := range sortedKeys(ls.osdbs) {
		inv.OSDatabases = append(inv.OSDatabases, ls.osdbs[p])
	}
	inv.Paths = sortedKeys(ls.paths)
	for _, p := range sortedKeys(ls.osrel) {
		inv.OSReleaseFiles = append(inv.OSReleaseFiles, OSReleaseFile{Path: p, Content: ls.osrel[p]})
	}
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
