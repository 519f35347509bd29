package sbom

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-registry/lading/internal/registry"
	"github.com/lading-registry/lading/internal/report"
	"github.com/lading-registry/lading/internal/store"
)

// ArtifactType is the artifact type of an SBOM referrer (CycloneDX JSON).
const ArtifactType = "application/vnd.cyclonedx+json"

// emptyConfig is the OCI empty descriptor's content, the config of an artifact manifest.
var emptyConfig = []byte("{}")

// Registry is what attaching a referrer needs from the metadata store.
type Registry interface {
	Store
	GetManifest(ctx context.Context, repo, digest string) (store.Manifest, error)
	PutManifest(ctx context.Context, m store.Manifest, refs []store.Reference, tags []string, opts store.PutOptions) (store.PutManifestResult, error)
	Referrers(ctx context.Context, repo, digest string) ([]store.Descriptor, error)
	DeleteManifest(ctx context.Context, repo, digest string, allowReferenced bool) (store.Manifest, error)
	LinkBlob(ctx context.Context, repo, digest string, size int64, create bool) error
}

// Blobs is what writing a blob needs from the blob store.
type Blobs interface {
	NewUpload(ctx context.Context) (string, error)
	Append(ctx context.Context, id string, offset int64, r io.Reader) (int64, error)
	Commit(ctx context.Context, id string, want digest.Digest) (int64, error)
	Cancel(ctx context.Context, id string) error
}

// AttacherConfig tunes an Attacher.
type AttacherConfig struct {
	ToolVersion string
	Now         func() time.Time
	Logger      *slog.Logger
}

// Attacher attaches each scanned image's CycloneDX SBOM as an OCI referrer (an image manifest
// of artifactType application/vnd.cyclonedx+json whose subject is the image), so that
// `oras discover` and the referrers API find it next to the image.
type Attacher struct {
	reg   Registry
	blobs Blobs
	cfg   AttacherConfig
}

// NewAttacher returns an attacher over the registry's stores.
func NewAttacher(reg Registry, blobs Blobs, cfg AttacherConfig) *Attacher {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Attacher{reg: reg, blobs: blobs, cfg: cfg}
}

// Attach pushes the image's SBOM (its packages; vulnerabilities change with every advisory
// update and are the API's to tell, so the attached document stays true) as a referrer of the
// image, then deletes the SBOM referrers attached before: after a rescan there is one.
func (a *Attacher) Attach(ctx context.Context, repo, dgst, scanType string) error {
	subject, err := a.reg.GetManifest(ctx, repo, dgst)
	if err != nil {
		return fmt.Errorf("sbom referrer: %w", err)
	}
	scan, err := Scan(ctx, a.reg, Image{Repository: repo, Digest: dgst, ScanType: scanType})
	if err != nil {
		return fmt.Errorf("sbom referrer: %w", err)
	}
	now := a.cfg.Now().UTC()
	var doc bytes.Buffer
	if err := report.CycloneDX(&doc, scan, report.Options{ToolVersion: a.cfg.ToolVersion, Now: now}); err != nil {
		return fmt.Errorf("sbom referrer: cyclonedx: %w", err)
	}
	layer, err := a.putBlob(ctx, repo, doc.Bytes())
	if err != nil {
		return err
	}
	config, err := a.putBlob(ctx, repo, emptyConfig)
	if err != nil {
		return err
	}
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactType,
		Config:       ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: config, Size: int64(len(emptyConfig)), Data: emptyConfig},
		Layers: []ocispec.Descriptor{{MediaType: ArtifactType, Digest: layer, Size: int64(doc.Len()),
			Annotations: map[string]string{ocispec.AnnotationTitle: "sbom.cdx.json"}}},
		Subject: &ocispec.Descriptor{MediaType: subject.MediaType, Digest: digest.Digest(subject.Digest), Size: subject.Size},
		Annotations: map[string]string{ocispec.AnnotationCreated: now.Format(time.RFC3339),
			store.AnnotationGeneratedSBOM: "true"},
	}
	content, err := json.Marshal(m)
	if err != nil {
		return err
	}
	pushed, err := registry.PushManifest(ctx, a.reg, registry.Push{Repository: repo, Content: content, MediaType: ocispec.MediaTypeImageManifest,
		Options: store.PutOptions{Generated: true}})
	if err != nil {
		return fmt.Errorf("sbom referrer: push: %w", err)
	}
	refs, err := a.reg.Referrers(ctx, repo, dgst)
	if err != nil {
		return fmt.Errorf("sbom referrer: list the old ones: %w", err)
	}
	for _, r := range refs {
		if r.Digest == pushed.Digest.String() || r.ArtifactType != ArtifactType || r.Annotations[store.AnnotationGeneratedSBOM] != "true" {
			continue
		}
		if _, err := a.reg.DeleteManifest(ctx, repo, r.Digest, true); err != nil {
			return fmt.Errorf("sbom referrer: delete %s: %w", r.Digest, err)
		}
	}
	a.cfg.Logger.DebugContext(ctx, "SBOM referrer attached", "repository", repo, "subject", dgst, "digest", pushed.Digest)
	return nil
}

// putBlob stores content and links it into the repository.
func (a *Attacher) putBlob(ctx context.Context, repo string, content []byte) (digest.Digest, error) {
	d := digest.SHA256.FromBytes(content)
	id, err := a.blobs.NewUpload(ctx)
	if err != nil {
		return "", fmt.Errorf("sbom referrer: blob: %w", err)
	}
	if _, err := a.blobs.Append(ctx, id, 0, bytes.NewReader(content)); err != nil {
		_ = a.blobs.Cancel(ctx, id)
		return "", fmt.Errorf("sbom referrer: blob: %w", err)
	}
	size, err := a.blobs.Commit(ctx, id, d)
	if err != nil {
		_ = a.blobs.Cancel(ctx, id)
		return "", fmt.Errorf("sbom referrer: blob: %w", err)
	}
	if err := a.reg.LinkBlob(ctx, repo, d.String(), size, false); err != nil {
		return "", fmt.Errorf("sbom referrer: link blob: %w", err)
	}
	return d, nil
}
