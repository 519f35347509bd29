package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lading-registry/lading/bench/internal/machine"
)

// sample is one timed run of a scanner.
type sample struct {
	wall   float64 // seconds
	cpu    float64 // user + system seconds
	rssKiB int64   // ru_maxrss
	exit   int
}

// scannerRuns are the timed runs of one scanner on one image.
type scannerRuns struct {
	samples []sample
	// failure is set when the scanner failed (an exit status that is not a result).
	failure string
	report  string // the JSON report of the last run
	inv     string // the inventory of the warm-up run (Lading: CycloneDX; osv-scanner: --all-packages JSON)
}

type imageResult struct {
	img    scanImage
	lading scannerRuns
	osv    scannerRuns
	diff   findingsDiff
	load   string // load average when the image's runs ended
}

const (
	ladingName = "lading"
	osvName    = "osv-scanner"
)

// runChild runs one scanner to completion and reads its rusage. err is set only when the
// process could not run at all; a non-zero exit is in the sample.
func (b *bench) runChild(ctx context.Context, bin string, args, env []string, logPath string) (sample, error) {
	// Each run gets an empty TMPDIR (both scanners unpack into it), removed afterwards.
	tmp, err := os.MkdirTemp(b.tmp, "run-")
	if err != nil {
		return sample{}, err
	}
	defer os.RemoveAll(tmp)
	logf, err := os.Create(logPath)
	if err != nil {
		return sample{}, err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append(os.Environ(), "TMPDIR="+tmp), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return sample{}, fmt.Errorf("%s: %w", bin, err)
	}
	if ctx.Err() != nil {
		return sample{}, ctx.Err()
	}
	s := sample{wall: wall.Seconds(), exit: cmd.ProcessState.ExitCode()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.rssKiB = ru.Maxrss // KiB on Linux
		s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return s, nil
}

func (b *bench) ladingArgs(img scanImage, format, out string) []string {
	// The shared corpus is a snapshot: its age is not what the benchmark measures.
	args := []string{"scan", "--data-dir", b.ladingDB, "--max-db-age", "0", "--format", format, "--output", out}
	if b.cfg.gzipDecoder != "" {
		args = append(args, "--gzip-decoder", b.cfg.gzipDecoder)
	}
	return append(args, img.path)
}

func (b *bench) osvArgs(img scanImage, out string, extra ...string) []string {
	args := []string{"scan", "image", "--archive", "--offline", "--format", "json", "--output-file", out}
	return append(append(args, extra...), img.path)
}

func (b *bench) osvEnv() []string {
	return []string{"OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY=" + b.osvDB}
}

// ladingFailed says why a Lading run is not a result: any non-zero exit.
func ladingFailed(s sample) string {
	if s.exit != 0 {
		return fmt.Sprintf("exit status %d", s.exit)
	}
	return ""
}

// osvFailed says why an osv-scanner run is not a result: 0 is "no findings", 1 "findings",
// anything else (127) an error.
func osvFailed(s sample) string {
	if s.exit != 0 && s.exit != 1 {
		return fmt.Sprintf("exit status %d", s.exit)
	}
	return ""
}

// measure runs both scanners on one image: an untimed warm-up of each that also records its
// inventory, then cfg.reps timed runs of each, alternating which goes first.
func (b *bench) measure(ctx context.Context, img scanImage) (imageResult, error) {
	res := imageResult{img: img}
	dir := filepath.Join(b.work, "runs", img.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	reps := b.cfg.reps
	if img.name == bigName {
		reps = b.cfg.bigReps
	}
	res.lading.inv = filepath.Join(dir, "lading-inventory.cdx.json")
	res.osv.inv = filepath.Join(dir, "osv-all-packages.json")
	progress("%s: warm-up runs (inventories)", img.name)
	if _, err := b.runChild(ctx, b.lading, b.ladingArgs(img, "cyclonedx", res.lading.inv), nil, filepath.Join(dir, "lading-inventory.log")); err != nil {
		return res, err
	}
	if _, err := b.runChild(ctx, b.osv, b.osvArgs(img, res.osv.inv, "--all-packages"), b.osvEnv(), filepath.Join(dir, "osv-inventory.log")); err != nil {
		return res, err
	}
	for rep := range reps {
		order := []string{ladingName, osvName}
		if rep%2 == 1 {
			order = []string{osvName, ladingName}
		}
		for _, who := range order {
			log := filepath.Join(dir, fmt.Sprintf("%s-%d.log", who, rep))
			var s sample
			var err error
			if who == ladingName {
				res.lading.report = filepath.Join(dir, "lading.json")
				s, err = b.runChild(ctx, b.lading, b.ladingArgs(img, "json", res.lading.report), nil, log)
				if err == nil {
					res.lading.samples = append(res.lading.samples, s)
					if f := ladingFailed(s); f != "" {
						res.lading.failure = f + " (see " + log + ")"
					}
				}
			} else {
				res.osv.report = filepath.Join(dir, "osv.json")
				s, err = b.runChild(ctx, b.osv, b.osvArgs(img, res.osv.report), b.osvEnv(), log)
				if err == nil {
					res.osv.samples = append(res.osv.samples, s)
					if f := osvFailed(s); f != "" {
						res.osv.failure = f + ": " + errorSummary(log)
					}
				}
			}
			if err != nil {
				return res, err
			}
			progress("%s run %d: %-11s %7.2f s  CPU %7.2f s  peak RSS %5d MiB  exit %d", img.name, rep+1, who, s.wall, s.cpu, s.rssKiB>>10, s.exit)
		}
	}
	res.load = machine.LoadAverage()
	var err error
	res.diff, err = compareFindings(res)
	if err != nil {
		return res, fmt.Errorf("findings: %w", err)
	}
	return res, nil
}
