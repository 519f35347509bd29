// Command scanner benchmarks `lading scan` against osv-scanner v2 on the same image archives and
// the same OSV data, as issue 5 asks: wall time (median of several runs) and peak RSS (ru_maxrss
// of the child process) of both scanners on every image of ../shared/testdata/images and on a
// ~1 GiB image it builds, the ratios and the targets, and a comparison of the findings: every
// (vulnerability, package) pair one scanner reports and the other does not.
//
// Run it from the repository root:
//
//	go run ./bench/scanner
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lading-registry/lading/bench/internal/cli"
	"github.com/lading-registry/lading/bench/internal/machine"
	"github.com/lading-registry/lading/internal/testfiles"
)

type config struct {
	repo      string // repository root, where ./cmd/lading builds
	shared    string // the shared test data folder: images/, osv/, artifacts/
	workRoot  string // parent of the run's temporary directory
	cacheDir  string // where the big image is kept between runs ("" = rebuilt in the work dir)
	keep      bool
	reps      int // timed runs of each scanner on each corpus image
	bigReps   int // timed runs of each scanner on the big image
	bigMiB    int64
	skipBig   bool
	skipApt   bool
	aptRootfs string // debootstrapped tree of the apt-like image ("" = CACHE/apt-rootfs)
	skipWarm  bool
	skipTput  bool
	osvBin    string
	ladingBin string
	// gzipDecoder is lading's --gzip-decoder ("" leaves it at its default, auto).
	gzipDecoder string
	verbose     bool // list every finding difference, not only a summary per kind
	only        string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.repo, "repo", ".", "root of the Lading repository (where ./cmd/lading is)")
	flag.StringVar(&cfg.workRoot, "workdir", os.TempDir(), "where to make the run's temporary directory (needs about 5 GiB free)")
	flag.StringVar(&cfg.cacheDir, "cache", "", "keep the generated big image in this folder and reuse it on later runs (default: build it every run)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (images, reports, logs) after the run")
	flag.IntVar(&cfg.reps, "reps", 5, "timed runs of each scanner on each corpus image")
	flag.IntVar(&cfg.bigReps, "big-reps", 5, "timed runs of each scanner on the big image")
	flag.Int64Var(&cfg.bigMiB, "big-mib", 1024, "size of the big image in MiB (sum of its uncompressed layers)")
	flag.BoolVar(&cfg.skipBig, "skip-big", false, "do not build or scan the big image")
	flag.BoolVar(&cfg.skipApt, "skip-apt", false, "do not build or scan the apt-like image")
	flag.StringVar(&cfg.aptRootfs, "apt-rootfs", "", "debootstrapped tree for the apt-like image (default: CACHE/apt-rootfs, made with debootstrap when missing)")
	flag.BoolVar(&cfg.skipTput, "skip-throughput", false, "do not run the scan-on-push throughput benchmark (go test -bench in internal/scanning)")
	flag.BoolVar(&cfg.skipWarm, "skip-warm", false, "do not run the warm-base benchmark (go test -bench in internal/scanning/pipeline)")
	flag.StringVar(&cfg.osvBin, "osv-scanner", "", "osv-scanner binary (default: $(go env GOPATH)/bin/osv-scanner or PATH; installed at "+osvVersion+" if missing)")
	flag.StringVar(&cfg.ladingBin, "lading", "", "lading binary (default: built from REPO/cmd/lading)")
	flag.StringVar(&cfg.gzipDecoder, "gzip-decoder", "", "lading's --gzip-decoder (auto, go, igzip; default: lading's own, auto)")
	flag.StringVar(&cfg.only, "only", "", "comma-separated image names to run (e.g. neo4j-like,big-1GiB; default: all)")
	flag.BoolVar(&cfg.verbose, "v", false, "print every differing finding pair (default: at most 20 per image and direction)")
	flag.Parse()
	if cfg.reps < 1 || cfg.bigReps < 1 || cfg.bigMiB < 256 {
		cli.BadFlags("-reps and -big-reps must be at least 1, -big-mib at least 256")
	}
	cli.Run(func(ctx context.Context, out io.Writer) error { return run(ctx, cfg, out) })
}

// progress writes a progress line on standard error, stamped with the seconds since start.
var progress = cli.Progress()

func run(ctx context.Context, cfg config, out io.Writer) (err error) {
	if cfg.repo, err = filepath.Abs(cfg.repo); err != nil {
		return err
	}
	// The shared corpus is too large for the repository: check it before any work.
	for _, need := range []string{"images", "osv", "artifacts"} {
		if _, err := testfiles.SharedDir(cfg.repo, need); err != nil {
			return err
		}
	}
	if cfg.shared, err = testfiles.SharedDir(cfg.repo); err != nil {
		return err
	}
	work, err := os.MkdirTemp(cfg.workRoot, "lading-scanbench-")
	if err != nil {
		return err
	}
	defer func() {
		if cfg.keep {
			progress("kept %s", work)
			return
		}
		if rmErr := os.RemoveAll(work); rmErr != nil && err == nil {
			err = rmErr
		}
	}()
	b := &bench{cfg: cfg, work: work, loadStart: machine.LoadAverage()}
	if err := b.setup(ctx); err != nil {
		return err
	}
	images, err := b.corpusImages(ctx)
	if err != nil {
		return fmt.Errorf("corpus images: %w", err)
	}
	if cfg.only != "" {
		want := strings.Split(cfg.only, ",")
		images = slices.DeleteFunc(images, func(i scanImage) bool { return !slices.Contains(want, i.name) })
		cfg.skipBig = cfg.skipBig || !slices.Contains(want, bigName)
		cfg.skipApt = cfg.skipApt || !slices.Contains(want, aptName)
	}
	if !cfg.skipBig {
		big, err := b.bigImage(ctx)
		if err != nil {
			return fmt.Errorf("big image: %w", err)
		}
		images = append(images, big)
	}
	if !cfg.skipApt {
		apt, err := b.aptImage(ctx)
		if err != nil {
			// The image needs Debian's repositories or a prepared tree: say why it is missing.
			b.aptSkipped = err.Error()
			progress("apt-like image skipped: %v", err)
		} else {
			images = append(images, apt)
		}
	}
	for _, img := range images {
		res, err := b.measure(ctx, img)
		if err != nil {
			return fmt.Errorf("%s: %w", img.name, err)
		}
		b.results = append(b.results, res)
	}
	if !cfg.skipWarm {
		if b.warm, err = b.warmBase(ctx); err != nil {
			return fmt.Errorf("warm-base benchmark: %w", err)
		}
	}
	if !cfg.skipTput {
		if b.tput, err = b.throughput(ctx); err != nil {
			return fmt.Errorf("throughput benchmark: %w", err)
		}
	}
	b.loadEnd = machine.LoadAverage()
	b.report(ctx, out)
	return nil
}
