package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"time"
)

// profiler writes the CPU profile of a run, and the heap profile taken when the heap was at
// its largest (a profile at the end would show what is left, not what the peak RSS is made of).
type profiler struct {
	cpu      *os.File
	memPath  string
	stop     context.CancelFunc
	wg       sync.WaitGroup
	peak     uint64
	peakProf []byte
	err      error
}

// heapSampleEvery is how often the heap size is read to find its peak: often enough to see
// the peak of a layer, rarely enough to cost nothing.
const heapSampleEvery = 20 * time.Millisecond

// startProfiles starts the profiles asked for; either path may be empty.
func startProfiles(ctx context.Context, cpuPath, memPath string) (*profiler, error) {
	p := &profiler{memPath: memPath}
	if cpuPath != "" {
		f, err := os.Create(cpuPath)
		if err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		p.cpu = f
	}
	if memPath != "" {
		runtime.MemProfileRate = 64 << 10
		ctx, p.stop = context.WithCancel(ctx)
		p.wg.Go(func() { p.watchHeap(ctx) })
	}
	return p, nil
}

func (p *profiler) watchHeap(ctx context.Context) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	t := time.NewTicker(heapSampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if v := sample[0].Value.Uint64(); v > p.peak+p.peak/20 {
			p.peak = v
			var buf bytes.Buffer
			// The profile reports the heap as of the last collection: force one so it is the
			// peak's (this lowers the peak a little; measure RSS without the profile).
			runtime.GC()
			if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
				p.err = err
				return
			}
			p.peakProf = buf.Bytes()
		}
	}
}

// Stop ends the profiles and writes the heap profile.
func (p *profiler) Stop() error {
	var errs []error
	if p.cpu != nil {
		pprof.StopCPUProfile()
		errs = append(errs, p.cpu.Close())
	}
	if p.stop != nil {
		p.stop()
		p.wg.Wait()
		errs = append(errs, p.err)
		if p.peakProf != nil {
			errs = append(errs, os.WriteFile(p.memPath, p.peakProf, 0o644))
		}
	}
	return errors.Join(errs...)
}
