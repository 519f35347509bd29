package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lading-registry/lading/bench/internal/machine"
)

// Targets of issue 2.
const (
	targetGetVsDistribution = 1.2 // blob GET at least 1.2x Distribution's...
	targetGetVsServeFile    = 0.9 // ...and within 10% of a bare ServeFile server
	targetPushVsDist        = 1.0 // push and small-image round trip at least as fast
	targetPeakRSS           = 150 << 20
	targetPullVsDist        = 1.0 // issue 10: crane pull at least as fast as from Distribution
)

// results are the samples of each measurement, keyed by server name.
type results struct {
	get1, getN                    map[string][]float64 // bytes per second
	push                          map[string][]float64 // seconds
	smallPush, smallPull, smallRT map[string][]float64 // seconds
	pull                          map[string][]float64 // seconds
	rss                           map[string][]int64   // bytes
	// Server CPU seconds: per GiB sent for (a), per push for (b), per push+pull for (c).
	get1CPU, getNCPU, pushCPU, smallCPU, pullCPU map[string][]float64
	failures                                     []string // failed transfers, each retried once
}

func newResults() results {
	m := func() map[string][]float64 { return map[string][]float64{} }
	return results{get1: m(), getN: m(), push: m(), smallPush: m(), smallPull: m(), smallRT: m(), pull: m(), rss: map[string][]int64{},
		get1CPU: m(), getNCPU: m(), pushCPU: m(), smallCPU: m(), pullCPU: m()}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pairedRatio is the median over repetitions of num[i]/den[i]. The samples of one repetition
// are taken back to back, so pairing them cancels most of the drift of a shared machine's load.
func pairedRatio(num, den []float64) float64 {
	n := min(len(num), len(den))
	rs := make([]float64, 0, n)
	for i := range n {
		rs = append(rs, num[i]/den[i])
	}
	return median(rs)
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func gbps(v float64) string { return fmt.Sprintf("%.2f GB/s", v/1e9) }
func secs(v float64) string { return fmt.Sprintf("%.2f s", v) }
func mib(v int64) string    { return fmt.Sprintf("%d MiB", v>>20) }

func (b *bench) report(ctx context.Context, out io.Writer) {
	r := b.res
	cfg := b.cfg
	fmt.Fprintf(out, "\nLading vs CNCF Distribution %s (filesystem storage), %s\n", distributionVersion, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(out, "machine: %s, %d cores, %s; lading %s; crane %s; %s\n",
		machine.CPUModel(), runtime.NumCPU(), runtime.Version(), ladingRevision(ctx, cfg.repo), craneVersion, curlVersion(ctx, b.tools.curl))
	fmt.Fprintf(out, "command: %s\n", strings.Join(append([]string{"go run ./bench/registry"}, os.Args[1:]...), " "))
	fmt.Fprintf(out, "load average (1 min) at start %s, at end %s\n", b.loadStart, machine.LoadAverage())
	fmt.Fprintf(out, "figures are medians of %d runs for (a), %d for (b), %d for (c), %d for (e); ratios are medians of per-run ratios of speeds\n",
		cfg.getReps, cfg.reps, cfg.smallReps, cfg.pullReps)
	fmt.Fprintf(out, "(Lading/Distribution: above 1 means Lading is faster; Lading/ServeFile: 1 is the physical limit;\n")
	fmt.Fprintf(out, " CPU rows: the server process's CPU time, ratio = Distribution's / Lading's, above 1 means Lading is cheaper)\n\n")

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "item\tLading\tDistribution\tratio\tServeFile\tLading/ServeFile\ttarget\tresult")
	layer := fmt.Sprintf("%d MiB", cfg.layerSize>>20)
	if cfg.layerSize == 1<<30 {
		layer = "1 GiB"
	}
	// cpuRow prints a server's CPU cost under a timed row: lower is better, so the ratio is
	// Distribution's over Lading's, like the speeds. It has no target.
	cpuRow := func(label string, m map[string][]float64, unit string, serveFile bool) {
		sf, vsSF := "", ""
		if serveFile {
			sf = fmt.Sprintf("%.2f %s", median(m["servefile"]), unit)
			vsSF = fmt.Sprintf("%.2f", pairedRatio(m["servefile"], m["lading"]))
		}
		fmt.Fprintf(tw, "    %s\t%.2f %s\t%.2f %s\t%.2fx\t%s\t%s\t\t\n", label, median(m["lading"]), unit,
			median(m["distribution"]), unit, pairedRatio(m["distribution"], m["lading"]), sf, vsSF)
	}
	for _, g := range []struct {
		label string
		m     map[string][]float64
		cpu   map[string][]float64
	}{
		{"(a) blob GET " + layer + ", 1 stream (curl)", r.get1, r.get1CPU},
		{fmt.Sprintf("(a) blob GET %s, %d streams (curl)", layer, cfg.streams), r.getN, r.getNCPU},
	} {
		vsDist := pairedRatio(g.m["lading"], g.m["distribution"])
		vsSF := pairedRatio(g.m["lading"], g.m["servefile"])
		ok := vsDist >= targetGetVsDistribution && vsSF >= targetGetVsServeFile
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fx\t%s\t%.2f\t>= %.1fx Distribution and >= %.2f ServeFile\t%s\n",
			g.label, gbps(median(g.m["lading"])), gbps(median(g.m["distribution"])), vsDist,
			gbps(median(g.m["servefile"])), vsSF, targetGetVsDistribution, targetGetVsServeFile, passFail(ok))
		cpuRow("server CPU per GiB sent", g.cpu, "s", true)
	}
	ratio := pairedRatio(r.push["distribution"], r.push["lading"]) // times: the inverse is the speed ratio
	fmt.Fprintf(tw, "(b) push %s image (crane)\t%s\t%s\t%.2fx\t\t\t>= %.1fx\t%s\n", layer,
		secs(median(r.push["lading"])), secs(median(r.push["distribution"])), ratio, targetPushVsDist, passFail(ratio >= targetPushVsDist))
	cpuRow("server CPU during the push", r.pushCPU, "s", false)
	n := cfg.smallImages
	for _, row := range []struct {
		label  string
		m      map[string][]float64
		target bool
	}{
		{fmt.Sprintf("(c) push %d small images (crane, %d at once)", n, cfg.workers), r.smallPush, false},
		{fmt.Sprintf("(c) pull %d small images (crane, %d at once)", n, cfg.workers), r.smallPull, false},
		{"(c) push then pull, round trip", r.smallRT, true},
	} {
		ratio := pairedRatio(row.m["distribution"], row.m["lading"])
		target, result := "(see round trip)", ""
		if row.target {
			target, result = fmt.Sprintf(">= %.1fx", targetPushVsDist), passFail(ratio >= targetPushVsDist)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fx\t\t\t%s\t%s\n", row.label,
			secs(median(row.m["lading"])), secs(median(row.m["distribution"])), ratio, target, result)
	}
	cpuRow("server CPU during push+pull", r.smallCPU, "s", false)
	ratio = pairedRatio(r.pull["distribution"], r.pull["lading"])
	fmt.Fprintf(tw, "(e) pull %d MiB image (crane, to /dev/null)\t%s\t%s\t%.2fx\t\t\t>= %.1fx\t%s\n", cfg.pullSize>>20,
		secs(median(r.pull["lading"])), secs(median(r.pull["distribution"])), ratio, targetPullVsDist, passFail(ratio >= targetPullVsDist))
	cpuRow("server CPU during the pull", r.pullCPU, "s", false)
	lr, dr := slices.Max(r.rss["lading"]), slices.Max(r.rss["distribution"])
	fmt.Fprintf(tw, "(d) peak RSS (VmHWM) during (b), max of runs\t%s\t%s\t\t\t\tLading < %s\t%s\n",
		mib(lr), mib(dr), mib(targetPeakRSS), passFail(lr < targetPeakRSS))
	_ = tw.Flush()

	if len(r.failures) > 0 {
		fmt.Fprintln(out, "\nfailed transfers (each retried once, and the retry counted):")
		for _, f := range r.failures {
			fmt.Fprintln(out, "  "+f)
		}
	}
	fmt.Fprintln(out, "\nsamples:")
	for _, s := range []struct {
		label string
		m     map[string][]float64
		unit  func(float64) string
	}{
		{"(a) GET 1 stream", r.get1, gbps}, {fmt.Sprintf("(a) GET %d streams", cfg.streams), r.getN, gbps},
		{"(a) CPU s/GiB, 1", r.get1CPU, secs}, {fmt.Sprintf("(a) CPU s/GiB, %d", cfg.streams), r.getNCPU, secs},
		{"(b) push", r.push, secs}, {"(b) server CPU", r.pushCPU, secs},
		{"(c) small push", r.smallPush, secs}, {"(c) small pull", r.smallPull, secs}, {"(c) server CPU", r.smallCPU, secs},
		{"(e) pull", r.pull, secs}, {"(e) server CPU", r.pullCPU, secs},
	} {
		for _, name := range []string{"lading", "distribution", "servefile"} {
			if xs := s.m[name]; len(xs) > 0 {
				parts := make([]string, len(xs))
				for i, x := range xs {
					parts[i] = s.unit(x)
				}
				fmt.Fprintf(out, "  %-20s %-13s %s\n", s.label, name, strings.Join(parts, ", "))
			}
		}
	}
	for _, name := range []string{"lading", "distribution"} {
		parts := []string{}
		for _, v := range r.rss[name] {
			parts = append(parts, mib(v))
		}
		fmt.Fprintf(out, "  %-20s %-13s %s\n", "(d) peak RSS", name, strings.Join(parts, ", "))
	}
}

func ladingRevision(ctx context.Context, repo string) string {
	rev, err := output(ctx, repo, "git", "describe", "--always", "--dirty")
	if err != nil {
		return "(unknown revision)"
	}
	return rev
}

func curlVersion(ctx context.Context, curl string) string {
	v, err := output(ctx, "", curl, "--version")
	if err != nil {
		return "curl"
	}
	first, _, _ := strings.Cut(v, "\n")
	fields := strings.Fields(first)
	if len(fields) >= 2 {
		return fields[0] + " " + fields[1]
	}
	return first
}
