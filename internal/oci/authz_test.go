package oci_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/lading-registry/lading/internal/oci"
)

// TestPermissions keeps the registry face's actions as ECR's registry endpoint names them.
func TestPermissions(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		all, any     []string
	}{
		{"GET", "/v2/a/manifests/v1", []string{"ecr:BatchGetImage"}, nil},
		{"HEAD", "/v2/a/manifests/v1", nil, []string{"ecr:BatchGetImage", "ecr:BatchCheckLayerAvailability"}},
		{"PUT", "/v2/a/manifests/v1", []string{"ecr:PutImage"}, nil},
		{"DELETE", "/v2/a/manifests/v1", []string{"ecr:BatchDeleteImage"}, nil},
		{"GET", "/v2/a/blobs/sha256:00", []string{"ecr:GetDownloadUrlForLayer"}, nil},
		{"HEAD", "/v2/a/blobs/sha256:00", nil, []string{"ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"}},
		{"DELETE", "/v2/a/blobs/sha256:00", []string{"ecr:BatchDeleteImage"}, nil},
		{"POST", "/v2/a/blobs/uploads/", []string{"ecr:InitiateLayerUpload"}, nil},
		{"POST", "/v2/a/blobs/uploads/?digest=sha256:00", []string{"ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"}, nil},
		{"POST", "/v2/a/blobs/uploads/?mount=sha256:00&from=b", []string{"ecr:InitiateLayerUpload"}, nil},
		{"PATCH", "/v2/a/blobs/uploads/x", []string{"ecr:UploadLayerPart"}, nil},
		{"GET", "/v2/a/blobs/uploads/x", []string{"ecr:UploadLayerPart"}, nil},
		{"PUT", "/v2/a/blobs/uploads/x?digest=sha256:00", []string{"ecr:CompleteLayerUpload"}, nil},
		{"GET", "/v2/a/tags/list", []string{"ecr:ListImages"}, nil},
		{"GET", "/v2/a/referrers/sha256:00", []string{"ecr:BatchGetImage"}, nil},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		kind := oci.RouteName(r)[len("v2_"):]
		p, ok := oci.Permissions(kind, tc.method, r)
		if !ok || !slices.Equal(p.All, tc.all) || !slices.Equal(p.Any, tc.any) {
			t.Errorf("%s %s: %+v %v, want all %v any %v", tc.method, tc.path, p, ok, tc.all, tc.any)
		}
	}
	// A final PUT carrying the last chunk uploads a part too.
	r := httptest.NewRequest(http.MethodPut, "/v2/a/blobs/uploads/x?digest=sha256:00", nil)
	r.ContentLength = 10
	if p, _ := oci.Permissions("upload", http.MethodPut, r); !slices.Equal(p.All, []string{"ecr:UploadLayerPart", "ecr:CompleteLayerUpload"}) {
		t.Errorf("PUT with a chunk: %+v", p)
	}
	for _, kind := range []string{"base", "catalog", "unknown"} {
		if _, ok := oci.Permissions(kind, http.MethodGet, nil); ok {
			t.Errorf("%s has per-repository permissions", kind)
		}
	}
}
