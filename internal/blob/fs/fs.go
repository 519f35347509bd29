// Package fs stores blobs as files in a local directory:
//
//	<root>/blobs/<algorithm>/<first two hex digits>/<hex>   committed, verified blobs
//	<root>/uploads/<id>/data                               bytes received so far
//	<root>/uploads/<id>/hashstate                          sha256 state at a known offset
//
// A blob becomes visible by an atomic rename after its digest verifies, so a crash at any point
// leaves either no blob or a correct one. The saved hash state lets a chunked upload be verified
// without reading its bytes again; it is trusted only when its offset equals the data's size.
package fs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/blob"
)

// Store is a blob store rooted at a directory.
type Store struct {
	root    string
	buffers sync.Pool // copy buffers for uploads: large ones keep syscalls few
}

// New creates the directory layout under root if needed.
func New(root string) (*Store, error) {
	for _, d := range []string{"blobs", "uploads"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("create blob store: %w", err)
		}
	}
	s := &Store{root: root}
	s.buffers.New = func() any { b := make([]byte, 1<<20); return &b }
	return s, nil
}

func (s *Store) blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("%w: %w", blob.ErrNotFound, err)
	}
	h := d.Encoded()
	return filepath.Join(s.root, "blobs", string(d.Algorithm()), h[:2], h), nil
}

// Stat returns the size of a committed blob.
func (s *Store) Stat(_ context.Context, d digest.Digest) (int64, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return 0, blob.ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("stat blob: %w", err)
	}
	return fi.Size(), nil
}

// Open returns the blob's content. The result is an *os.File, so net/http can use sendfile.
func (s *Store) Open(_ context.Context, d digest.Digest) (blob.ReadSeekCloser, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, blob.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	return f, nil
}

// Delete removes a committed blob. Deleting a missing blob is not an error.
func (s *Store) Delete(_ context.Context, d digest.Digest) error {
	p, err := s.blobPath(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete blob: %w", err)
	}
	return nil
}

var uploadIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

func (s *Store) uploadDir(id string) (string, error) {
	if !uploadIDPattern.MatchString(id) {
		return "", blob.ErrUploadNotFound
	}
	return filepath.Join(s.root, "uploads", id), nil
}

// NewUpload starts an empty upload session and returns its id.
func (s *Store) NewUpload(_ context.Context) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	dir := filepath.Join(s.root, "uploads", id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("create upload: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("create upload: %w", err)
	}
	return id, f.Close()
}

// openUpload opens the upload's data file and takes an exclusive lock on it, which serialises
// writers to one session across goroutines and processes alike.
func (s *Store) openUpload(id string, flag int) (*os.File, string, error) {
	dir, err := s.uploadDir(id)
	if err != nil {
		return nil, "", err
	}
	f, err := os.OpenFile(filepath.Join(dir, "data"), flag, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", blob.ErrUploadNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("open upload: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, "", fmt.Errorf("lock upload: %w", err)
	}
	return f, dir, nil
}

// UploadSize reports how many bytes the session holds.
func (s *Store) UploadSize(_ context.Context, id string) (int64, error) {
	dir, err := s.uploadDir(id)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(filepath.Join(dir, "data"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, blob.ErrUploadNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("stat upload: %w", err)
	}
	return fi.Size(), nil
}

// Append writes r at offset, which must equal the current size (offset < 0 means "at the end").
// At most limit bytes are accepted in total (limit <= 0: no limit). It returns the new size. Bytes
// received before an error are kept, so a client can ask for the size and resume.
func (s *Store) Append(ctx context.Context, id string, offset int64, r io.Reader, limit int64) (int64, error) {
	f, dir, err := s.openUpload(id, os.O_RDWR)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("seek upload: %w", err)
	}
	if offset >= 0 && offset != size {
		return size, fmt.Errorf("%w: chunk starts at %d, upload holds %d bytes", blob.ErrOffsetMismatch, offset, size)
	}
	h, err := resumeSHA256(dir, f, size)
	if err != nil {
		return size, err
	}
	src := r
	if limit > 0 {
		src = io.LimitReader(r, limit-size+1)
	}
	n, copyErr := s.copyAndHash(f, size, h, contextReader{ctx, src})
	size += n
	if limit > 0 && size > limit {
		if err := f.Truncate(size - n); err != nil {
			return 0, fmt.Errorf("truncate upload: %w", err)
		}
		return size - n, blob.ErrTooLarge
	}
	if err := saveHashState(dir, h, size); err != nil {
		return size, err
	}
	touch(dir)
	if copyErr != nil {
		return size, fmt.Errorf("receive upload data: %w", copyErr)
	}
	return size, nil
}

// hashDepth is how many received chunks may wait for the hasher: enough to ride out jitter
// between the two goroutines, few enough to keep an upload's memory at a few MiB.
const hashDepth = 2

// writebackEvery is how much written data is handed to the kernel's writeback at a time, so that
// the disk works while the upload goes on and Commit's fsync has little left to wait for.
const writebackEvery = 8 << 20

type chunk struct {
	buf *[]byte
	n   int
}

// copyAndHash appends src to f, whose data ends at offset, and feeds h exactly the bytes written
// to f, even when it fails part way. Hashing, the largest CPU cost of an upload, runs on its own
// goroutine, overlapping with receiving and writing the next chunk.
func (s *Store) copyAndHash(f *os.File, offset int64, h hash.Hash, src io.Reader) (int64, error) {
	free := make(chan *[]byte, hashDepth+1)
	for range hashDepth + 1 {
		free <- s.buffers.Get().(*[]byte)
	}
	full := make(chan chunk, hashDepth)
	hashed := make(chan struct{})
	go func() {
		defer close(hashed)
		for c := range full {
			h.Write((*c.buf)[:c.n])
			free <- c.buf
		}
	}()
	var written, unsynced int64
	var err error
	for {
		buf := <-free
		nr, rerr := src.Read(*buf)
		if nr > 0 {
			nw, werr := f.Write((*buf)[:nr])
			written += int64(nw)
			full <- chunk{buf, nw}
			if werr == nil && nw != nr {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				err = werr
				break
			}
			if unsynced += int64(nw); unsynced >= writebackEvery {
				startWriteback(f, offset+written-unsynced, unsynced)
				unsynced = 0
			}
		} else {
			free <- buf
		}
		if rerr != nil {
			if rerr != io.EOF {
				err = rerr
			}
			break
		}
	}
	close(full)
	<-hashed
	for range hashDepth + 1 {
		s.buffers.Put(<-free)
	}
	return written, err
}

// Commit verifies the session's content against want and, when it matches, makes it the blob
// want. On a mismatch the session is removed and ErrDigestMismatch returned.
func (s *Store) Commit(ctx context.Context, id string, want digest.Digest) (int64, error) {
	if err := want.Validate(); err != nil {
		return 0, fmt.Errorf("%w: %w", blob.ErrDigestMismatch, err)
	}
	f, dir, err := s.openUpload(id, os.O_RDWR)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	var got digest.Digest
	if want.Algorithm() == digest.SHA256 {
		h, err := resumeSHA256(dir, f, size)
		if err != nil {
			return 0, err
		}
		got = digest.NewDigest(digest.SHA256, h)
	} else {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return 0, err
		}
		got, err = want.Algorithm().FromReader(contextReader{ctx, f})
		if err != nil {
			return 0, fmt.Errorf("hash upload: %w", err)
		}
	}
	if got != want {
		_ = os.RemoveAll(dir)
		return 0, fmt.Errorf("%w: computed %s, expected %s", blob.ErrDigestMismatch, got, want)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync upload: %w", err)
	}
	dst, err := s.blobPath(want)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return 0, err
	}
	// Renaming over an existing blob is harmless: both hold the same verified bytes.
	if err := os.Rename(filepath.Join(dir, "data"), dst); err != nil {
		return 0, fmt.Errorf("commit blob: %w", err)
	}
	syncDir(filepath.Dir(dst))
	_ = os.RemoveAll(dir)
	return size, nil
}

// Cancel discards an upload session.
func (s *Store) Cancel(_ context.Context, id string) error {
	dir, err := s.uploadDir(id)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return blob.ErrUploadNotFound
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("cancel upload: %w", err)
	}
	return nil
}

// PurgeUploads removes sessions untouched since before, returning their ids.
func (s *Store) PurgeUploads(_ context.Context, before time.Time) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, "uploads"))
	if err != nil {
		return nil, fmt.Errorf("list uploads: %w", err)
	}
	var purged []string
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue
		}
		if info.ModTime().Before(before) {
			if err := os.RemoveAll(filepath.Join(s.root, "uploads", e.Name())); err == nil {
				purged = append(purged, e.Name())
			}
		}
	}
	return purged, nil
}

// touch marks the session active (PurgeUploads looks at the directory's mtime).
func touch(dir string) {
	now := time.Now()
	_ = os.Chtimes(dir, now, now)
}

// resumeSHA256 returns a sha256 hash of the first size bytes of f, from the saved state when it
// matches, otherwise by reading the file again (after a crash between write and state save).
func resumeSHA256(dir string, f *os.File, size int64) (hash.Hash, error) {
	h := sha256.New()
	if b, err := os.ReadFile(filepath.Join(dir, "hashstate")); err == nil && len(b) > 8 &&
		int64(binary.BigEndian.Uint64(b[:8])) == size {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b[8:]); err == nil {
			return h, nil
		}
		h.Reset()
	}
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
		return nil, fmt.Errorf("rehash upload: %w", err)
	}
	return h, nil
}

func saveHashState(dir string, h hash.Hash, size int64) error {
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	b := binary.BigEndian.AppendUint64(nil, uint64(size))
	b = append(b, state...)
	tmp := filepath.Join(dir, "hashstate.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save hash state: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, "hashstate"))
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// contextReader stops a long copy when the request's context ends.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
