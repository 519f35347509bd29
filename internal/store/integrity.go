package store

import (
	"errors"
	"fmt"
)

// Errors of the rules that keep every stored manifest pullable, for callers to test with
// errors.Is; drivers return them as the typed errors below, which say what was refused.
var (
	// ErrBlobReferenced means a blob cannot leave a repository: a manifest there references it.
	ErrBlobReferenced = errors.New("blob is referenced by a manifest")
	// ErrSizeMismatch means a manifest's descriptor gives a size other than the stored content's.
	ErrSizeMismatch = errors.New("descriptor size does not match stored content")
)

// BlobReferencedError is ErrBlobReferenced, naming one manifest that references the blob.
type BlobReferencedError struct {
	Repository string
	Digest     string // the blob
	Manifest   string // a manifest of Repository that references it
}

func (e *BlobReferencedError) Error() string {
	return fmt.Sprintf("%v: blob %s is referenced by manifest %s in repository %s", ErrBlobReferenced, e.Digest, e.Manifest, e.Repository)
}

func (e *BlobReferencedError) Unwrap() error { return ErrBlobReferenced }

// SizeMismatchError is ErrSizeMismatch for one descriptor of a manifest.
type SizeMismatchError struct {
	Kind           string // RefConfig, RefLayer or RefManifest
	Digest         string
	DescriptorSize int64 // what the manifest says
	StoredSize     int64 // what the repository holds
}

func (e *SizeMismatchError) Error() string {
	return fmt.Sprintf("%v: %s %s has size %d in the manifest, but the stored %s has size %d",
		ErrSizeMismatch, e.Kind, e.Digest, e.DescriptorSize, storedNoun(e.Kind), e.StoredSize)
}

func (e *SizeMismatchError) Unwrap() error { return ErrSizeMismatch }

func storedNoun(kind string) string {
	if kind == RefManifest {
		return "manifest"
	}
	return "blob"
}
