// Package blob defines Lading's content-addressed blob storage: blobs named by their digest, written
// through upload sessions and made visible only once their content verifies against that digest.
// Store holds those rules over a Driver, the small interface the storage itself implements, as in
// CNCF Distribution; drivers live in subpackages (blob/fs for a local directory, blob/s3 for a bucket).
package blob

import (
	_ "crypto/sha256" // registers the digest algorithms blobs may be named with
	_ "crypto/sha512"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
)

// Errors shared by every driver, for callers to test with errors.Is.
var (
	ErrNotFound       = errors.New("blob not found")
	ErrUploadNotFound = errors.New("upload not found")
	ErrDigestMismatch = errors.New("content does not match digest")
	// ErrOffsetMismatch means a chunk did not start where the upload ends.
	ErrOffsetMismatch = errors.New("chunk offset does not match upload size")
	ErrTooLarge       = errors.New("content exceeds the size limit")
	// ErrInsufficientStorage means the volume is full or at the reserve kept free; the upload
	// that met it has been discarded.
	ErrInsufficientStorage = errors.New("insufficient storage")
	// ErrCorrupt means a stored blob no longer matches what was verified when it was committed.
	ErrCorrupt = errors.New("stored blob does not match its record")
)

// ReadSeekCloser is what a driver returns for a blob: seekable, so range requests are cheap.
type ReadSeekCloser interface {
	io.ReadSeekCloser
}

// CheckSize confirms that r, a blob just opened, holds the size recorded when the blob was
// verified, and leaves it positioned at its start. A blob that differs was damaged after its
// commit and must not be served.
func CheckSize(r io.Seeker, recorded int64) error {
	n, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("size blob: %w", err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("size blob: %w", err)
	}
	if n != recorded {
		return fmt.Errorf("%w: %d bytes stored, %d recorded", ErrCorrupt, n, recorded)
	}
	return nil
}

// File is a committed blob as a driver finds it in storage, for garbage collection.
type File struct {
	Digest  digest.Digest
	Size    int64
	ModTime time.Time // when it was committed
}

// UploadDir is an upload session as a driver finds it in storage.
type UploadDir struct {
	ID      string
	ModTime time.Time // its last activity
	Size    int64     // the bytes received
}
