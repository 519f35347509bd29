package gobinary

import (
	"bytes"
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"maps"
	"os"
	"runtime"
	"slices"
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
	pkgs, symErr, err := packages(bytes.NewReader(bin), int64(len(bin)))
	if err != nil || symErr != nil {
		t.Fatal(err, symErr)
	}
	want := strings.TrimPrefix(strings.Fields(runtime.Version())[0], "go")
	var stdlib bool
	for _, p := range pkgs {
		if p.Ecosystem != "Go" || p.PackageManager != "GOBINARY" || p.Version == "" || strings.HasPrefix(p.Version, "v") {
			t.Errorf("got %+v", p)
		}
		if p.Name == Stdlib {
			stdlib = p.Version == want && p.PURL == "pkg:golang/stdlib@"+want
			// The test binary runs tests: testing's (*T).Run is in it, named as advisories name it.
			if p.Symbols == nil || !slices.Contains(p.Symbols.Packages["testing"], "T.Run") || p.Symbols.GOOS != runtime.GOOS {
				t.Errorf("stdlib symbols: testing = %v", p.Symbols)
			}
			// Not linked: this package is not imported here.
			if _, ok := p.Symbols.Packages["net/http"]; ok {
				t.Error("net/http symbols found in a binary that does not link it")
			}
		}
	}
	if !stdlib {
		t.Errorf("stdlib %s not found in %+v", want, pkgs)
	}
	if _, _, err := packages(bytes.NewReader(bin[:4096]), 4096); err == nil || !strings.Contains(err.Error(), "unreadable ELF file") {
		t.Errorf("truncated binary: err = %v", err)
	}
	// A readable ELF file without Go build information (its magic overwritten) is no Go
	// binary: nothing, and no error.
	notGo := bytes.ReplaceAll(bin, []byte("\xff Go buildinf:"), []byte("\xff No buildinf:"))
	if bytes.Equal(notGo, bin) {
		t.Fatal("no build information magic in the test binary")
	}
	if pkgs, symErr, err := packages(bytes.NewReader(notGo), int64(len(notGo))); err != nil || symErr != nil || len(pkgs) != 0 {
		t.Errorf("ELF file without build information: %+v, %v, %v", pkgs, symErr, err)
	}
	if pkgs, _, err := packages(bytes.NewReader([]byte("not an ELF file")), 15); err == nil || len(pkgs) != 0 {
		t.Errorf("not an ELF file: %+v, %v", pkgs, err)
	}
}

func TestSplitSymbol(t *testing.T) {
	tests := []struct {
		name, pkg, sym string
		ok             bool
	}{
		{"golang.org/x/text/language.Parse", "golang.org/x/text/language", "Parse", true},
		{"golang.org/x/text/language.(*Tag).String", "golang.org/x/text/language", "Tag.String", true},
		{"golang.org/x/text/language.Tag.String", "golang.org/x/text/language", "Tag.String", true},
		{"sync/atomic.(*Pointer[...]).Store", "sync/atomic", "Pointer.Store", true},
		{"slices.order2CmpFunc[go.shape.interface { IsDir() bool }]", "slices", "order2CmpFunc", true},
		{"gopkg.in/yaml%2ev2.Unmarshal", "gopkg.in/yaml.v2", "Unmarshal", true},
		{"net/http.(*Server).Serve.func1", "", "", false},
		{"net/http.init.0", "", "", false},
		{"net/http.init", "", "", false},
		{"runtime.gcBgMarkWorker.gowrap1", "", "", false},
		{"net/http.(*Server).Serve-fm", "", "", false},
		{"type:.eq.[2]interface {}", "", "", false},
		{"go:buildid", "", "", false},
		{"vendor/golang.org/x/net/http2/hpack.HuffmanDecode", "", "", false},
	}
	for _, tt := range tests {
		pkg, sym, ok := splitSymbol(tt.name)
		if pkg != tt.pkg || sym != tt.sym || ok != tt.ok {
			t.Errorf("splitSymbol(%q) = %q, %q, %v; want %q, %q, %v", tt.name, pkg, sym, ok, tt.pkg, tt.sym, tt.ok)
		}
	}
}

func TestFuncNames(t *testing.T) {
	le := func(words ...uint64) []byte {
		b := []byte{0xf1, 0xff, 0xff, 0xff, 0, 0, 1, 8}
		for _, w := range words {
			b = binary.LittleEndian.AppendUint64(b, w)
		}
		return b
	}
	// nfunc, nfiles, textStart, funcnameOffset, cuOffset; names start at byte 48.
	good := append(le(2, 1, 0, 48, 60), []byte("a.F\x00b.(*T).M\x00")...)
	tests := []struct {
		name string
		data []byte
		want []string
		ok   bool
	}{
		{"Go 1.20", good, []string{"a.F", "b.(*T).M"}, true},
		{"names past the end", le(2, 1, 0, 48, 4096), nil, false},
		{"reversed bounds", le(2, 1, 0, 60, 48), nil, false},
		{"Go 1.2 format", append([]byte{0xfb, 0xff, 0xff, 0xff, 0, 0, 1, 8}, make([]byte, 64)...), nil, false},
		{"short", []byte{0xf1, 0xff}, nil, false},
	}
	for _, tt := range tests {
		got, err := funcNames(tt.data)
		if (err == nil) != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("%s: funcNames = %q, %v; want %q (ok %v)", tt.name, got, err, tt.want, tt.ok)
		}
	}
}

// FuzzFuncNames feeds the function-table header reader, which reads untrusted binaries.
func FuzzFuncNames(f *testing.F) {
	f.Add([]byte{0xf1, 0xff, 0xff, 0xff, 0, 0, 1, 8})
	f.Add(append([]byte{0xfa, 0xff, 0xff, 0xff, 0, 0, 1, 4, 1, 0, 0, 0, 1, 0, 0, 0, 24, 0, 0, 0, 28, 0, 0, 0}, "a.F\x00"...))
	f.Fuzz(func(t *testing.T, data []byte) {
		names, err := funcNames(data)
		if err != nil && names != nil {
			t.Fatalf("names %q with error %v", names, err)
		}
		for _, n := range names {
			if n == "" || strings.Contains(n, "\x00") {
				t.Fatalf("bad name %q", n)
			}
			if pkg, sym, ok := splitSymbol(n); ok && (pkg == "" || sym == "") {
				t.Fatalf("splitSymbol(%q) = %q, %q", n, pkg, sym)
			}
		}
	})
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
		pkgs, _, _ := packages(bytes.NewReader(bin), int64(len(bin)))
		for _, p := range pkgs {
			if p.Ecosystem != "Go" || p.Version == "" {
				t.Fatalf("bad package %+v", p)
			}
		}
	})
}

// TestSymbolTableMatchesGosym: the function-name section alone gives the same symbols as
// debug/gosym's decoding of every function plus that section (what symbolTable read before),
// on a real Go binary (this test's own).
func TestSymbolTableMatchesGosym(t *testing.T) {
	f := openOwnExecutable(t)
	got, err := symbolTable(f)
	if err != nil {
		t.Fatal(err)
	}
	sec := f.Section(".gopclntab")
	if sec == nil {
		t.Fatal("no .gopclntab")
	}
	data, err := sec.Data()
	if err != nil {
		t.Fatal(err)
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, f.Section(".text").Addr))
	if err != nil {
		t.Fatal(err)
	}
	names, err := funcNames(data)
	if err != nil {
		t.Fatal(err)
	}
	inSection := map[string]bool{}
	for _, n := range names {
		inSection[n] = true
	}
	want := map[string][]string{}
	for _, fn := range tab.Funcs {
		if !inSection[fn.Name] {
			t.Errorf("gosym lists %q, which the function-name section does not", fn.Name)
		}
		names = append(names, fn.Name)
	}
	for _, n := range names {
		if pkg, sym, ok := splitSymbol(n); ok && !slices.Contains(want[pkg], sym) {
			want[pkg] = append(want[pkg], sym)
		}
	}
	for _, syms := range want {
		slices.Sort(syms)
	}
	if len(got) < 50 || !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("symbolTable: %d packages, gosym and the section: %d", len(got), len(want))
		for pkg, syms := range want {
			if !slices.Equal(got[pkg], syms) {
				t.Errorf("%s: got %d symbols, want %d", pkg, len(got[pkg]), len(syms))
			}
		}
	}
}

// BenchmarkSymbolTable reads the symbols of this test's own binary (some 6 MB, much like the
// Go programs in images).
func BenchmarkSymbolTable(b *testing.B) {
	f := openOwnExecutable(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := symbolTable(f); err != nil {
			b.Fatal(err)
		}
	}
}

// openOwnExecutable opens this test's binary, a real Go ELF file, closed when tb ends.
func openOwnExecutable(tb testing.TB) *elf.File {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Skip(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// FuzzSplitPlainSymbol: the one-pass reading of a name without type arguments gives what
// debug/gosym's gives, for the names of a real binary and for anything else.
func FuzzSplitPlainSymbol(f *testing.F) {
	for _, n := range []string{"golang.org/x/text/language.Parse", "golang.org/x/text/language.(*Tag).String",
		"gopkg.in/yaml%2ev2.Unmarshal", "net/http.(*Server).Serve.func1", "net/http.init.0", "go:buildid", "go.shape.int",
		"type:.eq.main.T", "type..eq.main.T", "vendor/golang.org/x/net/http2/hpack.HuffmanDecode", "main.main", "a/b.c/d.T.M",
		"x.(*T).M-fm", "x.F.gowrap1", ".", "a.", "/.x", "a%zz.F", "a/b%2e.c.(T).M", "p.(*).M", "p.init"} {
		f.Add(n)
	}
	data, err := openOwnExecutable(f).Section(".gopclntab").Data()
	if err != nil {
		f.Fatal(err)
	}
	names, err := funcNames(data)
	if err != nil {
		f.Fatal(err)
	}
	for i := 0; i < len(names); i += 97 {
		f.Add(names[i])
	}
	f.Fuzz(func(t *testing.T, name string) {
		if strings.Contains(name, "[") {
			return
		}
		pkg, sym, ok := splitPlainSymbol(name)
		wantPkg, wantSym, wantOK := splitSymbolGosym(name)
		if pkg != wantPkg || sym != wantSym || ok != wantOK {
			t.Fatalf("splitPlainSymbol(%q) = %q, %q, %v; debug/gosym's reading: %q, %q, %v", name, pkg, sym, ok, wantPkg, wantSym, wantOK)
		}
	})
}
