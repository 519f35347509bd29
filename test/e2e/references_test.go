package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/testserver"
)

// TestReferencedBlobsAndSizes: through the real server, a manifest whose layer size is off by
// one is refused, and a layer of a stored manifest cannot be deleted until the manifest is.
func TestReferencedBlobsAndSizes(t *testing.T) {
	srv := testserver.Start(t, ladingBin)
	c := newClient(t, srv)
	repo := "integrity/app"
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := randomBytes(4096)
	cfgDigest, layerDigest := c.pushBlob(repo, cfg), c.pushBlob(repo, layer)
	manifest := func(layerSize int) []byte {
		return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
			`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
			`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
			cfgDigest, len(cfg), layerDigest, layerSize)
	}
	put := func(body []byte) *http.Response {
		return c.do("PUT", "/v2/"+repo+"/manifests/v1", bytes.NewReader(body),
			map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	}
	specError := func(body []byte) string {
		var e struct {
			Errors []struct{ Code, Message string }
		}
		if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) == 0 {
			t.Fatalf("error body %q: %v", body, err)
		}
		return e.Errors[0].Code + ": " + e.Errors[0].Message
	}

	if got := specError(c.expect(put(manifest(len(layer)+1)), http.StatusBadRequest)); !strings.HasPrefix(got, "SIZE_INVALID: ") ||
		!strings.Contains(got, layerDigest.String()) {
		t.Errorf("layer size+1: %s", got)
	}
	good := manifest(len(layer))
	c.expect(put(good), http.StatusCreated)

	blob := "/v2/" + repo + "/blobs/" + layerDigest.String()
	if got := specError(c.expect(c.do("DELETE", blob, nil, nil), http.StatusConflict)); !strings.HasPrefix(got, "DENIED: ") ||
		!strings.Contains(got, digest.FromBytes(good).String()) {
		t.Errorf("delete of a referenced layer: %s", got)
	}
	if got := c.expect(c.do("GET", blob, nil, nil), http.StatusOK); !bytes.Equal(got, layer) {
		t.Error("the layer changed after a refused delete")
	}
	c.expect(c.do("DELETE", "/v2/"+repo+"/manifests/"+digest.FromBytes(good).String(), nil, nil), http.StatusAccepted)
	c.expect(c.do("DELETE", blob, nil, nil), http.StatusAccepted)
	c.expect(c.do("GET", blob, nil, nil), http.StatusNotFound)
}
