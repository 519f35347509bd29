package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/lading-registry/lading/internal/blob"
)

// TestClassify: what an S3 error means to the store — a missing path, storage to try again
// later (503), or a failure of this request (500).
func TestClassify(t *testing.T) {
	status := func(code int) error {
		return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}},
			Err: fmt.Errorf("status %d", code)}
	}
	for _, tc := range []struct {
		name                  string
		err                   error
		notFound, unavailable bool
	}{
		{"404", status(404), true, false},
		{"500", status(500), false, true},
		{"503 slow down", status(503), false, true},
		{"403 credentials refused", status(403), false, true},
		{"408 request timeout", status(408), false, true},
		{"409 conflicting operation", status(409), false, true},
		{"429 too many requests", status(429), false, true},
		{"400 bad request", status(400), false, false},
		{"416 range not satisfiable", status(416), false, false},
		{"no answer", errors.New("dial tcp: connection refused"), false, true},
		{"cancelled", context.Canceled, false, false},
	} {
		err := classify("get", "k", tc.err)
		if got := errors.Is(err, blob.ErrPathNotFound); got != tc.notFound {
			t.Errorf("%s: not found %v, want %v (%v)", tc.name, got, tc.notFound, err)
		}
		if got := errors.Is(err, blob.ErrUnavailable); got != tc.unavailable {
			t.Errorf("%s: unavailable %v, want %v (%v)", tc.name, got, tc.unavailable, err)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: the S3 error is not kept: %v", tc.name, err)
		}
	}
	if classify("get", "k", nil) != nil {
		t.Error("no error classified as one")
	}
}
