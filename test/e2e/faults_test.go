package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/testserver"
)

// do sends an authenticated request to the cluster's front and returns the response, read.
func do(t *testing.T, c *testserver.Cluster, method, location string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	url := location
	if len(url) > 0 && url[0] == '/' {
		url = c.Front.URL() + location
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(testserver.AccessKeyID, testserver.SecretAccessKey)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestKillNodeDuringChunkedUpload: a chunked upload whose first chunk went to a node that is
// then killed (kill -9) continues on the other nodes and completes with the right bytes.
func TestKillNodeDuringChunkedUpload(t *testing.T) {
	c := testserver.StartCluster(t, ladingBin, 3)
	blob := make([]byte, 11<<20)
	if _, err := rand.Read(blob); err != nil {
		t.Fatal(err)
	}
	chunks := [][]byte{blob[:5<<20], blob[5<<20 : 10<<20], blob[10<<20:]}
	resp, _ := do(t, c, http.MethodPost, "/v2/faults/app/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	off := 0
	for i, chunk := range chunks[:2] {
		resp, body := do(t, c, http.MethodPatch, loc, chunk, map[string]string{"Content-Type": "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", off, off+len(chunk)-1)})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("chunk %d: %s %s", i, resp.Status, body)
		}
		off += len(chunk)
		loc = resp.Header.Get("Location")
		if i == 0 {
			killed := c.Last()
			c.Kill(killed)
			t.Logf("killed node %d, which took the first chunk", killed)
		}
	}
	d := digest.FromBytes(blob)
	sep := "?"
	if bytes.ContainsRune([]byte(loc), '?') {
		sep = "&"
	}
	resp, body := do(t, c, http.MethodPut, loc+sep+"digest="+d.String(), chunks[2], map[string]string{"Content-Type": "application/octet-stream",
		"Content-Range": fmt.Sprintf("%d-%d", off, len(blob)-1)})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("complete upload: %s %s", resp.Status, body)
	}
	for range 2 { // two different nodes serve the pull
		resp, got := do(t, c, http.MethodGet, "/v2/faults/app/blobs/"+d.String(), nil, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, blob) {
			t.Fatalf("GET blob: %s, %d bytes, equal %v", resp.Status, len(got), bytes.Equal(got, blob))
		}
	}
}
