package blob_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/lading-registry/lading/internal/blob"
)

func TestServerServesWholeAndRanges(t *testing.T) {
	content := make([]byte, 3<<20+123) // several copy buffers and a partial one
	_, _ = rand.Read(content)
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	s := blob.NewServer()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		s.ServeContent(w, r, f)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		rng    string
		status int
		want   []byte
	}{
		{"", http.StatusOK, content},
		{"bytes=0-9", http.StatusPartialContent, content[:10]},
		{"bytes=1048570-2097160", http.StatusPartialContent, content[1048570:2097161]},
		{"bytes=-100", http.StatusPartialContent, content[len(content)-100:]},
	} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if tc.rng != "" {
			req.Header.Set("Range", tc.rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != tc.status || !bytes.Equal(got, tc.want) {
			t.Fatalf("Range %q: status %d, %d bytes (err %v), want %d and %d bytes", tc.rng, resp.StatusCode, len(got), err, tc.status, len(tc.want))
		}
	}
}
