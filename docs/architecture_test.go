// Package docs holds the project's documents; its test keeps docs/architecture.md's package
// table in step with the packages `go list` finds.
package docs

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// packageTable returns the paths the package table of architecture.md describes: the first
// field of each line of the fenced block under "## Packages" that is not a continuation.
func packageTable(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var paths []string
	section, fenced := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			section = line == "## Packages"
		case section && strings.HasPrefix(line, "```"):
			if fenced {
				return paths
			}
			fenced = true
		case fenced && line != "" && line[0] != ' ':
			paths = append(paths, strings.TrimSuffix(strings.Fields(line)[0], "/"))
		}
	}
	t.Fatal("architecture.md has no fenced package table under ## Packages")
	return nil
}

func TestPackageTableMatchesTheModule(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	documented := packageTable(t)
	var packages []string
	for dir := range strings.FieldsSeq(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		if rel == "docs" {
			continue
		}
		rel = filepath.ToSlash(rel)
		packages = append(packages, rel)
		// "dir/*" documents every package beneath dir (one folder per plugin, say).
		if !slices.Contains(documented, rel) && !slices.ContainsFunc(documented, func(d string) bool {
			return strings.HasSuffix(d, "/*") && strings.HasPrefix(rel, strings.TrimSuffix(d, "*"))
		}) {
			t.Errorf("package %s is not in architecture.md's package table", rel)
		}
	}
	for _, p := range documented {
		if dir, ok := strings.CutSuffix(p, "/*"); ok {
			if !slices.ContainsFunc(packages, func(pkg string) bool { return strings.HasPrefix(pkg, dir+"/") }) {
				t.Errorf("architecture.md describes %s, which holds no package", p)
			}
			continue
		}
		if fi, err := os.Stat(filepath.Join(root, p)); err != nil || !fi.IsDir() {
			t.Errorf("architecture.md describes %s, which does not exist", p)
			continue
		}
		if !slices.Contains(packages, p) && !strings.HasPrefix(p, "testdata") && !strings.HasPrefix(p, "scripts") {
			t.Errorf("architecture.md describes %s, which is not a Go package", p)
		}
	}
}
