package inventory_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/inventory"
)

func assertEmptyDir(tb testing.TB, dir string) {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	if len(entries) != 0 {
		tb.Errorf("%s is not empty: %v", dir, entries)
	}
}

// buildGoBinary builds a small program depending on golang.org/x/text v0.3.5 (fetched from
// the Go module proxy, or the module cache) and returns the executable.
func buildGoBinary(tb testing.TB) []byte {
	tb.Helper()
	dir := tb.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/textapp\n\ngo 1.20\n\nrequire golang.org/x/text v0.3.5\n",
		"go.sum": "golang.org/x/text v0.3.5 h1:i6eZZ+zk0SOf0xgBpEpPD18qWcJda6q1sxt3S0kzyUQ=\n" +
			"golang.org/x/text v0.3.5/go.mod h1:5Zoc/QRtKVWzQhOtBMvqHzDpF6irO9z98xDceosuGiQ=\n",
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"golang.org/x/text/language\"\n)\n\nfunc main() { fmt.Println(language.English) }\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	out := filepath.Join(dir, "textapp")
	goTool, err := exec.LookPath("go")
	if err != nil {
		tb.Fatalf("the go command is needed to build the test binary: %v", err)
	}
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0", "GOOS=linux")
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestGoBinaryBuiltInTest(t *testing.T) {
	bin := buildGoBinary(t)
	img, _ := scanLayers(t, inventory.Options{}, tarLayer(t,
		entry{name: "usr/local/bin/textapp", body: bin, mode: 0o755},
		// Go binaries are found by content, whatever their mode or name.
		entry{name: "opt/data/copy.bin", body: bin, mode: 0o644},
	))
	wantStdlib := strings.TrimPrefix(strings.Fields(runtime.Version())[0], "go")
	for _, path := range []string{"/usr/local/bin/textapp", "/opt/data/copy.bin"} {
		var text, stdlib bool
		for _, p := range img.Packages {
			if p.Path != path {
				continue
			}
			if p.Ecosystem != "Go" || p.PackageManager != "GOBINARY" {
				t.Errorf("got %+v", p)
			}
			switch {
			case p.Name == "golang.org/x/text" && p.Version == "0.3.5":
				text = p.PURL == "pkg:golang/golang.org/x/text@v0.3.5"
			case p.Name == "stdlib" && p.Version == wantStdlib:
				stdlib = true
			case p.Name == "example.com/textapp":
				t.Errorf("main module with a (devel) version reported: %+v", p)
			}
		}
		if !text || !stdlib {
			t.Errorf("%s: golang.org/x/text 0.3.5 found %v, stdlib %s found %v; packages %+v", path, text, wantStdlib, stdlib, img.Packages)
		}
	}
	// A truncated binary is skipped with a reason, not mistaken for a non-Go file.
	img, _ = scanLayers(t, inventory.Options{}, tarLayer(t, entry{name: "app/truncated", body: bin[:4096], mode: 0o755}))
	if !hasSkip(img.Skipped, "/app/truncated", "ELF") || len(img.Packages) != 0 {
		t.Errorf("truncated binary: packages %+v, skipped %+v", img.Packages, img.Skipped)
	}
}
