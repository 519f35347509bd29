// Package fs stores blobs as files in a local directory:
//
//	<root>/blobs/<algorithm>/<first two hex digits>/<hex>   committed, verified blobs
//	<root>/uploads/<id>/                                   the session; its flock serialises it
//	<root>/uploads/<id>/data                               bytes received so far
//	<root>/uploads/<id>/hashstate                          sha256 state at a known offset
//
// A blob becomes visible by an atomic rename after its digest verifies, so a crash at any point
// leaves either no blob or a correct one. Every change to a session (append, commit, cancel,
// purge) holds the session directory's lock and opens the data by name only once it has it, so a
// request that waited while the session was committed finds it gone instead of writing into the
// new blob. The saved hash state lets a chunked upload be verified without reading its bytes
// again; it is trusted only when its offset equals the data's size.
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

// Options bound what the store accepts.
type Options struct {
	// MaxBlobSize refuses uploads larger than this many bytes (0: no limit).
	MaxBlobSize int64
	// MinFreeBytes refuses new uploads, and stops running ones, when the volume's free space
	// would fall below it, so that the disk never fills and the metadata store beside the blobs
	// keeps room to record deletes (0: no reserve).
	MinFreeBytes int64
	// FreeBytes reports the free space of the volume holding path; tests replace it. Nil means
	// the volume's own figure (statfs), where the platform has one.
	FreeBytes func(path string) (int64, error)
	// Now stamps a session's activity and a blob's commit (their mtimes), which garbage
	// collection compares with its own clock; nil means time.Now. Tests move it.
	Now func() time.Time
}

// Store is a blob store rooted at a directory.
type Store struct {
	root    string
	opts    Options
	buffers sync.Pool // copy buffers for uploads: large ones keep syscalls few
	// committing, when set (by tests), is called by Commit while it holds the digest's lock.
	committing func(digest.Digest)
}

// New creates the directory layout under root if needed.
func New(root string, opts Options) (*Store, error) {
	for _, d := range []string{"blobs", "uploads"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("create blob store: %w", err)
		}
	}
	if opts.FreeBytes == nil {
		opts.FreeBytes = freeBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{root: root, opts: opts}
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

// Open returns the blob's content, as an *os.File.
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

// checkSpace refuses to go on when the volume holds less than the configured reserve.
func (s *Store) checkSpace() error {
	if s.opts.MinFreeBytes <= 0 {
		return nil
	}
	free, err := s.opts.FreeBytes(s.root)
	if err != nil || free < 0 {
		// Without a figure there is nothing to enforce; ENOSPC is still caught on write.
		return nil
	}
	if free < s.opts.MinFreeBytes {
		return fmt.Errorf("%w: %d bytes free, %d kept in reserve", blob.ErrInsufficientStorage, free, s.opts.MinFreeBytes)
	}
	return nil
}

// outOfSpace turns the file system's "no space" errors into ErrInsufficientStorage.
func outOfSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", blob.ErrInsufficientStorage, err)
	}
	return err
}

// NewUpload starts an empty upload session and returns its id.
func (s *Store) NewUpload(_ context.Context) (string, error) {
	if err := s.checkSpace(); err != nil {
		return "", err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	// The session is made under a name sessions do not have and renamed into place whole, so
	// that garbage collection never sees it before its activity time is stamped.
	stage := filepath.Join(s.root, "uploads", ".new-"+id)
	if err := os.Mkdir(stage, 0o700); err != nil {
		return "", fmt.Errorf("create upload: %w", outOfSpace(err))
	}
	f, err := os.OpenFile(filepath.Join(stage, "data"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err == nil {
		err = f.Close()
	}
	if err == nil {
		touch(stage, s.opts.Now())
		err = os.Rename(stage, filepath.Join(s.root, "uploads", id))
	}
	if err != nil {
		_ = os.RemoveAll(stage)
		return "", fmt.Errorf("create upload: %w", outOfSpace(err))
	}
	return id, nil
}

// session is an upload whose lock is held: the only state in which its data may be opened,
// written, moved or removed. The lock is taken on the session's directory, not on the data
// file, so that a waiter never holds a handle to data that a commit has since made a blob: once
// it has the lock, it opens the data by name and finds nothing if the session has ended.
type session struct {
	dir  string
	lock *os.File
}

// lockUpload takes the session's lock, waiting for whoever holds it (across goroutines and
// processes alike), and checks that the session still has its data.
func (s *Store) lockUpload(id string) (*session, error) {
	dir, err := s.uploadDir(id)
	if err != nil {
		return nil, err
	}
	lock, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, blob.ErrUploadNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("open upload: %w", err)
	}
	if err := flock(lock, true); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("lock upload: %w", err)
	}
	return &session{dir: dir, lock: lock}, nil
}

func (u *session) unlock() { _ = u.lock.Close() } // closing releases the flock

// openData opens the session's data; a session that was committed, cancelled or dropped while
// the caller waited for the lock has none.
func (u *session) openData() (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(u.dir, "data"), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, blob.ErrUploadNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("open upload: %w", err)
	}
	return f, nil
}

// end removes the session (its lock held): its data first, so that a waiter finds none even if
// removing the directory fails part way.
func (u *session) end() error {
	if err := os.Remove(filepath.Join(u.dir, "data")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove upload: %w", err)
	}
	_ = os.RemoveAll(u.dir)
	return nil
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

// Append writes r at offset, which must equal the current size (offset < 0 means "at the end"),
// and returns the new size. Bytes received before a transport error are kept, so a client can
// ask for the size and resume. An upload the store refuses to hold (beyond MaxBlobSize, or with
// the volume at its reserve or full) is ended at once, freeing its space, with ErrTooLarge or
// ErrInsufficientStorage.
func (s *Store) Append(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	u, err := s.lockUpload(id)
	if err != nil {
		return 0, err
	}
	defer u.unlock()
	f, err := u.openData()
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
	refuse := func(err error) (int64, error) {
		if rmErr := u.end(); rmErr != nil {
			return 0, errors.Join(err, rmErr)
		}
		return 0, err
	}
	if err := s.checkSpace(); err != nil {
		return refuse(err)
	}
	h, err := resumeSHA256(u.dir, f, size)
	if err != nil {
		return size, err
	}
	src := io.Reader(contextReader{ctx, r})
	limit := s.opts.MaxBlobSize
	if limit > 0 {
		src = io.LimitReader(src, limit-size+1)
	}
	n, copyErr := s.copyAndHash(f, size, h, src)
	size += n
	if limit > 0 && size > limit {
		return refuse(fmt.Errorf("%w: the registry accepts blobs of at most %d bytes", blob.ErrTooLarge, limit))
	}
	if errors.Is(copyErr, blob.ErrInsufficientStorage) {
		return refuse(copyErr)
	}
	if err := saveHashState(u.dir, h, size); err != nil {
		if errors.Is(err, blob.ErrInsufficientStorage) {
			return refuse(err)
		}
		return size, err
	}
	touch(u.dir, s.opts.Now())
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
				err = outOfSpace(werr)
				break
			}
			if unsynced += int64(nw); unsynced >= writebackEvery {
				startWriteback(f, offset+written-unsynced, unsynced)
				unsynced = 0
				// Other uploads fill the same volume: look again while this one grows.
				if err = s.checkSpace(); err != nil {
					break
				}
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
// want. On a mismatch the session is removed and ErrDigestMismatch returned. The data file is
// moved while the session's lock is held, and no one opens it without that lock, so nothing can
// write to the blob once it is visible.
func (s *Store) Commit(ctx context.Context, id string, want digest.Digest) (int64, error) {
	if err := want.Validate(); err != nil {
		return 0, fmt.Errorf("%w: %w", blob.ErrDigestMismatch, err)
	}
	u, err := s.lockUpload(id)
	if err != nil {
		return 0, err
	}
	defer u.unlock()
	f, err := u.openData()
	if err != nil {
		return 0, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	if s.opts.MaxBlobSize > 0 && size > s.opts.MaxBlobSize {
		return 0, errors.Join(fmt.Errorf("%w: the registry accepts blobs of at most %d bytes", blob.ErrTooLarge, s.opts.MaxBlobSize), u.end())
	}
	var got digest.Digest
	if want.Algorithm() == digest.SHA256 {
		h, err := resumeSHA256(u.dir, f, size)
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
		return 0, errors.Join(fmt.Errorf("%w: computed %s, expected %s", blob.ErrDigestMismatch, got, want), u.end())
	}
	if err := f.Sync(); err != nil {
		if err = outOfSpace(err); errors.Is(err, blob.ErrInsufficientStorage) {
			return 0, errors.Join(err, u.end())
		}
		return 0, fmt.Errorf("sync upload: %w", err)
	}
	// Read-only, as a guard against anything that might open a blob to write.
	if err := f.Chmod(0o400); err != nil {
		return 0, fmt.Errorf("commit blob: %w", err)
	}
	dst, err := s.blobPath(want)
	if err != nil {
		return 0, err
	}
	// The digest's lock keeps a garbage collection from removing the file between its last look
	// at the blob and this rename (see RemoveUnused).
	unlock, err := s.lockDigest(want)
	if err != nil {
		return 0, fmt.Errorf("commit blob: %w", outOfSpace(err))
	}
	defer unlock()
	if s.committing != nil {
		s.committing(want)
	}
	// The blob's mtime says when it was committed, not when its last chunk arrived: garbage
	// collection spares files younger than its grace period, which covers the time between
	// this commit and the link the caller records next.
	now := s.opts.Now()
	if err := os.Chtimes(filepath.Join(u.dir, "data"), now, now); err != nil {
		return 0, fmt.Errorf("commit blob: %w", err)
	}
	// Renaming over an existing blob replaces it with bytes just verified, which also repairs a
	// blob damaged on disk; readers of the old file keep reading it.
	if err := os.Rename(filepath.Join(u.dir, "data"), dst); err != nil {
		return 0, fmt.Errorf("commit blob: %w", outOfSpace(err))
	}
	syncDir(filepath.Dir(dst))
	_ = os.RemoveAll(u.dir)
	return size, nil
}

// Cancel discards an upload session.
func (s *Store) Cancel(_ context.Context, id string) error {
	u, err := s.lockUpload(id)
	if err != nil {
		return err
	}
	defer u.unlock()
	if _, err := os.Stat(filepath.Join(u.dir, "data")); errors.Is(err, os.ErrNotExist) {
		return blob.ErrUploadNotFound
	}
	return u.end()
}

// PurgeUploads removes sessions untouched since before, returning their ids. A session whose
// lock is held (a chunk arriving slowly) is left for the next round.
func (s *Store) PurgeUploads(_ context.Context, before time.Time) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, "uploads"))
	if err != nil {
		return nil, fmt.Errorf("list uploads: %w", err)
	}
	var purged []string
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(before) {
			continue
		}
		dir := filepath.Join(s.root, "uploads", e.Name())
		lock, err := os.Open(dir)
		if err != nil {
			continue
		}
		if flock(lock, false) == nil {
			u := &session{dir: dir, lock: lock}
			if u.end() == nil {
				purged = append(purged, e.Name())
			}
		}
		_ = lock.Close()
	}
	return purged, nil
}

// touch marks the session active (PurgeUploads looks at the directory's mtime).
func touch(dir string, now time.Time) {
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
		return fmt.Errorf("save hash state: %w", outOfSpace(err))
	}
	return os.Rename(tmp, filepath.Join(dir, "hashstate"))
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// flock takes an exclusive lock on f, waiting for it when wait is set (otherwise failing at once
// if it is held).
func flock(f *os.File, wait bool) error {
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
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
