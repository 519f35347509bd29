// Command suppression measures suppression rules on a large registry store (the one
// bench/continuous builds, or any Lading store): the time a rule's create and delete take to
// apply it to every finding (in the rule's transaction, with an event per finding whose status
// changes), and ListFindings' first pages while a rule suppresses findings.
//
// It works on a copy of the store, which it removes:
//
//	go run ./bench/suppression -store DIR/lading.db
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/lading-registry/lading/bench/internal/machine"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/kev"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/suppression"
)

func main() {
	store := flag.String("store", "", "a Lading store (lading.db), copied before use")
	runs := flag.Int("runs", 5, "runs of each query (the median is reported)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *store == "" {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/suppression -store PATH/lading.db")
		os.Exit(2)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "suppression:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(context.Background(), *store, *runs); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "suppression:", err)
		os.Exit(1)
	}
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

func run(ctx context.Context, src string, runs int) error {
	dir, err := os.MkdirTemp(filepath.Dir(src), "suppression-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "lading.db")
	if err := copyFile(path, src); err != nil {
		return fmt.Errorf("copy the store: %w", err)
	}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()
	cat, err := kev.Embedded()
	if err != nil {
		return err
	}
	const account, region = "000000000000", "us-east-1"
	db.SetFindingContext(sqlite.FindingContext{Account: account, Region: region, Exploited: cat.IDs()})
	rules := suppression.NewService(db, account, region, scanning.AnnounceListed(events.Origin{Account: account, Region: region}), nil)
	list := findings.NewService(db, nil, cat, account, region)

	var total int
	var common string
	if err := db.Reader().QueryRowContext(ctx, "SELECT count(*) FROM findings").Scan(&total); err != nil {
		return err
	}
	if err := db.Reader().QueryRowContext(ctx, `SELECT vulnerability_id FROM findings WHERE status = 'ACTIVE'
		GROUP BY vulnerability_id ORDER BY count(*) DESC LIMIT 1`).Scan(&common); err != nil {
		return err
	}
	fmt.Printf("suppression rules benchmark: %s, %d findings\n", src, total)
	fmt.Printf("machine: %d CPUs (%s), %s, load average %s\n", runtime.NumCPU(), machine.CPUModel(), runtime.Version(), machine.LoadAverage())

	str := func(f findings.Field, c findings.Comparison, v string) findings.Criteria {
		return findings.Criteria{Strings: map[findings.Field][]findings.StringFilter{f: {{Comparison: c, Value: v}}}}
	}
	page := func(name string, c findings.Criteria) error {
		var times []time.Duration
		n := 0
		for range runs {
			start := time.Now()
			out, err := list.List(ctx, findings.ListInput{Op: "ListFindings", Criteria: c, MaxResults: ptr(100)})
			if err != nil {
				return err
			}
			times = append(times, time.Since(start))
			n = len(out.Findings)
		}
		slices.Sort(times)
		fmt.Printf("  ListFindings %s, first page: %d findings, median %s\n", name, n, times[len(times)/2].Round(10*time.Microsecond))
		return nil
	}
	for _, tc := range []struct {
		name string
		c    findings.Criteria
	}{
		{"vulnerabilityId " + common + " (the commonest)", str(findings.VulnerabilityID, findings.Equals, common)},
		{"severity LOW (broad)", str(findings.Severity, findings.Equals, "LOW")},
	} {
		action := suppression.Suppress
		name := "bench-rule"
		start := time.Now()
		r, err := rules.Create(ctx, suppression.Input{Name: &name, Action: &action, Criteria: &tc.c})
		if err != nil {
			return err
		}
		created := time.Since(start)
		var suppressed int
		if err := db.Reader().QueryRowContext(ctx, "SELECT count(*) FROM findings WHERE suppressed = 1").Scan(&suppressed); err != nil {
			return err
		}
		fmt.Printf("rule %s: CreateFilter %s (%d findings suppressed, an event each)\n", tc.name, created.Round(time.Millisecond), suppressed)
		if err := page("findingStatus SUPPRESSED", str(findings.FindingStatus, findings.Equals, "SUPPRESSED")); err != nil {
			return err
		}
		if err := page("findingStatus ACTIVE", str(findings.FindingStatus, findings.Equals, "ACTIVE")); err != nil {
			return err
		}
		c := str(findings.Severity, findings.Equals, "CRITICAL")
		c.Strings[findings.ECRImageRepositoryName] = []findings.StringFilter{{Comparison: findings.Prefix, Value: "team-01"}}
		if err := page("severity CRITICAL + repository prefix", c); err != nil {
			return err
		}
		start = time.Now()
		if _, err := rules.Delete(ctx, r.ARN); err != nil {
			return err
		}
		fmt.Printf("rule %s: DeleteFilter %s\n", tc.name, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
