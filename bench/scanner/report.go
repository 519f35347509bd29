package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lading-registry/lading/bench/internal/machine"
	linventory "github.com/lading-registry/lading/internal/inventory"
)

// Targets of issue 11 point 5, on every image: Lading at most 0.15x osv-scanner's wall time
// and at most half its peak RSS (issue 5 asked 0.5x and 0.5x of the 1 GiB image).
const (
	targetWall = 0.15
	targetRSS  = 0.5
)

// maxListed bounds the differences printed per image and direction, unless -v.
const maxListed = 20

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

// pairedRatio is the median over repetitions of num[i]/den[i]: the two samples of a repetition
// are taken back to back, so pairing them cancels much of the drift of a shared machine's load.
func pairedRatio(num, den []float64) float64 {
	n := min(len(num), len(den))
	rs := make([]float64, 0, n)
	for i := range n {
		if den[i] > 0 {
			rs = append(rs, num[i]/den[i])
		}
	}
	return median(rs)
}

func walls(ss []sample) []float64 { return collect(ss, func(s sample) float64 { return s.wall }) }
func cpus(ss []sample) []float64  { return collect(ss, func(s sample) float64 { return s.cpu }) }
func rsses(ss []sample) []float64 {
	return collect(ss, func(s sample) float64 { return float64(s.rssKiB) / 1024 })
}

func collect(ss []sample, f func(sample) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func sizeString(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func (b *bench) report(ctx context.Context, out io.Writer) {
	fmt.Fprintf(out, "\nLading `scan` vs %s, %s\n", b.osvVer, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(out, "machine: %s, %d cores, %s; load average (1 min) %s at start, %s at end\n",
		machine.CPUModel(), runtime.NumCPU(), runtime.Version(), b.loadStart, b.loadEnd)
	fmt.Fprintf(out, "lading %s; data: %s (Lading: lading db import, %.1f s, not timed; osv-scanner: the same all.zip files, offline)\n",
		b.ladingRev, filepath.Join(b.cfg.shared, "osv"), b.importDur.Seconds())
	built := func(path string) string {
		if releaseBuilt(ctx, path) {
			return "as releases are (CGO_ENABLED=0, -trimpath, -ldflags=\"-s -w\")"
		}
		return "NOT as releases are (see `go version -m " + path + "`): RSS not comparable"
	}
	fmt.Fprintf(out, "builds: lading %s; osv-scanner %s\n", built(b.lading), built(b.osv))
	decoder := cmp.Or(b.cfg.gzipDecoder, linventory.GzipDecoderAuto)
	if prog, err := linventory.GzipProgram(decoder); err == nil && prog != "" {
		fmt.Fprintf(out, "Lading's gzip decoder: %s (--gzip-decoder %s) for layers of %d MiB or more, in a child process: its CPU counts in Lading's;\n"+
			"its peak RSS (about 4 MiB) is not added to Lading's: ru_maxrss of a process that waited for a child is the larger of the two\n", prog, decoder, linventory.MinProgramGzipBytes>>20)
	} else {
		fmt.Fprintf(out, "Lading's gzip decoder: Go's, in process (--gzip-decoder %s; igzip is in Debian's isal package)\n", decoder)
	}
	fmt.Fprintf(out, "runs: %d per scanner per corpus image, %d on the big image, alternating which goes first, after an untimed warm-up run of each;\n", b.cfg.reps, b.cfg.bigReps)
	fmt.Fprintln(out, "wall and CPU (user+sys) are medians; peak RSS is ru_maxrss of the child, median; ratios are Lading / osv-scanner, medians of per-run ratios.")
	for _, img := range []struct {
		name string
		info bigImageInfo
	}{{bigName, b.bigInfo}, {aptName, b.aptInfo}} {
		if img.info.Path == "" {
			continue
		}
		fmt.Fprintf(out, "%s: %s of uncompressed layers, %s gzip-compressed, archive %s; %d layers:\n",
			img.name, sizeString(img.info.TarBytes), sizeString(img.info.GzBytes), sizeString(img.info.ArchiveBytes), len(img.info.Layers))
		for i, l := range img.info.Layers {
			files := ""
			if l.Files > 0 {
				files = fmt.Sprintf(", %d files", l.Files)
			}
			fmt.Fprintf(out, "  %d. %s (tar %s, gzip %s%s)\n", i+1, truncate(l.CreatedBy, 100), sizeString(l.TarBytes), sizeString(l.GzBytes), files)
		}
	}
	if b.aptSkipped != "" {
		fmt.Fprintf(out, "apt-like image not run: %s\n", b.aptSkipped)
	}
	fmt.Fprintln(out)

	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "image\tarchive\tLading wall\tCPU\tpeak RSS\tosv-scanner wall\tCPU\tpeak RSS\twall ratio\tCPU ratio\tRSS ratio\twall<=0.15x\tRSS<=0.5x\tload\tpairs osv/Lading\tmatched\tosv-only\tLading-only\tlocation diffs\t")
	allWall, allRSS := len(b.results) > 0, len(b.results) > 0
	for _, r := range b.results {
		lw, ow := walls(r.lading.samples), walls(r.osv.samples)
		lr, or := rsses(r.lading.samples), rsses(r.osv.samples)
		wr, rr := pairedRatio(lw, ow), pairedRatio(lr, or)
		wallOK, rssOK := passFail(wr <= targetWall), passFail(rr <= targetRSS)
		allWall, allRSS = allWall && wr <= targetWall, allRSS && rr <= targetRSS
		lf, of := "", ""
		if r.lading.failure != "" {
			lf = " FAILED"
		}
		if r.osv.failure != "" {
			of = " FAILED"
		}
		pairs, matched, oo, lo, locs := "-", "-", "-", "-", "-"
		if r.diff.skipped == "" {
			pairs = fmt.Sprintf("%d/%d", r.diff.osvPairs, r.diff.ladingPairs)
			matched = fmt.Sprint(r.diff.matched)
			oo, lo = fmt.Sprint(len(r.diff.osvOnly)), fmt.Sprint(len(r.diff.ladingOnly))
			locs = fmt.Sprint(len(r.diff.locations))
		} else if r.osv.failure != "" {
			pairs = fmt.Sprintf("-/%d", len(r.diff.ladingAll))
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f s%s\t%.2f s\t%.0f MiB\t%.2f s%s\t%.2f s\t%.0f MiB\t%.2fx\t%.2fx\t%.2fx\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			r.img.name, sizeString(r.img.size), median(lw), lf, median(cpus(r.lading.samples)), median(lr),
			median(ow), of, median(cpus(r.osv.samples)), median(or), wr, pairedRatio(cpus(r.lading.samples), cpus(r.osv.samples)), rr, wallOK, rssOK, r.load,
			pairs, matched, oo, lo, locs)
	}
	tw.Flush()
	fmt.Fprintln(out, "targets (issue 11 point 5) bind on every image.")
	fmt.Fprintln(out, "CPU ratio: the steadier figure when the machine is shared (see the load column: 1-minute load average after the image's runs).")
	fmt.Fprintln(out, "pairs: distinct (vulnerability, package name, version); matched: osv-scanner's pairs Lading also reports, up to aliases;")
	fmt.Fprintln(out, "location diffs: packages of matched pairs that one scanner reports at a file (or node_modules folder) where the other does not.")

	b.reportTargets(out, allWall, allRSS)

	for _, r := range b.results {
		fmt.Fprintf(out, "\n== %s (%s)\n", r.img.name, r.img.note)
		if r.lading.failure != "" {
			fmt.Fprintf(out, "Lading failed: %s\n", r.lading.failure)
		}
		if r.osv.failure != "" {
			fmt.Fprintf(out, "osv-scanner failed: %s\n", r.osv.failure)
		}
		if r.diff.skipped != "" {
			fmt.Fprintf(out, "findings not compared: %s\n", r.diff.skipped)
			b.listPairs(out, "Lading reports", r.diff.ladingAll)
			continue
		}
		if len(r.diff.osvOnly) == 0 && len(r.diff.ladingOnly) == 0 {
			fmt.Fprintf(out, "findings: the same %d pairs\n", r.diff.matched)
		}
		b.listPairs(out, "osv-scanner reports, Lading does not", r.diff.osvOnly)
		b.listPairs(out, "Lading reports, osv-scanner does not", r.diff.ladingOnly)
		b.listLocations(out, r.diff.locations)
	}
}

func (b *bench) listLocations(out io.Writer, ls []locationDiff) {
	if len(ls) == 0 {
		return
	}
	fmt.Fprintf(out, "same vulnerabilities, found at different places (%d packages):\n", len(ls))
	for _, l := range ls {
		fmt.Fprintf(out, "  %s\n", l.pkg)
		for _, side := range []struct {
			who  string
			locs []string
		}{{"only osv-scanner", l.osvOnly}, {"only Lading", l.ladingOnly}} {
			if len(side.locs) == 0 {
				continue
			}
			locs := side.locs
			if !b.cfg.verbose {
				locs = first(locs, 3)
			}
			fmt.Fprintf(out, "      %s at %d: %s\n", side.who, len(side.locs), strings.Join(locs, " "))
		}
	}
}

func (b *bench) listPairs(out io.Writer, title string, ps []diffPair) {
	if len(ps) == 0 {
		return
	}
	fmt.Fprintf(out, "%s (%d):\n", title, len(ps))
	// Pairs on one package usually share one explanation: group them.
	type group struct {
		pkg   pkgKey
		eco   string
		path  string
		hint  string
		vulns []string
	}
	var groups []*group
	for _, p := range ps {
		if n := len(groups); n > 0 && groups[n-1].pkg == p.pkg {
			groups[n-1].vulns = append(groups[n-1].vulns, vulnLabel(p))
			continue
		}
		groups = append(groups, &group{pkg: p.pkg, eco: p.eco, path: p.path, hint: p.hint, vulns: []string{vulnLabel(p)}})
	}
	shown := 0
	for _, g := range groups {
		if !b.cfg.verbose && shown >= maxListed {
			fmt.Fprintf(out, "  … %d more packages (-v lists all)\n", len(groups)-shown)
			break
		}
		shown++
		vulns := g.vulns
		if !b.cfg.verbose {
			vulns = first(vulns, 8)
		}
		fmt.Fprintf(out, "  %s [%s] at %s: %d: %s\n", g.pkg, g.eco, truncate(g.path, 160), len(g.vulns), strings.Join(vulns, " "))
		if g.hint != "" {
			fmt.Fprintf(out, "      -> %s\n", g.hint)
		}
	}
}

func vulnLabel(p diffPair) string {
	if len(p.aliases) == 0 {
		return p.vuln
	}
	return p.vuln + "(" + strings.Join(first(p.aliases, 3), ",") + ")"
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

// reportTargets prints each target of issue 11 point 5 with PASS or FAIL (or why it was not
// measured in this run).
func (b *bench) reportTargets(out io.Writer, allWall, allRSS bool) {
	fmt.Fprintln(out, "\nissue 11 point 5 targets:")
	images := fmt.Sprintf("%d images", len(b.results))
	fmt.Fprintf(out, "  %s  wall <= %.2fx osv-scanner's on every image (%s)\n", passFail(allWall), targetWall, images)
	fmt.Fprintf(out, "  %s  peak RSS <= %.2fx osv-scanner's on every image (%s)\n", passFail(allRSS), targetRSS, images)
	i := slices.IndexFunc(b.results, func(r imageResult) bool { return r.img.name == aptName })
	switch {
	case i >= 0:
		r := b.results[i]
		rr := pairedRatio(rsses(r.lading.samples), rsses(r.osv.samples))
		fmt.Fprintf(out, "  %s  apt-like image (JDK, gcc/g++, LLVM, Python, perl, git by apt, %d jars, Go binaries): peak RSS %.0f MiB, %.2fx osv-scanner's (<= %.2fx)\n",
			passFail(rr <= targetRSS), aptJars, median(rsses(r.lading.samples)), rr, targetRSS)
	case b.aptSkipped != "":
		fmt.Fprintf(out, "  NOT RUN  apt-like image: %s\n", b.aptSkipped)
	default:
		fmt.Fprintln(out, "  NOT RUN  apt-like image (-skip-apt or -only)")
	}
	if b.warm != nil {
		ratio := median(b.warm.warm) / median(b.warm.cold)
		fmt.Fprintf(out, "  %s  image on an already-inventoried base: %.1f ms vs cold %.0f ms, %.4fx (<= %.2fx; BenchmarkScanOnBase, medians of %d)\n",
			passFail(ratio <= targetWarm), median(b.warm.warm)/1e6, median(b.warm.cold)/1e6, ratio, targetWarm, len(b.warm.cold))
	} else {
		fmt.Fprintln(out, "  NOT RUN  image on an already-inventoried base (-skip-warm)")
	}
	if t := b.tput; t != nil {
		fmt.Fprintf(out, "  %s  server scan-on-push of 2,000 small images on one base: %.0f images/s (>= %d; first push to last scan complete, 2 workers; %.1f ms CPU per image, pushes alone %.1f s)\n",
			passFail(t.imagesPerSec >= targetThroughput), t.imagesPerSec, targetThroughput, t.cpuMsPerImage, t.pushSeconds)
	} else {
		fmt.Fprintln(out, "  NOT RUN  server scan-on-push throughput (-skip-throughput)")
	}
}
