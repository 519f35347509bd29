package imagesrc

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// layoutSeed builds a small OCI layout + docker archive tar, with an index in the index.
func layoutSeed(tb testing.TB) []byte {
	tb.Helper()
	layer := []byte("layer bytes")
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:` + digestOf(layer) + `"]},"history":[{"created_by":"COPY x /"},{"created_by":"ENV a=b","empty_layer":true}]}`)
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + digestOf(config) + `","size":` + itoa(len(config)) + `},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:` + digestOf(layer) + `","size":` + itoa(len(layer)) + `}]}`)
	inner := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + digestOf(manifest) + `","size":` + itoa(len(manifest)) + `,"platform":{"os":"linux","architecture":"amd64"}}]}`)
	index := []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:` + digestOf(inner) + `","size":` + itoa(len(inner)) + `,"annotations":{"org.opencontainers.image.ref.name":"x"}}]}`)
	docker := []byte(`[{"Config":"blobs/sha256/` + digestOf(config) + `","RepoTags":["x:1"],"Layers":["blobs/sha256/` + digestOf(layer) + `"]}]`)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		body []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index}, {"manifest.json", docker},
		{"blobs/sha256/" + digestOf(layer), layer}, {"blobs/sha256/" + digestOf(config), config},
		{"blobs/sha256/" + digestOf(manifest), manifest}, {"blobs/sha256/" + digestOf(inner), inner},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/link", Linkname: "link", Typeflag: tar.TypeSymlink}); err != nil {
		tb.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func itoa(n int) string { return strconv.Itoa(n) }

// FuzzOpenArchive opens arbitrary image tars (tar index, index.json, manifests, configs,
// docker-archive manifest.json) and reads their layers.
func FuzzOpenArchive(f *testing.F) {
	seed := layoutSeed(f)
	f.Add(seed, "x")
	f.Add(seed, "x:1")
	f.Add(seed, "")
	f.Fuzz(func(t *testing.T, archive []byte, name string) {
		p := filepath.Join(t.TempDir(), "image.tar")
		if err := os.WriteFile(p, archive, 0o644); err != nil {
			t.Fatal(err)
		}
		img, err := OpenArchive(context.Background(), p, name, Options{Platform: "linux/amd64"})
		if err != nil {
			return
		}
		defer img.Close()
		for _, l := range img.Layers {
			rc, err := l.Open(context.Background())
			if err != nil {
				continue
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(rc, 1<<20))
			_ = rc.Close()
		}
	})
}

func TestLayoutSeedOpens(t *testing.T) {
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(p, layoutSeed(t), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"x", "x:1"} {
		img, err := OpenArchive(context.Background(), p, name, Options{Platform: "linux/amd64"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(img.Layers) != 1 || img.Layers[0].CreatedBy != "COPY x /" || len(img.History) != 2 {
			t.Errorf("%s: layers %+v, history %+v", name, img.Layers, img.History)
		}
		_ = img.Close()
	}
}
