package gobinary

import (
	"bytes"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/inventory/plugin"
)

func TestFileRequired(t *testing.T) {
	tests := []struct {
		name    string
		mode    os.FileMode
		content string
		want    bool
	}{
		{"ELF executable", 0o755, "\x7fELF\x02\x01\x01", true},
		{"ELF file, not executable", 0o644, "\x7fELF\x02\x01\x01", true},
		{"script", 0o755, "#!/bin/sh\n", false},
		{"short", 0o755, "\x7fEL", false},
		{"empty", 0o755, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := New().FileRequired(plugin.NewFile("app/x", tt.mode, []byte(tt.content))); got != tt.want {
				t.Errorf("FileRequired = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPackages reads the test binary itself: a Go executable built by this toolchain.
func TestPackages(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	bin, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := packages(bytes.NewReader(bin), int64(len(bin)))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimPrefix(strings.Fields(runtime.Version())[0], "go")
	var stdlib bool
	for _, p := range pkgs {
		if p.Ecosystem != "Go" || p.PackageManager != "GOBINARY" || p.Version == "" || strings.HasPrefix(p.Version, "v") {
			t.Errorf("got %+v", p)
		}
		if p.Name == Stdlib {
			stdlib = p.Version == want && p.PURL == "pkg:golang/stdlib@"+want
		}
	}
	if !stdlib {
		t.Errorf("stdlib %s not found in %+v", want, pkgs)
	}
	if _, err := packages(bytes.NewReader(bin[:4096]), 4096); err == nil || !strings.Contains(err.Error(), "unreadable ELF file") {
		t.Errorf("truncated binary: err = %v", err)
	}
	if pkgs, err := packages(bytes.NewReader([]byte("not an ELF file")), 15); err == nil || len(pkgs) != 0 {
		t.Errorf("not an ELF file: %+v, %v", pkgs, err)
	}
}

func TestPURL(t *testing.T) {
	tests := []struct{ name, version, want string }{
		{"golang.org/x/text", "0.3.5", "pkg:golang/golang.org/x/text@v0.3.5"},
		{"github.com/gin-gonic/gin", "1.6.3", "pkg:golang/github.com/gin-gonic/gin@v1.6.3"},
		{Stdlib, "1.20.14", "pkg:golang/stdlib@1.20.14"},
		{"example.com/", "1.0.0", ""},
	}
	for _, tt := range tests {
		if got := purl(tt.name, tt.version); got != tt.want {
			t.Errorf("purl(%s, %s) = %s, want %s", tt.name, tt.version, got, tt.want)
		}
	}
}

func FuzzPackages(f *testing.F) {
	f.Add(append([]byte("\x7fELF\x02\x01\x01\x00"), make([]byte, 200)...))
	if exe, err := os.Executable(); err == nil {
		if b, err := os.ReadFile(exe); err == nil && len(b) > 0 {
			f.Add(b[:min(len(b), 64<<10)]) // a truncated real Go binary
		}
	}
	f.Fuzz(func(t *testing.T, bin []byte) {
		pkgs, _ := packages(bytes.NewReader(bin), int64(len(bin)))
		for _, p := range pkgs {
			if p.Ecosystem != "Go" || p.Version == "" {
				t.Fatalf("bad package %+v", p)
			}
		}
	})
}
