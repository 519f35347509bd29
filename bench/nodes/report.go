package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/lading-registry/lading/bench/internal/machine"
)

// target is the least ratio of the several nodes' throughput to the one node's.
const target = 0.9

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratios are the per-repetition ratios of b's values to a's.
func ratios(a, b []float64) []float64 {
	out := make([]float64, 0, len(a))
	for i := range min(len(a), len(b)) {
		if a[i] > 0 {
			out = append(out, b[i]/a[i])
		}
	}
	return out
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func report(out io.Writer, cfg config, items []*item, c *concurrent, loadStart string) {
	fmt.Fprintf(out, "\nLading, 1 node (SQLite+fs) vs %d nodes (PostgreSQL+S3 on versitygw), %s, %d CPUs, Go %s\n",
		cfg.nodes, machine.CPUModel(), runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(out, "load average %s at the start, %s at the end; medians of %d repetitions, ratios are medians of the per-repetition ratios\n\n",
		loadStart, machine.LoadAverage(), cfg.reps)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	diag := len(items) > 0 && len(items[0].values) > 2
	extra := func(it *item, cpu bool) string {
		switch {
		case !diag:
			return ""
		case cpu:
			return fmt.Sprintf("\t%.2f s", median(it.cpu[2]))
		default:
			return fmt.Sprintf("\t%.1f %s (%.2fx)", median(it.values[2]), it.unit, median(ratios(it.values[0], it.values[2])))
		}
	}
	head := ""
	if diag {
		head = "\t(1 node on PostgreSQL+S3)"
	}
	fmt.Fprintf(tw, "item\t1 node (SQLite+fs)\t%d nodes (PostgreSQL+S3)\tratio\ttarget\tresult%s\n", cfg.nodes, head)
	for _, it := range items {
		r := median(ratios(it.values[0], it.values[1]))
		fmt.Fprintf(tw, "%s\t%.1f %s\t%.1f %s\t%.2fx\t>= %.1fx\t%s%s\n", it.name, median(it.values[0]), it.unit, median(it.values[1]), it.unit, r, target, verdict(r >= target), extra(it, false))
		fmt.Fprintf(tw, "    server CPU (nodes, versitygw, PostgreSQL backends)\t%.2f s\t%.2f s\t%.2fx\t\t%s\n",
			median(it.cpu[0]), median(it.cpu[1]), median(ratios(it.cpu[0], it.cpu[1])), extra(it, true))
	}
	errs := len(c.pushErrs) + len(c.pullErrs)
	var base int64
	for _, b := range c.base {
		base += b
	}
	fmt.Fprintf(tw, "%d concurrent pushes across %d nodes (%d repos, %.2f MiB of shared base layers + %d KiB each), then pulled and compared\t\t%s, %d errors\t\t0 errors\t%s\n",
		c.images, cfg.nodes, c.repos, float64(base)/(1<<20), c.top>>10, c.push.Round(time.Millisecond), errs, verdict(errs == 0))
	_ = tw.Flush()
	for _, e := range append(append([]error(nil), c.pushErrs...), c.pullErrs...)[:min(5, errs)] {
		fmt.Fprintf(out, "  error: %v\n", e)
	}
}
