// Package blob defines Lading's content-addressed blob storage: blobs named by their digest, written
// through upload sessions and made visible only once their content verifies against that digest.
// Drivers live in subpackages (blob/fs for a local directory).
package blob

import (
	_ "crypto/sha256" // registers the digest algorithms blobs may be named with
	_ "crypto/sha512"
	"errors"
	"io"
)

// Errors shared by every driver, for callers to test with errors.Is.
var (
	ErrNotFound       = errors.New("blob not found")
	ErrUploadNotFound = errors.New("upload not found")
	ErrDigestMismatch = errors.New("content does not match digest")
	// ErrOffsetMismatch means a chunk did not start where the upload ends.
	ErrOffsetMismatch = errors.New("chunk offset does not match upload size")
	ErrTooLarge       = errors.New("content exceeds the size limit")
)

// ReadSeekCloser is what a driver returns for a blob: seekable, so range requests are cheap.
type ReadSeekCloser interface {
	io.ReadSeekCloser
}
