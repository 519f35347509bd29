package inventory_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/testfiles"
)

func layerDigest(i int) string { return fmt.Sprintf("sha256:%064d", i+1) }

// scanLayers scans each layer (raw bytes) and merges them.
func scanLayers(tb testing.TB, opts inventory.Options, layers ...[]byte) (*inventory.Image, []*inventory.LayerInventory) {
	tb.Helper()
	if opts.ScratchDir == "" {
		opts.ScratchDir = tb.TempDir()
	}
	var invs []*inventory.LayerInventory
	for i, l := range layers {
		inv, err := inventory.ScanLayer(context.Background(), bytes.NewReader(l), layerDigest(i), opts)
		if err != nil {
			tb.Fatalf("ScanLayer %d: %v", i, err)
		}
		invs = append(invs, inv)
	}
	return inventory.Merge(invs), invs
}

func findPackages(img *inventory.Image, ecosystem, name string) []inventory.Package {
	var out []inventory.Package
	for _, p := range img.Packages {
		if p.Ecosystem == ecosystem && p.Name == name {
			out = append(out, p)
		}
	}
	return out
}

func onePackage(tb testing.TB, img *inventory.Image, ecosystem, name string) inventory.Package {
	tb.Helper()
	found := findPackages(img, ecosystem, name)
	if len(found) != 1 {
		tb.Fatalf("%s %s: found %d packages, want 1: %+v", ecosystem, name, len(found), found)
	}
	return found[0]
}

func hasSkip(skipped []inventory.Skipped, path, reasonPart string) bool {
	for _, s := range skipped {
		if s.Path == path && strings.Contains(s.Reason, reasonPart) {
			return true
		}
	}
	return false
}

func TestDpkgDebian12(t *testing.T) {
	img, _ := scanLayers(t, inventory.Options{}, tarLayer(t,
		file("etc/os-release", testdata(t, "dpkg/bookworm.os-release")),
		file("var/lib/dpkg/status", testdata(t, "dpkg/bookworm-minbase.status")),
	))
	if img.OS == nil || img.OS.Ecosystem != "Debian:12" || img.OS.ID != "debian" || img.OS.Codename != "bookworm" {
		t.Fatalf("OS = %+v, want Debian 12 (bookworm)", img.OS)
	}
	if len(img.Packages) != 88 {
		t.Fatalf("got %d packages, want 88", len(img.Packages))
	}
	tests := []struct {
		name                           string
		version, source, sourceVersion string
		epoch                          int
		release                        string
	}{
		{"bash", "5.2.15-2+b13", "bash", "5.2.15-2", 0, "2+b13"},
		{"e2fsprogs", "1.47.0-2+b2", "e2fsprogs", "1.47.0-2", 0, "2+b2"},
		{"zlib1g", "1:1.2.13.dfsg-1", "zlib", "1:1.2.13.dfsg-1", 1, "1"},
		{"libc6", "2.36-9+deb12u14", "glibc", "2.36-9+deb12u14", 0, "9+deb12u14"},
		{"login", "1:4.13+dfsg1-1+deb12u2", "shadow", "1:4.13+dfsg1-1+deb12u2", 1, "1+deb12u2"},
		{"apt", "2.6.1", "apt", "2.6.1", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := onePackage(t, img, "Debian:12", tt.name)
			if p.Version != tt.version || p.SourceName != tt.source || p.SourceVersion != tt.sourceVersion ||
				p.Epoch != tt.epoch || p.Release != tt.release {
				t.Errorf("got %+v, want version %s source %s (%s) epoch %d release %q", p, tt.version, tt.source, tt.sourceVersion, tt.epoch, tt.release)
			}
			if p.PackageManager != inventory.ManagerOS || p.Path != "/var/lib/dpkg/status" || p.Layer != layerDigest(0) || p.Arch == "" {
				t.Errorf("got %+v", p)
			}
			if !strings.HasPrefix(p.PURL, "pkg:deb/debian/"+tt.name+"@") || !strings.Contains(p.PURL, "distro=debian-12") {
				t.Errorf("purl %s", p.PURL)
			}
		})
	}
	if got := onePackage(t, img, "Debian:12", "zlib1g").UpstreamVersion(); got != "1.2.13.dfsg" {
		t.Errorf("zlib1g upstream version %q, want 1.2.13.dfsg", got)
	}
}

// TestDpkgDistroless splits the real status file into distroless-style status.d files.
func TestDpkgDistroless(t *testing.T) {
	entries := []entry{file("etc/os-release", testdata(t, "dpkg/bookworm.os-release"))}
	for i, para := range strings.Split(strings.TrimSpace(string(testdata(t, "dpkg/bookworm-minbase.status"))), "\n\n") {
		entries = append(entries, file(fmt.Sprintf("var/lib/dpkg/status.d/pkg%03d", i), []byte(para+"\n")))
		entries = append(entries, file(fmt.Sprintf("var/lib/dpkg/status.d/pkg%03d.md5sums", i), []byte("0123  /bin/x\n")))
	}
	img, _ := scanLayers(t, inventory.Options{}, tarLayer(t, entries...))
	if len(img.Packages) != 88 {
		t.Fatalf("got %d packages, want 88", len(img.Packages))
	}
	bash := onePackage(t, img, "Debian:12", "bash")
	if bash.SourceVersion != "5.2.15-2" || !strings.HasPrefix(bash.Path, "/var/lib/dpkg/status.d/") {
		t.Errorf("bash = %+v", bash)
	}
}

func TestApkAlpine320(t *testing.T) {
	img, _ := scanLayers(t, inventory.Options{}, tarLayer(t,
		file("etc/os-release", testdata(t, "alpine/alpine-3.20.3.os-release")),
		file("lib/apk/db/installed", testdata(t, "alpine/alpine-3.20.3.installed")),
	))
	if img.OS == nil || img.OS.Ecosystem != "Alpine:v3.20" {
		t.Fatalf("OS = %+v, want Alpine:v3.20", img.OS)
	}
	if len(img.Packages) != 14 {
		t.Fatalf("got %d packages, want 14", len(img.Packages))
	}
	tests := []struct{ name, version, source, release string }{
		{"busybox", "1.36.1-r29", "busybox", "r29"},
		{"libssl3", "3.3.2-r0", "openssl", "r0"},
		{"libcrypto3", "3.3.2-r0", "openssl", "r0"},
		{"musl", "1.2.5-r0", "musl", "r0"},
		{"zlib", "1.3.1-r1", "zlib", "r1"},
	}
	for _, tt := range tests {
		p := onePackage(t, img, "Alpine:v3.20", tt.name)
		if p.Version != tt.version || p.SourceName != tt.source || p.Release != tt.release || p.PackageManager != "OS" {
			t.Errorf("%s = %+v", tt.name, p)
		}
		if p.UpstreamVersion() != strings.TrimSuffix(tt.version, "-"+tt.release) {
			t.Errorf("%s upstream %s", tt.name, p.UpstreamVersion())
		}
	}
}

func TestLanguageMetadata(t *testing.T) {
	img, _ := scanLayers(t, inventory.Options{}, tarLayer(t, append(append(append(
		treeEntries(t, "python/dist-packages", "usr/lib/python3/dist-packages"),
		treeEntries(t, "npm/node-app", "usr/src/app")...),
		file("app/ExampleApp1.deps.json", testdata(t, "dotnet/ExampleApp1.deps.json")),
		file("web/Web.deps.json", testdata(t, "dotnet/Web.deps.json"))),
		file("srv/php/vendor/composer/installed.json", []byte(`{"packages":[{"name":"monolog/monolog","version":"2.1.0"},{"name":"guzzlehttp/guzzle","version":"v7.4.4"}]}`)),
	)...))
	tests := []struct {
		ecosystem, name, version, path, manager string
	}{
		{"PyPI", "requests", "2.28.1", "/usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO", "PYTHONPKG"},
		{"PyPI", "PyYAML", "6.0", "/usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA", "PYTHONPKG"},
		{"PyPI", "urllib3", "1.26.12", "/usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info/PKG-INFO", "PYTHONPKG"},
		{"PyPI", "Jinja2", "3.1.2", "/usr/lib/python3/dist-packages/Jinja2-3.1.2.egg-info/PKG-INFO", "PYTHONPKG"},
		{"npm", "lodash", "4.17.15", "/usr/src/app/node_modules/lodash/package.json", "NODEPKG"},
		{"npm", "minimist", "1.2.5", "/usr/src/app/node_modules/minimist/package.json", "NODEPKG"},
		{"npm", "express", "4.17.1", "/usr/src/app/node_modules/express/package.json", "NODEPKG"},
		{"NuGet", "Newtonsoft.Json", "13.0.1", "/app/ExampleApp1.deps.json", "DOTNET_CORE"},
		{"NuGet", "Newtonsoft.Json", "13.0.3", "/web/Web.deps.json", "DOTNET_CORE"},
		{"Packagist", "monolog/monolog", "2.1.0", "/srv/php/vendor/composer/installed.json", "COMPOSER"},
		{"Packagist", "guzzlehttp/guzzle", "7.4.4", "/srv/php/vendor/composer/installed.json", "COMPOSER"},
	}
	for _, tt := range tests {
		t.Run(tt.ecosystem+"/"+tt.name+"@"+tt.version, func(t *testing.T) {
			for _, p := range findPackages(img, tt.ecosystem, tt.name) {
				if p.Version == tt.version && p.Path == tt.path {
					if p.PackageManager != tt.manager || p.PURL == "" || p.Layer != layerDigest(0) {
						t.Errorf("got %+v", p)
					}
					return
				}
			}
			t.Errorf("not found; have %+v", findPackages(img, tt.ecosystem, tt.name))
		})
	}
	// 52 installed npm packages, two of them ms (2.0.0 and the nested 2.1.1); the lock file
	// lists the same ones, so none of its entries stays.
	var npm, lock int
	for _, p := range img.Packages {
		if p.Ecosystem == "npm" {
			npm++
			if p.FromLockfile {
				lock++
			}
		}
	}
	if npm != 52 || lock != 0 {
		t.Errorf("npm packages %d (from the lock file %d), want 52 (0)", npm, lock)
	}
	ms := findPackages(img, "npm", "ms")
	if len(ms) != 2 {
		t.Errorf("ms: %+v", ms)
	}
}

// TestNpmLockfileOnly keeps lock-file packages when nothing is installed beside them.
func TestNpmLockfileOnly(t *testing.T) {
	img, _ := scanLayers(t, inventory.Options{}, tarLayer(t,
		file("usr/src/app/package-lock.json", testdata(t, "npm/node-app/package-lock.json"))))
	p := onePackage(t, img, "npm", "lodash")
	if p.Version != "4.17.15" || !p.FromLockfile || p.PackageManager != "NPM" || p.Path != "/usr/src/app/package-lock.json" {
		t.Errorf("lodash = %+v", p)
	}
}

func TestModeBasicSkipsLanguages(t *testing.T) {
	img, _ := scanLayers(t, inventory.Options{Mode: inventory.ModeBasic}, tarLayer(t,
		file("etc/os-release", testdata(t, "dpkg/bookworm.os-release")),
		file("var/lib/dpkg/status", testdata(t, "dpkg/bookworm-minbase.status")),
		file("opt/lib/log4j-core-2.14.1.jar", testdata(t, "java/log4j-core-2.14.1.jar")),
		file("usr/src/app/node_modules/lodash/package.json", testdata(t, "npm/node-app/node_modules/lodash/package.json")),
	))
	for _, p := range img.Packages {
		if p.PackageManager != inventory.ManagerOS {
			t.Errorf("BASIC found a language package: %+v", p)
		}
	}
	if len(img.Packages) != 88 {
		t.Errorf("got %d packages, want 88", len(img.Packages))
	}
}

func gunzip(tb testing.TB, b []byte) []byte {
	tb.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestRpm(t *testing.T) {
	alma := []byte("NAME=\"AlmaLinux\"\nVERSION=\"9.4 (Seafoam Ocelot)\"\nID=\"almalinux\"\nVERSION_ID=\"9.4\"\n")
	tests := []struct {
		name, path string
		db         []byte
		want       []inventory.Package
	}{
		{"sqlite", "var/lib/rpm/rpmdb.sqlite", gunzip(t, testfiles.Read(t, "local/rpm/rpmdb.sqlite.gz")), []inventory.Package{
			{Name: "openssl", Version: "1:3.0.7-27.el9", Epoch: 1, Release: "27.el9", SourceName: "openssl", SourceVersion: "3.0.7-27.el9", Arch: "x86_64"},
			{Name: "openssl-libs", Version: "1:3.0.7-27.el9", Epoch: 1, Release: "27.el9", SourceName: "openssl", SourceVersion: "3.0.7-27.el9", Arch: "x86_64"},
			{Name: "zlib", Version: "1.2.11-40.el9", Release: "40.el9", SourceName: "zlib", SourceVersion: "1.2.11-40.el9", Arch: "x86_64"},
		}},
		{"Berkeley DB", "var/lib/rpm/Packages", testfiles.Read(t, "local/rpm/Packages"), []inventory.Package{
			{Name: "hello", Version: "1:0.0.1-rls", Epoch: 1, Release: "rls", SourceName: "hello", SourceVersion: "0.0.1-rls", Arch: "x86_64"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scratch := t.TempDir()
			img, _ := scanLayers(t, inventory.Options{ScratchDir: scratch}, tarLayer(t,
				file("etc/os-release", alma), file(tt.path, tt.db)))
			if len(img.Skipped) != 0 {
				t.Errorf("skipped %+v", img.Skipped)
			}
			if len(img.Packages) != len(tt.want) {
				t.Fatalf("got %+v", img.Packages)
			}
			for i, w := range tt.want {
				p := img.Packages[i]
				if p.Name != w.Name || p.Version != w.Version || p.Epoch != w.Epoch || p.Release != w.Release ||
					p.SourceName != w.SourceName || p.SourceVersion != w.SourceVersion || p.Arch != w.Arch ||
					p.Ecosystem != "AlmaLinux:9" || p.Path != "/"+tt.path || p.PackageManager != "OS" {
					t.Errorf("got %+v, want %+v", p, w)
				}
				if !strings.HasPrefix(p.PURL, "pkg:rpm/almalinux/"+w.Name+"@") {
					t.Errorf("purl %s", p.PURL)
				}
			}
			assertEmptyDir(t, scratch)
		})
	}
}

// TestRubyRustPHPFiles reads files written here in the formats RubyGems, Cargo and Composer
// write (the shared corpus has none of them).
func TestRubyRustPHPFiles(t *testing.T) {
	gemspec := `# -*- encoding: utf-8 -*-
# stub: rack 2.2.3 ruby lib

Gem::Specification.new do |s|
  s.name = "rack".freeze
  s.version = "2.2.3"

  s.required_rubygems_version = Gem::Requirement.new(">= 0".freeze) if s.respond_to? :required_rubygems_version=
  s.require_paths = ["lib".freeze]
  s.authors = ["Leah Neukirchen".freeze]
  s.summary = "a modular Ruby webserver interface".freeze
end
`
	cargoLock := `# This file is automatically @generated by Cargo.
# It is not intended for manual editing.
version = 3

[[package]]
name = "app"
version = "0.1.0"
dependencies = [
 "regex",
]

[[package]]
name = "regex"
version = "1.5.4"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "d07a8629359eb56f1e2fb1652bb04212c072a87ba68546a04065d525673ac461"
`
	composerLock := `{
    "_readme": ["This file locks the dependencies of your project to a known state"],
    "content-hash": "0123456789abcdef",
    "packages": [
        {"name": "guzzlehttp/guzzle", "version": "7.4.4", "type": "library"}
    ],
    "packages-dev": [
        {"name": "phpunit/phpunit", "version": "9.5.20", "type": "library"}
    ]
}`
	img, _ := scanLayers(t, inventory.Options{}, tarLayer(t,
		file("usr/local/bundle/specifications/rack-2.2.3.gemspec", []byte(gemspec)),
		file("usr/local/bundle/gems/rack-2.2.3/rack.gemspec", []byte(gemspec)), // not an installed gem's spec
		file("src/app/Cargo.lock", []byte(cargoLock)),
		file("srv/php/composer.lock", []byte(composerLock)),
	))
	tests := []struct{ ecosystem, name, version, path, manager string }{
		{"RubyGems", "rack", "2.2.3", "/usr/local/bundle/specifications/rack-2.2.3.gemspec", "GEMSPEC"},
		{"crates.io", "regex", "1.5.4", "/src/app/Cargo.lock", "CARGO"},
		{"Packagist", "guzzlehttp/guzzle", "7.4.4", "/srv/php/composer.lock", "COMPOSER"},
		{"Packagist", "phpunit/phpunit", "9.5.20", "/srv/php/composer.lock", "COMPOSER"},
	}
	for _, tt := range tests {
		p := onePackage(t, img, tt.ecosystem, tt.name)
		if p.Version != tt.version || p.Path != tt.path || p.PackageManager != tt.manager || p.PURL == "" {
			t.Errorf("%s = %+v", tt.name, p)
		}
	}
}

// TestOpkg reads OpenWrt's opkg status file, which osv-scalibr's dpkg extractor reads as the
// same format: its packages are no Debian packages, with or without an os-release.
func TestOpkg(t *testing.T) {
	status := []byte("Package: busybox\nVersion: 1.36.1-r2\nDepends: libc\nStatus: install ok installed\nArchitecture: x86_64\n\n" +
		"Package: ubus\nVersion: 2024.10.20~252a9b0c-r1\nStatus: install ok installed\nArchitecture: x86_64\n")
	openwrt := []byte("NAME=\"OpenWrt\"\nVERSION=\"23.05.5\"\nID=\"openwrt\"\nVERSION_ID=\"23.05.5\"\n")
	tests := []struct {
		name    string
		entries []entry
	}{
		{"with os-release", []entry{file("etc/os-release", openwrt), file("usr/lib/opkg/status", status)}},
		{"without os-release", []entry{file("usr/lib/opkg/status", status)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, invs := scanLayers(t, inventory.Options{Mode: inventory.ModeBasic}, tarLayer(t, tt.entries...))
			if len(invs[0].OSDatabases) != 1 || invs[0].OSDatabases[0].Kind != "opkg" {
				t.Fatalf("databases %+v", invs[0].OSDatabases)
			}
			if len(img.Packages) != 2 {
				t.Fatalf("got %+v", img.Packages)
			}
			for _, p := range img.Packages {
				if p.Ecosystem != "" || p.PURL != "" || p.PackageManager != inventory.ManagerOS || p.Path != "/usr/lib/opkg/status" {
					t.Errorf("got %+v", p)
				}
			}
		})
	}
}
