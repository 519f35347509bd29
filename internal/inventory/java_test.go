package inventory_test

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/inventory"
)

const log4jCore = "org.apache.logging.log4j:log4j-core"

// zipEntries reads every file of a real archive, to rebuild it in other shapes.
func zipEntries(tb testing.TB, archive []byte) []zipFile {
	tb.Helper()
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		tb.Fatal(err)
	}
	var out []zipFile
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			tb.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, zipFile{f.Name, b})
	}
	return out
}

// nest puts the archive inner at the bottom of depth archives: lib/level-01.jar ... .
func nest(tb testing.TB, innerName string, inner []byte, depth int) []byte {
	name, body := innerName, inner
	for level := 1; level <= depth; level++ {
		body = zipArchive(tb, zipFile{"META-INF/MANIFEST.MF", []byte("Manifest-Version: 1.0\n")}, zipFile{"lib/" + name, body})
		name = fmt.Sprintf("level-%02d.jar", level)
	}
	return body
}

func nestedPath(outer, innerName string, depth int) string {
	p := outer
	for level := depth - 1; level >= 1; level-- {
		p += fmt.Sprintf("!/lib/level-%02d.jar", level)
	}
	return p + "!/lib/" + innerName
}

func TestJavaArchives(t *testing.T) {
	core14 := testdata(t, "java/log4j-core-2.14.1.jar")
	core17 := testdata(t, "java/log4j-core-2.17.1.jar")
	api14 := testdata(t, "java/log4j-api-2.14.1.jar")

	springBoot := zipArchive(t,
		zipFile{"META-INF/MANIFEST.MF", []byte("Manifest-Version: 1.0\nMain-Class: org.springframework.boot.loader.JarLauncher\n")},
		zipFile{"META-INF/maven/com.example/shop/pom.properties", []byte("groupId=com.example\nartifactId=shop\nversion=1.0.0\n")},
		zipFile{"BOOT-INF/classes/com/example/Shop.class", []byte{0xca, 0xfe, 0xba, 0xbe}},
		zipFile{"BOOT-INF/lib/log4j-core-2.14.1.jar", core14},
		zipFile{"BOOT-INF/lib/log4j-api-2.14.1.jar", api14},
	)
	war := zipArchive(t, zipFile{"WEB-INF/lib/log4j-core-2.17.1.jar", core17}, zipFile{"index.jsp", []byte("<html/>")})
	ear := zipArchive(t, zipFile{"shop.war", war})
	// A shaded (uber) jar: both jars' classes and META-INF/maven merged into one.
	seen := map[string]bool{}
	var uberFiles []zipFile
	for _, f := range append(zipEntries(t, core14), zipEntries(t, api14)...) {
		if !seen[f.name] {
			seen[f.name] = true
			uberFiles = append(uberFiles, f)
		}
	}
	uber := zipArchive(t, uberFiles...)
	script := append([]byte("#!/bin/sh\nexec java -jar \"$0\" \"$@\"\n"), core17...)

	img, _ := scanLayers(t, inventory.Options{}, tarLayer(t,
		file("var/lib/neo4j/lib/log4j-core-2.14.1.jar", core14),
		file("opt/good/log4j-core-2.17.1.jar", core17),
		file("app/shop.jar", springBoot),
		file("srv/shop.ear", ear),
		file("app/uber.jar", uber),
		file("app/nested-20.jar", nest(t, "log4j-core-2.14.1.jar", core14, 20)),
		entry{name: "usr/local/bin/shop", body: script, mode: 0o755},
	))
	tests := []struct {
		name, version, path string
	}{
		{log4jCore, "2.14.1", "/var/lib/neo4j/lib/log4j-core-2.14.1.jar"},
		{log4jCore, "2.17.1", "/opt/good/log4j-core-2.17.1.jar"},
		{"com.example:shop", "1.0.0", "/app/shop.jar"},
		{log4jCore, "2.14.1", "/app/shop.jar!/BOOT-INF/lib/log4j-core-2.14.1.jar"},
		{"org.apache.logging.log4j:log4j-api", "2.14.1", "/app/shop.jar!/BOOT-INF/lib/log4j-api-2.14.1.jar"},
		{log4jCore, "2.17.1", "/srv/shop.ear!/shop.war!/WEB-INF/lib/log4j-core-2.17.1.jar"},
		{log4jCore, "2.14.1", "/app/uber.jar"},
		{"org.apache.logging.log4j:log4j-api", "2.14.1", "/app/uber.jar"},
		{log4jCore, "2.14.1", nestedPath("/app/nested-20.jar", "log4j-core-2.14.1.jar", 20)},
		{log4jCore, "2.17.1", "/usr/local/bin/shop"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			for _, p := range findPackages(img, "Maven", tt.name) {
				if p.Version == tt.version && p.Path == tt.path {
					wantPURL := "pkg:maven/" + strings.Replace(tt.name, ":", "/", 1) + "@" + tt.version
					if p.PackageManager != "JAR" || p.PURL != wantPURL {
						t.Errorf("got %+v, want purl %s", p, wantPURL)
					}
					return
				}
			}
			t.Errorf("%s %s not found at %s; found %+v", tt.name, tt.version, tt.path, findPackages(img, "Maven", tt.name))
		})
	}
	// Wrapper archives (nothing but archives inside) are no packages themselves.
	for _, p := range img.Packages {
		if strings.Contains(p.Name, "level") || strings.Contains(p.Name, "nested") {
			t.Errorf("wrapper reported as a package: %+v", p)
		}
	}
}

// overlappingZip builds a zip whose two central-directory entries share one local entry: the
// shape of overlapping-entry zip bombs.
func overlappingZip(tb testing.TB) []byte {
	b := zipArchive(tb, zipFile{"a.jar", bytes.Repeat([]byte("x"), 100)}, zipFile{"b.jar", bytes.Repeat([]byte("x"), 100)})
	second := bytes.LastIndex(b, []byte("PK\x01\x02"))
	binary.LittleEndian.PutUint32(b[second+42:], 0) // b.jar's local header offset -> a.jar's
	return b
}

func TestJavaArchiveLimits(t *testing.T) {
	core14 := testdata(t, "java/log4j-core-2.14.1.jar")
	tests := []struct {
		name        string
		limits      inventory.Limits
		archive     []byte
		skippedPath string
		reason      string
	}{
		{"too deep", inventory.Limits{MaxArchiveDepth: 5}, nest(t, "log4j-core-2.14.1.jar", core14, 8),
			"/app/x.jar!/lib/level-07.jar!/lib/level-06.jar!/lib/level-05.jar!/lib/level-04.jar!/lib/level-03.jar!/lib/level-02.jar",
			"nested deeper than 5"},
		{"nested archive too large", inventory.Limits{MaxNestedArchiveBytes: 1 << 20}, nest(t, "log4j-core-2.14.1.jar", core14, 1),
			"/app/x.jar!/lib/log4j-core-2.14.1.jar", "over the 1048576-byte limit"},
		{"expansion budget", inventory.Limits{MaxArchiveExpansion: 1 << 20}, nest(t, "log4j-core-2.14.1.jar", core14, 1),
			"/app/x.jar!/lib/log4j-core-2.14.1.jar", "over the 1048576-byte limit"},
		{"overlapping entries", inventory.Limits{}, overlappingZip(t), "/app/x.jar", "overlap"},
		{"not a zip", inventory.Limits{}, []byte("Ha! I tricked you! I'm not actually a real jar!\n"), "/app/x.jar", "not a readable zip archive"},
		{"truncated", inventory.Limits{}, core14[:64<<10], "/app/x.jar", "not a readable zip archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, _ := scanLayers(t, inventory.Options{Limits: tt.limits}, tarLayer(t, file("app/x.jar", tt.archive)))
			if !hasSkip(img.Skipped, tt.skippedPath, tt.reason) {
				t.Errorf("no skip of %s with %q; skipped: %+v", tt.skippedPath, tt.reason, img.Skipped)
			}
			if got := findPackages(img, "Maven", log4jCore); len(got) != 0 {
				t.Errorf("found %+v beyond a limit", got)
			}
		})
	}
}

// TestJavaSpillToScratch keeps almost nothing in memory, so archives go through the scratch
// directory, which must be empty afterwards.
func TestJavaSpillToScratch(t *testing.T) {
	scratch := t.TempDir()
	core14 := testdata(t, "java/log4j-core-2.14.1.jar")
	img, _ := scanLayers(t, inventory.Options{ScratchDir: scratch, Limits: inventory.Limits{MaxMemoryBytes: 1}},
		tarLayer(t, file("app/x.jar", nest(t, "log4j-core-2.14.1.jar", core14, 3))))
	if got := findPackages(img, "Maven", log4jCore); len(got) != 1 {
		t.Fatalf("log4j-core: %+v", got)
	}
	assertEmptyDir(t, scratch)
}
