package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning/pipeline"
)

// textModule is a module this repository already depends on, so its source is in the module
// cache and the test builds offline.
const textModule = "golang.org/x/text"

// buildGoProgram builds a stripped (-s -w) static binary of a program that calls
// golang.org/x/text/language.Parse and nothing else of the package's API.
func buildGoProgram(t *testing.T) []byte {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a Go program")
	}
	dir := t.TempDir()
	version, sums := moduleSums(t, textModule)
	files := map[string]string{
		"go.mod": "module example.com/reach\n\ngo 1.26\n\nrequire " + textModule + " " + version + "\n",
		"go.sum": sums,
		"main.go": `package main

import (
	"fmt"
	"os"

	"golang.org/x/text/language"
)

func main() {
	tag, err := language.Parse(os.Args[len(os.Args)-1])
	fmt.Println(tag, err)
}
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "app")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOPROXY=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if f.Section(".symtab") != nil {
		t.Fatal("the binary kept its ELF symbol table: -s -w did not strip it")
	}
	return b
}

// moduleSums returns the version of module this repository requires and its go.sum lines.
func moduleSums(t *testing.T, module string) (version, lines string) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "..", "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[0] == module {
			version = strings.TrimSuffix(fields[1], "/go.mod")
			lines += sc.Text() + "\n"
		}
	}
	if version == "" {
		t.Fatalf("%s is not in go.sum", module)
	}
	return version, lines
}

// TestGoReachability scans a layer holding a stripped Go binary that links language.Parse but
// not language.MatchStrings, against advisories naming each: the first is PRESENT, the second
// ABSENT, one without symbols UNKNOWN.
func TestGoReachability(t *testing.T) {
	bin := buildGoProgram(t)
	const layer = "sha256:aaaa"
	b := &blobs{content: map[string][]byte{layer: gzipTar(t, map[string]string{"app/reach": string(bin)})}, opens: map[string]int{}}
	record := func(id, cve, imports string) string {
		es := ""
		if imports != "" {
			es = `,"ecosystem_specific":{"imports":` + imports + `}`
		}
		return `{"id":"` + id + `","modified":"2024-01-01T00:00:00Z","aliases":["` + cve + `"],"affected":[{"package":{"ecosystem":"Go","name":"` + textModule + `"},
			"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]` + es + `}]}`
	}
	var advs []*advisory.Advisory
	for _, r := range []string{
		record("GO-2099-0001", "CVE-2099-0001", `[{"path":"golang.org/x/text/language","symbols":["Parse"]}]`),
		record("GO-2099-0002", "CVE-2099-0002", `[{"path":"golang.org/x/text/language","symbols":["MatchStrings","ParseAcceptLanguage"]}]`),
		record("GO-2099-0003", "CVE-2099-0003", ""),
		record("GO-2099-0004", "CVE-2099-0004", `[{"path":"golang.org/x/text/encoding/unicode"}]`),
	} {
		a, err := advisory.Parse([]byte(r))
		if err != nil {
			t.Fatal(err)
		}
		advs = append(advs, a)
	}
	res, err := pipeline.Scanner{ScratchDir: t.TempDir()}.Scan(context.Background(), []pipeline.Layer{b.layer(layer, "")},
		pipeline.Index(advisory.BuildIndex(1, advs)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"CVE-2099-0001": match.ReachPresent, // called by main
		"CVE-2099-0002": match.ReachAbsent,  // in the package, not linked
		"CVE-2099-0003": match.ReachUnknown, // the advisory names no symbol
		"CVE-2099-0004": match.ReachAbsent,  // a package the program does not link
	}
	got := map[string]string{}
	for _, f := range res.Findings {
		for _, p := range f.Packages {
			if p.FilePath == "/app/reach" {
				got[f.VulnerabilityID] = p.Reachability
			}
		}
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: reachability %q, want %q (all: %v)", id, got[id], w, got)
		}
	}
}
