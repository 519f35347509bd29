package inventory_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/inventory"
)

func npmPkg(name, version, path string) inventory.Package {
	return inventory.Package{Ecosystem: "npm", Name: name, Version: version, Path: path, PackageManager: "NODEPKG"}
}

func dpkgDB(pkgs ...string) []inventory.OSDatabase {
	db := inventory.OSDatabase{Path: "/var/lib/dpkg/status", Kind: "dpkg"}
	for _, nv := range pkgs {
		name, version, _ := strings.Cut(nv, "=")
		db.Packages = append(db.Packages, inventory.Package{Name: name, Version: version, Arch: "amd64", Path: db.Path, PackageManager: "OS"})
	}
	return []inventory.OSDatabase{db}
}

var debianRelease = []inventory.OSReleaseFile{{Path: "/etc/os-release", Content: "ID=debian\nVERSION_ID=\"12\"\n"}}

// summary lists "name version layer path" of an image's packages.
func summary(img *inventory.Image) []string {
	var out []string
	for _, p := range img.Packages {
		out = append(out, p.Name+" "+p.Version+" "+p.Layer+" "+p.Path)
	}
	slices.Sort(out)
	return out
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name   string
		layers []*inventory.LayerInventory
		want   []string
	}{
		{
			name: "whiteout deletes a file and a directory tree",
			layers: []*inventory.LayerInventory{
				{Digest: "L1", Packages: []inventory.Package{
					npmPkg("a", "1", "/app/node_modules/a/package.json"),
					npmPkg("b", "1", "/opt/legacy/node_modules/b/package.json"),
					npmPkg("c", "1", "/opt/legacy-keep/node_modules/c/package.json"),
				}},
				{Digest: "L2", Whiteouts: []string{"/app/node_modules/a/package.json", "/opt/legacy"}},
			},
			want: []string{"c 1 L1 /opt/legacy-keep/node_modules/c/package.json"},
		},
		{
			name: "opaque directory hides lower content, keeps its own layer's",
			layers: []*inventory.LayerInventory{
				{Digest: "L1", Packages: []inventory.Package{npmPkg("a", "1", "/app/node_modules/a/package.json")}},
				{Digest: "L2", OpaqueDirs: []string{"/app/node_modules"}, Packages: []inventory.Package{npmPkg("a", "2", "/app/node_modules/a/package.json")},
					Paths: []string{"/app/node_modules/a/package.json"}},
			},
			want: []string{"a 2 L2 /app/node_modules/a/package.json"},
		},
		{
			name: "a later layer overwrites a file, with or without packages",
			layers: []*inventory.LayerInventory{
				{Digest: "L1", Packages: []inventory.Package{
					npmPkg("a", "1", "/x/node_modules/a/package.json"),
					{Ecosystem: "Maven", Name: "g:inner", Version: "1", Path: "/app/fat.jar!/lib/inner.jar"},
					{Ecosystem: "Go", Name: "stdlib", Version: "1.20", Path: "/usr/bin/tool"},
				}},
				{Digest: "L2", Paths: []string{"/app/fat.jar", "/usr/bin/tool"}},
				{Digest: "L3", Packages: []inventory.Package{npmPkg("a", "2", "/x/node_modules/a/package.json")}, Paths: []string{"/x/node_modules/a/package.json"}},
			},
			want: []string{"a 2 L3 /x/node_modules/a/package.json"},
		},
		{
			name: "a file replacing a directory hides what was below it",
			layers: []*inventory.LayerInventory{
				{Digest: "L1", Packages: []inventory.Package{npmPkg("a", "1", "/app/lib.jar/node_modules/a/package.json")}},
				{Digest: "L2", Paths: []string{"/app/lib.jar"}},
			},
			want: nil,
		},
		{
			name: "OS packages come from the lowest layer of an unbroken run listing them",
			layers: []*inventory.LayerInventory{
				{Digest: "L1", OSDatabases: dpkgDB("libc6=1", "curl=1", "zlib=1"), OSReleaseFiles: debianRelease},
				{Digest: "L2", OSDatabases: dpkgDB("libc6=1", "curl=2", "zlib=1", "openssl=3")},
				{Digest: "L3", Paths: []string{"/etc/passwd"}},
				{Digest: "L4", OSDatabases: dpkgDB("libc6=1", "curl=1", "openssl=3")},
			},
			want: []string{
				"curl 1 L4 /var/lib/dpkg/status", // downgraded again in L4: L2 broke the run
				"libc6 1 L1 /var/lib/dpkg/status",
				"openssl 3 L2 /var/lib/dpkg/status",
			},
		},
		{
			name: "a deleted database starts its history again",
			layers: []*inventory.LayerInventory{
				{Digest: "L1", OSDatabases: dpkgDB("libc6=1")},
				{Digest: "L2", Whiteouts: []string{"/var/lib/dpkg"}},
				{Digest: "L3", OSDatabases: dpkgDB("libc6=1")},
			},
			want: []string{"libc6 1 L3 /var/lib/dpkg/status"},
		},
		{
			name: "lock file entries give way to installed packages below the lock file's folder",
			layers: []*inventory.LayerInventory{
				{Digest: "L1", Packages: []inventory.Package{
					{Ecosystem: "npm", Name: "a", Version: "1", Path: "/app/package-lock.json", FromLockfile: true},
					{Ecosystem: "npm", Name: "b", Version: "1", Path: "/app/package-lock.json", FromLockfile: true},
					{Ecosystem: "npm", Name: "c", Version: "1", Path: "/other/package-lock.json", FromLockfile: true},
					npmPkg("a", "1", "/app/node_modules/a/package.json"),
					npmPkg("c", "1", "/app/node_modules/c/package.json"),
				}},
			},
			want: []string{
				"a 1 L1 /app/node_modules/a/package.json",
				"b 1 L1 /app/package-lock.json",
				"c 1 L1 /app/node_modules/c/package.json",
				"c 1 L1 /other/package-lock.json",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summary(inventory.Merge(tt.layers))
			if !slices.Equal(got, tt.want) {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestMergeOSRelease(t *testing.T) {
	ubuntu := "NAME=\"Ubuntu\"\nVERSION=\"22.04.4 LTS (Jammy Jellyfish)\"\nID=ubuntu\nVERSION_ID=\"22.04\"\nVERSION_CODENAME=jammy\n"
	tests := []struct {
		name      string
		layers    []*inventory.LayerInventory
		ecosystem string
		skip      string
	}{
		{"Debian link to /usr/lib", []*inventory.LayerInventory{{Digest: "L1",
			Symlinks:       []inventory.Symlink{{Path: "/etc/os-release", Target: "../usr/lib/os-release"}},
			OSReleaseFiles: []inventory.OSReleaseFile{{Path: "/usr/lib/os-release", Content: "ID=debian\nVERSION_ID=\"12\"\n"}}}}, "Debian:12", ""},
		{"Ubuntu LTS", []*inventory.LayerInventory{{Digest: "L1", OSReleaseFiles: []inventory.OSReleaseFile{{Path: "/etc/os-release", Content: ubuntu}}}}, "Ubuntu:22.04:LTS", ""},
		{"Alpine", []*inventory.LayerInventory{{Digest: "L1", OSReleaseFiles: []inventory.OSReleaseFile{{Path: "/etc/os-release", Content: "ID=alpine\nVERSION_ID=3.20.3\n"}}}}, "Alpine:v3.20", ""},
		{"AlmaLinux", []*inventory.LayerInventory{{Digest: "L1", OSReleaseFiles: []inventory.OSReleaseFile{{Path: "/etc/os-release", Content: "ID=\"almalinux\"\nVERSION_ID=\"9.4\"\n"}}}}, "AlmaLinux:9", ""},
		{"Rocky", []*inventory.LayerInventory{{Digest: "L1", OSReleaseFiles: []inventory.OSReleaseFile{{Path: "/usr/lib/os-release", Content: "ID=\"rocky\"\nVERSION_ID=\"8.9\"\n"}}}}, "Rocky Linux:8", ""},
		{"a later layer replaces the release", []*inventory.LayerInventory{
			{Digest: "L1", OSReleaseFiles: []inventory.OSReleaseFile{{Path: "/etc/os-release", Content: "ID=debian\nVERSION_ID=11\n"}}},
			{Digest: "L2", OSReleaseFiles: []inventory.OSReleaseFile{{Path: "/etc/os-release", Content: "ID=debian\nVERSION_ID=12\n"}}, Paths: []string{"/etc/os-release"}},
		}, "Debian:12", ""},
		{"a deleted release", []*inventory.LayerInventory{
			{Digest: "L1", OSReleaseFiles: []inventory.OSReleaseFile{{Path: "/etc/os-release", Content: "ID=debian\nVERSION_ID=12\n"}}},
			{Digest: "L2", Whiteouts: []string{"/etc/os-release"}},
		}, "", ""},
		{"a link loop", []*inventory.LayerInventory{{Digest: "L1", Symlinks: []inventory.Symlink{
			{Path: "/etc/os-release", Target: "/etc/loop-a"}, {Path: "/etc/loop-a", Target: "loop-b"}, {Path: "/etc/loop-b", Target: "/etc/loop-a"}}}}, "", "too many levels"},
		{"a link out of the root stays inside it", []*inventory.LayerInventory{{Digest: "L1",
			Symlinks:       []inventory.Symlink{{Path: "/etc/os-release", Target: "../../../../../usr/lib/os-release"}},
			OSReleaseFiles: []inventory.OSReleaseFile{{Path: "/usr/lib/os-release", Content: "ID=debian\nVERSION_ID=12\n"}}}}, "Debian:12", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := inventory.Merge(tt.layers)
			got := ""
			if img.OS != nil {
				got = img.OS.Ecosystem
			}
			if got != tt.ecosystem {
				t.Errorf("ecosystem %q, want %q (OS %+v)", got, tt.ecosystem, img.OS)
			}
			if tt.skip != "" && !hasSkip(img.Skipped, "/etc/os-release", tt.skip) {
				t.Errorf("skipped %+v, want %q", img.Skipped, tt.skip)
			}
		})
	}
}

// TestMergeDirectoryReplacedByLink scans real layers: the second replaces node_modules with
// a symbolic link, which hides the installed packages below it.
func TestMergeDirectoryReplacedByLink(t *testing.T) {
	img, _ := scanLayers(t, inventory.Options{},
		tarLayer(t, file("app/node_modules/lodash/package.json", testdata(t, "npm/node-app/node_modules/lodash/package.json"))),
		tarLayer(t, symlink("app/node_modules", "/cache/node_modules")))
	if len(img.Packages) != 0 {
		t.Errorf("packages below a replaced directory: %+v", img.Packages)
	}
}
