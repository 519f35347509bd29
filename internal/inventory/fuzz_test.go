package inventory

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/testfiles"
)

// The seeds make plain `go test` run every fuzz target on real inputs; `go test -fuzz=X`
// explores further.

func seedFile(f *testing.F, name string) []byte {
	f.Helper()
	return testfiles.Read(f, "artifacts", name)
}

func seedTar(f *testing.F, entries map[string][]byte, links map[string]string) []byte {
	f.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			f.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			f.Fatal(err)
		}
	}
	for name, target := range links {
		if err := tw.WriteHeader(&tar.Header{Name: name, Linkname: target, Typeflag: tar.TypeSymlink}); err != nil {
			f.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

func smallLimits() Options {
	return Options{Limits: Limits{
		MaxLayerBytes: 8 << 20, MaxFileBytes: 4 << 20, MaxMetadataBytes: 1 << 20, MaxMemoryBytes: 2 << 20,
		MaxNestedArchiveBytes: 2 << 20, MaxArchiveExpansion: 8 << 20, MaxArchiveDepth: 8,
	}}
}

// FuzzScanLayer feeds arbitrary layer streams (tar walking, decompression and every
// extractor behind it) to ScanLayer and merges the result.
func FuzzScanLayer(f *testing.F) {
	f.Add(seedTar(f, map[string][]byte{
		"var/lib/dpkg/status":             seedFile(f, "dpkg/bookworm-minbase.status")[:4000],
		"lib/apk/db/installed":            seedFile(f, "alpine/alpine-3.20.3.installed")[:3000],
		"etc/os-release":                  seedFile(f, "dpkg/bookworm.os-release"),
		"app/node_modules/x/package.json": []byte(`{"name":"x","version":"1.0.0"}`),
		"app/package-lock.json":           seedFile(f, "npm/node-app/package-lock.json")[:2000],
		"app/a.deps.json":                 seedFile(f, "dotnet/Web.deps.json"),
		"usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA": seedFile(f, "python/dist-packages/PyYAML-6.0.dist-info/METADATA"),
		"app/vendor/composer/installed.json":                          []byte(`[{"name":"a/b","version":"1.0"}]`),
		"usr/share/gems/specifications/x-1.0.gemspec":                 []byte("Gem::Specification.new do |s|\n  s.name = \"x\"\n  s.version = \"1.0\"\nend\n"),
		"app/Cargo.lock":       []byte("[[package]]\nname = \"regex\"\nversion = \"1.5.4\"\n"),
		"app/composer.lock":    []byte(`{"packages":[{"name":"a/b","version":"1.0"}]}`),
		"opt/.wh.old":          nil,
		"opt/app/.wh..wh..opq": nil,
		"bin/elf":              append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 100)...),
		"bin/script":           []byte("#!/bin/sh\necho PK\x05\x06\n"),
	}, map[string]string{"etc/os-release": "../usr/lib/os-release", "opt/up": "../../.."}))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0})
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, layer []byte) {
		opts := smallLimits()
		opts.ScratchDir = t.TempDir()
		inv, err := ScanLayer(context.Background(), bytes.NewReader(layer), "sha256:fuzz", opts)
		if err != nil {
			return
		}
		img := Merge([]*LayerInventory{inv, inv})
		for _, p := range img.Packages {
			if p.Layer != "sha256:fuzz" {
				t.Fatalf("package without its layer: %+v", p)
			}
		}
		if entries, _ := os.ReadDir(opts.ScratchDir); len(entries) != 0 {
			t.Fatalf("scratch directory left behind: %v", entries)
		}
	})
}

// FuzzMergeJSON merges arbitrary stored layer inventories (the registry reads them back
// from its store).
func FuzzMergeJSON(f *testing.F) {
	f.Add([]byte(`[{"digest":"L1","whiteouts":["/a"],"opaqueDirs":["/"],"paths":["/x"],"symlinks":[{"path":"/etc/os-release","target":"/etc/os-release"}],
		"osReleaseFiles":[{"path":"/usr/lib/os-release","content":"ID=debian\nVERSION_ID=12"}],
		"osDatabases":[{"path":"/var/lib/dpkg/status","kind":"dpkg","packages":[{"name":"a","version":"1"}]}],
		"packages":[{"name":"b","version":"2","path":"/x!/y"}]}, null]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var layers []*LayerInventory
		if json.Unmarshal(data, &layers) != nil {
			return
		}
		_ = Merge(layers)
	})
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add(string(seedFile(f, "dpkg/bookworm.os-release")))
	f.Add(string(seedFile(f, "alpine/alpine-3.20.3.os-release")))
	f.Add("ID='ubuntu'\nVERSION=\"22.04 LTS\"\nVERSION_ID=\"22.04\"\nCPE_NAME=\"cpe:/o:redhat:enterprise_linux:9::baseos\"\n")
	f.Fuzz(func(t *testing.T, content string) {
		if info := osInfoFromRelease(parseOSRelease(content)); info != nil && info.ID == "" {
			t.Fatal("OS without ID")
		}
	})
}

func FuzzPaths(f *testing.F) {
	f.Add("../../etc/passwd", "../../../host/etc/os-release")
	f.Add("/etc/os-release", "/proc/self/environ")
	f.Add("app/./a/../b/", "./././")
	f.Fuzz(func(t *testing.T, name, target string) {
		p, _, err := cleanEntryPath(name)
		if err != nil {
			return
		}
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
			t.Fatalf("cleanEntryPath(%q) = %q", name, p)
		}
		resolved, _ := resolveLinkTarget(p, target)
		if !strings.HasPrefix(resolved, "/") {
			t.Fatalf("resolveLinkTarget(%q, %q) = %q", p, target, resolved)
		}
		links := map[string]string{p: target, "/etc/os-release": target}
		if r, err := resolveInRoot("/etc/os-release", links); err == nil && !strings.HasPrefix(r, "/") {
			t.Fatalf("resolveInRoot = %q", r)
		}
	})
}
