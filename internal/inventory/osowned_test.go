package inventory_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/lading-registry/lading/internal/inventory"
)

const (
	bookwormRelease = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n"
	requestsPkgInfo = "/usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO"
	pyyamlMetadata  = "/usr/local/lib/python3.11/dist-packages/PyYAML-6.0.dist-info/METADATA"
)

// debianStatus lists python3-requests (and, with more, another package as a later apt-get
// would add it).
func debianStatus(more bool) []byte {
	s := "Package: python3-requests\nStatus: install ok installed\nArchitecture: all\nSource: requests\nVersion: 2.28.1+dfsg-1\n\n"
	if more {
		s += "Package: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10+deb12u5\n\n"
	}
	return []byte(s)
}

// TestOSOwnedLanguagePackages: a Debian-packaged Python package (its egg-info listed in
// /var/lib/dpkg/info/python3-requests.list) is reported once, as the Debian package naming
// the Python package; a pip-installed one as a PyPI package; KeepOSOwned reports both.
func TestOSOwnedLanguagePackages(t *testing.T) {
	base := tarLayer(t,
		file("etc/os-release", []byte(bookwormRelease)),
		file("var/lib/dpkg/status", debianStatus(false)),
		file("var/lib/dpkg/info/python3-requests.list", []byte("/.\n/usr\n/usr/lib/python3/dist-packages/requests-2.28.1.egg-info\n"+requestsPkgInfo+"\n")),
		file(requestsPkgInfo[1:], testdata(t, "python/dist-packages/requests-2.28.1.egg-info/PKG-INFO")),
		file(pyyamlMetadata[1:], testdata(t, "python/dist-packages/PyYAML-6.0.dist-info/METADATA")),
	)
	tests := []struct {
		name   string
		layers [][]byte
		keep   bool
		// owned: requests is reported as the Debian package only.
		owned bool
	}{
		{"one layer", [][]byte{base}, false, true},
		{"one layer, OS-owned kept", [][]byte{base}, true, false},
		// A later apt-get rewrites the status file; a chown copies the metadata up: the
		// record below still owns it.
		{"status rewritten, metadata copied up", [][]byte{base, tarLayer(t,
			file("var/lib/dpkg/status", debianStatus(true)),
			file(requestsPkgInfo[1:], testdata(t, "python/dist-packages/requests-2.28.1.egg-info/PKG-INFO")))}, false, true},
		// Without its record the file is nobody's.
		{"record deleted", [][]byte{base, tarLayer(t, file("var/lib/dpkg/info/.wh.python3-requests.list", nil))}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var invs []*inventory.LayerInventory
			for i, l := range tt.layers {
				inv, err := inventory.ScanLayer(context.Background(), bytes.NewReader(l), layerDigest(i), inventory.Options{ScratchDir: t.TempDir()})
				if err != nil {
					t.Fatal(err)
				}
				invs = append(invs, inv)
			}
			img := inventory.MergeWith(invs, inventory.MergeOptions{KeepOSOwned: tt.keep})
			deb := onePackage(t, img, "Debian:12", "python3-requests")
			named := slices.Contains(deb.LanguagePackages, inventory.LanguagePackage{Ecosystem: "PyPI", Name: "requests", Version: "2.28.1", Path: requestsPkgInfo})
			pypi := findPackages(img, "PyPI", "requests")
			switch {
			case tt.owned && (!named || len(pypi) != 0):
				t.Errorf("requests: Debian package names %+v, PyPI packages %+v; want it named and not reported apart", deb.LanguagePackages, pypi)
			case !tt.owned && len(pypi) != 1:
				t.Errorf("requests: PyPI packages %+v, want one", pypi)
			case tt.keep && !named:
				t.Errorf("kept as PyPI, but the Debian package does not name it: %+v", deb.LanguagePackages)
			}
			// pip's own package is nobody's.
			if p := onePackage(t, img, "PyPI", "PyYAML"); p.Path != pyyamlMetadata {
				t.Errorf("PyYAML %+v", p)
			}
		})
	}
	// Only the files some plugin reads by name are kept of the record (an .egg-info may be a
	// file, so the directory's name is kept too).
	_, invs := scanLayers(t, inventory.Options{}, base)
	want := []string{"/usr/lib/python3/dist-packages/requests-2.28.1.egg-info", requestsPkgInfo}
	if len(invs[0].FileOwners) != 1 || !slices.Equal(invs[0].FileOwners[0].Packages[0].Files, want) {
		t.Errorf("file owners %+v", invs[0].FileOwners)
	}
}

// TestOSOwnedApk: Alpine's py3 packages list their dist-info in the installed database.
func TestOSOwnedApk(t *testing.T) {
	const metadata = "/usr/lib/python3.12/site-packages/PyYAML-6.0.dist-info/METADATA"
	db := "P:py3-yaml\nV:6.0-r0\nA:x86_64\no:py-yaml\nF:usr/lib/python3.12/site-packages/PyYAML-6.0.dist-info\nR:METADATA\n\n"
	img, _ := scanLayers(t, inventory.Options{}, tarLayer(t,
		file("etc/os-release", []byte("ID=alpine\nVERSION_ID=3.20.3\n")),
		file("lib/apk/db/installed", []byte(db)),
		file(metadata[1:], testdata(t, "python/dist-packages/PyYAML-6.0.dist-info/METADATA")),
	))
	apk := onePackage(t, img, "Alpine:v3.20", "py3-yaml")
	if len(apk.LanguagePackages) != 1 || apk.LanguagePackages[0].Name != "PyYAML" || len(findPackages(img, "PyPI", "PyYAML")) != 0 {
		t.Errorf("py3-yaml names %+v; PyPI %+v", apk.LanguagePackages, findPackages(img, "PyPI", "PyYAML"))
	}
}
