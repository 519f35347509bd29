package oci

import (
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		path string
		want route
		ok   bool
	}{
		{"/v2/", route{kind: "base"}, true},
		{"/v2", route{kind: "base"}, true},
		{"/v2/_catalog", route{kind: "catalog"}, true},
		{"/v2/a/b/tags/list", route{kind: "tags", name: "a/b"}, true},
		{"/v2/a/b/manifests/latest", route{kind: "manifest", name: "a/b", ref: "latest"}, true},
		{"/v2/a/manifests/sha256:abc", route{kind: "manifest", name: "a", ref: "sha256:abc"}, true},
		{"/v2/a/blobs/sha256:abc", route{kind: "blob", name: "a", ref: "sha256:abc"}, true},
		{"/v2/a/blobs/uploads/", route{kind: "uploads", name: "a"}, true},
		{"/v2/a/blobs/uploads", route{kind: "uploads", name: "a"}, true},
		{"/v2/a/b/blobs/uploads/0123", route{kind: "upload", name: "a/b", ref: "0123"}, true},
		{"/v2/a/referrers/sha256:abc", route{kind: "referrers", name: "a", ref: "sha256:abc"}, true},
		// A repository may be called "blobs" or "manifests": the operation is found from the right.
		{"/v2/blobs/manifests/v1", route{kind: "manifest", name: "blobs", ref: "v1"}, true},
		{"/v2/x/manifests/blobs/sha256:1", route{kind: "blob", name: "x/manifests", ref: "sha256:1"}, true},
		{"/v2/a/manifests/", route{}, false},
		{"/v2/a/other/x", route{}, false},
		{"/v3/", route{}, false},
	} {
		got, ok := parsePath(tc.path)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%q: got %+v %v, want %+v %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/v2/", "/v2/a/b/manifests/latest", "/v2/a/blobs/uploads/x", "/v2/a/tags/list", "/v2//blobs/", "/v2/a/referrers/sha256:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rt, ok := parsePath(p)
		if !ok {
			return
		}
		// Whatever parses must name a route whose parts reassemble into the path.
		if rt.kind != "base" && rt.kind != "catalog" && rt.name == "" {
			t.Fatalf("%q parsed without a name: %+v", p, rt)
		}
		if rt.name != "" && !strings.Contains(p, rt.name) {
			t.Fatalf("%q: name %q not in path", p, rt.name)
		}
	})
}
