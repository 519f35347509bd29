// Package imagesrc opens container images for scanning: docker-archive tars (`docker save`),
// OCI image layouts (a folder or a tar), and registry references. It exposes each image's
// layers as (digest, media type, opener) with the config's history, and never holds a layer
// in memory: layers in a tar file are read through section readers over the file.
package imagesrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ErrNotFound is returned when the source holds no image of the name or platform asked for.
var ErrNotFound = errors.New("image not found")

// ErrInvalid is returned for a source whose index, manifest or config cannot be read.
var ErrInvalid = errors.New("invalid image")

// Options configure how an image is opened.
type Options struct {
	// Platform picks one image of a multi-platform index, as "os/arch[/variant]". It
	// defaults to linux and the host's architecture.
	Platform string
	// Insecure allows plain HTTP (and unverified TLS) for registry references.
	Insecure bool
	// Keychain supplies registry credentials; it defaults to authn.DefaultKeychain (the
	// docker config and its credential helpers).
	Keychain authn.Keychain
	// Transport is the HTTP transport for registry references; it defaults to
	// http.DefaultTransport (with TLS verification off when Insecure).
	Transport http.RoundTripper
}

// Layer is one layer of an image.
type Layer struct {
	// Digest is the digest of the layer blob as stored (compressed, usually), which is what
	// registries and ECR's sourceLayerHash name.
	Digest string
	// DiffID is the digest of the uncompressed tar, from the config's rootfs.
	DiffID    string
	MediaType string
	// Size is the blob's size in bytes, or -1 when unknown.
	Size int64
	// CreatedBy is the config history's created_by for this layer, when the history has one
	// entry per layer (entries with empty_layer are not layers).
	CreatedBy string
	open      func(ctx context.Context) (io.ReadCloser, error)
}

// Open returns the layer blob as stored (compressed or not), streamed: from a file through a
// section reader, from a registry as it downloads (under the context given to OpenRemote).
func (l Layer) Open(ctx context.Context) (io.ReadCloser, error) {
	if l.open == nil {
		return nil, fmt.Errorf("layer %s: no content", l.Digest)
	}
	return l.open(ctx)
}

// History is one entry of the image config's history.
type History struct {
	Created    time.Time `json:"created,omitzero"`
	CreatedBy  string    `json:"createdBy,omitempty"`
	Comment    string    `json:"comment,omitempty"`
	EmptyLayer bool      `json:"emptyLayer,omitempty"`
}

// Image is an opened image. Close releases the file it reads from.
type Image struct {
	// Name is the name the image was picked by (OCI ref name, tag or reference), if any.
	Name string
	// ManifestDigest is the digest of the image manifest (of the chosen platform).
	ManifestDigest    string
	ManifestMediaType string
	// IndexDigest is the digest of the multi-platform index the image was picked from, if any.
	IndexDigest  string
	ConfigDigest string
	// Platform is the image's "os/arch[/variant]", from its config.
	Platform string
	Config   *v1.ConfigFile
	Layers   []Layer
	History  []History
	closer   io.Closer
}

// Close releases the resources held by the image.
func (img *Image) Close() error {
	if img == nil || img.closer == nil {
		return nil
	}
	return img.closer.Close()
}

// Open opens an image from a source, as ParseSource reads it.
func Open(ctx context.Context, source string, opts Options) (*Image, error) {
	src, err := ParseSource(source)
	if err != nil {
		return nil, err
	}
	return src.Open(ctx, opts)
}

// platformSpec parses opts.Platform, defaulting to linux on the host's architecture.
func platformSpec(s string) (v1.Platform, error) {
	if s == "" {
		s = "linux/" + runtime.GOARCH
	}
	p, err := v1.ParsePlatform(s)
	if err != nil {
		return v1.Platform{}, fmt.Errorf("platform %q: %w", s, err)
	}
	return *p, nil
}

// platformMatches reports whether an image of platform have serves the request want. An
// empty variant asks for any; arm64's default variant is v8.
func platformMatches(have, want v1.Platform) bool {
	if have.OS != want.OS || have.Architecture != want.Architecture {
		return false
	}
	if want.Variant == "" {
		return true
	}
	hv := have.Variant
	if hv == "" && have.Architecture == "arm64" {
		hv = "v8"
	}
	return hv == want.Variant
}

func platformString(os, arch, variant string) string {
	s := os + "/" + arch
	if variant != "" {
		s += "/" + variant
	}
	return s
}

// attachHistory copies the config history and sets each layer's CreatedBy when the history
// has exactly one non-empty entry per layer.
func attachHistory(img *Image) {
	if img.Config == nil {
		return
	}
	for i, d := range img.Config.RootFS.DiffIDs {
		if i < len(img.Layers) && img.Layers[i].DiffID == "" {
			img.Layers[i].DiffID = d.String()
		}
	}
	var nonEmpty []int
	for i, h := range img.Config.History {
		img.History = append(img.History, History{
			Created:    h.Created.Time,
			CreatedBy:  h.CreatedBy,
			Comment:    h.Comment,
			EmptyLayer: h.EmptyLayer,
		})
		if !h.EmptyLayer {
			nonEmpty = append(nonEmpty, i)
		}
	}
	if len(nonEmpty) != len(img.Layers) {
		return
	}
	for i := range img.Layers {
		img.Layers[i].CreatedBy = img.Config.History[nonEmpty[i]].CreatedBy
	}
}
