package oci

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lading-registry/lading/internal/blob"
)

// TestAnswerUnavailable: a metadata store that is down or restarting is a 503 the client may
// retry, as blob storage that is down is; other failures stay faults of the server.
func TestAnswerUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		status   int
		internal bool
	}{
		{"store restarting", fmt.Errorf("get manifest: %w", &pgconn.PgError{Code: "57P01"}), http.StatusServiceUnavailable, false},
		{"blob storage down", fmt.Errorf("read: %w", blob.ErrUnavailable), http.StatusServiceUnavailable, false},
		{"a fault", errors.New("boom"), http.StatusInternalServerError, true},
	} {
		e, internal := answer(tc.err)
		if e.status != tc.status || internal != tc.internal {
			t.Errorf("%s: %d internal=%v, want %d internal=%v", tc.name, e.status, internal, tc.status, tc.internal)
		}
		if tc.status == http.StatusServiceUnavailable && e.code != codeUnavailable {
			t.Errorf("%s: code %s", tc.name, e.code)
		}
	}
}
