package match

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// Matching does no I/O, a rule of the house that the compiler does not know: these tests
// check it on the imports. Matching is this package and the packages it consumes
// (internal/advisory, internal/inventory/installed); their non-test code may not reach,
// directly or through any dependency, the network, other processes, file paths, archives,
// compression or databases, nor any package of the module but each other. os, io/fs and
// syscall cannot be kept out of the closure, since fmt imports os; they (and log, which
// writes) are refused as direct imports of the module's packages and of third-party ones
// (osv-scalibr's semantic, go-cvss, osv-schema's constants), which import none of them
// today. A dependency that one day needs one unavoidably is an exception to write down
// here, with its reason. A new pure package joins purePackages.

const module = "github.com/lading-registry/lading"

// purePackages are the packages matching is made of.
func purePackages() []string {
	return []string{module + "/internal/match", module + "/internal/advisory", module + "/internal/inventory/installed",
		module + "/internal/scanning/policy", module + "/internal/jsonwalk"}
}

// forbiddenAnywhere reports whether a package may not be in a pure package's closure.
// net/url and net/netip parse strings and stay allowed; net itself is every socket
// (net/http, crypto/tls and log/syslog import it).
func forbiddenAnywhere(path string) bool {
	switch path {
	case "net", "os/exec", "os/signal", "os/user", "path/filepath", "io/ioutil", "plugin":
		return true
	}
	for _, tree := range []string{"net/http", "archive", "compress", "database/sql", "golang.org/x/sys"} {
		if path == tree || strings.HasPrefix(path, tree+"/") {
			return true
		}
	}
	return false
}

// forbiddenDirect reports whether a non-standard package may not import a package itself.
func forbiddenDirect(path string) bool {
	switch path {
	case "os", "io/fs", "syscall", "log", "log/slog",
		"C": // cgo: C code is out of sight of this test
		return true
	}
	return forbiddenAnywhere(path)
}

type listedPackage struct {
	ImportPath string
	Standard   bool
	Imports    []string
}

// importViolations lists how roots break the rule, from `go list -deps` of their non-test
// code; allowed are the packages of the module they may import.
func importViolations(t *testing.T, roots, allowed []string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-deps", "-json=ImportPath,Standard,Imports"}, roots...)...).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("go list: %v\n%s", err, exit.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]listedPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}

	// Breadth first from every root at once, remembering how each package was reached, so
	// that each violation is reported once, by the shortest chain of imports.
	via := map[string]string{}
	for _, root := range roots {
		if _, ok := pkgs[root]; !ok {
			t.Fatalf("go list did not list %s", root)
		}
		via[root] = ""
	}
	chain := func(p string) string {
		var c []string
		for ; p != ""; p = via[p] {
			c = append(c, p)
		}
		slices.Reverse(c)
		return strings.Join(c, " -> ")
	}
	var violations []string
	for queue := slices.Clone(roots); len(queue) > 0; queue = queue[1:] {
		p := queue[0]
		info, ok := pkgs[p]
		if !ok {
			t.Fatalf("go list did not list %s, imported by %s", p, chain(via[p]))
		}
		// What lies beyond a violation is its consequence, not reported again.
		switch {
		case forbiddenAnywhere(p):
			violations = append(violations, chain(p))
			continue
		case strings.HasPrefix(p, module+"/") && !slices.Contains(allowed, p):
			violations = append(violations, chain(p)+" (not a pure package)")
			continue
		}
		for _, imp := range info.Imports {
			if !info.Standard && forbiddenDirect(imp) && !forbiddenAnywhere(imp) {
				violations = append(violations, chain(p)+" -> "+imp+" (imported directly)")
			}
			if _, seen := via[imp]; !seen && imp != "C" { // "C" is no package go list lists
				via[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	return violations
}

func TestMatchingImportsNoIO(t *testing.T) {
	pure := purePackages()
	for _, v := range importViolations(t, pure, pure) {
		t.Error(v)
	}
}

// The rule must catch what it is there to catch: internal/vulndb, which syncs over HTTP
// and reads zip files and folders, breaks it.
func TestImportRuleCatchesIO(t *testing.T) {
	vulndb := module + "/internal/vulndb"
	got := strings.Join(importViolations(t, []string{vulndb}, append(purePackages(), vulndb)), "\n")
	for _, want := range []string{
		vulndb + " -> net/http\n",
		vulndb + " -> archive/zip\n",
		vulndb + " -> path/filepath\n",
		vulndb + " -> os (imported directly)",
	} {
		if !strings.Contains(got+"\n", want) {
			t.Errorf("violations lack %q; got:\n%s", want, got)
		}
	}
}
