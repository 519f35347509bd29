package inventory_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/lading-registry/lading/internal/inventory"
)

// layerCache shares layer inventories between the tests, as the registry shares them between
// images: the Debian base layer is read once for all the debian-family images.
var layerCache sync.Map // "mode digest" -> *inventory.LayerInventory

func scanImage(tb testing.TB, file, name string, opts inventory.Options) (*inventory.Image, []*inventory.LayerInventory) {
	tb.Helper()
	img := openImage(tb, file, name)
	if opts.ScratchDir == "" {
		opts.ScratchDir = tb.TempDir()
	}
	var invs []*inventory.LayerInventory
	for _, l := range img.Layers {
		key := string(opts.Mode) + " " + l.Digest
		if cached, ok := layerCache.Load(key); ok && opts.Limits == (inventory.Limits{}) {
			invs = append(invs, cached.(*inventory.LayerInventory))
			continue
		}
		rc, err := l.Open(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		inv, err := inventory.ScanLayer(context.Background(), rc, l.Digest, opts)
		_ = rc.Close()
		if err != nil {
			tb.Fatalf("layer %s: %v", l.Digest, err)
		}
		if opts.Limits == (inventory.Limits{}) {
			layerCache.Store(key, inv)
		}
		invs = append(invs, inv)
	}
	return inventory.Merge(invs), invs
}

const (
	debianBaseLayer = "sha256:4f5a35e0701c5ef0704fdadda34276c73b79ccd587ca26321437cbd0bb31c01e"
	neo4jAptLayer   = "sha256:3666e46f28c8b9577e67c36ff56c63951450a417f8203ef36723776b1b80e2bd"
	neo4jLibLayer   = "sha256:77241fdad4f9d386d414bf64582da44435c14b77852fc80aedf7bbfa927e7857"
)

func TestImageDebianBase(t *testing.T) {
	img, _ := scanImage(t, "debian-family.tar", "debian-base", inventory.Options{})
	if img.OS == nil || img.OS.Ecosystem != "Debian:12" || img.OS.Layer != debianBaseLayer {
		t.Fatalf("OS = %+v", img.OS)
	}
	if len(img.Packages) != 88 {
		t.Fatalf("got %d packages, want 88", len(img.Packages))
	}
	for _, p := range img.Packages {
		if p.Layer != debianBaseLayer || p.Ecosystem != "Debian:12" {
			t.Errorf("got %+v", p)
		}
	}
	if bash := onePackage(t, img, "Debian:12", "bash"); bash.SourceName != "bash" || bash.SourceVersion != "5.2.15-2" {
		t.Errorf("bash = %+v", bash)
	}
}

func TestImageNeo4jLike(t *testing.T) {
	img, _ := scanImage(t, "debian-family.tar", "neo4j-like", inventory.Options{})
	core := onePackage(t, img, "Maven", log4jCore)
	if core.Version != "2.14.1" || core.Path != "/var/lib/neo4j/lib/log4j-core-2.14.1.jar" || core.Layer != neo4jLibLayer {
		t.Errorf("log4j-core = %+v", core)
	}
	edited := map[string]string{
		"curl": "7.88.1-10+deb12u1", "libcurl4": "7.88.1-10+deb12u1",
		"libssl3": "3.0.11-1~deb12u1", "openssl": "3.0.11-1~deb12u1",
	}
	for name, version := range edited {
		p := onePackage(t, img, "Debian:12", name)
		if p.Version != version || p.Layer != neo4jAptLayer {
			t.Errorf("%s = %+v, want %s from layer 3", name, p, version)
		}
	}
	for _, name := range []string{"ca-certificates", "libssh2-1", "libnghttp2-14"} {
		if p := onePackage(t, img, "Debian:12", name); p.Layer != neo4jAptLayer {
			t.Errorf("%s from %s, want layer 3", name, p.Layer)
		}
	}
	var base, jars int
	for _, p := range img.Packages {
		switch {
		case p.PackageManager == "OS" && p.Layer == debianBaseLayer:
			base++
		case p.PackageManager == "JAR":
			jars++
			if p.Layer != neo4jLibLayer {
				t.Errorf("jar from layer %s: %+v", p.Layer, p)
			}
		}
	}
	if base != 88 || jars != 9 {
		t.Errorf("%d OS packages from the base layer (want 88), %d jars (want 9)", base, jars)
	}
}

func TestImageWhiteout(t *testing.T) {
	img, _ := scanImage(t, "debian-family.tar", "whiteout", inventory.Options{})
	for _, p := range img.Packages {
		deleted := (p.Name == "lodash" && p.Version == "4.17.15") ||
			(p.Name == "minimist" && p.Version == "1.2.5") ||
			strings.HasPrefix(p.Name, "org.apache.logging.log4j") ||
			p.Ecosystem == "Go" || strings.HasPrefix(p.Path, "/opt/legacy") || p.Path == "/usr/local/bin/textnet"
		if deleted {
			t.Errorf("deleted package reported: %+v", p)
		}
	}
	for name, version := range map[string]string{"lodash": "4.17.21", "minimist": "1.2.8"} {
		p := onePackage(t, img, "npm", name)
		if p.Version != version || p.Path != "/app/node_modules/"+name+"/package.json" ||
			p.Layer != "sha256:b753bb91612dba2348bb03f61b4ed689e2e052df33a86b5cf1df6ae0dfca3825" {
			t.Errorf("%s = %+v", name, p)
		}
	}
	var debian int
	for _, p := range img.Packages {
		if p.Ecosystem == "Debian:12" {
			debian++
		}
	}
	if debian != 88 || len(img.Packages) != 90 {
		t.Errorf("%d Debian packages of %d, want 88 of 90", debian, len(img.Packages))
	}
}

func TestImageNodeApp(t *testing.T) {
	img, _ := scanImage(t, "debian-family.tar", "node-app", inventory.Options{})
	var npm int
	for _, p := range img.Packages {
		if p.Ecosystem == "npm" {
			npm++
			if p.FromLockfile || p.Layer != "sha256:9f8bf20f25253b4ef0e913ba4d694acea96c56dcc60f20693cf220c24d892906" {
				t.Errorf("got %+v", p)
			}
		}
	}
	if npm != 52 {
		t.Errorf("%d npm packages, want 52", npm)
	}
	for name, version := range map[string]string{"express": "4.17.1", "lodash": "4.17.15", "minimist": "1.2.5", "qs": "6.7.0"} {
		if p := onePackage(t, img, "npm", name); p.Version != version || p.Path != "/usr/src/app/node_modules/"+name+"/package.json" {
			t.Errorf("%s = %+v", name, p)
		}
	}
}

func TestImageGoApp(t *testing.T) {
	img, _ := scanImage(t, "go-app.tar", "", inventory.Options{})
	if img.OS != nil {
		t.Errorf("OS = %+v for a scratch image", img.OS)
	}
	want := []struct{ name, version, path, layer string }{
		{"github.com/gin-gonic/gin", "1.6.3", "/app/gin163", "sha256:e69334acef3fdfde61d09a9a08515e4b0f42e56ac81f7719e771885069d98b4d"},
		{"gopkg.in/yaml.v2", "2.2.8", "/app/gin163", "sha256:e69334acef3fdfde61d09a9a08515e4b0f42e56ac81f7719e771885069d98b4d"},
		{"golang.org/x/sys", "0.0.0-20200116001909-b77594299b42", "/app/gin163", "sha256:e69334acef3fdfde61d09a9a08515e4b0f42e56ac81f7719e771885069d98b4d"},
		{"stdlib", "1.26.8", "/app/gin163", "sha256:e69334acef3fdfde61d09a9a08515e4b0f42e56ac81f7719e771885069d98b4d"},
		{"stdlib", "1.20.14", "/usr/local/bin/textnet", "sha256:5b9569b3548fd8124ad7e561f54e28277219544bd5af06e524f556e65b4f974c"},
		{"golang.org/x/text", "0.3.5", "/usr/local/bin/textnet", "sha256:5b9569b3548fd8124ad7e561f54e28277219544bd5af06e524f556e65b4f974c"},
		{"golang.org/x/net", "0.0.0-20210119194325-5f4716e94777", "/usr/local/bin/textnet", "sha256:5b9569b3548fd8124ad7e561f54e28277219544bd5af06e524f556e65b4f974c"},
		{"github.com/gin-gonic/gin", "1.12.0", "/app/modern", "sha256:ff9d3becb1ba92ad9e38c685782c90b7250a18b19420de0cfb7ff86c6be15019"},
		{"golang.org/x/net", "0.62.0", "/app/modern", "sha256:ff9d3becb1ba92ad9e38c685782c90b7250a18b19420de0cfb7ff86c6be15019"},
	}
	for _, w := range want {
		found := false
		for _, p := range findPackages(img, "Go", w.name) {
			if p.Version == w.version && p.Path == w.path && p.Layer == w.layer && p.PackageManager == "GOBINARY" {
				found = true
			}
		}
		if !found {
			t.Errorf("%s %s at %s (layer %s) not found: %+v", w.name, w.version, w.path, w.layer, findPackages(img, "Go", w.name))
		}
	}
}

func TestImageHostile(t *testing.T) {
	scratch := t.TempDir()
	img, invs := scanImage(t, "hostile.tar", "", inventory.Options{ScratchDir: scratch, Limits: inventory.Limits{MaxMemoryBytes: 8 << 20}})
	assertEmptyDir(t, scratch)
	if img.OS != nil {
		t.Errorf("OS = %+v from an escaping os-release link", img.OS)
	}
	var deep bool
	for _, p := range findPackages(img, "Maven", log4jCore) {
		deep = deep || (p.Version == "2.14.1" && strings.HasPrefix(p.Path, "/app/lib/nested-20.jar!/") && strings.Count(p.Path, "!/") == 20)
	}
	if !deep {
		t.Errorf("log4j-core 2.14.1 at depth 20 in nested-20.jar not found: %+v", findPackages(img, "Maven", log4jCore))
	}
	skips := []struct{ path, reason string }{
		{"../../../../etc/passwd", "escapes the image root"},
		{"app/../../escape.txt", "escapes the image root"},
		{"../.wh.etc", "escapes the image root"},
		{"/etc/absolute-name", "absolute entry name"},
		{"/app/link-up", "leaves the image root"},
		{"/app/link-up/tmp/written-through-symlink.txt", "symbolic link in the same layer"},
		{"/app/hardlink-escape", "escapes the image root"},
		{"/app/hardlink-absolute", "not a file of this layer"},
		{"/etc/os-release", "leaves the image root"},
		{"/app/lib/400mb_jar_in_jar.jar!/400mb.jar", "over the"},
		{"/app/lib/zbsm.jar", "overlap"},
		{"/app/lib/notarealjar.jar", "not a readable zip archive"},
		{"/app/lib/truncated-log4j-core-2.15.0.jar", "not a readable zip archive"},
		{"/app/truncated-go-binary", "unreadable ELF file"},
		{"/var/lib/dpkg/status", "dpkg database"},
		{"/lib/apk/db/installed", "apk database"},
		{"/app/node_modules/evil/package.json", "package.json"},
		{"/dev/evil-null", "device node"},
		{"/dev/evil-sda", "device node"},
		{"/tmp/evil-fifo", "fifo"},
		{"/app/plain-file/.wh..wh..opq", "opaque-directory marker"},
	}
	for _, s := range skips {
		if !hasSkip(img.Skipped, s.path, s.reason) {
			t.Errorf("no skip of %s (%q)", s.path, s.reason)
		}
	}
	for _, s := range img.Skipped {
		if s.Layer == "" || s.Reason == "" {
			t.Errorf("skip without layer or reason: %+v", s)
		}
	}
	// The decompression bomb layer is read through (2 GiB of zeros), not held.
	if invs[2].Stats.DecompressedBytes < 2<<30 {
		t.Errorf("bomb layer: %d bytes read", invs[2].Stats.DecompressedBytes)
	}
}

// TestLayerInventoryJSON stores each layer's inventory as the registry would, and merges the
// stored copies: the result must not change.
func TestLayerInventoryJSON(t *testing.T) {
	want, invs := scanImage(t, "debian-family.tar", "neo4j-like", inventory.Options{})
	var stored []*inventory.LayerInventory
	for _, inv := range invs {
		b, err := json.Marshal(inv)
		if err != nil {
			t.Fatal(err)
		}
		var back inventory.LayerInventory
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back.Fingerprint != inventory.Fingerprint(inventory.ModeEnhanced) || back.Digest != inv.Digest {
			t.Errorf("round trip lost the header: %+v", back)
		}
		stored = append(stored, &back)
	}
	if got := inventory.Merge(stored); !reflect.DeepEqual(got, want) {
		t.Errorf("merge of stored inventories differs")
	}
}

func TestScanConvenience(t *testing.T) {
	img := openImage(t, "debian-family.tar", "whiteout")
	got, err := inventory.Scan(context.Background(), inventoryLayers(img), inventory.Options{Mode: inventory.ModeBasic, ScratchDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Packages) != 88 || len(got.Layers) != 5 || got.OS == nil {
		t.Errorf("BASIC scan of whiteout: %d packages, %d layers, OS %+v", len(got.Packages), len(got.Layers), got.OS)
	}
}
