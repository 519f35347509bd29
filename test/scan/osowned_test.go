package scan_test

import (
	"archive/tar"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/testserver"
)

// osOwnedArchive is a Debian image with python3-requests installed by dpkg (its egg-info
// listed in /var/lib/dpkg/info/python3-requests.list) and PyYAML installed by pip.
func osOwnedArchive(t *testing.T) string {
	t.Helper()
	read := func(p ...string) string { return string(testfiles.Read(t, append([]string{"artifacts"}, p...)...)) }
	const pkgInfo = "usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO"
	files := []struct{ name, content string }{
		{"etc/os-release", read("dpkg", "bookworm.os-release")},
		{"var/lib/dpkg/status", "Package: python3-requests\nStatus: install ok installed\nArchitecture: all\nSource: requests\nVersion: 2.28.1+dfsg-1\n\n"},
		{"var/lib/dpkg/info/python3-requests.list", "/.\n/usr\n/" + pkgInfo + "\n"},
		{pkgInfo, read("python", "dist-packages", "requests-2.28.1.egg-info", "PKG-INFO")},
		{"usr/local/lib/python3.11/dist-packages/PyYAML-6.0.dist-info/METADATA", read("python", "dist-packages", "PyYAML-6.0.dist-info", "METADATA")},
	}
	layerPath := filepath.Join(t.TempDir(), "layer.tar")
	f, err := os.Create(layerPath)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, file := range files {
		if err := tw.WriteHeader(&tar.Header{Name: file.name, Mode: 0o644, Size: int64(len(file.content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(file.content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromFile(layerPath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: "amd64"}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "osowned.tar")
	if err := tarball.WriteToFile(path, name.MustParseReference("osowned/python:1"), img); err != nil {
		t.Fatal(err)
	}
	return path
}

// osOwnedRecords: a Debian advisory of the requests source package, and PyPI advisories of
// requests and PyYAML.
func osOwnedRecords(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	now := time.Now().UTC().Format(time.RFC3339)
	for _, r := range []struct{ id, cve, eco, pkg, fixed string }{
		{"DSA-9911-1", "CVE-2099-9911", "Debian:12", "requests", "2.28.1+dfsg-2"},
		{"GHSA-9912", "CVE-2099-9912", "PyPI", "requests", "2.31.0"},
		{"GHSA-9913", "CVE-2099-9913", "PyPI", "pyyaml", "6.0.1"},
	} {
		rec := map[string]any{"id": r.id, "modified": now, "aliases": []string{r.cve}, "affected": []any{map[string]any{
			"package": map[string]string{"ecosystem": r.eco, "name": r.pkg},
			"ranges":  []any{map[string]any{"type": "ECOSYSTEM", "events": []any{map[string]string{"introduced": "0"}, map[string]string{"fixed": r.fixed}}}}}}}
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, r.id+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestScanOSOwnedLanguagePackages: the Debian-packaged Python package is reported once, as the
// Debian package naming it; the pip-installed one as a PyPI package; --include-os-owned
// reports both.
func TestScanOSOwnedLanguagePackages(t *testing.T) {
	data := t.TempDir()
	testserver.Run(t, ladingBin, "db", "import", "--data-dir", data, "--log-level", "warn", osOwnedRecords(t))
	image := osOwnedArchive(t)

	table, stderr, code := scanRun(t, "--data-dir", data, "--log-level", "warn", image)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for want, shown := range map[string]bool{
		"CVE-2099-9911": true, "python3-requests (PyPI requests 2.28.1)": true, // the Debian package, naming the Python one
		"CVE-2099-9913":            true,  // pip's PyYAML
		"CVE-2099-9912":            false, // requests as a PyPI package
		", 2 packages, 2 findings": true,
	} {
		if strings.Contains(table, want) != shown {
			t.Errorf("table shows %q: %v, want %v:\n%s", want, !shown, shown, table)
		}
	}
	raw, _, _ := scanRun(t, "--data-dir", data, "--log-level", "warn", "--format", "json", image)
	if !strings.Contains(raw, `"languagePackages": [`) || !strings.Contains(raw, `"path": "/usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO"`) {
		t.Errorf("JSON does not name the Python package of the Debian one:\n%s", raw)
	}

	both, _, code := scanRun(t, "--data-dir", data, "--log-level", "warn", "--include-os-owned", image)
	if code != 0 || !strings.Contains(both, "CVE-2099-9912") || !strings.Contains(both, "CVE-2099-9911") || !strings.Contains(both, ", 3 packages, 3 findings") {
		t.Errorf("--include-os-owned:\n%s", both)
	}
}
