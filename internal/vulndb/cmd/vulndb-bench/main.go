// Command vulndb-bench imports the shared OSV corpus into a fresh SQLite metadata store and
// prints records per second and peak RSS, then times in-memory index queries.
//
//	go run ./internal/vulndb/cmd/vulndb-bench [-corpus DIR] [-queries 100000]
//
// The corpus defaults to osv/ of the shared test data (../shared/testdata beside the
// repository, or $LADING_SHARED_TESTDATA).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/vulndb"
)

func main() {
	corpus := flag.String("corpus", "", "OSV corpus in OSV's bucket layout (default: osv/ of the shared test data)")
	queries := flag.Int("queries", 100_000, "number of index queries to time per workload")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the queries to this file")
	flag.Parse()
	if *corpus == "" {
		var err error
		if *corpus, err = sharedCorpus(); err != nil {
			fmt.Fprintln(os.Stderr, "vulndb-bench:", err)
			os.Exit(1)
		}
	}
	if err := run(*corpus, *queries, *cpuProfile); err != nil {
		fmt.Fprintln(os.Stderr, "vulndb-bench:", err)
		os.Exit(1)
	}
}

// sharedCorpus is osv/ of the shared test data, beside the working directory's module.
func sharedCorpus() (string, error) {
	root, err := testfiles.ModuleRoot(".")
	if err != nil {
		return "", err
	}
	return testfiles.SharedDir(root, "osv")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// liveHeap is the heap in use, in MiB.
func liveHeap() float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

// peakRSS is the process's peak resident set size in MiB (getrusage; Linux reports KiB).
func peakRSS() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return float64(ru.Maxrss) / 1024
}

func run(corpus string, nq int, cpuProfile string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "vulndb-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	db := vulndb.New(st, vulndb.Options{Logger: slog.New(slog.DiscardHandler)})

	fmt.Printf("corpus %s, GOMAXPROCS %d\n", corpus, runtime.GOMAXPROCS(0))
	start, cpu0 := time.Now(), cpuTime()
	res, err := db.Import(ctx, corpus)
	if err != nil {
		return err
	}
	el := time.Since(start)
	n := res.Added + res.BatchStats.Changed + res.Unchanged
	importRSS := peakRSS()
	fmt.Printf("import: %d records in %.2f s (CPU %.2f s) = %.0f records/s; %d package keys changed; peak RSS %.0f MiB\n",
		n, el.Seconds(), (cpuTime() - cpu0).Seconds(), float64(n)/el.Seconds(), len(res.Keys), importRSS)
	verdicts := []string{
		verdict("full import under 30 s", el < 30*time.Second, fmt.Sprintf("%.2f s", el.Seconds())),
		verdict("peak RSS of the import under 500 MiB", importRSS < 500, fmt.Sprintf("%.0f MiB", importRSS)),
	}

	start = time.Now()
	res2, err := db.Import(ctx, corpus)
	if err != nil {
		return err
	}
	fmt.Printf("re-import (nothing changed): %.2f s, changed=%v; peak RSS %.0f MiB\n", time.Since(start).Seconds(), res2.Changed, peakRSS())

	start = time.Now()
	ix, err := db.LoadIndex(ctx)
	if err != nil {
		return err
	}
	s := ix.Stats()
	fmt.Printf("index: %d packages, %d advisories built in %.2f s; peak RSS %.0f MiB\n", s.Packages, s.Advisories, time.Since(start).Seconds(), peakRSS())

	// Each workload runs on a fresh index so that no answer is remembered from another.
	// The target applies to queries as scanning a registry makes them; the cold workload is the
	// worst case, printed for what it shows (the ecosystems' version comparisons), without one.
	for _, w := range []struct {
		name   string
		make   func(*advisory.Index, []advisory.PackageKey, int) []query
		target bool
	}{
		{"scan-like (100 images x 1,000 packages from a pool of 5,000 package versions, 20% with advisories)", scanQueries, true},
		{"cold (every package version distinct, all packages with advisories)", coldQueries, false},
	} {
		ix, err := db.LoadIndex(ctx)
		if err != nil {
			return err
		}
		qs := w.make(ix, res.Keys, nq)
		runtime.GC()
		before := liveHeap()
		el, err := timeQueries(w.name, ix, qs, cpuProfile)
		if err != nil {
			return err
		}
		if w.target && len(qs) == 100_000 {
			verdicts = append(verdicts, verdict("100,000 scan-like queries under 100 ms", el < 100*time.Millisecond, fmt.Sprintf("%.1f ms", float64(el.Microseconds())/1000)))
		}
		cpuProfile = ""
		runtime.GC()
		fmt.Printf("  live heap: %.0f MiB with the index, %.0f MiB after the queries (remembered versions and answers)\n", before, liveHeap())
		runtime.KeepAlive(ix)
	}
	fmt.Printf("peak RSS at the end %.0f MiB (three indexes built)\n", peakRSS())
	for _, v := range verdicts {
		fmt.Println(v)
	}
	return nil
}

func verdict(what string, ok bool, figure string) string {
	if ok {
		return fmt.Sprintf("target %s: PASS (%s)", what, figure)
	}
	return fmt.Sprintf("target %s: FAIL (%s)", what, figure)
}

func timeQueries(name string, ix *advisory.Index, qs []query, cpuProfile string) (time.Duration, error) {
	runtime.GC()
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, err
		}
		defer pprof.StopCPUProfile()
	}
	var hits int
	start, cpu0 := time.Now(), cpuTime()
	for _, q := range qs {
		vs, _ := ix.Affecting(q.eco, q.name, q.version)
		hits += len(vs)
	}
	el, cpu := time.Since(start), cpuTime()-cpu0
	fmt.Printf("queries, %s: %d in %.1f ms wall, %.1f ms CPU (%.0f ns/query wall); %d vulnerabilities found\n", name, len(qs),
		float64(el.Microseconds())/1000, float64(cpu.Microseconds())/1000, float64(el.Nanoseconds())/float64(len(qs)), hits)
	return el, nil
}

type query struct{ eco, name, version string }

// versionsOf returns versions to ask about for a package: those its records name, and
// each nudged just past itself, so queries land on and between the boundaries.
func versionsOf(ix *advisory.Index, k advisory.PackageKey) []string {
	var out []string
	for _, v := range ix.BoundaryVersions(k) {
		out = append(out, v, v+".1")
	}
	if len(out) == 0 {
		out = append(out, "1.0.0")
	}
	return out
}

// coldQueries is the worst case: packages that have advisories, drawn uniformly, each
// query a version not asked before, so nothing is answered from what an earlier query learnt.
func coldQueries(ix *advisory.Index, keys []advisory.PackageKey, n int) []query {
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[query]bool{}
	versions := map[advisory.PackageKey][]string{}
	out := make([]query, 0, n)
	for tries := 0; len(out) < n && tries < 50*n; tries++ {
		k := keys[r.IntN(len(keys))]
		vs, ok := versions[k]
		if !ok {
			vs = versionsOf(ix, k)
			versions[k] = vs
		}
		q := query{k.Ecosystem, k.Name, vs[r.IntN(len(vs))]}
		if r.IntN(3) == 0 {
			q.version += fmt.Sprintf(".%d", r.IntN(100)) // between the boundaries
		}
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	return out
}

// scanQueries looks like scanning a registry: images share most packages (common bases),
// and most packages in an image have no advisory at all.
func scanQueries(ix *advisory.Index, keys []advisory.PackageKey, n int) []query {
	r := rand.New(rand.NewPCG(3, 4))
	pool := make([]query, 5000)
	for i := range pool {
		k := keys[r.IntN(len(keys))]
		if r.IntN(5) != 0 {
			pool[i] = query{k.Ecosystem, fmt.Sprintf("%s-clean-%d", k.Name, i), "1.2.3"}
			continue
		}
		vs := versionsOf(ix, k)
		pool[i] = query{k.Ecosystem, k.Name, vs[r.IntN(len(vs))]}
	}
	out := make([]query, 0, n)
	for len(out) < n {
		out = append(out, pool[r.IntN(len(pool))])
	}
	return out
}
