package main

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
)

// targetWarm is issue 11 point 5's bound on the scan of an image on an already-inventoried
// base (only its own layer new), as a fraction of a cold scan of the same image.
const targetWarm = 0.05

// warmResult is what BenchmarkScanOnBase measured: nanoseconds per scan, one sample per -count.
type warmResult struct {
	cold, warm []float64
}

// warmBase runs internal/scanning/pipeline's BenchmarkScanOnBase (the layer-inventory cache of
// the server; `lading scan` keeps none between runs) and collects its ns/op.
func (b *bench) warmBase(ctx context.Context) (*warmResult, error) {
	progress("warm-base benchmark (go test -bench BenchmarkScanOnBase)")
	out, err := output(ctx, b.cfg.repo, nil, "go", "test", "-run", "^$", "-bench", "^BenchmarkScanOnBase$",
		"-benchtime", "3x", "-count", "5", "./internal/scanning/pipeline")
	if err != nil {
		return nil, err
	}
	var r warmResult
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != "ns/op" {
			continue
		}
		ns, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", sc.Text(), err)
		}
		switch {
		case strings.HasPrefix(f[0], "BenchmarkScanOnBase/cold"):
			r.cold = append(r.cold, ns)
		case strings.HasPrefix(f[0], "BenchmarkScanOnBase/warm-base"):
			r.warm = append(r.warm, ns)
		}
	}
	if len(r.cold) == 0 || len(r.warm) == 0 {
		return nil, fmt.Errorf("no results in:\n%s", out)
	}
	return &r, nil
}

// targetThroughput is issue 11 point 5's scan-on-push throughput on 2 cores, images/s.
const targetThroughput = 150

// throughputResult is what BenchmarkScanOnPushThroughput measured.
type throughputResult struct {
	imagesPerSec, cpuMsPerImage, pushSeconds float64
}

// throughput runs internal/scanning's BenchmarkScanOnPushThroughput once (2,000 images on one
// base, real SQLite and blob store, two workers) and collects its metrics.
func (b *bench) throughput(ctx context.Context) (*throughputResult, error) {
	progress("scan-on-push throughput benchmark (go test -bench BenchmarkScanOnPushThroughput, about 2 minutes)")
	out, err := output(ctx, b.cfg.repo, nil, "go", "test", "-run", "^$", "-bench", "^BenchmarkScanOnPushThroughput$",
		"-benchtime", "1x", "-timeout", "30m", "./internal/scanning")
	if err != nil {
		return nil, err
	}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "BenchmarkScanOnPushThroughput") {
			continue
		}
		var r throughputResult
		for i := 1; i+1 < len(f); i++ {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "images/s":
				r.imagesPerSec = v
			case "cpu-ms/image":
				r.cpuMsPerImage = v
			case "push-s":
				r.pushSeconds = v
			}
		}
		if r.imagesPerSec > 0 {
			return &r, nil
		}
	}
	return nil, fmt.Errorf("no result in:\n%s", out)
}
