package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/blob"
)

// TestConcurrentSessionOperations runs appends, commits, cancels and status reads on one session
// at once, many times over, and checks what any interleaving must keep true: a commit that
// succeeded left a blob that hashes to its name and has the size the commit reported, no other
// blob appears, and an operation on a session that ended answers ErrUploadNotFound.
func TestConcurrentSessionOperations(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for round := range 200 {
		first := make([]byte, 64<<10+mrand.IntN(4096))
		_, _ = rand.Read(first)
		extra := []byte("late chunk")
		id, err := s.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, id, 0, bytes.NewReader(first)); err != nil {
			t.Fatal(err)
		}
		withExtra := digest.FromBytes(append(append([]byte{}, first...), extra...))
		candidates := map[digest.Digest]int64{digest.FromBytes(first): int64(len(first)), withExtra: int64(len(first) + len(extra))}

		var mu sync.Mutex
		committed := map[digest.Digest]int64{}
		var wg sync.WaitGroup
		ops := []func() error{
			func() error { // commit what was sent first
				d := digest.FromBytes(first)
				n, err := s.Commit(ctx, id, d)
				if err == nil {
					mu.Lock()
					committed[d] = n
					mu.Unlock()
				}
				return ignore(err, blob.ErrUploadNotFound, blob.ErrDigestMismatch)
			},
			func() error { // a late chunk where the first one ended
				_, err := s.Append(ctx, id, int64(len(first)), bytes.NewReader(extra))
				return ignore(err, blob.ErrUploadNotFound, blob.ErrOffsetMismatch)
			},
			func() error { // commit with the late chunk
				n, err := s.Commit(ctx, id, withExtra)
				if err == nil {
					mu.Lock()
					committed[withExtra] = n
					mu.Unlock()
				}
				return ignore(err, blob.ErrUploadNotFound, blob.ErrDigestMismatch)
			},
			func() error {
				_, err := s.UploadSize(ctx, id)
				return ignore(err, blob.ErrUploadNotFound)
			},
		}
		if round%4 == 0 {
			ops = append(ops, func() error { return ignore(s.Cancel(ctx, id), blob.ErrUploadNotFound) })
		}
		mrand.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
		errs := make(chan error, len(ops))
		for _, op := range ops {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- op() }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		for d, n := range committed {
			if n != candidates[d] {
				t.Fatalf("round %d: commit of %s reported %d bytes, want %d", round, d, n, candidates[d])
			}
		}
		// After the dust settles the session is either gone or still usable as a session.
		if size, err := s.UploadSize(ctx, id); err == nil {
			if len(committed) > 0 {
				t.Fatalf("round %d: session still holds %d bytes after a commit", round, size)
			}
			_ = s.Cancel(ctx, id)
		}
	}
	checkBlobsIntact(t, s)
}

// ignore returns nil for the expected outcomes of a lost race, and err otherwise.
func ignore(err error, expected ...error) error {
	for _, e := range expected {
		if errors.Is(err, e) {
			return nil
		}
	}
	return err
}

// checkBlobsIntact hashes every stored blob and checks it against its name.
func checkBlobsIntact(t *testing.T, s *Store) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(s.root, "blobs"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(filepath.Base(filepath.Dir(filepath.Dir(p)))), filepath.Base(p))
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		got, err := d.Algorithm().FromReader(f)
		if err != nil {
			return err
		}
		if got != d {
			t.Errorf("blob %s holds content hashing to %s", d, got)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no blob was committed in any round")
	}
}

// TestWriteAfterCommitIsRefused: a session that was committed is gone for every later request,
// and the blob it became stays what was verified.
func TestWriteAfterCommitIsRefused(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	id := newUpload(t, s)
	data := []byte("committed content")
	if _, err := s.Append(ctx, id, 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(data)
	if _, err := s.Commit(ctx, id, d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, id, -1, bytes.NewReader([]byte("evil"))); !errors.Is(err, blob.ErrUploadNotFound) {
		t.Fatalf("append after commit: %v", err)
	}
	if _, err := s.Commit(ctx, id, d); !errors.Is(err, blob.ErrUploadNotFound) {
		t.Fatalf("second commit: %v", err)
	}
	f, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, _ := io.ReadAll(f)
	if !bytes.Equal(got, data) {
		t.Fatalf("blob holds %q", got)
	}
	if err := blob.CheckSize(f, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if err := blob.CheckSize(f, int64(len(data))+4); !errors.Is(err, blob.ErrCorrupt) {
		t.Fatalf("size check of a wrong record: %v", err)
	}
}

// TestSessionLockSerialisesAcrossHandles holds a session's lock as another process would and
// checks that an append waits for it and then finds the session that was committed meanwhile gone.
func TestSessionLockSerialisesAcrossHandles(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	id := newUpload(t, s)
	data := []byte("first chunk")
	if _, err := s.Append(ctx, id, 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	u, err := s.lockUpload(id)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, id, -1, bytes.NewReader([]byte("evil")))
		done <- err
	}()
	// Do what a commit does under the lock, then let the append through.
	dst := filepath.Join(t.TempDir(), "blob")
	if err := os.Rename(filepath.Join(u.dir, "data"), dst); err != nil {
		t.Fatal(err)
	}
	u.unlock()
	if err := <-done; !errors.Is(err, blob.ErrUploadNotFound) {
		t.Fatalf("append that waited for a committing session: %v", err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatalf("moved data became %q", got)
	}
}

func TestReserveRefusesUploads(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	free := int64(100 << 20)
	s, err := New(t.TempDir(), Options{MinFreeBytes: 64 << 20, FreeBytes: func(string) (int64, error) {
		mu.Lock()
		defer mu.Unlock()
		return free, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	setFree := func(n int64) { mu.Lock(); free = n; mu.Unlock() }

	id, err := s.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The volume fills while the upload runs (another writer): the upload stops at the next
	// check and is discarded.
	r := &fillingReader{left: 3 * writebackEvery, onRead: func(sent int64) {
		if sent > writebackEvery {
			setFree(32 << 20)
		}
	}}
	if _, err := s.Append(ctx, id, 0, r); !errors.Is(err, blob.ErrInsufficientStorage) {
		t.Fatalf("append into a full volume: %v", err)
	}
	if r.left == 0 {
		t.Fatal("the whole body was read: the reserve was not checked while writing")
	}
	if _, err := s.UploadSize(ctx, id); !errors.Is(err, blob.ErrUploadNotFound) {
		t.Fatalf("refused upload kept its data: %v", err)
	}
	if _, err := s.NewUpload(ctx); !errors.Is(err, blob.ErrInsufficientStorage) {
		t.Fatalf("new upload below the reserve: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(s.root, "uploads"))
	if len(entries) != 0 {
		t.Fatalf("%d upload sessions left on a full volume", len(entries))
	}
	setFree(100 << 20)
	id, err = s.NewUpload(ctx)
	if err != nil {
		t.Fatalf("new upload once space is back: %v", err)
	}
	if _, err := s.Append(ctx, id, 0, bytes.NewReader([]byte("fits"))); err != nil {
		t.Fatal(err)
	}
}

// fillingReader yields left zero bytes, 1 MiB at a time, reporting how much it has sent.
type fillingReader struct {
	left, sent int64
	onRead     func(sent int64)
}

func (r *fillingReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.left, 1<<20))
	clear(p[:n])
	r.left -= int64(n)
	r.sent += int64(n)
	r.onRead(r.sent)
	return n, nil
}
