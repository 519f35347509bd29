package testfiles_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/testfiles"
)

func TestPathIsInTheRepositoryTestdata(t *testing.T) {
	p := testfiles.Path(t, "README.md")
	if !filepath.IsAbs(p) || filepath.Base(filepath.Dir(p)) != "testdata" {
		t.Fatalf("Path = %s, want an absolute path in testdata/", p)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := testfiles.ModuleRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "testdata", "README.md"); p != want {
		t.Errorf("Path = %s, want %s", p, want)
	}
	if len(testfiles.Read(t, "README.md")) == 0 {
		t.Error("testdata/README.md read empty")
	}
}

func TestDirNamesWhatIsMissing(t *testing.T) {
	_, err := testfiles.Dir("images", "no-such.tar")
	if err == nil || !strings.Contains(err.Error(), filepath.Join("testdata", "images", "no-such.tar")) ||
		!strings.Contains(err.Error(), "sync-testdata") {
		t.Fatalf("Dir of a missing file: %v", err)
	}
}

func TestModuleRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := testfiles.ModuleRoot(deep); err != nil || got != root {
		t.Fatalf("ModuleRoot(%s) = %s, %v; want %s", deep, got, err, root)
	}
}

func TestSharedDir(t *testing.T) {
	work := t.TempDir()
	root := filepath.Join(work, "repo")

	t.Setenv(testfiles.SharedEnv, "")
	_, err := testfiles.SharedDir(root, "osv")
	if err == nil || !strings.Contains(err.Error(), filepath.Join(work, "shared", "testdata", "osv")) ||
		!strings.Contains(err.Error(), "../shared/testdata") || !strings.Contains(err.Error(), testfiles.SharedEnv) {
		t.Fatalf("missing ../shared: %v", err)
	}

	beside := filepath.Join(work, "shared", "testdata", "osv")
	if err := os.MkdirAll(beside, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := testfiles.SharedDir(root, "osv"); err != nil || got != beside {
		t.Fatalf("SharedDir = %s, %v; want %s", got, err, beside)
	}

	elsewhere := t.TempDir()
	t.Setenv(testfiles.SharedEnv, elsewhere)
	if got, err := testfiles.SharedDir(root); err != nil || got != elsewhere {
		t.Fatalf("SharedDir with $%s = %s, %v; want %s", testfiles.SharedEnv, got, err, elsewhere)
	}
	if _, err := testfiles.SharedDir(root, "osv"); err == nil || !strings.Contains(err.Error(), "$"+testfiles.SharedEnv) {
		t.Fatalf("missing folder under $%s: %v", testfiles.SharedEnv, err)
	}
}
