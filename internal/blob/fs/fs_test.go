package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/blob"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestChunkedUploadCommits(t *testing.T) {
	ctx := context.Background()
	data := make([]byte, 3<<20+17)
	_, _ = rand.Read(data)
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		t.Run(string(alg), func(t *testing.T) {
			s := newStore(t)
			id, err := s.NewUpload(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var off int64
			for _, chunk := range [][]byte{data[:1000], data[1000 : 2<<20], data[2<<20:]} {
				n, err := s.Append(ctx, id, off, bytes.NewReader(chunk))
				if err != nil {
					t.Fatal(err)
				}
				off += int64(len(chunk))
				if n != off {
					t.Fatalf("size %d, want %d", n, off)
				}
			}
			want := alg.FromBytes(data)
			if _, err := s.Stat(ctx, want); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("blob visible before commit: %v", err)
			}
			size, err := s.Commit(ctx, id, want)
			if err != nil {
				t.Fatal(err)
			}
			if size != int64(len(data)) {
				t.Fatalf("size %d", size)
			}
			r, err := s.Open(ctx, want)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r)
			_ = r.Close()
			if !bytes.Equal(got, data) {
				t.Fatal("content differs")
			}
			if _, err := s.UploadSize(ctx, id); !errors.Is(err, blob.ErrUploadNotFound) {
				t.Fatalf("upload still present: %v", err)
			}
		})
	}
}

func TestAppendRejectsWrongOffset(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	id := newUpload(t, s)
	if _, err := s.Append(ctx, id, 0, bytes.NewReader([]byte("abc"))); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 2, 4} {
		size, err := s.Append(ctx, id, off, bytes.NewReader([]byte("x")))
		if !errors.Is(err, blob.ErrOffsetMismatch) || size != 3 {
			t.Fatalf("offset %d: size %d err %v", off, size, err)
		}
	}
}

func TestCommitWrongDigestLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	id := newUpload(t, s)
	if _, err := s.Append(ctx, id, 0, bytes.NewReader([]byte("hello"))); err != nil {
		t.Fatal(err)
	}
	bad := digest.FromString("other")
	if _, err := s.Commit(ctx, id, bad); !errors.Is(err, blob.ErrDigestMismatch) {
		t.Fatalf("got %v", err)
	}
	if _, err := s.Stat(ctx, bad); !errors.Is(err, blob.ErrNotFound) {
		t.Fatal("blob visible after failed commit")
	}
	if _, err := s.Stat(ctx, digest.FromString("hello")); !errors.Is(err, blob.ErrNotFound) {
		t.Fatal("blob visible after failed commit")
	}
}

func TestStaleHashStateIsIgnored(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	id := newUpload(t, s)
	if _, err := s.Append(ctx, id, 0, bytes.NewReader([]byte("hello "))); err != nil {
		t.Fatal(err)
	}
	// Simulate a crash after data was written but before the hash state was saved.
	dir, err := s.uploadDir(id)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("world"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, id, digest.FromString("hello world")); err != nil {
		t.Fatal(err)
	}
}

func TestMaxBlobSizeDiscardsUpload(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir(), Options{MaxBlobSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, chunks := range [][]int{{11}, {6, 5}} {
		id := newUpload(t, s)
		var err error
		var off int64
		for _, n := range chunks {
			if _, err = s.Append(ctx, id, off, bytes.NewReader(make([]byte, n))); err != nil {
				break
			}
			off += int64(n)
		}
		if !errors.Is(err, blob.ErrTooLarge) {
			t.Fatalf("chunks %v: err %v, want ErrTooLarge", chunks, err)
		}
		if _, err := s.UploadSize(ctx, id); !errors.Is(err, blob.ErrUploadNotFound) {
			t.Fatalf("chunks %v: refused upload kept: %v", chunks, err)
		}
	}
	id := newUpload(t, s)
	if _, err := s.Append(ctx, id, 0, bytes.NewReader(make([]byte, 10))); err != nil {
		t.Fatalf("a blob of exactly the limit: %v", err)
	}
}

func TestConcurrentUploadsOfSameBlob(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	d := digest.FromBytes(data)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := s.NewUpload(ctx)
			if err == nil {
				_, err = s.Append(ctx, id, 0, bytes.NewReader(data))
			}
			if err == nil {
				_, err = s.Commit(ctx, id, d)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	r, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	_ = r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if digest.FromBytes(got) != d {
		t.Fatal("blob corrupted")
	}
}

func TestPurgeUploads(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	old := newUpload(t, s)
	fresh := newUpload(t, s)
	dir, err := s.uploadDir(old)
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(dir, past, past); err != nil {
		t.Fatal(err)
	}
	purged, err := s.PurgeUploads(ctx, time.Now().Add(-24*time.Hour))
	if err != nil || len(purged) != 1 || purged[0] != old {
		t.Fatalf("purged %v, %v", purged, err)
	}
	if _, err := s.UploadSize(ctx, fresh); err != nil {
		t.Fatal(err)
	}
}

func TestUploadIDsAreNotPaths(t *testing.T) {
	s := newStore(t)
	for _, id := range []string{"../../etc", "", "ABC", "0123456789abcdef0123456789abcdef/.."} {
		if _, err := s.UploadSize(context.Background(), id); !errors.Is(err, blob.ErrUploadNotFound) {
			t.Fatalf("%q: %v", id, err)
		}
	}
}

// failingReader yields its data in chunks of up to 1 MiB, then fails.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p[:min(len(p), 1<<20)], f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestInterruptedAppendKeepsReceivedBytes(t *testing.T) {
	ctx := context.Background()
	// Larger than the writeback step, so that an interrupted upload has started writeback.
	data := make([]byte, writebackEvery+3<<20+5)
	_, _ = rand.Read(data)
	cut := writebackEvery + 1<<20 + 3
	errCut := errors.New("connection reset")
	s := newStore(t)
	id := newUpload(t, s)
	size, err := s.Append(ctx, id, 0, &failingReader{data: data[:cut], err: errCut})
	if !errors.Is(err, errCut) || size != int64(cut) {
		t.Fatalf("size %d err %v, want %d and %v", size, err, cut, errCut)
	}
	if got, err := s.UploadSize(ctx, id); err != nil || got != int64(cut) {
		t.Fatalf("upload size %d, %v", got, err)
	}
	// The client resumes where the server says it is; the saved hash state must match.
	if _, err := s.Append(ctx, id, int64(cut), bytes.NewReader(data[cut:])); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, id, digest.FromBytes(data)); err != nil {
		t.Fatal(err)
	}
}

// newUpload starts an upload session, failing the test when it cannot.
func newUpload(t testing.TB, s *Store) string {
	t.Helper()
	id, err := s.NewUpload(context.Background())
	if err != nil {
		t.Fatalf("new upload: %v", err)
	}
	return id
}
