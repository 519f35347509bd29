package oci_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	blobfs "github.com/lading-registry/lading/internal/blob/fs"
	"github.com/lading-registry/lading/internal/oci"
	"github.com/lading-registry/lading/internal/registry"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

// newRegistry serves the registry face over the real stores in a temporary data directory,
// built as internal/app builds them, without the auth middleware.
func newRegistry(t *testing.T, opts blobfs.Options) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	meta, err := sqlite.Open(context.Background(), filepath.Join(dir, "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = meta.Close() })
	blobs, err := blobfs.New(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(oci.NewHandler(meta, blobs, oci.Config{CreateOnPush: true, Logger: log}))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url, contentType string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// wantStatus fails the test unless resp has the status, and for an error status the spec's
// error code, returning the error message.
func wantStatus(t *testing.T, resp *http.Response, status int, code string) string {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
	if code == "" {
		return ""
	}
	var e struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) != 1 {
		t.Fatalf("error body %q: %v", body, err)
	}
	if e.Errors[0].Code != code {
		t.Fatalf("error code %s, want %s (%s)", e.Errors[0].Code, code, e.Errors[0].Message)
	}
	return e.Errors[0].Message
}

// pushBlob uploads content monolithically and returns its digest.
func pushBlob(t *testing.T, base, repo string, content []byte) string {
	t.Helper()
	d := digest.FromBytes(content).String()
	wantStatus(t, do(t, http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/?digest="+d, "application/octet-stream", content), http.StatusCreated, "")
	return d
}

type image struct {
	config, layer string // digests
	configSize    int
	layerSize     int
}

func pushImageBlobs(t *testing.T, base, repo string) image {
	t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := bytes.Repeat([]byte("layer data "), 100)
	return image{config: pushBlob(t, base, repo, cfg), layer: pushBlob(t, base, repo, layer), configSize: len(cfg), layerSize: len(layer)}
}

func imageManifest(img image, configSize, layerSize int) []byte {
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
		registry.MediaTypeOCIManifest, img.config, configSize, img.layer, layerSize)
}

func indexOf(child []byte, childSize int) []byte {
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d,"platform":{"os":"linux","architecture":"amd64"}}]}`,
		registry.MediaTypeOCIIndex, registry.MediaTypeOCIManifest, digest.FromBytes(child), childSize)
}

func putManifest(t *testing.T, base, repo, ref, mediaType string, body []byte) *http.Response {
	t.Helper()
	return do(t, http.MethodPut, base+"/v2/"+repo+"/manifests/"+ref, mediaType, body)
}

func TestDeleteReferencedBlob(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target func(image) string
	}{
		{"config", func(img image) string { return img.config }},
		{"layer", func(img image) string { return img.layer }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRegistry(t, blobfs.Options{})
			repo := "team/app"
			img := pushImageBlobs(t, srv.URL, repo)
			man := imageManifest(img, img.configSize, img.layerSize)
			md := digest.FromBytes(man).String()
			wantStatus(t, putManifest(t, srv.URL, repo, "v1", registry.MediaTypeOCIManifest, man), http.StatusCreated, "")
			blobURL := srv.URL + "/v2/" + repo + "/blobs/" + tc.target(img)

			msg := wantStatus(t, do(t, http.MethodDelete, blobURL, "", nil), http.StatusConflict, "DENIED")
			want := fmt.Sprintf("blob %s is referenced by manifest %s in repository %s; delete the manifest first", tc.target(img), md, repo)
			if msg != want {
				t.Errorf("message %q, want %q", msg, want)
			}
			// The image still pulls: the blob is there.
			wantStatus(t, do(t, http.MethodGet, blobURL, "", nil), http.StatusOK, "")

			wantStatus(t, do(t, http.MethodDelete, srv.URL+"/v2/"+repo+"/manifests/"+md, "", nil), http.StatusAccepted, "")
			wantStatus(t, do(t, http.MethodDelete, blobURL, "", nil), http.StatusAccepted, "")
			wantStatus(t, do(t, http.MethodGet, blobURL, "", nil), http.StatusNotFound, "BLOB_UNKNOWN")
			wantStatus(t, do(t, http.MethodDelete, blobURL, "", nil), http.StatusNotFound, "BLOB_UNKNOWN")
		})
	}
}

func TestPutManifestDescriptorSizes(t *testing.T) {
	missing := digest.FromString("missing").String()
	for _, tc := range []struct {
		name string
		// manifest returns the manifest to push once img and its manifest (child, tagged v1)
		// are in the repository.
		manifest  func(img image, child []byte) []byte
		mediaType string
		status    int
		code      string
		inMessage []string // what the error message must say
	}{
		{
			name:      "sizes as stored",
			manifest:  func(img image, _ []byte) []byte { return imageManifest(img, img.configSize, img.layerSize) },
			mediaType: registry.MediaTypeOCIManifest, status: http.StatusCreated,
		},
		{
			name:      "layer size+1",
			manifest:  func(img image, _ []byte) []byte { return imageManifest(img, img.configSize, img.layerSize+1) },
			mediaType: registry.MediaTypeOCIManifest, status: http.StatusBadRequest, code: "SIZE_INVALID",
			inMessage: []string{"layer", "1101", "1100"},
		},
		{
			name:      "config size-1",
			manifest:  func(img image, _ []byte) []byte { return imageManifest(img, img.configSize-1, img.layerSize) },
			mediaType: registry.MediaTypeOCIManifest, status: http.StatusBadRequest, code: "SIZE_INVALID",
			inMessage: []string{"config"},
		},
		{
			name: "unknown layer",
			manifest: func(img image, _ []byte) []byte {
				return bytes.Replace(imageManifest(img, img.configSize, img.layerSize), []byte(img.layer), []byte(missing), 1)
			},
			mediaType: registry.MediaTypeOCIManifest, status: http.StatusBadRequest, code: "MANIFEST_BLOB_UNKNOWN",
			inMessage: []string{missing},
		},
		{
			name:      "index with the child's size",
			manifest:  func(_ image, child []byte) []byte { return indexOf(child, len(child)) },
			mediaType: registry.MediaTypeOCIIndex, status: http.StatusCreated,
		},
		{
			name:      "index with child size+1",
			manifest:  func(_ image, child []byte) []byte { return indexOf(child, len(child)+1) },
			mediaType: registry.MediaTypeOCIIndex, status: http.StatusBadRequest, code: "SIZE_INVALID",
			inMessage: []string{"manifest"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRegistry(t, blobfs.Options{})
			repo := "app"
			img := pushImageBlobs(t, srv.URL, repo)
			if img.layerSize != 1100 {
				t.Fatalf("layer of %d bytes; the messages expected below assume 1100", img.layerSize)
			}
			child := imageManifest(img, img.configSize, img.layerSize)
			wantStatus(t, putManifest(t, srv.URL, repo, "v1", registry.MediaTypeOCIManifest, child), http.StatusCreated, "")

			body := tc.manifest(img, child)
			d := digest.FromBytes(body).String()
			msg := wantStatus(t, putManifest(t, srv.URL, repo, "v2", tc.mediaType, body), tc.status, tc.code)
			for _, s := range tc.inMessage {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q does not say %q", msg, s)
				}
			}
			// A refused manifest is not stored; an accepted one is.
			get := do(t, http.MethodGet, srv.URL+"/v2/"+repo+"/manifests/"+d, "", nil)
			if tc.status == http.StatusCreated {
				wantStatus(t, get, http.StatusOK, "")
			} else {
				wantStatus(t, get, http.StatusNotFound, "MANIFEST_UNKNOWN")
			}
		})
	}
}
