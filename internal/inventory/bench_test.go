package inventory_test

import (
	"context"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/inventory"
)

// BenchmarkScan scans the corpus images from scratch (no layer cache) and reports the bytes
// read per second and the peak Go heap. The corpus is the repository's testdata/images.
//
//	go test ./internal/inventory -run '^$' -bench BenchmarkScan -benchtime 3x
func BenchmarkScan(b *testing.B) {
	for _, bench := range []struct{ name, file, ref string }{
		{"debian-base", "debian-family.tar", "debian-base"},
		{"neo4j-like", "debian-family.tar", "neo4j-like"},
		{"node-app", "debian-family.tar", "node-app"},
		{"whiteout", "debian-family.tar", "whiteout"},
		{"go-app", "go-app.tar", ""},
		{"hostile", "hostile.tar", ""},
	} {
		b.Run(bench.name, func(b *testing.B) {
			img := openImage(b, bench.file, bench.ref)
			var size int64
			for _, l := range img.Layers {
				size += l.Size
			}
			b.SetBytes(size)
			b.ReportAllocs()
			peak := &heapPeak{}
			stop := peak.watch()
			defer stop()
			scratch := b.TempDir()
			for b.Loop() {
				res, err := inventory.Scan(context.Background(), inventoryLayers(img), inventory.Options{ScratchDir: scratch})
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Packages) == 0 && bench.name != "hostile" {
					b.Fatal("no packages")
				}
			}
			stop()
			b.ReportMetric(float64(peak.max)/(1<<20), "peak-heap-MiB")
		})
	}
}

// heapPeak samples the live heap while a benchmark runs.
type heapPeak struct{ max uint64 }

func (h *heapPeak) watch() func() {
	done := make(chan struct{})
	finished := make(chan struct{})
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(finished)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			h.max = max(h.max, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	stopped := false
	return func() {
		if !stopped {
			stopped = true
			close(done)
			<-finished
		}
	}
}
