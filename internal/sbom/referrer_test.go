package sbom

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	blobfs "github.com/lading-registry/lading/internal/blob/fs"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/vulndb"
)

type fixture struct {
	db    *sqlite.DB
	blobs *blobfs.Store
	att   *Attacher
}

func newFixture(t *testing.T) (*fixture, *scanning.Service) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	blobs, err := blobfs.New(filepath.Join(dir, "blobs"), blobfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := vulndb.NewWatcher(db, vulndb.WatcherOptions{Logger: slog.New(slog.DiscardHandler)})
	if _, err := w.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	f := &fixture{db: db, blobs: blobs, att: NewAttacher(db, blobs, AttacherConfig{ToolVersion: "test", Logger: log})}
	svc := scanning.New(db, blobs, w, scanning.Config{Origin: events.Origin{Account: "123456789012", Region: "eu-west-1"}, Workers: 1,
		ScratchDir: t.TempDir(), Logger: log, Scanned: f.att.Attach})
	db.SetEffects(svc.Effects, svc.Committed)
	return f, svc
}

func (f *fixture) putBlob(t *testing.T, repo string, data []byte) digest.Digest {
	t.Helper()
	ctx := context.Background()
	id, err := f.blobs.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.blobs.Append(ctx, id, 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(data)
	if _, err := f.blobs.Commit(ctx, id, d); err != nil {
		t.Fatal(err)
	}
	if err := f.db.LinkBlob(ctx, repo, d.String(), int64(len(data)), true); err != nil {
		t.Fatal(err)
	}
	return d
}

// pushDebian pushes a one-layer Debian image with one dpkg package and returns its digest.
func (f *fixture) pushDebian(t *testing.T, repo string) string {
	t.Helper()
	var layer bytes.Buffer
	zw := gzip.NewWriter(&layer)
	tw := tar.NewWriter(zw)
	for name, content := range map[string]string{
		"etc/os-release":      "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
		"var/lib/dpkg/status": "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u1\n\n",
	} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(content))
	}
	_ = tw.Close()
	_ = zw.Close()
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "history": []map[string]any{{"created_by": "ADD rootfs /"}}})
	ld, cd := f.putBlob(t, repo, layer.Bytes()), f.putBlob(t, repo, cfg)
	man, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageManifest,
		"config": map[string]any{"mediaType": ocispec.MediaTypeImageConfig, "digest": cd, "size": len(cfg)},
		"layers": []map[string]any{{"mediaType": ocispec.MediaTypeImageLayerGzip, "digest": ld, "size": layer.Len()}}})
	d := digest.FromBytes(man)
	m := store.Manifest{Repository: repo, Digest: d.String(), MediaType: ocispec.MediaTypeImageManifest, ConfigMediaType: ocispec.MediaTypeImageConfig,
		ConfigDigest: cd.String(), Size: int64(len(man)), Content: man}
	if _, err := f.db.PutManifest(context.Background(), m, []store.Reference{{Kind: store.RefConfig, Digest: cd.String(), Size: int64(len(cfg)), Required: true},
		{Kind: store.RefLayer, Digest: ld.String(), Size: int64(layer.Len()), Required: true}}, []string{"1.0"}, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// sboms returns the image's generated SBOM referrers.
func (f *fixture) sboms(t *testing.T, repo, dgst string) []store.Descriptor {
	t.Helper()
	refs, err := f.db.Referrers(context.Background(), repo, dgst)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Descriptor
	for _, r := range refs {
		if r.ArtifactType == ArtifactType && r.Annotations[store.AnnotationGeneratedSBOM] == "true" {
			out = append(out, r)
		}
	}
	return out
}

// imageActions returns the digests the outbox's "ECR Image Action" events name.
func (f *fixture) imageActions(t *testing.T) []string {
	t.Helper()
	evs, err := f.db.ReadOutbox(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if e.DetailType != "ECR Image Action" {
			continue
		}
		var d struct {
			Digest string `json:"image-digest"`
		}
		if err := json.Unmarshal(e.Detail, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d.Digest)
	}
	return out
}

func TestScanAttachesTheSBOMAndARescanReplacesIt(t *testing.T) {
	f, svc := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = svc.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	const repo = "app"
	dgst := f.pushDebian(t, repo)
	if _, err := svc.StartImageScan(ctx, repo, dgst); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var first []store.Descriptor
	for first = f.sboms(t, repo, dgst); len(first) == 0; first = f.sboms(t, repo, dgst) {
		if time.Now().After(deadline) {
			t.Fatal("the scan attached no SBOM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(first) != 1 {
		t.Fatalf("SBOM referrers %v, want one", first)
	}
	// The referrer's layer is the image's CycloneDX SBOM.
	m, err := f.db.GetManifest(ctx, repo, first[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(m.Content, &man); err != nil || man.Subject == nil || man.Subject.Digest.String() != dgst || len(man.Layers) != 1 ||
		man.Annotations[ocispec.AnnotationCreated] == "" {
		t.Fatalf("referrer manifest %s: %v", m.Content, err)
	}
	rc, err := f.blobs.Open(ctx, man.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(b), cdx.BOMFileFormatJSON).Decode(&bom); err != nil || bom.Components == nil ||
		len(*bom.Components) != 1 || (*bom.Components)[0].Name != "libssl3" {
		t.Fatalf("SBOM %s: %v", b, err)
	}
	inUse, err := f.db.BlobsInUse(ctx, time.Time{})
	if err != nil || !inUse[man.Layers[0].Digest.String()] {
		t.Errorf("garbage collection would take the SBOM's blob: %v", err)
	}

	// A rescan replaces it.
	if err := f.att.Attach(ctx, repo, dgst, "BASIC"); err != nil {
		t.Fatal(err)
	}
	second := f.sboms(t, repo, dgst)
	if len(second) != 1 || second[0].Digest == first[0].Digest {
		t.Fatalf("after a rescan: %v, want one other than %s", second, first[0].Digest)
	}
	if _, err := f.db.GetManifest(ctx, repo, first[0].Digest); !errors.Is(err, store.ErrManifestNotFound) {
		t.Errorf("the old SBOM referrer: %v, want deleted", err)
	}
	// Neither push nor delete of a referrer is an image action; the image's push is.
	if got := f.imageActions(t); len(got) != 1 || got[0] != dgst {
		t.Errorf("image actions %v, want only the image's push", got)
	}
	// ECR's listings show the image alone.
	listed, err := f.db.ListImages(ctx, repo, "", "", 10)
	if err != nil || len(listed) != 1 || listed[0].Digest != dgst {
		t.Errorf("ListImages %v %v, want the image alone", listed, err)
	}
	// Lifecycle policies see the image alone.
	imgs, err := f.db.LifecycleImages(ctx, repo)
	if err != nil || len(imgs) != 1 || imgs[0].Digest != dgst {
		t.Errorf("lifecycle images %v %v, want the image alone", imgs, err)
	}
	// The referrer goes with its image.
	if _, err := f.db.DeleteManifest(ctx, repo, dgst, false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.GetManifest(ctx, repo, second[0].Digest); !errors.Is(err, store.ErrManifestNotFound) {
		t.Errorf("the SBOM referrer of a deleted image: %v, want deleted", err)
	}
	if got := f.imageActions(t); len(got) != 2 || strings.Join(got, " ") != dgst+" "+dgst {
		t.Errorf("image actions %v, want the image's push and delete", got)
	}
	// A referrer made while its image was being deleted is refused, not left behind.
	_, err = f.db.PutManifest(ctx, store.Manifest{Repository: repo, Digest: second[0].Digest, MediaType: m.MediaType, ArtifactType: ArtifactType,
		Subject: dgst, Size: m.Size, Content: m.Content}, nil, nil, store.PutOptions{Generated: true})
	if !errors.Is(err, store.ErrManifestUnknown) {
		t.Errorf("a generated referrer of a deleted image: %v, want ErrManifestUnknown", err)
	}
}
