package dpkg

import (
	"slices"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/inventory/plugin"
)

func TestFilesRequired(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"var/lib/dpkg/info/python3-xyz.list", true},
		{"var/lib/dpkg/info/libc6:amd64.list", true},
		{"var/lib/dpkg/status.d/base-files.md5sums", true},
		{"var/lib/dpkg/info/python3-xyz.md5sums", false},
		{"var/lib/dpkg/info/.list", false},
		{"var/lib/dpkg/status", false},
		{"usr/share/info/python3-xyz.list", false},
	}
	for _, tt := range tests {
		if got := Files().FileRequired(plugin.NewFile(tt.path, 0o644, nil)); got != tt.want {
			t.Errorf("FileRequired(%s) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestParseFileList(t *testing.T) {
	tests := []struct {
		base, content    string
		pkg, arch        string
		files            []string
		wantNil, wantErr bool
	}{
		{base: "python3-xyz.list", content: "/.\n/usr\n/usr/lib/python3/dist-packages/xyz-1.0.dist-info/METADATA\nnot/absolute\n\n",
			pkg: "python3-xyz", files: []string{"/usr", "/usr/lib/python3/dist-packages/xyz-1.0.dist-info/METADATA"}},
		{base: "libfoo:amd64.list", content: "/usr/lib/x86_64-linux-gnu/libfoo.so.1\n", pkg: "libfoo", arch: "amd64",
			files: []string{"/usr/lib/x86_64-linux-gnu/libfoo.so.1"}},
		{base: "python3-xyz.md5sums", content: "0123abcd  usr/lib/python3/dist-packages/xyz-1.0.dist-info/METADATA\nbroken line\n",
			pkg: "python3-xyz", files: []string{"/usr/lib/python3/dist-packages/xyz-1.0.dist-info/METADATA"}},
		{base: ":amd64.list", content: "/usr/bin/x\n", wantNil: true},
		{base: "long.list", content: "/" + strings.Repeat("a", maxLine+1) + "\n", pkg: "long", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseFileList(tt.base, strings.NewReader(tt.content))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v", tt.base, err)
		}
		if tt.wantNil {
			if got != nil {
				t.Errorf("%s: %+v, want nothing", tt.base, got)
			}
			continue
		}
		if got == nil || got.Kind != "dpkg" || len(got.Packages) != 1 {
			t.Fatalf("%s: %+v", tt.base, got)
		}
		p := got.Packages[0]
		if p.Package != tt.pkg || p.Arch != tt.arch || !slices.Equal(p.Files, tt.files) {
			t.Errorf("%s: %+v, want %s %s %q", tt.base, p, tt.pkg, tt.arch, tt.files)
		}
	}
}

// FuzzParseFileList: file lists come from images, untrusted.
func FuzzParseFileList(f *testing.F) {
	f.Add("python3-xyz.list", "/.\n/usr/lib/python3/dist-packages/xyz-1.0.dist-info/METADATA\n")
	f.Add("x.md5sums", "0123  usr/bin/x\n")
	f.Fuzz(func(t *testing.T, base, content string) {
		got, _ := parseFileList(base, strings.NewReader(content))
		if got == nil {
			return
		}
		for _, p := range got.Packages {
			if p.Package == "" || strings.Contains(p.Package, ":") {
				t.Fatalf("package %q", p.Package)
			}
			for _, f := range p.Files {
				if !strings.HasPrefix(f, "/") || f == "/" || strings.Contains(f, "/../") {
					t.Fatalf("file %q", f)
				}
			}
		}
	})
}
