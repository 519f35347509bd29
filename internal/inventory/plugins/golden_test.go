package plugins_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/lading-registry/lading/internal/imagesrc"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/inventory/plugin"
	"github.com/lading-registry/lading/internal/inventory/plugins"
	"github.com/lading-registry/lading/internal/testfiles"
)

var update = flag.Bool("update", false, "rewrite golden.json with the plugins' current versions and outputs")

// goldenFile is golden.json: what each plugin finds in the corpus, by version.
type goldenFile struct {
	Comment string `json:"comment"`
	// Scalibr is osv-scalibr's version when the outputs were recorded.
	Scalibr string                  `json:"osv-scalibr"`
	Plugins map[string]goldenOutput `json:"plugins"`
}

type goldenOutput struct {
	Version int `json:"version"`
	// Files and Packages count what the digest covers, for a reader of diffs.
	Files    int    `json:"files"`
	Packages int    `json:"packages"`
	Digest   string `json:"digest"`
}

const goldenComment = "Written by `go test ./internal/inventory/plugins -run TestGolden -update`: each plugin's " +
	"version and a digest of what it finds in the corpus (corpusLayers). TestGolden fails when a digest " +
	"changes while the plugin's Version() does not."

// TestGolden runs each plugin alone over a corpus of real package files and compares what it
// finds with golden.json. A plugin whose output changed without a new Version() would leave
// stale layer inventories in every cache (the fingerprint would not change), so that fails;
// -update records new versions (and outputs changed by an osv-scalibr upgrade, which changes
// the fingerprint by itself).
func TestGolden(t *testing.T) {
	layers := corpusLayers(t)
	got := goldenFile{Comment: goldenComment, Scalibr: inventory.ScalibrVersion(), Plugins: map[string]goldenOutput{}}
	for _, p := range allPlugins(t) {
		got.Plugins[p.Name()] = run(t, p, layers)
	}
	const path = "golden.json"
	want := goldenFile{Plugins: map[string]goldenOutput{}}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) || !*update {
		t.Fatal(err)
	}
	refused, stale := compareGolden(want, got)
	if *update {
		if len(refused) > 0 {
			t.Fatalf("golden.json not rewritten:\n%s", strings.Join(refused, "\n"))
		}
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, msg := range append(refused, stale...) {
		t.Error(msg)
	}
}

// compareGolden returns the changes -update refuses to record (an output changed, the
// version did not, osv-scalibr did not) and those it records.
func compareGolden(want, got goldenFile) (refused, stale []string) {
	const rerun = "go test ./internal/inventory/plugins -run TestGolden -update"
	for _, name := range sortedKeys(got.Plugins) {
		g := got.Plugins[name]
		w, ok := want.Plugins[name]
		switch {
		case !ok:
			stale = append(stale, fmt.Sprintf("%s is not in golden.json: record it with %s", name, rerun))
		case g.Digest == w.Digest && g.Version == w.Version:
		case g.Digest == w.Digest:
			stale = append(stale, fmt.Sprintf("%s: version %d, recorded %d, with the same output: record it with %s", name, g.Version, w.Version, rerun))
		case g.Version != w.Version:
			stale = append(stale, fmt.Sprintf("%s: version %d finds another output (%d files, %d packages; recorded: version %d, %d files, %d packages): record it with %s",
				name, g.Version, g.Files, g.Packages, w.Version, w.Files, w.Packages, rerun))
		case got.Scalibr != want.Scalibr:
			stale = append(stale, fmt.Sprintf("%s finds another output (%d files, %d packages; recorded %d files, %d packages) since osv-scalibr went from %s to %s, "+
				"which changes the cache fingerprint by itself: review it, and record it with %s", name, g.Files, g.Packages, w.Files, w.Packages, want.Scalibr, got.Scalibr, rerun))
		default:
			refused = append(refused, fmt.Sprintf("%s finds another output (%d files, %d packages; recorded %d files, %d packages) at the same version %d: "+
				"bump its Version() so that cached layer inventories are read again, then record it with %s", name, g.Files, g.Packages, w.Files, w.Packages, g.Version, rerun))
		}
	}
	for _, name := range sortedKeys(want.Plugins) {
		if _, ok := got.Plugins[name]; !ok {
			stale = append(stale, fmt.Sprintf("%s is in golden.json but no longer a plugin: remove it with %s", name, rerun))
		}
	}
	return refused, stale
}

func TestCompareGolden(t *testing.T) {
	recorded := goldenFile{Scalibr: "v1", Plugins: map[string]goldenOutput{"a": {Version: 1, Digest: "x"}, "gone": {Version: 1, Digest: "y"}}}
	tests := []struct {
		name           string
		got            goldenFile
		refused, stale int
	}{
		{"unchanged", goldenFile{Scalibr: "v1", Plugins: map[string]goldenOutput{"a": {Version: 1, Digest: "x"}, "gone": {Version: 1, Digest: "y"}}}, 0, 0},
		{"output changed, version not", goldenFile{Scalibr: "v1", Plugins: map[string]goldenOutput{"a": {Version: 1, Digest: "z"}, "gone": {Version: 1, Digest: "y"}}}, 1, 0},
		{"output and version changed", goldenFile{Scalibr: "v1", Plugins: map[string]goldenOutput{"a": {Version: 2, Digest: "z"}, "gone": {Version: 1, Digest: "y"}}}, 0, 1},
		{"version changed, output not", goldenFile{Scalibr: "v1", Plugins: map[string]goldenOutput{"a": {Version: 2, Digest: "x"}, "gone": {Version: 1, Digest: "y"}}}, 0, 1},
		{"osv-scalibr upgraded", goldenFile{Scalibr: "v2", Plugins: map[string]goldenOutput{"a": {Version: 1, Digest: "z"}, "gone": {Version: 1, Digest: "y"}}}, 0, 1},
		{"plugin added and removed", goldenFile{Scalibr: "v1", Plugins: map[string]goldenOutput{"a": {Version: 1, Digest: "x"}, "new": {Version: 1, Digest: "n"}}}, 0, 2},
	}
	for _, tt := range tests {
		refused, stale := compareGolden(recorded, tt.got)
		if len(refused) != tt.refused || len(stale) != tt.stale {
			t.Errorf("%s: refused %q, stale %q", tt.name, refused, stale)
		}
	}
}

// allPlugins is every plugin of both modes, each once.
func allPlugins(t *testing.T) []plugin.Plugin {
	t.Helper()
	var out []plugin.Plugin
	seen := map[string]bool{}
	for _, mode := range []plugin.Mode{plugin.ModeBasic, plugin.ModeEnhanced} {
		names := map[string]bool{}
		for _, p := range plugins.Default(mode) {
			if names[p.Name()] {
				t.Errorf("%s: two plugins named %s", mode, p.Name())
			}
			names[p.Name()] = true
			if !seen[p.Name()] {
				seen[p.Name()] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// layerOutput is what one plugin found in one layer of the corpus.
type layerOutput struct {
	Required       []string                  `json:"required"`
	Packages       []string                  `json:"packages"`
	OSDatabases    []inventory.OSDatabase    `json:"osDatabases"`
	OSReleaseFiles []inventory.OSReleaseFile `json:"osReleaseFiles"`
	// Skipped keeps paths only: reasons quote the standard library's errors, which change
	// with the toolchain.
	Skipped []string `json:"skipped"`
	// Owned is what a plugin reports of installed files, before the walk keeps only those
	// other plugins read (here, alone, none).
	Owned []*plugin.Owned `json:"owned,omitempty"`
}

// run scans the corpus with p alone and digests what it found.
func run(t *testing.T, p plugin.Plugin, layers [][]byte) goldenOutput {
	t.Helper()
	var outs []layerOutput
	out := goldenOutput{Version: p.Version()}
	for i, layer := range layers {
		rec := &recorder{Plugin: p}
		inv, err := inventory.ScanLayer(context.Background(), bytes.NewReader(layer), fmt.Sprintf("layer-%d", i),
			inventory.Options{Mode: plugin.ModeEnhanced, Plugins: []plugin.Plugin{rec}, ScratchDir: t.TempDir()})
		if err != nil {
			t.Fatalf("%s: layer %d: %v", p.Name(), i, err)
		}
		lo := layerOutput{Required: rec.required, Packages: canonical(t, inv.Packages), OSReleaseFiles: inv.OSReleaseFiles, Owned: rec.owned}
		for _, db := range inv.OSDatabases {
			// Database packages keep their order: it is the database's.
			lo.OSDatabases = append(lo.OSDatabases, db)
			out.Packages += len(db.Packages)
		}
		for _, s := range inv.Skipped {
			lo.Skipped = append(lo.Skipped, s.Path)
		}
		slices.Sort(lo.Required)
		slices.Sort(lo.Skipped)
		out.Files += len(rec.required)
		out.Packages += len(inv.Packages)
		outs = append(outs, lo)
	}
	b, err := json.Marshal(outs)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	out.Digest = "sha256:" + hex.EncodeToString(sum[:])
	return out
}

// canonical lists packages in a stable order: some extractors report them in map order.
func canonical(t *testing.T, pkgs []inventory.Package) []string {
	out := make([]string, 0, len(pkgs))
	for _, p := range pkgs {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	slices.Sort(out)
	return out
}

// recorder is a plugin that notes the files it requires and the installed files it reports.
type recorder struct {
	plugin.Plugin
	required []string
	owned    []*plugin.Owned
}

func (r *recorder) Extract(ctx context.Context, in *plugin.Input) (plugin.Found, error) {
	found, err := r.Plugin.Extract(ctx, in)
	if found.Owned != nil {
		r.owned = append(r.owned, found.Owned)
	}
	return found, err
}

func (r *recorder) FileRequired(f plugin.File) bool {
	ok := r.Plugin.FileRequired(f)
	if ok {
		r.required = append(r.required, f.Path())
	}
	return ok
}

// corpusLayers are the layers every plugin reads: one made of the package files in
// testdata/ (each where its package manager writes it), and the layers of the go-app image
// (Go binaries). Adding an ecosystem adds its files here.
func corpusLayers(t *testing.T) [][]byte {
	t.Helper()
	var files []corpusFile
	add := func(dst string, body []byte, mode int64) {
		files = append(files, corpusFile{dst, body, mode})
	}
	tree := func(src, dst string) {
		root := testfiles.Path(t, strings.Split(src, "/")...)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(p)
			add(dst+"/"+filepath.ToSlash(rel), b, 0o644)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	read := func(src string) []byte { return testfiles.Read(t, strings.Split(src, "/")...) }

	add("etc/os-release", read("artifacts/dpkg/bookworm.os-release"), 0o644)
	add("usr/lib/os-release", read("artifacts/alpine/alpine-3.20.3.os-release"), 0o644)
	status := read("artifacts/dpkg/bookworm-minbase.status")
	add("var/lib/dpkg/status", status, 0o644)
	first, _, _ := bytes.Cut(status, []byte("\n\n"))
	add("var/lib/dpkg/status.d/base-files", append(first, '\n'), 0o644)
	add("var/lib/dpkg/status.d/base-files.md5sums", []byte("0123  /etc/issue\n"), 0o644)
	// OpenWrt's opkg status file, in dpkg's format, as osv-scalibr's testdata/opkg/valid.
	add("usr/lib/opkg/status", []byte("Package: busybox\nVersion: 1.36.1-r2\nDepends: libc\nStatus: install ok installed\n"+
		"Architecture: x86_64\nInstalled-Time: 1730715936\n"), 0o644)
	add("lib/apk/db/installed", read("artifacts/alpine/alpine-3.20.3.installed"), 0o644)
	add("var/lib/rpm/rpmdb.sqlite", gunzip(t, read("local/rpm/rpmdb.sqlite.gz")), 0o644)
	add("usr/lib/sysimage/rpm/Packages", read("local/rpm/Packages"), 0o644)
	tree("artifacts/python/dist-packages", "usr/lib/python3/dist-packages")
	// The record of the files a Debian package installed: one of them a Python package's metadata.
	add("var/lib/dpkg/info/python3-chardet.list", []byte("/.\n/usr\n/usr/lib/python3/dist-packages/chardet-5.1.0.dist-info\n"+
		"/usr/lib/python3/dist-packages/chardet-5.1.0.dist-info/METADATA\n/usr/share/doc/python3-chardet/copyright\n"), 0o644)
	tree("artifacts/npm/node-app", "usr/src/app")
	tree("artifacts/dotnet", "app")
	tree("artifacts/java", "opt/java")
	add("usr/local/bin/shop", append([]byte("#!/bin/sh\nexec java -jar \"$0\" \"$@\"\n"), read("artifacts/java/log4j-core-2.17.1.jar")...), 0o755)
	add("usr/local/bin/plain-script.sh", []byte("#!/bin/sh\necho hello\n"), 0o755)
	add("usr/local/bundle/specifications/rack-2.2.3.gemspec", read("local/ruby/rack-2.2.3.gemspec"), 0o644)
	add("usr/local/bundle/gems/rack-2.2.3/rack.gemspec", read("local/ruby/rack-2.2.3.gemspec"), 0o644)
	add("src/app/Cargo.lock", read("local/rust/Cargo.lock"), 0o644)
	add("srv/php/composer.lock", read("local/php/composer.lock"), 0o644)
	add("srv/php/vendor/composer/installed.json", read("local/php/installed.json"), 0o644)
	layers := [][]byte{tarOf(t, files)}

	img, err := imagesrc.OpenArchive(context.Background(), testfiles.Path(t, "images", "go-app.tar"), "", imagesrc.Options{Platform: "linux/amd64"})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	for _, l := range img.Layers {
		rc, err := l.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, gunzip(t, b)) // read once, not once per plugin
	}
	return layers
}

type corpusFile struct {
	name string
	body []byte
	mode int64
}

func tarOf(t *testing.T, files []corpusFile) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gunzip(t *testing.T, b []byte) []byte {
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		return b
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
