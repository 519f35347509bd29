package fs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/blob"
)

// lockDigest takes the lock that serialises a commit of digest d with a garbage collection's
// removal of it, across goroutines and processes (a flock). The lock is the blob's shard
// directory (blobs/<alg>/<xx>): a lock file per digest could not itself be removed without a
// race, and sharing a lock among the digests of a shard costs little, as both holders are brief.
func (s *Store) lockDigest(d digest.Digest) (func(), error) {
	p, err := s.blobPath(d)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := flock(f, true); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { _ = f.Close() }, nil
}

// WalkBlobs calls fn for every committed blob. Files whose names are not digests (left by hand,
// or by a crash of another tool) are skipped.
func (s *Store) WalkBlobs(ctx context.Context, fn func(blob.File) error) error {
	root := filepath.Join(s.root, "blobs")
	algs, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}
	for _, alg := range algs {
		if !alg.IsDir() {
			continue
		}
		shards, err := os.ReadDir(filepath.Join(root, alg.Name()))
		if err != nil {
			return fmt.Errorf("list blobs: %w", err)
		}
		for _, shard := range shards {
			if err := ctx.Err(); err != nil {
				return err
			}
			entries, err := os.ReadDir(filepath.Join(root, alg.Name(), shard.Name()))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("list blobs: %w", err)
			}
			for _, e := range entries {
				d := digest.NewDigestFromEncoded(digest.Algorithm(alg.Name()), e.Name())
				if d.Validate() != nil || e.IsDir() {
					continue
				}
				info, err := e.Info()
				if errors.Is(err, fs.ErrNotExist) {
					continue // removed since the listing
				}
				if err != nil {
					return fmt.Errorf("stat blob: %w", err)
				}
				if err := fn(blob.File{Digest: d, Size: info.Size(), ModTime: info.ModTime()}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// RemoveUnused removes blob d unless its file was modified at or after cutoff or inUse, asked
// while the digest's lock is held, says it is still needed. The lock excludes a commit of the
// same digest (Commit holds it while it renames), so a blob committed while this runs is either
// seen by inUse (or as young) or renamed into place after the removal; never removed after it
// was committed. It reports whether it removed the file.
func (s *Store) RemoveUnused(ctx context.Context, d digest.Digest, cutoff time.Time, inUse func(context.Context) (bool, error)) (bool, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return false, err
	}
	unlock, err := s.lockDigest(d)
	if err != nil {
		return false, err
	}
	defer unlock()
	info, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat blob: %w", err)
	}
	if !info.ModTime().Before(cutoff) {
		return false, nil
	}
	used, err := inUse(ctx)
	if err != nil || used {
		return false, err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("remove blob: %w", err)
	}
	return true, nil
}

// Uploads lists the upload sessions on disk.
func (s *Store) Uploads(_ context.Context) ([]blob.UploadDir, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, "uploads"))
	if err != nil {
		return nil, fmt.Errorf("list uploads: %w", err)
	}
	var out []blob.UploadDir
	for _, e := range entries {
		if !uploadIDPattern.MatchString(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		u := blob.UploadDir{ID: e.Name(), ModTime: info.ModTime()}
		if fi, err := os.Stat(filepath.Join(s.root, "uploads", e.Name(), "data")); err == nil {
			u.Size = fi.Size()
		}
		out = append(out, u)
	}
	return out, nil
}

// DropIdleUpload removes session id if it has been idle since before cutoff and nobody holds
// its lock (a chunk arriving, a commit), reporting whether it did.
func (s *Store) DropIdleUpload(_ context.Context, id string, cutoff time.Time) (bool, error) {
	dir, err := s.uploadDir(id)
	if err != nil {
		return false, err
	}
	lock, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("open upload: %w", err)
	}
	defer lock.Close()
	if flock(lock, false) != nil {
		return false, nil
	}
	// Looked at again under the lock: an append that just finished touched it.
	if info, err := lock.Stat(); err != nil || !info.ModTime().Before(cutoff) {
		return false, nil
	}
	u := &session{dir: dir, lock: lock}
	if err := u.end(); err != nil {
		return false, err
	}
	return true, nil
}
