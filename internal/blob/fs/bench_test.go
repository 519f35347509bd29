package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// chunkedReader hands out at most 1 MiB per Read, as an HTTP request body does.
type chunkedReader struct{ r io.Reader }

func (c chunkedReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), 1<<20)]) }

// BenchmarkUpload is one monolithic upload of a 256 MiB blob: receive, hash, write, fsync and
// rename, as a PATCH then PUT does.
func BenchmarkUpload(b *testing.B) {
	ctx := context.Background()
	data := make([]byte, 256<<20)
	_, _ = rand.Read(data)
	d := digest.FromBytes(data)
	s, err := New(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	var appendTime, commitTime time.Duration
	for b.Loop() {
		id, err := s.NewUpload(ctx)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := s.Append(ctx, id, 0, chunkedReader{bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := s.Commit(ctx, id, d); err != nil {
			b.Fatal(err)
		}
		appendTime += t1.Sub(t0)
		commitTime += time.Since(t1)
		if err := s.Delete(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(appendTime.Milliseconds())/float64(b.N), "append-ms/op")
	b.ReportMetric(float64(commitTime.Milliseconds())/float64(b.N), "commit-ms/op")
}
