package oci_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	blobfs "github.com/lading-registry/lading/internal/blob/fs"
	"github.com/lading-registry/lading/internal/oci"
	"github.com/lading-registry/lading/internal/registry"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

// routeFixture is a registry face over real stores, with the handles a test needs to reach
// behind it.
type routeFixture struct {
	url  string
	dir  string
	meta *sqlite.DB
	free int64 // what the blob store is told the volume has free
}

func newRouteFixture(t *testing.T, cfg oci.Config) *routeFixture {
	t.Helper()
	f := &routeFixture{dir: t.TempDir(), free: 1 << 40}
	meta, err := sqlite.Open(context.Background(), filepath.Join(f.dir, "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = meta.Close() })
	f.meta = meta
	blobs, err := blobfs.New(f.dir, blobfs.Options{MaxBlobSize: 1 << 20, MinFreeBytes: 1 << 20,
		FreeBytes: func(string) (int64, error) { return f.free, nil }})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(oci.NewHandler(meta, blobs, cfg))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// exchange is one request and the answer it must get.
type exchange struct {
	name   string
	method string
	path   string
	body   []byte
	header map[string]string
	status int
	code   string // the spec's error code, for an error status
}

func (f *routeFixture) run(t *testing.T, ex exchange) *http.Response {
	t.Helper()
	req, err := http.NewRequest(ex.method, f.url+ex.path, bytes.NewReader(ex.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range ex.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != ex.status {
		t.Fatalf("%s: %s %s: status %d, want %d: %s", ex.name, ex.method, ex.path, resp.StatusCode, ex.status, body)
	}
	if ex.code != "" {
		var e struct {
			Errors []struct{ Code, Message string }
		}
		if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Code != ex.code || e.Errors[0].Message == "" {
			t.Fatalf("%s: error body %s, want code %s with a message", ex.name, body, ex.code)
		}
		if resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: error Content-Type %q", ex.name, resp.Header.Get("Content-Type"))
		}
	}
	return resp
}

// TestEveryRouteAndErrorCode walks every route of the registry face with a request that
// succeeds and the requests that meet each error the route can answer, checking status and code.
func TestEveryRouteAndErrorCode(t *testing.T) {
	f := newRouteFixture(t, oci.Config{CreateOnPush: true})
	const repo = "team/app"
	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	layer := make([]byte, 4096)
	_, _ = rand.Read(layer)
	cd, ld := digest.FromBytes(config), digest.FromBytes(layer)
	manifest := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
		registry.MediaTypeOCIManifest, cd, len(config), ld, len(layer))
	md := digest.FromBytes(manifest)
	ociManifest := map[string]string{"Content-Type": registry.MediaTypeOCIManifest}
	missing := digest.FromString("missing")

	// Uploads whose Location later requests use.
	start := func(r string) string {
		resp := f.run(t, exchange{"start upload", "POST", "/v2/" + r + "/blobs/uploads/", nil, nil, http.StatusAccepted, ""})
		return resp.Header.Get("Location")
	}

	steps := []exchange{
		{"base", "GET", "/v2/", nil, nil, http.StatusOK, ""},
		{"base without slash", "HEAD", "/v2", nil, nil, http.StatusOK, ""},
		{"unknown route", "GET", "/v2/team/app/unknown/thing", nil, nil, http.StatusNotFound, "NOT_FOUND"},
		{"unknown route outside /v2/", "GET", "/v3/", nil, nil, http.StatusNotFound, "NOT_FOUND"},
		{"method not allowed", "POST", "/v2/team/app/tags/list", nil, nil, http.StatusMethodNotAllowed, "UNSUPPORTED"},
		{"invalid repository name", "GET", "/v2/Team/App/tags/list", nil, nil, http.StatusBadRequest, "NAME_INVALID"},
		{"tags of unknown repository", "GET", "/v2/nosuch/repo/tags/list", nil, nil, http.StatusNotFound, "NAME_UNKNOWN"},
		{"catalog with bad n", "GET", "/v2/_catalog?n=x", nil, nil, http.StatusBadRequest, "UNSUPPORTED"},

		// Monolithic uploads.
		{"monolithic upload", "POST", "/v2/" + repo + "/blobs/uploads/?digest=" + cd.String(), config, nil, http.StatusCreated, ""},
		{"monolithic upload, wrong digest", "POST", "/v2/" + repo + "/blobs/uploads/?digest=" + missing.String(), config, nil, http.StatusBadRequest, "DIGEST_INVALID"},
		{"monolithic upload, malformed digest", "POST", "/v2/" + repo + "/blobs/uploads/?digest=sha256:xyz", config, nil, http.StatusBadRequest, "DIGEST_INVALID"},
		{"monolithic upload over the size limit", "POST", "/v2/" + repo + "/blobs/uploads/?digest=" + digest.FromBytes(make([]byte, 1<<20+1)).String(),
			make([]byte, 1<<20+1), nil, http.StatusRequestEntityTooLarge, "SIZE_INVALID"},
		{"mount", "POST", "/v2/other/app/blobs/uploads/?mount=" + cd.String() + "&from=" + repo, nil, nil, http.StatusCreated, ""},
		{"mount of an unknown blob falls back to a session", "POST", "/v2/other/app/blobs/uploads/?mount=" + missing.String() + "&from=" + repo, nil, nil, http.StatusAccepted, ""},
	}
	for _, ex := range steps {
		f.run(t, ex)
	}

	// Chunked upload of the layer.
	loc := start(repo)
	half := len(layer) / 2
	resp := f.run(t, exchange{"first chunk", "PATCH", loc, layer[:half], map[string]string{"Content-Range": fmt.Sprintf("0-%d", half-1)}, http.StatusAccepted, ""})
	loc = resp.Header.Get("Location")
	for _, ex := range []exchange{
		{"upload status", "GET", loc, nil, nil, http.StatusNoContent, ""},
		{"chunk out of order", "PATCH", loc, layer[half:], map[string]string{"Content-Range": fmt.Sprintf("%d-%d", half+1, len(layer))}, http.StatusRequestedRangeNotSatisfiable, "RANGE_INVALID"},
		{"malformed Content-Range", "PATCH", loc, layer[half:], map[string]string{"Content-Range": "x-y"}, http.StatusRequestedRangeNotSatisfiable, "RANGE_INVALID"},
		{"Content-Range against Content-Length", "PATCH", loc, layer[half:], map[string]string{"Content-Range": fmt.Sprintf("%d-%d", half, len(layer))}, http.StatusRequestedRangeNotSatisfiable, "RANGE_INVALID"},
		{"status through another repository", "GET", strings.Replace(loc, repo, "other/app", 1), nil, nil, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN"},
		{"commit without digest", "PUT", loc, nil, nil, http.StatusBadRequest, "DIGEST_INVALID"},
		{"commit with the last chunk", "PUT", loc + "?digest=" + ld.String(), layer[half:], nil, http.StatusCreated, ""},
		{"status of a committed upload", "GET", loc, nil, nil, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN"},
		{"chunk to a committed upload", "PATCH", loc, []byte("x"), nil, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN"},
		{"status of an unknown upload", "GET", "/v2/" + repo + "/blobs/uploads/0123456789abcdef0123456789abcdef", nil, nil, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN"},
		{"cancel an unknown upload", "DELETE", "/v2/" + repo + "/blobs/uploads/0123456789abcdef0123456789abcdef", nil, nil, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN"},
	} {
		f.run(t, ex)
	}
	loc = start(repo)
	f.run(t, exchange{"cancel upload", "DELETE", loc, nil, nil, http.StatusNoContent, ""})
	f.run(t, exchange{"commit with wrong digest", "PUT", start(repo) + "?digest=" + missing.String(), []byte("abc"), nil, http.StatusBadRequest, "DIGEST_INVALID"})

	// Blobs.
	for _, ex := range []exchange{
		{"get blob", "GET", "/v2/" + repo + "/blobs/" + ld.String(), nil, nil, http.StatusOK, ""},
		{"head blob", "HEAD", "/v2/" + repo + "/blobs/" + ld.String(), nil, nil, http.StatusOK, ""},
		{"get unknown blob", "GET", "/v2/" + repo + "/blobs/" + missing.String(), nil, nil, http.StatusNotFound, "BLOB_UNKNOWN"},
		{"get blob with malformed digest", "GET", "/v2/" + repo + "/blobs/sha256:xyz", nil, nil, http.StatusBadRequest, "DIGEST_INVALID"},
		{"get blob of another repository", "GET", "/v2/third/app/blobs/" + ld.String(), nil, nil, http.StatusNotFound, "BLOB_UNKNOWN"},
	} {
		f.run(t, ex)
	}

	// Manifests.
	tooBig := bytes.Repeat([]byte(" "), registry.MaxManifestSize+1)
	for _, ex := range []exchange{
		{"put manifest", "PUT", "/v2/" + repo + "/manifests/v1", manifest, ociManifest, http.StatusCreated, ""},
		{"put manifest by digest", "PUT", "/v2/" + repo + "/manifests/" + md.String(), manifest, ociManifest, http.StatusCreated, ""},
		{"put manifest, digest mismatch", "PUT", "/v2/" + repo + "/manifests/" + missing.String(), manifest, ociManifest, http.StatusBadRequest, "DIGEST_INVALID"},
		{"put manifest, invalid tag", "PUT", "/v2/" + repo + "/manifests/-v1", manifest, ociManifest, http.StatusBadRequest, "TAG_INVALID"},
		{"put manifest, invalid extra tag", "PUT", "/v2/" + repo + "/manifests/v1?tag=-x", manifest, ociManifest, http.StatusBadRequest, "TAG_INVALID"},
		{"put manifest, too large", "PUT", "/v2/" + repo + "/manifests/big", tooBig, ociManifest, http.StatusRequestEntityTooLarge, "SIZE_INVALID"},
		{"put manifest, unsupported media type", "PUT", "/v2/" + repo + "/manifests/v2", bytes.Replace(manifest, []byte(registry.MediaTypeOCIManifest), []byte("text/plain"), 1),
			map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType, "MANIFEST_INVALID"},
		{"put manifest, not JSON", "PUT", "/v2/" + repo + "/manifests/v2", []byte("{"), ociManifest, http.StatusBadRequest, "MANIFEST_INVALID"},
		{"put manifest, unknown layer", "PUT", "/v2/" + repo + "/manifests/v2", bytes.Replace(manifest, []byte(ld.String()), []byte(missing.String()), 1), ociManifest, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN"},
		{"put manifest, wrong layer size", "PUT", "/v2/" + repo + "/manifests/v2", bytes.Replace(manifest, fmt.Appendf(nil, `"size":%d`, len(layer)), fmt.Appendf(nil, `"size":%d`, len(layer)+1), 1), ociManifest, http.StatusBadRequest, "SIZE_INVALID"},
		{"get manifest by tag", "GET", "/v2/" + repo + "/manifests/v1", nil, nil, http.StatusOK, ""},
		{"head manifest by digest", "HEAD", "/v2/" + repo + "/manifests/" + md.String(), nil, nil, http.StatusOK, ""},
		{"get unknown tag", "GET", "/v2/" + repo + "/manifests/nosuch", nil, nil, http.StatusNotFound, "MANIFEST_UNKNOWN"},
		{"get unknown digest", "GET", "/v2/" + repo + "/manifests/" + missing.String(), nil, nil, http.StatusNotFound, "MANIFEST_UNKNOWN"},
		{"get manifest, invalid tag", "GET", "/v2/" + repo + "/manifests/-v1", nil, nil, http.StatusBadRequest, "TAG_INVALID"},
		{"get manifest, malformed digest", "GET", "/v2/" + repo + "/manifests/sha256:xyz", nil, nil, http.StatusBadRequest, "DIGEST_INVALID"},
		{"tags", "GET", "/v2/" + repo + "/tags/list", nil, nil, http.StatusOK, ""},
		{"tags with bad n", "GET", "/v2/" + repo + "/tags/list?n=-1", nil, nil, http.StatusBadRequest, "UNSUPPORTED"},
		{"catalog", "GET", "/v2/_catalog?n=1", nil, nil, http.StatusOK, ""},
		{"referrers", "GET", "/v2/" + repo + "/referrers/" + md.String(), nil, nil, http.StatusOK, ""},
		{"referrers, malformed digest", "GET", "/v2/" + repo + "/referrers/sha256:xyz", nil, nil, http.StatusBadRequest, "DIGEST_INVALID"},
		{"delete referenced blob", "DELETE", "/v2/" + repo + "/blobs/" + ld.String(), nil, nil, http.StatusConflict, "DENIED"},
		{"delete blob, malformed digest", "DELETE", "/v2/" + repo + "/blobs/sha256:xyz", nil, nil, http.StatusBadRequest, "DIGEST_INVALID"},
		{"delete unknown tag", "DELETE", "/v2/" + repo + "/manifests/nosuch", nil, nil, http.StatusNotFound, "MANIFEST_UNKNOWN"},
		{"delete tag, invalid", "DELETE", "/v2/" + repo + "/manifests/-x", nil, nil, http.StatusBadRequest, "TAG_INVALID"},
		{"delete tag", "DELETE", "/v2/" + repo + "/manifests/v1", nil, nil, http.StatusAccepted, ""},
		{"delete unknown manifest", "DELETE", "/v2/" + repo + "/manifests/" + missing.String(), nil, nil, http.StatusNotFound, "MANIFEST_UNKNOWN"},
		{"delete manifest, malformed digest", "DELETE", "/v2/" + repo + "/manifests/sha256:xyz", nil, nil, http.StatusBadRequest, "DIGEST_INVALID"},
		{"delete manifest", "DELETE", "/v2/" + repo + "/manifests/" + md.String(), nil, nil, http.StatusAccepted, ""},
		{"delete blob", "DELETE", "/v2/" + repo + "/blobs/" + ld.String(), nil, nil, http.StatusAccepted, ""},
		{"delete unknown blob", "DELETE", "/v2/" + repo + "/blobs/" + ld.String(), nil, nil, http.StatusNotFound, "BLOB_UNKNOWN"},
	} {
		f.run(t, ex)
	}

	// An immutable repository refuses to move a tag.
	f.run(t, exchange{"push the layer again", "POST", "/v2/" + repo + "/blobs/uploads/?digest=" + ld.String(), layer, nil, http.StatusCreated, ""})
	if _, err := f.meta.UpdateRepository(context.Background(), repo, func(r *store.Repository) error {
		r.TagMutability = store.TagImmutable
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.run(t, exchange{"tag v1 again", "PUT", "/v2/" + repo + "/manifests/v1", manifest, ociManifest, http.StatusCreated, ""})
	other := bytes.Replace(manifest, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":2,"annotations":{"a":"b"}`), 1)
	f.run(t, exchange{"move an immutable tag", "PUT", "/v2/" + repo + "/manifests/v1", other, ociManifest, http.StatusBadRequest, "TAG_INVALID"})

	// A blob damaged on disk is refused, not served.
	blobFile := filepath.Join(f.dir, "blobs", "sha256", cd.Encoded()[:2], cd.Encoded())
	if err := os.Chmod(blobFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blobFile, append(config, 'x'), 0o600); err != nil {
		t.Fatal(err)
	}
	f.run(t, exchange{"get damaged blob", "GET", "/v2/" + repo + "/blobs/" + cd.String(), nil, nil, http.StatusNotFound, "BLOB_UNKNOWN"})
	f.run(t, exchange{"head damaged blob", "HEAD", "/v2/" + repo + "/blobs/" + cd.String(), nil, nil, http.StatusNotFound, ""})
	f.run(t, exchange{"mount of a damaged blob falls back to a session", "POST", "/v2/fourth/app/blobs/uploads/?mount=" + cd.String() + "&from=" + repo, nil, nil, http.StatusAccepted, ""})
	f.run(t, exchange{"re-push repairs it", "POST", "/v2/" + repo + "/blobs/uploads/?digest=" + cd.String(), config, nil, http.StatusCreated, ""})
	f.run(t, exchange{"get repaired blob", "GET", "/v2/" + repo + "/blobs/" + cd.String(), nil, nil, http.StatusOK, ""})

	// A volume at its reserve refuses uploads.
	f.free = 1 << 19
	f.run(t, exchange{"start upload on a full volume", "POST", "/v2/" + repo + "/blobs/uploads/", nil, nil, http.StatusInsufficientStorage, "BLOB_UPLOAD_INVALID"})
}

func TestUnknownRepositoryWithoutCreateOnPush(t *testing.T) {
	f := newRouteFixture(t, oci.Config{CreateOnPush: false})
	f.run(t, exchange{"start upload", "POST", "/v2/nosuch/repo/blobs/uploads/", nil, nil, http.StatusNotFound, "NAME_UNKNOWN"})
	m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"artifactType":"application/vnd.lading.test"}`)
	f.run(t, exchange{"put manifest", "PUT", "/v2/nosuch/repo/manifests/v1", m, map[string]string{"Content-Type": registry.MediaTypeOCIManifest}, http.StatusNotFound, "NAME_UNKNOWN"})
}
