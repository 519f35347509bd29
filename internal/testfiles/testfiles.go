// Package testfiles finds the files that tests and benchmarks read. Tests read only the
// repository's own testdata/ folder, so a fresh clone passes `go test ./...` by itself;
// benchmarks may also read the larger shared corpus beside the checkout (../shared/testdata),
// which the repository does not carry.
package testfiles

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// SharedEnv names the shared test data folder when it is not ../shared/testdata beside the
// module root.
const SharedEnv = "LADING_SHARED_TESTDATA"

// ModuleRoot returns the folder holding go.mod at or above dir.
func ModuleRoot(dir string) (string, error) {
	start, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for dir := start; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod at or above %s", start)
		}
	}
}

// join joins parts, each a slash-separated path, under base.
func join(base string, parts []string) string {
	for _, part := range parts {
		base = filepath.Join(base, filepath.FromSlash(part))
	}
	return base
}

// Dir returns the absolute path of parts (slash-separated paths) inside the repository's
// testdata/ folder (the folder itself when parts is empty), found from the working
// directory's module root.
func Dir(parts ...string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root, err := ModuleRoot(wd)
	if err != nil {
		return "", err
	}
	return in(root, parts...)
}

func in(root string, parts ...string) (string, error) {
	p := join(filepath.Join(root, "testdata"), parts)
	if _, err := os.Stat(p); err != nil {
		rel, _ := filepath.Rel(root, p)
		return "", fmt.Errorf("test data %s is missing from the checkout at %s: testdata/README.md lists the files and "+
			"`scripts/sync-testdata --check` verifies them (restore it with git, or copy it with scripts/sync-testdata)", rel, root)
	}
	return p, nil
}

// Path is Dir for tests: a missing file fails tb.
func Path(tb testing.TB, parts ...string) string {
	tb.Helper()
	p, err := Dir(parts...)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// Read returns the content of a file in testdata/, failing tb when it cannot be read.
func Read(tb testing.TB, parts ...string) []byte {
	tb.Helper()
	b, err := os.ReadFile(Path(tb, parts...))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// SharedDir returns the absolute path of parts (slash-separated paths) inside the shared test data folder:
// $LADING_SHARED_TESTDATA, or ../shared/testdata beside root (a module root). Only
// benchmarks may read it.
func SharedDir(root string, parts ...string) (string, error) {
	base, from := os.Getenv(SharedEnv), "$"+SharedEnv
	if base == "" {
		base, from = filepath.Join(root, "..", "shared", "testdata"), "../shared/testdata beside the checkout"
	}
	base, err := filepath.Abs(base)
	if err != nil {
		return "", err
	}
	p := join(base, parts)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("shared test data %s is missing (looked in %s): this benchmark reads the shared corpus, "+
			"which the repository does not carry; set %s to the folder holding it (images/, osv/, artifacts/)", p, from, SharedEnv)
	}
	return p, nil
}

// Shared is SharedDir for benchmarks, beside the working directory's module root: a missing
// folder fails tb.
func Shared(tb testing.TB, parts ...string) string {
	tb.Helper()
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	root, err := ModuleRoot(wd)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := SharedDir(root, parts...)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// OSVMini returns the raw records of testdata/osv-mini (OSV's bucket layout: one all.zip per
// ecosystem), of the ecosystems named or of all of them, failing tb when one cannot be read.
func OSVMini(tb testing.TB, ecosystems ...string) [][]byte {
	tb.Helper()
	if len(ecosystems) == 0 {
		ecosystems = []string{"*"}
	}
	var out [][]byte
	for _, eco := range ecosystems {
		zips, err := filepath.Glob(filepath.Join(Path(tb, "osv-mini"), eco, "all.zip"))
		if err != nil || len(zips) == 0 {
			tb.Fatalf("no osv-mini records of %s: %v", eco, err)
		}
		for _, z := range zips {
			out = append(out, zipFiles(tb, z)...)
		}
	}
	return out
}

// zipFiles returns the content of every file of the zip archive at path.
func zipFiles(tb testing.TB, path string) [][]byte {
	tb.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer zr.Close()
	var out [][]byte
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			tb.Fatalf("%s %s: %v", path, f.Name, err)
		}
		raw, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			tb.Fatalf("%s %s: %v", path, f.Name, err)
		}
		out = append(out, raw)
	}
	return out
}
