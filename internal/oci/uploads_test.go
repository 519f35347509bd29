package oci_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	blobfs "github.com/lading-registry/lading/internal/blob/fs"
)

func send(t *testing.T, method, url string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return nil, nil
	}
	req.ContentLength = int64(len(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return nil, nil
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp, b
}

// TestUploadSessionRandomizedConcurrency sends PATCH, PUT (commit), DELETE and GET (status) to
// one upload session at once, in a random order each round, and checks that every answer is
// one a client may get for the order the server chose, that no request fails with a server
// error, and that a blob the registry says it stored is served whole and exact.
func TestUploadSessionRandomizedConcurrency(t *testing.T) {
	srv := newRegistry(t, blobfs.Options{})
	base := srv.URL + "/v2/race/session"
	for round := range 150 {
		first := make([]byte, 32<<10+mrand.IntN(1024))
		_, _ = rand.Read(first)
		late := []byte(fmt.Sprintf("late chunk %d", round))
		d := digest.FromBytes(first)
		resp, _ := send(t, "POST", base+"/blobs/uploads/", nil, nil)
		if resp == nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("round %d: start upload: %v", round, resp)
		}
		loc := srv.URL + resp.Header.Get("Location")
		if resp, b := send(t, "PATCH", loc, first, map[string]string{"Content-Range": fmt.Sprintf("0-%d", len(first)-1)}); resp == nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("round %d: first chunk: %v %s", round, resp, b)
		}

		type op struct {
			name    string
			allowed []int
			do      func() int
		}
		status := func(method string, body []byte, hdr map[string]string, url string) func() int {
			return func() int {
				resp, _ := send(t, method, url, body, hdr)
				if resp == nil {
					return 0
				}
				return resp.StatusCode
			}
		}
		ops := []op{
			{"PUT", []int{http.StatusCreated, http.StatusBadRequest, http.StatusNotFound}, status("PUT", nil, nil, loc+"?digest="+d.String())},
			{"PATCH", []int{http.StatusAccepted, http.StatusNotFound}, status("PATCH", late, map[string]string{
				"Content-Range": fmt.Sprintf("%d-%d", len(first), len(first)+len(late)-1)}, loc)},
			{"GET", []int{http.StatusNoContent, http.StatusNotFound}, status("GET", nil, nil, loc)},
		}
		if round%3 == 0 {
			ops = append(ops, op{"DELETE", []int{http.StatusNoContent, http.StatusNotFound}, status("DELETE", nil, nil, loc)})
		}
		mrand.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
		got := make([]int, len(ops))
		var wg sync.WaitGroup
		for i, o := range ops {
			wg.Add(1)
			go func() { defer wg.Done(); got[i] = o.do() }()
		}
		wg.Wait()
		committed := false
		for i, o := range ops {
			if !slices.Contains(o.allowed, got[i]) {
				t.Fatalf("round %d: %s answered %d, want one of %v", round, o.name, got[i], o.allowed)
			}
			if o.name == "PUT" {
				committed = got[i] == http.StatusCreated
			}
		}

		head, _ := send(t, "HEAD", base+"/blobs/"+d.String(), nil, nil)
		get, body := send(t, "GET", base+"/blobs/"+d.String(), nil, nil)
		if head == nil || get == nil {
			t.Fatal("blob read failed")
		}
		if committed {
			if get.StatusCode != http.StatusOK || !bytes.Equal(body, first) || head.ContentLength != int64(len(first)) {
				t.Fatalf("round %d: committed blob served as %d, %d bytes (HEAD %d)", round, get.StatusCode, len(body), head.ContentLength)
			}
		} else if get.StatusCode != http.StatusNotFound || head.StatusCode != http.StatusNotFound {
			t.Fatalf("round %d: uncommitted blob served: GET %d, HEAD %d", round, get.StatusCode, head.StatusCode)
		}
		if resp, _ := send(t, "GET", loc, nil, nil); committed && resp.StatusCode != http.StatusNotFound {
			t.Fatalf("round %d: session still answers %d after its commit", round, resp.StatusCode)
		}
	}
}
