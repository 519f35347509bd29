package advisory

import (
	"bufio"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/lading-registry/lading/internal/testfiles"
)

// dpkgCompare asks dpkg how a compares to b.
func dpkgCompare(a, b string) (int, error) {
	for _, c := range []struct {
		op  string
		res int
	}{{"lt", -1}, {"gt", 1}, {"eq", 0}} {
		err := exec.Command("dpkg", "--compare-versions", a, c.op, b).Run()
		if err == nil {
			return c.res, nil
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			return 0, err
		}
	}
	return 0, errors.New("dpkg answered none of lt, gt, eq")
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// TestDebianOrderAgreesWithDpkg compares Lading's Debian version order with dpkg's on
// 3,000 pairs of real versions from the Debian security tracker data: two thirds within one
// source package (close versions: epochs, tildes, +debNuM suffixes), a third across packages.
func TestDebianOrderAgreesWithDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Fatalf("this test needs dpkg (Debian's package manager), as on the project's machines: %v", err)
	}
	f, err := os.Open(testfiles.Path(t, "local", "debian-versions.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	byPkg := map[string][]string{}
	var pkgs, all []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pkg, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if byPkg[pkg] == nil {
			pkgs = append(pkgs, pkg)
		}
		byPkg[pkg] = append(byPkg[pkg], v)
		all = append(all, v)
	}
	if len(all) < 4000 {
		t.Fatalf("only %d versions in testdata", len(all))
	}
	r := rand.New(rand.NewPCG(2026, 11))
	type pair struct{ a, b string }
	pairs := make([]pair, 0, 3000)
	for len(pairs) < 2000 {
		vs := byPkg[pkgs[r.IntN(len(pkgs))]]
		pairs = append(pairs, pair{vs[r.IntN(len(vs))], vs[r.IntN(len(vs))]})
	}
	for len(pairs) < 3000 {
		pairs = append(pairs, pair{all[r.IntN(len(all))], all[r.IntN(len(all))]})
	}

	jobs := make(chan pair)
	var mu sync.Mutex
	var mismatches, failures []string
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for p := range jobs {
				want, err := dpkgCompare(p.a, p.b)
				got, gerr := CompareVersions("Debian:12", p.a, p.b)
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, p.a+" vs "+p.b+": "+err.Error())
				case gerr != nil:
					mismatches = append(mismatches, p.a+" vs "+p.b+": "+gerr.Error())
				case sign(got) != want:
					mismatches = append(mismatches, p.a+" vs "+p.b)
				}
				mu.Unlock()
			}
		})
	}
	for _, p := range pairs {
		jobs <- p
	}
	close(jobs)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("dpkg failed on %d pairs, e.g. %s", len(failures), failures[0])
	}
	if len(mismatches) > 0 {
		t.Errorf("%d of %d pairs ordered unlike dpkg, e.g. %v", len(mismatches), len(pairs), mismatches[:min(5, len(mismatches))])
	}
}
