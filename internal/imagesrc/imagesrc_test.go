package imagesrc_test

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/lading-registry/lading/internal/imagesrc"
	"github.com/lading-registry/lading/internal/testfiles"
)

// imagesDir is the repository's testdata/images.
func imagesDir(tb testing.TB) string {
	tb.Helper()
	return testfiles.Path(tb, "images")
}

// blobDigest reads a layer and returns the sha256 of what it yields.
func blobDigest(tb testing.TB, l imagesrc.Layer) string {
	tb.Helper()
	rc, err := l.Open(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		tb.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func open(tb testing.TB, source string, opts imagesrc.Options) *imagesrc.Image {
	tb.Helper()
	img, err := imagesrc.Open(context.Background(), source, opts)
	if err != nil {
		tb.Fatalf("Open(%s): %v", source, err)
	}
	tb.Cleanup(func() { _ = img.Close() })
	return img
}

func TestOpenArchiveByName(t *testing.T) {
	family := filepath.Join(imagesDir(t), "debian-family.tar")
	tests := []struct {
		source         string
		manifestDigest string
		layers         int
	}{
		{family + ":debian-base", "sha256:c3c6e55436b5f9c986bc769f6ef64cc391ebd078a3a59bb08d9214e82e782573", 1},
		{"oci-archive:" + family + ":neo4j-like", "sha256:3574481b734a04e351355eee4d1ee5cfb2be8e4eaa58d8c80f69537dedb42437", 6},
		{family + ":corpus/whiteout:1.0.0", "sha256:731c5f7c3f4f330e46fd4ec550c2d0363f4358d660fc89e6aed18096af11a86c", 5},
		{"docker-archive:" + family + ":docker.io/corpus/node-app:1.0.0", "sha256:54501c1f27ca11ef8561a3e918a387a478068cb0714ec03de565c462e9d96b54", 4},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			img := open(t, tt.source, imagesrc.Options{})
			if img.ManifestDigest != tt.manifestDigest || len(img.Layers) != tt.layers || img.Platform != "linux/amd64" {
				t.Fatalf("manifest %s, %d layers, platform %s", img.ManifestDigest, len(img.Layers), img.Platform)
			}
			if img.Layers[0].Digest != "sha256:4f5a35e0701c5ef0704fdadda34276c73b79ccd587ca26321437cbd0bb31c01e" ||
				img.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" || img.Layers[0].DiffID == "" {
				t.Errorf("layer 1 = %+v", img.Layers[0])
			}
			last := img.Layers[len(img.Layers)-1]
			if got := blobDigest(t, last); got != last.Digest {
				t.Errorf("layer content hashes to %s, want %s", got, last.Digest)
			}
		})
	}
	neo := open(t, family+":neo4j-like", imagesrc.Options{})
	if !strings.HasPrefix(neo.Layers[0].CreatedBy, "ADD debian-bookworm-minbase-slim.tar") ||
		!strings.Contains(neo.Layers[1].CreatedBy, "adduser --uid 7474") {
		t.Errorf("created_by: %q, %q", neo.Layers[0].CreatedBy, neo.Layers[1].CreatedBy)
	}
	empty := 0
	for _, h := range neo.History {
		if h.EmptyLayer {
			empty++
		}
	}
	if len(neo.History) != len(neo.Layers)+empty || empty == 0 {
		t.Errorf("history: %d entries, %d empty, %d layers", len(neo.History), empty, len(neo.Layers))
	}
}

func TestOpenArchiveErrors(t *testing.T) {
	dir := imagesDir(t)
	if _, err := imagesrc.OpenArchive(context.Background(), filepath.Join(dir, "debian-family.tar"), "", imagesrc.Options{}); !errors.Is(err, imagesrc.ErrNotFound) ||
		!strings.Contains(err.Error(), "neo4j-like") {
		t.Errorf("no name in a multi-image file: %v", err)
	}
	if _, err := imagesrc.OpenArchive(context.Background(), filepath.Join(dir, "debian-family.tar"), "nope", imagesrc.Options{}); !errors.Is(err, imagesrc.ErrNotFound) {
		t.Errorf("unknown name: %v", err)
	}
	notTar := filepath.Join(t.TempDir(), "x.tar")
	if err := os.WriteFile(notTar, []byte(strings.Repeat("not a tar ", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := imagesrc.OpenArchive(context.Background(), notTar, "", imagesrc.Options{}); !errors.Is(err, imagesrc.ErrInvalid) {
		t.Errorf("not a tar: %v", err)
	}
}

// TestOpenDockerArchive reads a docker-archive without the OCI index: go-app.tar less its
// index.json and oci-layout.
func TestOpenDockerArchive(t *testing.T) {
	src, err := os.Open(filepath.Join(imagesDir(t), "go-app.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out := filepath.Join(t.TempDir(), "docker.tar")
	dst, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	tr, tw := tar.NewReader(src), tar.NewWriter(dst)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name == "index.json" || hdr.Name == "oci-layout" {
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	img := open(t, out, imagesrc.Options{})
	if len(img.Layers) != 5 || img.ConfigDigest != "sha256:abd93496b450846c77afddfbc3a14a0afe712f5447679cbdf6c55623d1afed09" {
		t.Fatalf("%d layers, config %s", len(img.Layers), img.ConfigDigest)
	}
	for i, l := range img.Layers {
		if l.MediaType != "application/vnd.docker.image.rootfs.diff.tar.gzip" || l.Size <= 0 || l.CreatedBy == "" {
			t.Errorf("layer %d = %+v", i, l)
		}
	}
	if got := blobDigest(t, img.Layers[3]); got != "sha256:e69334acef3fdfde61d09a9a08515e4b0f42e56ac81f7719e771885069d98b4d" || got != img.Layers[3].Digest {
		t.Errorf("layer 4 hashes to %s (digest %s)", got, img.Layers[3].Digest)
	}
}

func TestOpenMultiPlatform(t *testing.T) {
	file := filepath.Join(imagesDir(t), "multiarch.tar")
	// The same index as an OCI layout folder.
	folder := t.TempDir()
	extract(t, file, folder)
	tests := []struct {
		platform, layer, manifest string
	}{
		{"linux/amd64", "sha256:5b9569b3548fd8124ad7e561f54e28277219544bd5af06e524f556e65b4f974c", "sha256:0a8b25aa7692c9fd50497d41c9b372ae81bb612cc08246990df7c6b1e3d83f20"},
		{"linux/arm64", "sha256:e3cbf5a75f21f9afa99dfebc7e0f42000545e0673dc35de0e883aa2626435e03", "sha256:3ffac1a414b758764faeaa5773fd383166e3b4c85173bac14fa8cda151caa410"},
		{"linux/arm64/v8", "sha256:e3cbf5a75f21f9afa99dfebc7e0f42000545e0673dc35de0e883aa2626435e03", "sha256:3ffac1a414b758764faeaa5773fd383166e3b4c85173bac14fa8cda151caa410"},
	}
	for _, source := range []string{file + ":multiarch", "oci:" + folder + ":multiarch", folder} {
		for _, tt := range tests {
			t.Run(source+" "+tt.platform, func(t *testing.T) {
				img := open(t, source, imagesrc.Options{Platform: tt.platform})
				if img.ManifestDigest != tt.manifest || len(img.Layers) != 1 || img.Layers[0].Digest != tt.layer ||
					img.IndexDigest != "sha256:e1ebfd29245062bb6a8f54b8fe6f2d3e4da5b665324163886eaddeab60490628" {
					t.Errorf("manifest %s, index %s, layers %+v", img.ManifestDigest, img.IndexDigest, img.Layers)
				}
				if got := blobDigest(t, img.Layers[0]); got != tt.layer {
					t.Errorf("layer hashes to %s", got)
				}
			})
		}
	}
	if _, err := imagesrc.Open(context.Background(), file+":multiarch", imagesrc.Options{Platform: "linux/s390x"}); !errors.Is(err, imagesrc.ErrNotFound) {
		t.Errorf("missing platform: %v", err)
	}
}

func extract(tb testing.TB, tarFile, dir string) {
	tb.Helper()
	f, err := os.Open(tarFile)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			tb.Fatal(err)
		}
		target := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if !filepath.IsLocal(hdr.Name) {
			tb.Fatalf("unexpected entry %q", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				tb.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				tb.Fatal(err)
			}
			out, err := os.Create(target)
			if err != nil {
				tb.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				tb.Fatal(err)
			}
			if err := out.Close(); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// TestOpenRemote pushes corpus images to an in-process registry and reads them back.
func TestOpenRemote(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := imagesDir(t)

	goApp, err := tarball.ImageFromPath(filepath.Join(dir, "go-app.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/corpus/go-app:1.0.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, goApp); err != nil {
		t.Fatal(err)
	}
	folder := t.TempDir()
	extract(t, filepath.Join(dir, "multiarch.tar"), folder)
	lp, err := layout.FromPath(folder)
	if err != nil {
		t.Fatal(err)
	}
	outer, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := outer.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := outer.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	idxRef, err := name.ParseReference(host+"/corpus/multiarch:1.0.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(idxRef, idx); err != nil {
		t.Fatal(err)
	}

	anonymous := authn.NewMultiKeychain()
	img := open(t, "docker://"+host+"/corpus/go-app:1.0.0", imagesrc.Options{Insecure: true, Keychain: anonymous})
	if len(img.Layers) != 5 || img.Layers[3].Digest != "sha256:e69334acef3fdfde61d09a9a08515e4b0f42e56ac81f7719e771885069d98b4d" || img.Layers[3].CreatedBy == "" {
		t.Fatalf("go-app from the registry: %+v", img.Layers)
	}
	if got := blobDigest(t, img.Layers[3]); got != img.Layers[3].Digest {
		t.Errorf("layer hashes to %s", got)
	}
	for platform, layer := range map[string]string{
		"linux/amd64": "sha256:5b9569b3548fd8124ad7e561f54e28277219544bd5af06e524f556e65b4f974c",
		"linux/arm64": "sha256:e3cbf5a75f21f9afa99dfebc7e0f42000545e0673dc35de0e883aa2626435e03",
	} {
		img := open(t, host+"/corpus/multiarch:1.0.0", imagesrc.Options{Insecure: true, Keychain: anonymous, Platform: platform})
		if len(img.Layers) != 1 || img.Layers[0].Digest != layer || img.IndexDigest == "" || !strings.HasPrefix(img.Platform, platform) {
			t.Errorf("%s: platform %s, index %s, layers %+v", platform, img.Platform, img.IndexDigest, img.Layers)
		}
	}
	if _, err := imagesrc.OpenRemote(context.Background(), host+"/corpus/missing:1", imagesrc.Options{Insecure: true, Keychain: anonymous}); err == nil {
		t.Error("missing image opened")
	}
}
