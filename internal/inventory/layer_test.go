package inventory_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"slices"
	"testing"

	"github.com/lading-registry/lading/internal/inventory"
)

func TestScanLayerCompression(t *testing.T) {
	plain := tarLayer(t,
		file("usr/src/app/node_modules/lodash/package.json", testdata(t, "npm/node-app/node_modules/lodash/package.json")),
		file("var/lib/dpkg/status", testdata(t, "dpkg/bookworm-minbase.status")))
	tests := []struct {
		name  string
		layer []byte
	}{
		{"uncompressed", plain},
		{"gzip", gzipped(t, plain)},
		{"zstd", zstded(t, plain)},
	}
	var first *inventory.LayerInventory
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := inventory.ScanLayer(context.Background(), bytes.NewReader(tt.layer), "sha256:x", inventory.Options{ScratchDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if len(inv.Packages) != 1 || len(inv.OSDatabases) != 1 || len(inv.OSDatabases[0].Packages) != 88 {
				t.Fatalf("got %d packages, %d databases", len(inv.Packages), len(inv.OSDatabases))
			}
			if first == nil {
				first = inv
			} else if !reflect.DeepEqual(inv.Packages, first.Packages) || !reflect.DeepEqual(inv.OSDatabases, first.OSDatabases) {
				t.Errorf("%s differs from uncompressed", tt.name)
			}
		})
	}
}

func TestScanLayerBadStreams(t *testing.T) {
	good := tarLayer(t, file("var/lib/dpkg/status", testdata(t, "dpkg/bookworm-minbase.status")))
	gz := gzipped(t, good)
	tests := []struct {
		name  string
		layer []byte
		want  error
	}{
		{"not a tar", []byte("this is not a tar archive, not even close; " + string(bytes.Repeat([]byte("x"), 600))), inventory.ErrNotTar},
		{"short garbage", []byte("garbage"), inventory.ErrNotTar},
		{"gzip of garbage", gzipped(t, bytes.Repeat([]byte("not tar "), 200)), inventory.ErrNotTar},
		{"truncated gzip", gz[:len(gz)/2], inventory.ErrCorruptLayer},
		{"truncated tar", good[:len(good)-2000], inventory.ErrCorruptLayer},
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2}, inventory.ErrUnsupportedCompression},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := inventory.ScanLayer(context.Background(), bytes.NewReader(tt.layer), "sha256:bad", inventory.Options{ScratchDir: t.TempDir()})
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	inv, err := inventory.ScanLayer(context.Background(), bytes.NewReader(nil), "sha256:empty", inventory.Options{})
	if err != nil || inv.Stats.Entries != 0 {
		t.Errorf("empty layer: %+v, %v", inv, err)
	}
}

func TestScanLayerCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	layer := tarLayer(t, file("var/lib/dpkg/status", testdata(t, "dpkg/bookworm-minbase.status")))
	if _, err := inventory.ScanLayer(ctx, bytes.NewReader(layer), "sha256:x", inventory.Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestScanLayerSizeLimit(t *testing.T) {
	layer := tarLayer(t,
		file("usr/src/app/node_modules/lodash/package.json", testdata(t, "npm/node-app/node_modules/lodash/package.json")),
		file("big/zeros", make([]byte, 1<<20)),
		file("usr/src/app/node_modules/minimist/package.json", testdata(t, "npm/node-app/node_modules/minimist/package.json")))
	inv, err := inventory.ScanLayer(context.Background(), bytes.NewReader(layer), "sha256:x", inventory.Options{Limits: inventory.Limits{MaxLayerBytes: 512 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	if !inv.Incomplete || len(inv.Packages) != 1 || inv.Packages[0].Name != "lodash" || !hasSkip(inv.Skipped, "/", "rest of the layer not read") {
		t.Errorf("incomplete %v, packages %+v, skipped %+v", inv.Incomplete, inv.Packages, inv.Skipped)
	}
	// A metadata file over its limit is skipped, the rest of the layer still read.
	inv, err = inventory.ScanLayer(context.Background(), bytes.NewReader(tarLayer(t,
		file("var/lib/dpkg/status", testdata(t, "dpkg/bookworm-minbase.status")),
		file("usr/src/app/node_modules/lodash/package.json", testdata(t, "npm/node-app/node_modules/lodash/package.json")))),
		"sha256:x", inventory.Options{Limits: inventory.Limits{MaxMetadataBytes: 10 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	if !hasSkip(inv.Skipped, "/var/lib/dpkg/status", "over the 10240-byte limit") || len(inv.Packages) != 1 {
		t.Errorf("packages %+v, skipped %+v", inv.Packages, inv.Skipped)
	}
}

func TestScanLayerEntries(t *testing.T) {
	jar := testdata(t, "java/log4j-api-2.14.1.jar")
	lodash := testdata(t, "npm/node-app/node_modules/lodash/package.json")
	minimist := testdata(t, "npm/node-app/node_modules/minimist/package.json")
	inv, err := inventory.ScanLayer(context.Background(), bytes.NewReader(tarLayer(t,
		dir("app/"),
		file("app/lib/api.jar", jar),
		entry{name: "app/lib/api-link.jar", typeflag: '1', link: "app/lib/api.jar"},
		file("app/node_modules/x/package.json", lodash),
		file("app/node_modules/x/package.json", minimist), // a later entry for the same path wins
		file("opt/.wh.legacy", nil),
		file("srv/node_modules/.wh..wh..opq", nil),
		symlink("etc/os-release", "../usr/lib/os-release"),
		file("usr/lib/os-release", testdata(t, "dpkg/bookworm.os-release")),
	)), "sha256:x", inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, p := range inv.Packages {
		paths = append(paths, p.Name+"@"+p.Path)
	}
	want := []string{
		"org.apache.logging.log4j:log4j-api@/app/lib/api-link.jar",
		"org.apache.logging.log4j:log4j-api@/app/lib/api.jar",
		"minimist@/app/node_modules/x/package.json",
	}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("packages %v, want %v", paths, want)
	}
	if !reflect.DeepEqual(inv.Whiteouts, []string{"/opt/legacy"}) || !reflect.DeepEqual(inv.OpaqueDirs, []string{"/srv/node_modules"}) {
		t.Errorf("whiteouts %v, opaque %v", inv.Whiteouts, inv.OpaqueDirs)
	}
	if !slices.Contains(inv.Symlinks, inventory.Symlink{Path: "/etc/os-release", Target: "../usr/lib/os-release"}) {
		t.Errorf("symlinks %v", inv.Symlinks)
	}
	for _, p := range []string{"/app/lib/api.jar", "/app/lib/api-link.jar", "/app/node_modules/x/package.json", "/etc/os-release", "/usr/lib/os-release"} {
		if !slices.Contains(inv.Paths, p) {
			t.Errorf("paths %v lack %s", inv.Paths, p)
		}
	}
	if img := inventory.Merge([]*inventory.LayerInventory{inv}); img.OS == nil || img.OS.Path != "/usr/lib/os-release" {
		t.Errorf("OS through the link: %+v", img.OS)
	}
}

// TestScanLayerSymlinkReplacedByDirectory: a directory entry replaces a symbolic link of the
// same layer, so files below it are read.
func TestScanLayerSymlinkReplacedByDirectory(t *testing.T) {
	inv, err := inventory.ScanLayer(context.Background(), bytes.NewReader(tarLayer(t,
		symlink("app", "/srv"),
		dir("app/"),
		file("app/node_modules/lodash/package.json", testdata(t, "npm/node-app/node_modules/lodash/package.json")),
	)), "sha256:x", inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Packages) != 1 || len(inv.Skipped) != 0 {
		t.Errorf("packages %+v, skipped %+v", inv.Packages, inv.Skipped)
	}
}

// TestScanLayerGzipProgram: a real layer decoded by igzip gives the inventory Go's decoder
// gives, and a damaged large layer fails as a corrupt layer with either.
func TestScanLayerGzipProgram(t *testing.T) {
	prog, err := inventory.GzipProgram(inventory.GzipDecoderIgzip)
	if err != nil {
		t.Fatalf("%v; run `bash .ci/install-tools` (it installs Debian's isal)", err)
	}
	img := openImage(t, "debian-family.tar", "debian-base")
	var raw []byte
	for _, l := range img.Layers {
		if l.Digest == debianBaseLayer {
			rc, err := l.Open(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			raw, err = io.ReadAll(rc)
			_ = rc.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(raw) < inventory.MinProgramGzipBytes {
		t.Fatalf("base layer of %d bytes: too small for the program", len(raw))
	}
	scan := func(layer []byte, program string) (*inventory.LayerInventory, error) {
		return inventory.ScanLayer(context.Background(), bytes.NewReader(layer), debianBaseLayer,
			inventory.Options{ScratchDir: t.TempDir(), GzipProgram: program, LayerSize: int64(len(layer))})
	}
	byGo, err := scan(raw, "")
	if err != nil {
		t.Fatal(err)
	}
	byProgram, err := scan(raw, prog)
	if err != nil {
		t.Fatal(err)
	}
	if len(byGo.OSDatabases) != 1 || len(byGo.OSDatabases[0].Packages) != 88 {
		t.Fatalf("Go's decoder: %d databases", len(byGo.OSDatabases))
	}
	if !reflect.DeepEqual(byGo, byProgram) {
		t.Errorf("igzip's inventory differs from Go's: stats %+v vs %+v", byProgram.Stats, byGo.Stats)
	}
	truncated := raw[:len(raw)*2/3]
	for _, program := range []string{"", prog} {
		if _, err := scan(truncated, program); !errors.Is(err, inventory.ErrCorruptLayer) {
			t.Errorf("truncated, program %q: %v, want ErrCorruptLayer", program, err)
		}
	}
}
