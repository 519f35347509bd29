package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-registry/lading/internal/store"
)

// Media types of manifests Lading understands.
const (
	MediaTypeOCIManifest    = v1.MediaTypeImageManifest
	MediaTypeOCIIndex       = v1.MediaTypeImageIndex
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerForeign  = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	mediaTypeEmptyJSON      = "application/vnd.oci.empty.v1+json"
)

// Errors of manifest parsing, for the faces to test with errors.Is.
var (
	// ErrInvalidManifest wraps every reason a manifest body is refused.
	ErrInvalidManifest = errors.New("invalid manifest")
	// ErrUnsupportedMediaType is a manifest of a kind the registry does not store.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
)

// ParsedManifest is what the registry keeps from a manifest besides its bytes.
type ParsedManifest struct {
	MediaType       string
	ArtifactType    string
	ConfigMediaType string
	ConfigDigest    string
	Subject         string
	Annotations     map[string]string
	References      []store.Reference
}

// IsIndex reports whether the manifest lists other manifests.
func (p ParsedManifest) IsIndex() bool {
	return p.MediaType == MediaTypeOCIIndex || p.MediaType == MediaTypeDockerList
}

// Descriptor is a manifest's reference to content, as the image spec writes it.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     *v1.Platform      `json:"platform,omitempty"`
}

type rawManifest struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *Descriptor       `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Manifests     []Descriptor      `json:"manifests"`
	Subject       *Descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// ParseManifest validates a manifest body pushed with the given Content-Type and returns what
// it references. It accepts OCI image manifests and indexes and Docker schema 2 manifests and
// manifest lists (artifacts are OCI image manifests with an artifactType or config media type).
func ParseManifest(contentType string, body []byte) (ParsedManifest, error) {
	var raw rawManifest
	if err := json.Unmarshal(body, &raw); err != nil {
		return ParsedManifest{}, fmt.Errorf("%w: not JSON: %w", ErrInvalidManifest, err)
	}
	mediaType := raw.MediaType
	contentType = strings.TrimSpace(strings.Split(contentType, ";")[0])
	switch {
	case mediaType == "":
		mediaType = contentType
	case contentType != "" && contentType != mediaType:
		return ParsedManifest{}, fmt.Errorf("%w: mediaType %q does not match Content-Type %q", ErrInvalidManifest, mediaType, contentType)
	}
	if mediaType == "" {
		// Neither says: infer as registries do for OCI content without a mediaType field.
		if raw.Manifests != nil {
			mediaType = MediaTypeOCIIndex
		} else {
			mediaType = MediaTypeOCIManifest
		}
	}
	if raw.SchemaVersion == nil || *raw.SchemaVersion != 2 {
		return ParsedManifest{}, fmt.Errorf("%w: schemaVersion must be 2", ErrInvalidManifest)
	}
	p := ParsedManifest{MediaType: mediaType, ArtifactType: raw.ArtifactType, Annotations: raw.Annotations}
	if raw.Subject != nil {
		if err := checkDescriptor(*raw.Subject); err != nil {
			return p, fmt.Errorf("%w: subject: %w", ErrInvalidManifest, err)
		}
		p.Subject = raw.Subject.Digest
	}
	switch mediaType {
	case MediaTypeOCIManifest, MediaTypeDockerManifest:
		if raw.Config == nil {
			return p, fmt.Errorf("%w: image manifest without config", ErrInvalidManifest)
		}
		if raw.Manifests != nil {
			return p, fmt.Errorf("%w: image manifest with manifests", ErrInvalidManifest)
		}
		if err := checkDescriptor(*raw.Config); err != nil {
			return p, fmt.Errorf("%w: config: %w", ErrInvalidManifest, err)
		}
		if mediaType == MediaTypeOCIManifest && raw.Config.MediaType == mediaTypeEmptyJSON && raw.ArtifactType == "" {
			// The image spec requires artifactType when the config is the empty descriptor.
			return p, fmt.Errorf("%w: artifactType is required with an empty config", ErrInvalidManifest)
		}
		p.ConfigMediaType, p.ConfigDigest = raw.Config.MediaType, raw.Config.Digest
		p.References = append(p.References, store.Reference{Kind: store.RefConfig, Digest: raw.Config.Digest, Size: raw.Config.Size,
			MediaType: raw.Config.MediaType, Required: true})
		for i, l := range raw.Layers {
			if err := checkDescriptor(l); err != nil {
				return p, fmt.Errorf("%w: layer %d: %w", ErrInvalidManifest, i, err)
			}
			p.References = append(p.References, store.Reference{Kind: store.RefLayer, Digest: l.Digest, Size: l.Size,
				MediaType: l.MediaType, Required: !nonDistributable(l.MediaType)})
		}
	case MediaTypeOCIIndex, MediaTypeDockerList:
		if raw.Config != nil || raw.Layers != nil {
			return p, fmt.Errorf("%w: index with config or layers", ErrInvalidManifest)
		}
		for i, m := range raw.Manifests {
			if err := checkDescriptor(m); err != nil {
				return p, fmt.Errorf("%w: manifest %d: %w", ErrInvalidManifest, i, err)
			}
			ref := store.Reference{Kind: store.RefManifest, Digest: m.Digest, Size: m.Size, MediaType: m.MediaType, Required: true}
			if m.Platform != nil {
				ref.Platform = m.Platform.OS + "/" + m.Platform.Architecture
				if m.Platform.Variant != "" {
					ref.Platform += "/" + m.Platform.Variant
				}
			}
			p.References = append(p.References, ref)
		}
	default:
		return p, fmt.Errorf("%w: unsupported manifest media type %q", ErrUnsupportedMediaType, mediaType)
	}
	return p, nil
}

// nonDistributable reports layers the spec lets a manifest reference without the registry
// holding them.
func nonDistributable(mediaType string) bool {
	return strings.HasPrefix(mediaType, "application/vnd.oci.image.layer.nondistributable.") || mediaType == mediaTypeDockerForeign
}

func checkDescriptor(d Descriptor) error {
	if d.MediaType == "" {
		return errors.New("mediaType is required")
	}
	dg, err := digest.Parse(d.Digest)
	if err != nil {
		return fmt.Errorf("digest %q: %w", d.Digest, err)
	}
	_ = dg
	if d.Size < 0 {
		return errors.New("negative size")
	}
	return nil
}
