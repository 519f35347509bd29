// Package fs is the blob driver for a local directory, and the blob store made of it (the
// default): files under the paths internal/blob's Store uses,
//
//	<root>/blobs/<algorithm>/<first two hex digits>/<hex>   committed, verified blobs
//	<root>/uploads/<id>/                                   the session; its flock serialises it
//	<root>/uploads/<id>/data                               bytes received so far
//	<root>/uploads/<id>/hashstate.<offset>                 sha256 state at that offset
//
// A blob becomes visible by an atomic rename (Move) after its digest verifies. Locks are
// flocks on directories of the tree, which hold across processes. A directory's mtime is the
// activity of what it holds, stamped with the store's clock on every write beneath it (and
// kept on a removal), so garbage collection can compare it with its own clock.
package fs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
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

// Store is the blob store on a local directory: internal/blob's Store over the files driver.
type Store struct {
	*blob.Store
	*files
}

// New creates the directory layout under root if needed.
func New(root string, opts Options) (*Store, error) {
	d, err := NewDriver(root, opts)
	if err != nil {
		return nil, err
	}
	return &Store{Store: blob.NewStore(d, d, blob.Options{MaxBlobSize: opts.MaxBlobSize}), files: d.files}, nil
}

// files is the driver's state; Driver carries its methods, so that Store's own are not
// shadowed by them.
type files struct {
	root string
	opts Options
	// committing, when set (by tests), is called by Move into blobs/ while the digest's lock
	// is held.
	committing func(digest.Digest)
}

// Driver is the blob driver on a local directory.
type Driver struct{ *files }

// NewDriver returns the driver rooted at root, creating its layout if needed.
func NewDriver(root string, opts Options) (Driver, error) {
	for _, d := range []string{"blobs", "uploads"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return Driver{}, fmt.Errorf("create blob store: %w", err)
		}
	}
	if opts.FreeBytes == nil {
		opts.FreeBytes = freeBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return Driver{&files{root: root, opts: opts}}, nil
}

// full is the file path of a driver path; the store's paths are made of validated ids and
// digests, and anything climbing out of the root is refused all the same.
func (s *files) full(p string) (string, error) {
	clean := filepath.Clean(filepath.FromSlash(p))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%w: %q", blob.ErrPathNotFound, p)
	}
	return filepath.Join(s.root, clean), nil
}

func (s *files) blobPath(d digest.Digest) (string, error) {
	p, err := blob.BlobPath(d)
	if err != nil {
		return "", err
	}
	return s.full(p)
}

func (s *files) uploadDir(id string) (string, error) {
	p, err := blob.SessionPath(id)
	if err != nil {
		return "", err
	}
	return s.full(p)
}

// notExist turns the file system's "no such file" into the driver's error.
func notExist(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %w", blob.ErrPathNotFound, err)
	}
	return err
}

// CheckSpace refuses to go on when the volume holds less than the configured reserve.
func (s *files) CheckSpace() error {
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

// Stat describes a file or directory.
func (d Driver) Stat(_ context.Context, p string) (blob.FileInfo, error) {
	full, err := d.full(p)
	if err != nil {
		return blob.FileInfo{}, err
	}
	fi, err := os.Stat(full)
	if err != nil {
		return blob.FileInfo{}, notExist(err)
	}
	return blob.FileInfo{Path: p, Size: fi.Size(), ModTime: fi.ModTime(), IsDir: fi.IsDir()}, nil
}

// Open opens a file as an *os.File.
func (d Driver) Open(_ context.Context, p string) (blob.ReadSeekCloser, error) {
	full, err := d.full(p)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(full)
	if err != nil {
		return nil, notExist(err)
	}
	return f, nil
}

// Reader reads a file from offset on.
func (d Driver) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	f, err := d.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// GetContent reads a small file.
func (d Driver) GetContent(_ context.Context, p string) ([]byte, error) {
	full, err := d.full(p)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(full)
	if err != nil {
		return nil, notExist(err)
	}
	return b, nil
}

// PutContent replaces a small file whole (written aside, then renamed into place).
func (d Driver) PutContent(_ context.Context, p string, content []byte) error {
	full, err := d.full(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
		return outOfSpace(err)
	}
	tmp := full + ".tmp"
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		_ = os.Remove(tmp)
		return outOfSpace(err)
	}
	if err := os.Rename(tmp, full); err != nil {
		return err
	}
	d.touch(filepath.Dir(full))
	return nil
}

// touch stamps a directory as active now, by the store's clock.
func (s *files) touch(dir string) {
	now := s.opts.Now()
	_ = os.Chtimes(dir, now, now)
}

// Writer opens a file to write. A new file whose directory does not exist gets its directory
// built under a name the store does not use and renamed into place whole, so that garbage
// collection never sees a session before its activity time is stamped.
func (d Driver) Writer(_ context.Context, p string, appending bool) (blob.FileWriter, error) {
	full, err := d.full(p)
	if err != nil {
		return nil, err
	}
	if appending {
		f, err := os.OpenFile(full, os.O_RDWR, 0)
		if err != nil {
			return nil, notExist(err)
		}
		size, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		return &fileWriter{d: d.files, f: f, path: full, size: size}, nil
	}
	dir := filepath.Dir(full)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return d.createStaged(full)
	}
	f, err := os.OpenFile(full, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, outOfSpace(notExist(err))
	}
	return &fileWriter{d: d.files, f: f, path: full}, nil
}

func (s *files) createStaged(full string) (blob.FileWriter, error) {
	dir := filepath.Dir(full)
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	stage := filepath.Join(filepath.Dir(dir), ".new-"+filepath.Base(dir)+"-"+hex.EncodeToString(b[:]))
	if err := os.MkdirAll(stage, 0o700); err != nil {
		return nil, outOfSpace(err)
	}
	f, err := os.OpenFile(filepath.Join(stage, filepath.Base(full)), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err == nil {
		s.touch(stage)
		err = os.Rename(stage, dir)
	}
	if err != nil {
		if f != nil {
			_ = f.Close()
		}
		_ = os.RemoveAll(stage)
		return nil, outOfSpace(err)
	}
	return &fileWriter{d: s, f: f, path: full}, nil
}

// writebackEvery is how much written data is handed to the kernel's writeback at a time, so that
// the disk works while the upload goes on and Commit's fsync has little left to wait for.
const writebackEvery = 8 << 20

type fileWriter struct {
	d        *files
	f        *os.File
	path     string
	size     int64
	unsynced int64
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.size += int64(n)
	if err != nil {
		return n, outOfSpace(err)
	}
	if w.unsynced += int64(n); w.unsynced >= writebackEvery {
		startWriteback(w.f, w.size-w.unsynced, w.unsynced)
		w.unsynced = 0
	}
	return n, nil
}

func (w *fileWriter) Size() int64 { return w.size }

// Close keeps what was written (it is on disk already) and stamps the directory as active.
func (w *fileWriter) Close() error {
	w.d.touch(filepath.Dir(w.path))
	return w.f.Close()
}

func (w *fileWriter) Cancel(context.Context) error {
	_ = w.f.Close()
	if err := os.Remove(w.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Commit makes the file durable and read-only, as a guard against anything that might open a
// blob to write.
func (w *fileWriter) Commit(context.Context) error {
	defer w.f.Close()
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("sync upload: %w", outOfSpace(err))
	}
	if err := w.f.Chmod(0o400); err != nil {
		return fmt.Errorf("commit blob: %w", err)
	}
	return nil
}

// Move renames src to dst. The file's mtime says when it was moved (a blob's commit), not when
// its last bytes arrived: garbage collection spares files younger than its grace period, which
// covers the time between a commit and the link its caller records next. Readers of a file dst
// replaces keep reading it.
func (d Driver) Move(_ context.Context, src, dst string) error {
	from, err := d.full(src)
	if err != nil {
		return err
	}
	to, err := d.full(dst)
	if err != nil {
		return err
	}
	if d.committing != nil {
		if parts := strings.Split(dst, "/"); len(parts) == 4 {
			d.committing(digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[3]))
		}
	}
	now := d.opts.Now()
	if err := os.Chtimes(from, now, now); err != nil {
		return notExist(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return outOfSpace(err)
	}
	if err := os.Rename(from, to); err != nil {
		return outOfSpace(notExist(err))
	}
	syncDir(filepath.Dir(to))
	return nil
}

// Delete removes a file (keeping its directory's activity time) or a directory tree.
func (d Driver) Delete(_ context.Context, p string) error {
	full, err := d.full(p)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(full)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return os.RemoveAll(full)
	}
	parent, perr := os.Stat(filepath.Dir(full))
	if err := os.Remove(full); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if perr == nil {
		_ = os.Chtimes(filepath.Dir(full), parent.ModTime(), parent.ModTime())
	}
	return nil
}

// List names a directory's entries.
func (d Driver) List(_ context.Context, p string) ([]blob.FileInfo, error) {
	full, err := d.full(p)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(full)
	if err != nil {
		return nil, notExist(err)
	}
	out := make([]blob.FileInfo, 0, len(entries))
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue // removed since the listing
		}
		out = append(out, blob.FileInfo{Path: p + "/" + e.Name(), Size: info.Size(), ModTime: info.ModTime(), IsDir: e.IsDir()})
	}
	return out, nil
}

// Walk calls fn for every file beneath p.
func (d Driver) Walk(ctx context.Context, p string, fn func(blob.FileInfo) error) error {
	full, err := d.full(p)
	if err != nil {
		return err
	}
	err = filepath.WalkDir(full, func(path string, e iofs.DirEntry, err error) error {
		if errors.Is(err, iofs.ErrNotExist) && path != full {
			return nil // removed since the listing
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		info, err := e.Info()
		if errors.Is(err, iofs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("stat blob: %w", err)
		}
		rel, err := filepath.Rel(d.root, path)
		if err != nil {
			return err
		}
		return fn(blob.FileInfo{Path: filepath.ToSlash(rel), Size: info.Size(), ModTime: info.ModTime()})
	})
	return notExist(err)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
