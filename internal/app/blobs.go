package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/lading-registry/lading/internal/blob"
	blobfs "github.com/lading-registry/lading/internal/blob/fs"
	blobs3 "github.com/lading-registry/lading/internal/blob/s3"
)

// BlobOptions are the blob store's settings beside where it is.
type BlobOptions struct {
	MaxBlobSize int64
	// MinFreeSpace is the reserve kept on the data dir's volume (files only).
	MinFreeSpace int64
	// S3Redirect lets blob GETs and GetDownloadUrlForLayer hand out presigned URLs (S3 only).
	S3Redirect bool
	Now        func() time.Time
	// Locker gives the store's locks; nil: files under the data directory, which every process
	// on that directory shares. Nodes sharing a PostgreSQL metadata store take them from it.
	Locker blob.Locker
}

// locksDir holds the blob store's locks when its storage has none of its own (S3): every
// process on the data directory shares them, as they share its SQLite database.
const locksDir = "locks"

// OpenBlobs opens the blob store that spec names: "" for files in the data directory, or
// s3://bucket[/prefix]?endpoint=...&region=... (credentials from the standard AWS chain).
func OpenBlobs(ctx context.Context, dataDir, spec string, o BlobOptions) (*blob.Store, error) {
	if spec == "" {
		if o.S3Redirect {
			return nil, errors.New("--s3-redirect needs blobs on S3 (--blobs s3://bucket)")
		}
		fsOpts := blobfs.Options{MaxBlobSize: o.MaxBlobSize, MinFreeBytes: o.MinFreeSpace, Now: o.Now}
		if o.Locker != nil {
			d, err := blobfs.NewDriver(dataDir, fsOpts)
			if err != nil {
				return nil, err
			}
			return blob.NewStore(d, o.Locker, blob.Options{MaxBlobSize: o.MaxBlobSize}), nil
		}
		s, err := blobfs.New(dataDir, fsOpts)
		if err != nil {
			return nil, err
		}
		return s.Store, nil
	}
	if !strings.HasPrefix(spec, "s3://") {
		return nil, fmt.Errorf("--blobs %q: want s3://bucket?endpoint=...&region=... (or nothing, for files in the data directory)", spec)
	}
	cfg, err := blobs3.ParseURL(spec)
	if err != nil {
		return nil, fmt.Errorf("--blobs: %w", err)
	}
	d, err := blobs3.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("--blobs: %w", err)
	}
	var locks blob.Locker = o.Locker
	if locks == nil {
		if locks, err = blobfs.NewFileLocker(filepath.Join(dataDir, locksDir)); err != nil {
			return nil, err
		}
	}
	return blob.NewStore(d, locks, blob.Options{MaxBlobSize: o.MaxBlobSize, Redirect: o.S3Redirect}), nil
}
