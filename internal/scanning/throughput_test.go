package scanning

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	blobfs "github.com/lading-registry/lading/internal/blob/fs"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/imagesrc"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/vulndb"
)

// throughputImages is how many images BenchmarkScanOnPushThroughput pushes (issue 11 point 5:
// 2,000 small images on one shared base, >= 150 images/s on 2 cores).
const throughputImages = 2000

// BenchmarkScanOnPushThroughput pushes throughputImages images of two layers each (the real
// Debian 12 base layer of the corpus, shared, and a tiny layer of their own) into a registry
// of real SQLite and blob store whose policy scans every repository on push (ENHANCED), with
// two scan workers (`lading serve --scan-workers` default), and reports images/s from the
// first push to the last scan complete. Pushes are the store's PutManifest, as the OCI
// handler calls it once the blobs are uploaded: what is measured is the scanning side.
func BenchmarkScanOnPushThroughput(b *testing.B) {
	img, err := imagesrc.OpenArchive(context.Background(), testfiles.Path(b, "images", "debian-family.tar"), "debian-base", imagesrc.Options{Platform: "linux/amd64"})
	if err != nil {
		b.Fatal(err)
	}
	rc, err := img.Layers[0].Open(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	baseData, err := io.ReadAll(rc)
	_ = rc.Close()
	_ = img.Close()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		ctx, cancel := context.WithCancel(context.Background())
		dir := b.TempDir()
		db, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
		if err != nil {
			b.Fatal(err)
		}
		blobs, err := blobfs.New(filepath.Join(dir, "blobs"), blobfs.Options{})
		if err != nil {
			b.Fatal(err)
		}
		w := vulndb.NewWatcher(db, vulndb.WatcherOptions{Logger: slog.New(slog.DiscardHandler)})
		if _, err := w.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
		committed := make(chan struct{}, 1)
		svc := New(db, blobs, w, Config{Origin: events.Origin{Account: "123456789012", Region: "eu-west-1"}, Workers: 2,
			ScratchDir: b.TempDir(), Logger: slog.New(slog.DiscardHandler),
			Notify: func() {
				select {
				case committed <- struct{}{}:
				default:
				}
			}})
		db.SetEffects(svc.Effects, svc.Committed)
		if err := db.PutScanningPolicy(ctx, policy.Policy{ScanType: policy.ScanTypeEnhanced, Rules: []policy.Rule{
			{Frequency: policy.FrequencyScanOnPush, Filters: []policy.Filter{{Value: "*", Type: policy.FilterTypeWildcard}}}}}); err != nil {
			b.Fatal(err)
		}
		f := &fixture{ctx: ctx, db: db, blobs: blobs, svc: svc}
		base := f.putBlob(b, baseData)
		baseSize := int64(len(baseData))
		type pushed struct{ repo, digest string }
		var images []pushed
		// Blobs are uploaded before the clock starts; the push that counts is the manifest's.
		type prepared struct {
			repo             string
			own, config      digest.Digest
			ownSize, cfgSize int64
		}
		var preps []prepared
		for i := range throughputImages {
			own := gzipTar(b, map[string]string{"app/server.js": fmt.Sprintf("// build %d\n", i)})
			cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
				"history": []map[string]any{{"created_by": "ADD rootfs /"}, {"created_by": fmt.Sprintf("COPY app /app # %d", i)}}})
			preps = append(preps, prepared{repo: fmt.Sprintf("team-%02d/app-%04d", i%20, i), own: f.putBlob(b, own), config: f.putBlob(b, cfg),
				ownSize: int64(len(own)), cfgSize: int64(len(cfg))})
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = svc.Run(ctx)
		}()
		b.StartTimer()
		cpuStart := cpuTime(b)
		start := time.Now()
		for _, p := range preps {
			for d, size := range map[digest.Digest]int64{base: baseSize, p.own: p.ownSize, p.config: p.cfgSize} {
				if err := db.LinkBlob(ctx, p.repo, d.String(), size, true); err != nil {
					b.Fatal(err)
				}
			}
			man, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
				"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": p.config, "size": p.cfgSize},
				"layers": []map[string]any{
					{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": base, "size": baseSize},
					{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": p.own, "size": p.ownSize}}})
			d := digest.FromBytes(man)
			m := store.Manifest{Repository: p.repo, Digest: d.String(), MediaType: "application/vnd.oci.image.manifest.v1+json",
				ConfigMediaType: "application/vnd.oci.image.config.v1+json", ConfigDigest: p.config.String(), Size: int64(len(man)), Content: man}
			if _, err := db.PutManifest(ctx, m, []store.Reference{{Kind: store.RefConfig, Digest: p.config.String(), Size: p.cfgSize, Required: true},
				{Kind: store.RefLayer, Digest: base.String(), Size: baseSize, Required: true},
				{Kind: store.RefLayer, Digest: p.own.String(), Size: p.ownSize, Required: true}}, []string{"v1"}, store.PutOptions{CreateRepository: true}); err != nil {
				b.Fatal(err)
			}
			images = append(images, pushed{p.repo, d.String()})
		}
		pushedIn := time.Since(start)
		// Wait for each scan in turn; every completed scan commits an event, which wakes this.
		for _, im := range images {
			for {
				st, err := db.ImageScan(ctx, im.repo, im.digest, policy.ScanTypeEnhanced)
				if err != nil {
					b.Fatal(err)
				}
				if st.Status != StatusInProgress && st.Status != StatusPending {
					if st.Status == StatusFailed {
						b.Fatalf("%s@%s: scan failed: %s", im.repo, im.digest, st.Description)
					}
					break
				}
				<-committed
			}
		}
		elapsed := time.Since(start)
		cpu := cpuTime(b) - cpuStart
		b.StopTimer()
		// On a shared machine the wall figure follows the load; the CPU per image does not.
		b.ReportMetric(float64(cpu.Microseconds())/1000/throughputImages, "cpu-ms/image")
		b.ReportMetric(float64(throughputImages)/elapsed.Seconds(), "images/s")
		b.ReportMetric(pushedIn.Seconds(), "push-s")
		cancel()
		<-done
		_ = db.Close()
		b.StartTimer()
	}
}

// cpuTime is the process's user and system time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
