package apk

import (
	"slices"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/inventory/plugin"
	"github.com/lading-registry/lading/internal/testfiles"
)

func TestParseInstalled(t *testing.T) {
	db := "C:Q1abc=\nP:py3-xyz\nV:1.0-r0\nA:x86_64\nF:usr/lib/python3.12/site-packages/xyz-1.0.dist-info\nR:METADATA\nR:RECORD\n" +
		"F:usr/bin\nR:xyz\n\nP:empty\nV:1\n\nP:musl\nV:1.2.5-r0\nA:x86_64\nR:rootfile\n"
	got, err := parseInstalled(strings.NewReader(db))
	if err != nil || got == nil || got.Kind != "apk" || len(got.Packages) != 2 {
		t.Fatalf("%+v, %v", got, err)
	}
	want := plugin.OwnedFiles{Package: "py3-xyz", Version: "1.0-r0", Arch: "x86_64", Files: []string{
		"/usr/lib/python3.12/site-packages/xyz-1.0.dist-info/METADATA", "/usr/lib/python3.12/site-packages/xyz-1.0.dist-info/RECORD", "/usr/bin/xyz"}}
	if p := got.Packages[0]; p.Package != want.Package || p.Version != want.Version || p.Arch != want.Arch || !slices.Equal(p.Files, want.Files) {
		t.Errorf("got %+v, want %+v", p, want)
	}
	if p := got.Packages[1]; p.Package != "musl" || !slices.Equal(p.Files, []string{"/rootfile"}) {
		t.Errorf("a file without a directory: %+v", p)
	}
}

// The real Alpine database of testdata lists busybox's files.
func TestParseInstalledAlpine(t *testing.T) {
	got, err := parseInstalled(strings.NewReader(string(testfiles.Read(t, "artifacts", "alpine", "alpine-3.20.3.installed"))))
	if err != nil || got == nil {
		t.Fatal(got, err)
	}
	i := slices.IndexFunc(got.Packages, func(p plugin.OwnedFiles) bool { return p.Package == "busybox" })
	if i < 0 || !slices.Contains(got.Packages[i].Files, "/bin/busybox") {
		t.Errorf("busybox does not own /bin/busybox: %+v", got.Packages)
	}
}

// FuzzParseInstalled: the database comes from images, untrusted.
func FuzzParseInstalled(f *testing.F) {
	f.Add("P:a\nV:1\nF:usr/lib\nR:x\n\nP:b\nR:../../y\n")
	f.Fuzz(func(t *testing.T, db string) {
		got, _ := parseInstalled(strings.NewReader(db))
		if got == nil {
			return
		}
		for _, p := range got.Packages {
			if p.Package == "" || len(p.Files) == 0 {
				t.Fatalf("package %+v", p)
			}
			for _, f := range p.Files {
				if !strings.HasPrefix(f, "/") || f == "/" || strings.Contains(f, "/../") {
					t.Fatalf("file %q", f)
				}
			}
		}
	})
}
