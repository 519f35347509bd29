package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sync/semaphore"

	"github.com/lading-registry/lading/internal/imagesrc"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/scanning/pipeline"
	"github.com/lading-registry/lading/internal/testfiles"
)

func imageLayers(t testing.TB, file, name string) []pipeline.Layer {
	t.Helper()
	img, err := imagesrc.OpenArchive(context.Background(), testfiles.Path(t, "images", file), name, imagesrc.Options{Platform: "linux/amd64"})
	if err != nil {
		t.Fatalf("open %s %s: %v", file, name, err)
	}
	t.Cleanup(func() { _ = img.Close() })
	out := make([]pipeline.Layer, len(img.Layers))
	for i, l := range img.Layers {
		out[i] = pipeline.Layer{Digest: l.Digest, Size: l.Size, CreatedBy: l.CreatedBy, Content: l}
	}
	return out
}

// TestParallelInventoryIsTheSequentialOne: reading layers at once gives what reading them one
// by one gives, whiteouts and opaque directories included, on the corpus images.
func TestParallelInventoryIsTheSequentialOne(t *testing.T) {
	for _, tc := range []struct {
		file, name string
		mode       inventory.Mode
	}{
		{"debian-family.tar", "neo4j-like", inventory.ModeEnhanced},
		{"debian-family.tar", "whiteout", inventory.ModeEnhanced},
		{"debian-family.tar", "node-app", inventory.ModeEnhanced},
		{"debian-family.tar", "neo4j-like", inventory.ModeBasic},
		{"go-app.tar", "", inventory.ModeEnhanced},
		{"hostile.tar", "", inventory.ModeEnhanced},
	} {
		t.Run(tc.name+" "+tc.file+" "+string(tc.mode), func(t *testing.T) {
			layers := imageLayers(t, tc.file, tc.name)
			seq, err := pipeline.Scanner{Mode: tc.mode, ScratchDir: t.TempDir(), Parallel: 1}.Inventory(context.Background(), layers)
			if err != nil {
				t.Fatal(err)
			}
			if len(seq.Packages) == 0 && tc.file != "hostile.tar" {
				t.Fatal("no packages: the comparison would prove nothing")
			}
			for _, parallel := range []int{2, 8} {
				par, err := pipeline.Scanner{Mode: tc.mode, ScratchDir: t.TempDir(), Parallel: parallel}.Inventory(context.Background(), layers)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(seq, par) {
					t.Errorf("parallel %d: inventory differs from the sequential one:\n%d packages, %d skipped\nvs\n%d packages, %d skipped",
						parallel, len(par.Packages), len(par.Skipped), len(seq.Packages), len(seq.Skipped))
				}
			}
		})
	}
}

// blockingOpener's stream blocks until the scan's context is done; it keeps that context.
type blockingOpener struct {
	started chan struct{}
	ctx     context.Context
}

func (b *blockingOpener) Open(ctx context.Context) (io.ReadCloser, error) {
	b.ctx = ctx
	close(b.started)
	return io.NopCloser(readerFunc(func([]byte) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})), nil
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// failAfter fails to open once another layer has started.
type failAfter struct {
	started <-chan struct{}
	err     error
}

func (f failAfter) Open(context.Context) (io.ReadCloser, error) {
	<-f.started
	return nil, f.err
}

// TestLayerErrorCancelsTheOthers: a layer that fails stops the layers being read, and the
// scan's error is that layer's, not the cancellation of the others.
func TestLayerErrorCancelsTheOthers(t *testing.T) {
	boom := errors.New("disk on fire")
	slow := &blockingOpener{started: make(chan struct{})}
	layers := []pipeline.Layer{
		{Digest: "sha256:slow", Content: slow},
		{Digest: "sha256:broken", Content: failAfter{started: slow.started, err: boom}},
		{Digest: "sha256:never", Content: failingOpener{errors.New("opened after the failure")}},
	}
	_, err := pipeline.Scanner{ScratchDir: t.TempDir(), Parallel: 2}.Inventory(context.Background(), layers)
	le, ok := errors.AsType[*pipeline.LayerError](err)
	if !ok || le.Digest != "sha256:broken" || !errors.Is(err, boom) {
		t.Fatalf("err %v: want the LayerError of sha256:broken wrapping %v", err, boom)
	}
	// The slow layer's stream blocks until its context ends: that Inventory returned at all
	// says it was cancelled; its context says so too.
	if slow.ctx == nil || slow.ctx.Err() == nil {
		t.Error("the slow layer's context was not cancelled")
	}
}

// countingOpener counts the layers open at once.
type countingOpener struct {
	data          []byte
	open, maxOpen *atomic.Int64
}

func (c countingOpener) Open(context.Context) (io.ReadCloser, error) {
	n := c.open.Add(1)
	for {
		m := c.maxOpen.Load()
		if n <= m || c.maxOpen.CompareAndSwap(m, n) {
			break
		}
	}
	return closeFunc{Reader: bytes.NewReader(c.data), close: func() { c.open.Add(-1) }}, nil
}

type closeFunc struct {
	io.Reader
	close func()
}

func (c closeFunc) Close() error { c.close(); return nil }

// TestSlotsBoundLayersAcrossScans: scans sharing Slots read no more layers at once than its
// size, however many scans run and whatever their Parallel.
func TestSlotsBoundLayersAcrossScans(t *testing.T) {
	var open, maxOpen atomic.Int64
	data := gzipTar(t, map[string]string{"etc/os-release": debianRelease})
	slots := semaphore.NewWeighted(2)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for s := range errs {
		wg.Go(func() {
			var layers []pipeline.Layer
			for range 6 {
				layers = append(layers, pipeline.Layer{Digest: "sha256:x", Content: countingOpener{data, &open, &maxOpen}})
			}
			_, errs[s] = pipeline.Scanner{ScratchDir: t.TempDir(), Parallel: 4, Slots: slots}.Inventory(context.Background(), layers)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := maxOpen.Load(); got < 1 || got > 2 {
		t.Errorf("%d layers open at once, want at most 2 (and some)", got)
	}
}
