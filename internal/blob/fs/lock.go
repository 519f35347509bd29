package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/lading-registry/lading/internal/blob"
)

// Lock takes the flock of a directory of the tree: a session's own directory (which must
// exist: once a session has ended, its lock cannot be taken) or a digest's shard directory
// (blobs/<alg>/<xx>, made when missing), which a lock file per digest could not replace, as
// it could not itself be removed without a race; sharing a lock among the digests of a shard
// costs little, as both holders are brief.
func (d Driver) Lock(_ context.Context, name string, wait bool) (func(), error) {
	dir, err := d.full(name)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(name, "blobs/") {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, outOfSpace(err)
		}
	}
	return lockPath(dir, wait)
}

func lockPath(path string, wait bool) (func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, notExist(err)
	}
	if err := flock(f, wait); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, blob.ErrLocked
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = f.Close() }, nil // closing releases the flock
}

// session is an upload whose lock is held (tests take it as another process would).
type session struct {
	dir    string
	unlock func()
}

func (s *files) lockUpload(id string) (*session, error) {
	dir, err := s.uploadDir(id)
	if err != nil {
		return nil, err
	}
	unlock, err := lockPath(dir, true)
	if err != nil {
		return nil, err
	}
	return &session{dir: dir, unlock: unlock}, nil
}

// FileLocker gives the store's locks as flocks on files under a local directory, for drivers
// whose storage has no locks of its own (S3), shared by every process on the machine, or on a
// shared file system (as the SQLite metadata store requires today). Sessions' locks are spread
// over 256 files by the first two digits of their id, so lock files are never removed.
type FileLocker struct{ dir string }

// NewFileLocker returns the locks kept under dir.
func NewFileLocker(dir string) (*FileLocker, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create lock directory: %w", err)
	}
	return &FileLocker{dir: dir}, nil
}

// Lock takes the lock on name ("uploads/<id>" or "blobs/<alg>/<xx>").
func (l *FileLocker) Lock(_ context.Context, name string, wait bool) (func(), error) {
	parts := strings.Split(name, "/")
	var file string
	switch {
	case len(parts) == 2 && parts[0] == "uploads" && len(parts[1]) >= 2:
		file = filepath.Join(l.dir, "uploads", parts[1][:2]+".lock")
	case len(parts) == 3 && parts[0] == "blobs" && len(parts[2]) == 2:
		file = filepath.Join(l.dir, "blobs", filepath.Base(parts[1])+"-"+filepath.Base(parts[2])+".lock")
	default:
		return nil, fmt.Errorf("lock %q: not a lock name of the blob store", name)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flock(f, wait); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, blob.ErrLocked
		}
		return nil, fmt.Errorf("lock %s: %w", file, err)
	}
	return func() { _ = f.Close() }, nil
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
