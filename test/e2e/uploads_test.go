package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/testserver"
)

// TestCommitRacingPatchKeepsBlobIntact races a commit (PUT ?digest=) against a late PATCH to the
// same upload, with jittered delays on either side, and checks after every round that the blob
// is either absent or exactly what its digest names, on HEAD and GET alike. A PATCH that waited
// for the upload's lock while the commit moved the file used to append to the stored blob.
func TestCommitRacingPatchKeepsBlobIntact(t *testing.T) {
	srv := testserver.Start(t, ladingBin)
	c := newClient(t, srv)
	const rounds = 300
	const size = 1 << 20
	tail := []byte("evil")
	committed, refused := 0, 0
	for round := range rounds {
		data := randomBytes(size)
		d := digest.FromBytes(data)
		loc := c.startUpload("race/patch")
		resp := c.do("PATCH", loc, bytes.NewReader(data), map[string]string{
			"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("0-%d", size-1)})
		c.expect(resp, http.StatusAccepted)
		loc = resp.Header.Get("Location")

		// Jitter in [-1 ms, +2 ms): negative delays the commit instead of the PATCH.
		jitter := time.Duration(rand.IntN(3000)-1000) * time.Microsecond
		var putStatus, patchStatus int
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			if jitter < 0 {
				time.Sleep(-jitter)
			}
			putStatus = rawStatus(t, c, "PUT", loc+"?digest="+d.String(), nil, nil)
		}()
		go func() {
			defer wg.Done()
			if jitter > 0 {
				time.Sleep(jitter)
			}
			patchStatus = rawStatus(t, c, "PATCH", loc, tail, map[string]string{
				"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("%d-%d", size, size+len(tail)-1)})
		}()
		wg.Wait()

		present := checkBlob(t, c, "race/patch", d, data)
		switch putStatus {
		case http.StatusCreated:
			committed++
			if !present {
				t.Fatalf("round %d: commit answered 201 but the blob is not served", round)
			}
		case http.StatusBadRequest: // the PATCH came first: the digest no longer matches
			refused++
			if present {
				t.Fatalf("round %d: commit refused but the blob is served", round)
			}
		default:
			t.Fatalf("round %d: commit answered %d", round, putStatus)
		}
		if patchStatus != http.StatusAccepted && patchStatus != http.StatusNotFound {
			t.Fatalf("round %d: racing PATCH answered %d, want 202 or 404", round, patchStatus)
		}
	}
	t.Logf("%d rounds: %d committed, %d refused after the PATCH won", rounds, committed, refused)
}

// rawStatus sends a request and returns its status, draining the body.
func rawStatus(t *testing.T, c *client, method, path string, body []byte, hdr map[string]string) int {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0
	}
	req.ContentLength = int64(len(body))
	req.SetBasicAuth(c.user, c.pass)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// checkBlob reports whether repo serves d, failing the test unless HEAD and GET agree and the
// body served is exactly want.
func checkBlob(t *testing.T, c *client, repo string, d digest.Digest, want []byte) bool {
	t.Helper()
	head := c.do("HEAD", "/v2/"+repo+"/blobs/"+d.String(), nil, nil)
	_ = head.Body.Close()
	get := c.do("GET", "/v2/"+repo+"/blobs/"+d.String(), nil, nil)
	body, err := io.ReadAll(get.Body)
	_ = get.Body.Close()
	if err != nil {
		t.Fatalf("GET %s: %v", d, err)
	}
	if head.StatusCode != get.StatusCode {
		t.Fatalf("blob %s: HEAD %d, GET %d", d, head.StatusCode, get.StatusCode)
	}
	if get.StatusCode == http.StatusNotFound {
		return false
	}
	if get.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", d, get.StatusCode)
	}
	if n, _ := strconv.Atoi(head.Header.Get("Content-Length")); n != len(want) {
		t.Fatalf("HEAD %s: Content-Length %d, want %d", d, n, len(want))
	}
	sum := sha256.Sum256(body)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != d.String() || len(body) != len(want) {
		t.Fatalf("GET %s served %d bytes hashing to %s", d, len(body), got)
	}
	return true
}

// TestFullDiskFreesFailedUpload puts the data dir on a 24 MiB tmpfs and pushes a 50 MiB blob:
// once with no reserve, so that the write meets ENOSPC, and once with a reserve, so that the
// upload is refused before the disk fills. Each time the answer says the storage is full, the
// session's bytes are gone at once, and a small image pushes afterwards.
func TestFullDiskFreesFailedUpload(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CI runs as root)")
	}
	for _, tc := range []struct {
		name    string
		reserve string
	}{
		{"ENOSPC", "0"},
		{"reserve", "8MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vol := filepath.Join(t.TempDir(), "vol")
			if err := os.Mkdir(vol, 0o700); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", vol).CombinedOutput(); err != nil {
				t.Fatalf("mount tmpfs: %v: %s", err, out)
			}
			t.Cleanup(func() { _ = exec.Command("umount", "-l", vol).Run() })
			srv := testserver.StartAt(t, ladingBin, vol, "--min-free-space", tc.reserve, "--scan-workers", "0")
			c := newClient(t, srv)

			loc := c.startUpload("full/disk")
			req, err := http.NewRequest("PATCH", c.base+loc, bytes.NewReader(randomBytes(50<<20)))
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth(c.user, c.pass)
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, err := http.DefaultClient.Do(req)
			// The server stops reading when the disk is full; the client may see the reset of
			// its unfinished body instead of the answer.
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusInsufficientStorage || !strings.Contains(string(body), "out of storage space") {
					t.Fatalf("PATCH onto a full disk: %d %s", resp.StatusCode, body)
				}
			} else {
				t.Logf("PATCH onto a full disk: %v", err)
			}
			entries, err := os.ReadDir(filepath.Join(vol, "uploads"))
			if err != nil || len(entries) != 0 {
				t.Fatalf("uploads left after the failure: %d (%v)", len(entries), err)
			}
			c.expect(c.do("GET", loc, nil, nil), http.StatusNotFound)
			if lines := srv.Lines("storage full"); len(lines) == 0 {
				t.Fatal("the server did not log the full disk")
			}

			// The space is free again: a small image pushes.
			config := []byte(`{"architecture":"amd64","os":"linux"}`)
			layer := randomBytes(1 << 20)
			cd, ld := c.pushBlob("full/disk", config), c.pushBlob("full/disk", layer)
			m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
				`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
				`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`, cd, len(config), ld, len(layer))
			c.expect(c.do("PUT", "/v2/full/disk/manifests/v1", strings.NewReader(m),
				map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}), http.StatusCreated)
		})
	}
}

// TestMaxBlobSize: a blob over --max-blob-size is refused with SIZE_INVALID and its session
// discarded, on a monolithic and on a chunked upload.
func TestMaxBlobSize(t *testing.T) {
	srv := testserver.Start(t, ladingBin, "--max-blob-size", "1MiB")
	c := newClient(t, srv)
	big := randomBytes(1<<20 + 1)
	loc := c.startUpload("limit/repo")
	body := c.expect(c.do("PUT", loc+"?digest="+digest.FromBytes(big).String(), bytes.NewReader(big), nil), http.StatusRequestEntityTooLarge)
	if !strings.Contains(string(body), "SIZE_INVALID") {
		t.Fatalf("body %s", body)
	}
	c.expect(c.do("GET", loc, nil, nil), http.StatusNotFound)

	loc = c.startUpload("limit/repo")
	resp := c.do("PATCH", loc, bytes.NewReader(big[:1<<20]), map[string]string{"Content-Type": "application/octet-stream"})
	c.expect(resp, http.StatusAccepted)
	loc = resp.Header.Get("Location")
	c.expect(c.do("PATCH", loc, bytes.NewReader(big[1<<20:]), map[string]string{"Content-Type": "application/octet-stream"}), http.StatusRequestEntityTooLarge)
	c.expect(c.do("GET", loc, nil, nil), http.StatusNotFound)
	c.pushBlob("limit/repo", big[:1<<20]) // exactly the limit
}
