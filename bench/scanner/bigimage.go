package main

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// bigRecipe names the recipe below; change it when the recipe changes, so that a cached image
// built by an older recipe is not reused.
const bigRecipe = "r1"

// Replication of the real files from testdata/artifacts (see the layer list in bigImage).
const (
	javaServices = 12 // copies of every jar of artifacts/java (and nested/), ~15 MiB each
	nodeApps     = 40 // copies of the node-app tree with the real code of lodash, minimist, express
	pythonVenvs  = 20 // copies of artifacts/python/dist-packages
	goTools      = 8  // copies of the gin163 and textnet Go binaries
	libFiles     = 8  // random "shared libraries" of libSize beside the dpkg status
	libSize      = 6 << 20
	modelSize    = 32 << 20 // random model files; the last one is smaller
	bundleSize   = 64 << 20 // tarred asset bundles of random files; the last one is smaller
)

// bigName is the big image's name in the table.
const bigName = "big-1GiB"

var bigTag = name.MustParseReference("bench/big:1.0.0").(name.Tag)

// fixedTime is the mtime of every generated entry (as the corpus clamps its mtimes).
var fixedTime = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

type layerInfo struct {
	CreatedBy string `json:"createdBy"`
	GzBytes   int64  `json:"gzBytes"`
	TarBytes  int64  `json:"tarBytes"`
	Files     int    `json:"files"`
}

type bigImageInfo struct {
	Recipe       string      `json:"recipe"`
	Path         string      `json:"path"`
	ArchiveBytes int64       `json:"archiveBytes"`
	TarBytes     int64       `json:"tarBytes"` // sum of the uncompressed layers
	GzBytes      int64       `json:"gzBytes"`  // sum of the compressed layers
	Layers       []layerInfo `json:"layers"`
	BuildTime    float64     `json:"buildSeconds"`
}

// bigImage returns the ~1 GiB image, built (or taken from the cache) as a docker-archive.
func (b *bench) bigImage(ctx context.Context) (scanImage, error) {
	dir := filepath.Join(b.work, "images")
	if b.cfg.cacheDir != "" {
		dir = b.cfg.cacheDir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return scanImage{}, err
	}
	base := fmt.Sprintf("big-%dMiB-%s", b.cfg.bigMiB, bigRecipe)
	archive := filepath.Join(dir, base+".tar")
	infoPath := filepath.Join(dir, base+".json")
	if raw, err := os.ReadFile(infoPath); err == nil {
		var info bigImageInfo
		if json.Unmarshal(raw, &info) == nil && info.Recipe == bigRecipe {
			if st, err := os.Stat(archive); err == nil && st.Size() == info.ArchiveBytes {
				progress("reusing %s", archive)
				info.Path = archive
				b.bigInfo = info
				return scanImage{name: bigName, path: archive, size: st.Size(), note: "generated (cached)"}, nil
			}
		}
	}
	progress("building the %d MiB image", b.cfg.bigMiB)
	start := time.Now()
	info, err := b.buildBig(ctx, archive)
	if err != nil {
		_ = os.Remove(archive)
		return scanImage{}, err
	}
	info.BuildTime = time.Since(start).Seconds()
	raw, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return scanImage{}, err
	}
	if err := os.WriteFile(infoPath, raw, 0o644); err != nil {
		return scanImage{}, err
	}
	b.bigInfo = info
	progress("built %s: %d MiB of layers (%d MiB compressed) in %.0f s", archive, info.TarBytes>>20, info.GzBytes>>20, info.BuildTime)
	return scanImage{name: bigName, path: archive, size: info.ArchiveBytes, note: "generated"}, nil
}

// buildBig writes the image. Layers, in order:
//
//  1. the real debian-base layer of debian-family.tar (Debian 12 minbase, 88 packages);
//  2. "apt-get install": the real dpkg status artifacts/dpkg/bookworm-vulnerable.status (older
//     libc6, curl, openssl) and random shared libraries;
//  3. Java services: every real jar of artifacts/java and java/nested (log4j-core 2.14.1 to 2.19.0,
//     fat, shaded, jar-in-jar, 20 levels of nesting) under javaServices paths;
//  4. Node.js apps: the node-app tree (package.json, package-lock.json, 52 packages of
//     node_modules) with the real code of lodash, minimist and express from their npm tarballs,
//     under nodeApps paths;
//  5. Python: artifacts/python/dist-packages in dist-packages and in pythonVenvs virtualenvs;
//  6. Go binaries gin163 and textnet under goTools paths, and the .NET deps.json files;
//  7. random, incompressible model files;
//  8. tarred asset bundles (tars of random files).
//
// Layers 7 and 8 fill the image up to -big-mib MiB of uncompressed layers; being random, they
// compress to about their own size.
func (b *bench) buildBig(ctx context.Context, archive string) (bigImageInfo, error) {
	info := bigImageInfo{Recipe: bigRecipe, Path: archive}
	art := filepath.Join(b.cfg.shared, "artifacts")
	layerDir, err := os.MkdirTemp(filepath.Dir(archive), "big-layers-")
	if err != nil {
		return info, err
	}
	defer os.RemoveAll(layerDir)
	rng := rand.NewChaCha8(sha256.Sum256([]byte("lading scanner benchmark"))) // reproducible bytes

	family := filepath.Join(b.cfg.shared, "images", "debian-family.tar")
	baseTag := name.MustParseReference("corpus/debian-base:bookworm").(name.Tag)
	baseImg, err := tarball.Image(func() (io.ReadCloser, error) { return os.Open(family) }, &baseTag)
	if err != nil {
		return info, fmt.Errorf("debian-base from %s: %w", family, err)
	}
	baseLayers, err := baseImg.Layers()
	if err != nil || len(baseLayers) != 1 {
		return info, fmt.Errorf("debian-base: want one layer (%w)", err)
	}
	baseTar, err := uncompressedSize(baseLayers[0])
	if err != nil {
		return info, err
	}
	baseGz, err := baseLayers[0].Size()
	if err != nil {
		return info, err
	}
	adds := []mutate.Addendum{{Layer: baseLayers[0], History: v1.History{CreatedBy: "ADD debian-bookworm-minbase-slim.tar / # buildkit", Created: v1.Time{Time: fixedTime}}}}
	info.Layers = append(info.Layers, layerInfo{CreatedBy: adds[0].History.CreatedBy, GzBytes: baseGz, TarBytes: baseTar})

	type step struct {
		createdBy string
		write     func(l *layerWriter) error
	}
	target := b.cfg.bigMiB << 20
	var fill int64 // filled in once the real content is written
	steps := []step{
		{"RUN /bin/sh -c apt-get update && apt-get install -y libc6 curl openssl # bench: dpkg status + libraries", func(l *layerWriter) error {
			if err := l.copyFile("var/lib/dpkg/status", filepath.Join(art, "dpkg", "bookworm-vulnerable.status"), 0o644); err != nil {
				return err
			}
			for i := range libFiles {
				if err := l.random(fmt.Sprintf("usr/lib/x86_64-linux-gnu/libbench%02d.so.1", i), 0o644, libSize, rng); err != nil {
					return err
				}
			}
			return nil
		}},
		{"COPY services/ /opt/services/ # bench: jars", func(l *layerWriter) error {
			for i := range javaServices {
				for _, sub := range []string{"java", "java/nested"} {
					if err := l.copyFlat(filepath.Join(art, sub), fmt.Sprintf("opt/services/svc-%02d/lib", i), ".jar"); err != nil {
						return err
					}
				}
			}
			return nil
		}},
		{"COPY web/ /srv/ # bench: node apps", func(l *layerWriter) error {
			for i := range nodeApps {
				app := fmt.Sprintf("srv/web-%02d", i)
				if err := l.copyTree(filepath.Join(art, "npm", "node-app"), app); err != nil {
					return err
				}
				for _, tgz := range []string{"lodash-4.17.15.tgz", "minimist-1.2.5.tgz", "express-4.17.1.tgz"} {
					pkg := tgz[:strings.LastIndex(tgz, "-")]
					if err := l.npmTarball(filepath.Join(art, "npm", "tarballs", tgz), path.Join(app, "node_modules", pkg)); err != nil {
						return err
					}
				}
			}
			return nil
		}},
		{"RUN /bin/sh -c pip install -r requirements.txt # bench: python", func(l *layerWriter) error {
			if err := l.copyTree(filepath.Join(art, "python", "dist-packages"), "usr/lib/python3/dist-packages"); err != nil {
				return err
			}
			for i := range pythonVenvs {
				if err := l.copyTree(filepath.Join(art, "python", "dist-packages"), fmt.Sprintf("opt/venvs/venv-%02d/lib/python3.11/site-packages", i)); err != nil {
					return err
				}
			}
			return nil
		}},
		{"COPY --from=build /out/ /opt/tools/ # bench: go binaries, .NET", func(l *layerWriter) error {
			for i := range goTools {
				for _, bin := range []string{"gin163", "textnet"} {
					if err := l.copyFile(fmt.Sprintf("opt/tools/tool-%02d/%s", i, bin), filepath.Join(art, "go", bin), 0o755); err != nil {
						return err
					}
				}
			}
			return l.copyFlat(filepath.Join(art, "dotnet"), "app/dotnet", ".deps.json")
		}},
		{"COPY models/ /opt/models/ # bench: random binaries", func(l *layerWriter) error {
			left := fill / 2
			for i := 0; left > 0; i++ {
				n := min(left, modelSize)
				if err := l.random(fmt.Sprintf("opt/models/model-%03d.bin", i), 0o644, n, rng); err != nil {
					return err
				}
				left -= n + 512
			}
			return nil
		}},
		{"COPY assets/ /opt/assets/ # bench: tarred assets", func(l *layerWriter) error {
			left := fill - fill/2
			for i := 0; left > 0; i++ {
				n, err := l.bundle(fmt.Sprintf("opt/assets/bundle-%02d.tar", i), min(left, bundleSize), rng)
				if err != nil {
					return err
				}
				left -= n + 512
			}
			return nil
		}},
	}
	for i, s := range steps {
		if err := ctx.Err(); err != nil {
			return info, err
		}
		if i == 5 { // the real content is written: the random layers make up the rest
			fill = target
			for _, li := range info.Layers {
				fill -= li.TarBytes
			}
			if fill < 0 {
				return info, fmt.Errorf("the real content alone is %d MiB, more than -big-mib", (target-fill)>>20)
			}
		}
		l, err := newLayerWriter(filepath.Join(layerDir, fmt.Sprintf("layer-%d.tar.gz", i+2)))
		if err != nil {
			return info, err
		}
		if err := s.write(l); err != nil {
			l.abort()
			return info, fmt.Errorf("layer %d: %w", i+2, err)
		}
		fl, err := l.close()
		if err != nil {
			return info, fmt.Errorf("layer %d: %w", i+2, err)
		}
		layer, err := partial.CompressedToLayer(fl)
		if err != nil {
			return info, err
		}
		adds = append(adds, mutate.Addendum{Layer: layer, History: v1.History{CreatedBy: s.createdBy, Created: v1.Time{Time: fixedTime}}})
		info.Layers = append(info.Layers, layerInfo{CreatedBy: s.createdBy, GzBytes: fl.size, TarBytes: fl.tarSize, Files: l.files})
		progress("layer %d: %d files, %d MiB (%d MiB gzip)", i+2, l.files, fl.tarSize>>20, fl.size>>20)
	}
	cfgImg, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: "amd64", OS: "linux", Created: v1.Time{Time: fixedTime},
		Config: v1.Config{
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd:        []string{"/opt/tools/tool-00/gin163"},
			WorkingDir: "/srv/web-00",
		},
	})
	if err != nil {
		return info, err
	}
	img, err := mutate.Append(cfgImg, adds...)
	if err != nil {
		return info, err
	}
	if err := tarball.WriteToFile(archive, bigTag, img); err != nil {
		return info, err
	}
	st, err := os.Stat(archive)
	if err != nil {
		return info, err
	}
	info.ArchiveBytes = st.Size()
	for _, l := range info.Layers {
		info.TarBytes += l.TarBytes
		info.GzBytes += l.GzBytes
	}
	return info, nil
}

func uncompressedSize(l v1.Layer) (int64, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}

// layerWriter writes one gzip layer to a file, hashing it compressed (digest) and uncompressed
// (diff id) on the way, and adds parent directories as a real build would.
type layerWriter struct {
	f       *os.File
	gzHash  hash.Hash
	tarHash hash.Hash
	gzCount counter
	tarCnt  counter
	gz      *gzip.Writer
	tw      *tar.Writer
	dirs    map[string]bool
	written map[string]bool
	files   int
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func newLayerWriter(p string) (*layerWriter, error) {
	f, err := os.Create(p)
	if err != nil {
		return nil, err
	}
	l := &layerWriter{f: f, gzHash: sha256.New(), tarHash: sha256.New(), dirs: map[string]bool{}, written: map[string]bool{}}
	gz, err := gzip.NewWriterLevel(io.MultiWriter(f, l.gzHash, &l.gzCount), gzip.DefaultCompression)
	if err != nil {
		f.Close()
		return nil, err
	}
	l.gz = gz
	l.tw = tar.NewWriter(io.MultiWriter(gz, l.tarHash, &l.tarCnt))
	return l, nil
}

func (l *layerWriter) abort() { l.f.Close() }

// fileLayer is a finished layer file; it is a partial.CompressedLayer that knows its diff id.
type fileLayer struct {
	path           string
	digest, diffID v1.Hash
	size, tarSize  int64
}

func (f *fileLayer) Digest() (v1.Hash, error)            { return f.digest, nil }
func (f *fileLayer) DiffID() (v1.Hash, error)            { return f.diffID, nil }
func (f *fileLayer) Size() (int64, error)                { return f.size, nil }
func (f *fileLayer) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }
func (f *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(f.path) }

func (l *layerWriter) close() (*fileLayer, error) {
	err := errors.Join(l.tw.Close(), l.gz.Close())
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	hex := func(h hash.Hash) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))} }
	return &fileLayer{path: l.f.Name(), digest: hex(l.gzHash), diffID: hex(l.tarHash), size: l.gzCount.n, tarSize: l.tarCnt.n}, nil
}

func (l *layerWriter) mkdirAll(dir string) error {
	if dir == "." || dir == "" || l.dirs[dir] {
		return nil
	}
	if err := l.mkdirAll(path.Dir(dir)); err != nil {
		return err
	}
	l.dirs[dir] = true
	return l.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: fixedTime, Format: tar.FormatPAX})
}

// add writes one regular file, once: a later add of the same path is skipped.
func (l *layerWriter) add(name string, mode, size int64, r io.Reader) error {
	if l.written[name] {
		return nil
	}
	if err := l.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	l.written[name] = true
	l.files++
	if err := l.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: size, ModTime: fixedTime, Format: tar.FormatPAX}); err != nil {
		return err
	}
	n, err := io.Copy(l.tw, io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("%s: %d bytes, want %d", name, n, size)
	}
	return err
}

func (l *layerWriter) copyFile(name, src string, mode int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return l.add(name, mode, st.Size(), f)
}

// copyFlat copies the files of src whose name ends with suffix into dst.
func (l *layerWriter) copyFlat(src, dst, suffix string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), suffix) {
			if err := l.copyFile(path.Join(dst, e.Name()), filepath.Join(src, e.Name()), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyTree copies every regular file under src to dst, keeping the executable bit.
func (l *layerWriter) copyTree(src, dst string) error {
	var files []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(files)
	for _, p := range files {
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		mode := int64(0o644)
		if st.Mode()&0o111 != 0 {
			mode = 0o755
		}
		if err := l.copyFile(path.Join(dst, filepath.ToSlash(rel)), p, mode); err != nil {
			return err
		}
	}
	return nil
}

// npmTarball unpacks the regular files of an npm tarball ("package/...") into dst, as npm does.
func (l *layerWriter) npmTarball(tgz, dst string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", tgz, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", tgz, err)
		}
		_, rel, ok := strings.Cut(h.Name, "/")
		if h.Typeflag != tar.TypeReg || !ok || rel == "" || strings.Contains(rel, "..") {
			continue
		}
		if err := l.add(path.Join(dst, rel), 0o644, h.Size, tr); err != nil {
			return err
		}
	}
}

func (l *layerWriter) random(name string, mode, size int64, rng io.Reader) error {
	return l.add(name, mode, size, rng)
}

// bundle writes a tar of random files of 256 KiB to 4 MiB, about approx bytes long, streamed,
// and returns its size.
func (l *layerWriter) bundle(name string, approx int64, rng *rand.ChaCha8) (int64, error) {
	// The inner tar's size is known in advance: per file a 512-byte header and its data (sizes
	// are multiples of 512), then two zero blocks.
	var sizes []int64
	total := int64(1024)
	for total+512 < approx {
		n := int64(256<<10+rng.Uint64()%(4<<20-256<<10)) &^ 511
		n = min(n, (approx-total-512)&^511)
		sizes = append(sizes, n)
		total += 512 + n
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		for i, n := range sizes {
			err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("static/asset-%04d.bin", i), Mode: 0o644, Size: n, ModTime: fixedTime, Format: tar.FormatUSTAR})
			if err == nil {
				_, err = io.CopyN(tw, rng, n)
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	err := l.add(name, 0o644, total, pr)
	pr.CloseWithError(err)
	return total, err
}
