package rpm

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"slices"
	"testing"

	"github.com/lading-registry/lading/internal/inventory/plugin"
	"github.com/lading-registry/lading/internal/testfiles"
)

// TestFiles reads the file lists of testdata's rpm databases: the Berkeley DB one lists a
// file; the SQLite one holds empty fixture packages, which own nothing.
func TestFiles(t *testing.T) {
	sqlite, err := gzip.NewReader(bytes.NewReader(testfiles.Read(t, "local", "rpm", "rpmdb.sqlite.gz")))
	if err != nil {
		t.Fatal(err)
	}
	sqliteDB, err := io.ReadAll(sqlite)
	if err != nil {
		t.Fatal(err)
	}
	for name, db := range map[string][]byte{"rpmdb.sqlite": sqliteDB, "Packages": testfiles.Read(t, "local", "rpm", "Packages")} {
		t.Run(name, func(t *testing.T) {
			empty := name == "rpmdb.sqlite"
			if !Files().FileRequired(plugin.NewFile("var/lib/rpm/"+name, 0o644, nil)) {
				t.Fatal("not required")
			}
			bufs := plugin.NewBuffers(t.TempDir(), 1<<20)
			defer bufs.Close()
			c, err := bufs.Read(bytes.NewReader(db), int64(len(db)), int64(len(db)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			found, err := Files().Extract(context.Background(), &plugin.Input{Path: "/var/lib/rpm/" + name, Content: c, Env: &plugin.Env{Buffers: bufs}})
			if err != nil || (found.Owned == nil) != empty {
				t.Fatalf("%+v, %v", found.Owned, err)
			}
			if empty {
				return
			}
			if found.Owned.Kind != "rpm" || len(found.Owned.Packages) == 0 {
				t.Fatalf("%+v", found.Owned)
			}
			files := 0
			for _, p := range found.Owned.Packages {
				if p.Package == "" || p.Version == "" {
					t.Errorf("package %+v", p)
				}
				files += len(p.Files)
				if slices.ContainsFunc(p.Files, func(f string) bool { return f == "" || f[0] != '/' }) {
					t.Errorf("%s: relative file in %q", p.Package, p.Files)
				}
			}
			t.Logf("%d packages, %d files", len(found.Owned.Packages), files)
			if files == 0 {
				t.Error("no file listed")
			}
		})
	}
}
