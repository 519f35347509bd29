package registry

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/store"
)

// MaxManifestSize is the largest manifest accepted (as ECR and Distribution).
const MaxManifestSize = 4 << 20

// Errors of a manifest push the request itself causes, for the faces to test with errors.Is.
// The store's refusals (store.ErrBlobUnknown, ErrManifestUnknown, ErrSizeMismatch,
// ErrTagImmutable, ErrImageAlreadyExists, ErrRepositoryNotFound) pass through as they are.
var (
	ErrManifestTooLarge = fmt.Errorf("manifest exceeds %d bytes", MaxManifestSize)
	ErrDigestMismatch   = errors.New("manifest digest does not match its content")
	ErrInvalidDigest    = errors.New("invalid digest")
	ErrInvalidTag       = errors.New("invalid tag")
)

// DigestMismatchError is ErrDigestMismatch with both digests.
type DigestMismatchError struct {
	Pushed, Content digest.Digest
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("%v: pushed as %s, content is %s", ErrDigestMismatch, e.Pushed, e.Content)
}

func (e *DigestMismatchError) Unwrap() error { return ErrDigestMismatch }

// ManifestStore is what pushing a manifest needs from the metadata store.
type ManifestStore interface {
	PutManifest(ctx context.Context, m store.Manifest, refs []store.Reference, tags []string, opts store.PutOptions) (store.PutManifestResult, error)
}

// Push is a manifest to store, as a face received it.
type Push struct {
	Repository string
	Content    []byte
	// MediaType is what the client declared (Content-Type, imageManifestMediaType); "" lets
	// the manifest's own mediaType decide.
	MediaType string
	// Digest, when set, is the digest the client pushed the manifest by; it must match.
	Digest string
	Tags   []string
	// Options: create the repository on first push, refuse a push that changes nothing.
	Options store.PutOptions
}

// Pushed is a stored manifest.
type Pushed struct {
	Digest   digest.Digest
	Manifest ParsedManifest
	Result   store.PutManifestResult
}

// PushManifest validates a manifest push and stores it: the digest (sha256 unless the client
// named another), the tags, the manifest's structure; then the store checks, in the transaction
// that writes it, that the references exist with their sizes and that the tags may move. The
// registry face and ECR's PutImage both push through here.
func PushManifest(ctx context.Context, st ManifestStore, p Push) (Pushed, error) {
	if len(p.Content) > MaxManifestSize {
		return Pushed{}, ErrManifestTooLarge
	}
	d := digest.SHA256.FromBytes(p.Content)
	if p.Digest != "" {
		want, err := digest.Parse(p.Digest)
		if err != nil {
			return Pushed{}, fmt.Errorf("%w: %s", ErrInvalidDigest, strconv.Quote(p.Digest))
		}
		if got := want.Algorithm().FromBytes(p.Content); got != want {
			return Pushed{}, &DigestMismatchError{Pushed: want, Content: got}
		}
		d = want
	}
	for _, t := range p.Tags {
		if !ValidTag(t) {
			return Pushed{}, fmt.Errorf("%w: %s", ErrInvalidTag, strconv.Quote(t))
		}
	}
	parsed, err := ParseManifest(p.MediaType, p.Content)
	if err != nil {
		return Pushed{}, err
	}
	m := store.Manifest{
		Repository: p.Repository, Digest: d.String(), MediaType: parsed.MediaType, ArtifactType: parsed.ArtifactType,
		ConfigMediaType: parsed.ConfigMediaType, ConfigDigest: parsed.ConfigDigest, Subject: parsed.Subject,
		Annotations: parsed.Annotations, Size: int64(len(p.Content)), Content: p.Content,
	}
	res, err := st.PutManifest(ctx, m, parsed.References, p.Tags, p.Options)
	if err != nil {
		// As the store says it: its errors name the references and tags refused.
		return Pushed{}, err
	}
	return Pushed{Digest: d, Manifest: parsed, Result: res}, nil
}
