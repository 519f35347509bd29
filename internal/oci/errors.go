package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/pullgate"
	"github.com/lading-registry/lading/internal/registry"
	"github.com/lading-registry/lading/internal/store"
)

// Error codes of the distribution spec.
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDenied              = "DENIED"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeTagInvalid          = "TAG_INVALID"
	codeUnsupported         = "UNSUPPORTED"
	codeRangeInvalid        = "RANGE_INVALID" // not in the spec's table, used by Distribution for 416
	codeNotFound            = "NOT_FOUND"     // a path outside the API, as Distribution's router answers it
	codeUnknown             = "UNKNOWN"
	codeUnavailable         = "UNAVAILABLE" // Distribution's code for a 503
)

// apiError is an answer of the spec: a request the face refuses by itself (a malformed digest,
// an unknown route) or a domain error translated through errorTable.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func refuse(status int, code, message string) error {
	return &apiError{status: status, code: code, message: message}
}

func badRequest(code, message string) error { return refuse(http.StatusBadRequest, code, message) }

// errManifestBlobUnknown marks a store refusal of a manifest for a reference it lacks, which the
// spec answers differently from a GET of a missing blob.
var errManifestBlobUnknown = errors.New("manifest references unknown content")

// errorTable is the one mapping from domain errors to the spec's answers; the first entry the
// error matches (errors.Is) wins, so specific errors come before the ones they wrap. An empty
// message takes the error's own text, for errors that say what was refused.
var errorTable = []struct {
	err     error
	status  int
	code    string
	message string
}{
	{errManifestBlobUnknown, http.StatusBadRequest, codeManifestBlobUnknown, ""},
	{registry.ErrManifestTooLarge, http.StatusRequestEntityTooLarge, codeSizeInvalid, ""},
	{registry.ErrDigestMismatch, http.StatusBadRequest, codeDigestInvalid, ""},
	{registry.ErrInvalidDigest, http.StatusBadRequest, codeDigestInvalid, ""},
	{registry.ErrInvalidTag, http.StatusBadRequest, codeTagInvalid, ""},
	{registry.ErrUnsupportedMediaType, http.StatusUnsupportedMediaType, codeManifestInvalid, ""},
	{registry.ErrInvalidManifest, http.StatusBadRequest, codeManifestInvalid, ""},
	{store.ErrRepositoryNotFound, http.StatusNotFound, codeNameUnknown, "repository name not known to registry"},
	{store.ErrBlobUnknown, http.StatusNotFound, codeBlobUnknown, "blob unknown to registry"},
	{store.ErrBlobReferenced, http.StatusConflict, codeDenied, ""}, // the client can delete the manifest first
	{pullgate.ErrRefused, http.StatusForbidden, codeDenied, ""},    // the message names the findings
	{store.ErrSizeMismatch, http.StatusBadRequest, codeSizeInvalid, ""},
	{store.ErrManifestNotFound, http.StatusNotFound, codeManifestUnknown, "manifest unknown"},
	{store.ErrTagNotFound, http.StatusNotFound, codeManifestUnknown, "manifest unknown"},
	{store.ErrTagImmutable, http.StatusBadRequest, codeTagInvalid, "The image tag already exists in the repository and cannot be overwritten because the repository is immutable."},
	{store.ErrUploadNotFound, http.StatusNotFound, codeBlobUploadUnknown, "upload unknown"},
	{blob.ErrUploadNotFound, http.StatusNotFound, codeBlobUploadUnknown, "upload unknown"},
	{blob.ErrDigestMismatch, http.StatusBadRequest, codeDigestInvalid, "provided digest did not match uploaded content"},
	{blob.ErrOffsetMismatch, http.StatusRequestedRangeNotSatisfiable, codeRangeInvalid, "chunk out of order"},
	{blob.ErrTooLarge, http.StatusRequestEntityTooLarge, codeSizeInvalid, ""},
	{blob.ErrInsufficientStorage, http.StatusInsufficientStorage, codeBlobUploadInvalid, ""},
	{blob.ErrCorrupt, http.StatusNotFound, codeBlobUnknown, "blob content is damaged; push it again"}, // a re-push repairs it
	{blob.ErrNotFound, http.StatusNotFound, codeBlobUnknown, "blob content missing"},
	{blob.ErrUnavailable, http.StatusServiceUnavailable, codeUnavailable, "blob storage is unavailable; retry later"},
}

// answer is what the client is told of err, and whether err is a fault of the server.
func answer(err error) (e apiError, internal bool) {
	var ae *apiError
	if errors.As(err, &ae) {
		return *ae, false
	}
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			msg := row.message
			if msg == "" {
				msg = describe(err)
			}
			return apiError{status: row.status, code: row.code, message: msg}, false
		}
	}
	if store.Unavailable(err) {
		return apiError{status: http.StatusServiceUnavailable, code: codeUnavailable, message: "the metadata store is unavailable; retry later"}, false
	}
	return apiError{status: http.StatusInternalServerError, code: codeUnknown, message: "internal error"}, true
}

// describe is the message of an error that says what was refused.
func describe(err error) string {
	var ref *store.BlobReferencedError
	switch {
	case errors.As(err, &ref):
		return fmt.Sprintf("blob %s is referenced by manifest %s in repository %s; delete the manifest first", ref.Digest, ref.Manifest, ref.Repository)
	case errors.Is(err, store.ErrBlobReferenced):
		return err.Error() + "; delete the manifests that reference it first"
	case errors.Is(err, blob.ErrTooLarge):
		return err.Error() + "; the upload was discarded"
	case errors.Is(err, blob.ErrInsufficientStorage):
		return "the registry is out of storage space (" + err.Error() + "); the upload was discarded"
	}
	return err.Error()
}

// fail answers a request that ended in err. Faults of the server are logged and answered
// without their text; a request whose client went away gets no answer.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return
	}
	if deniedAnswer(w, r, err) {
		return
	}
	e, internal := answer(err)
	auth.NoteError(r.Context(), e.code)
	switch {
	case internal:
		h.cfg.Logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	case errors.Is(err, blob.ErrCorrupt):
		h.cfg.Logger.ErrorContext(r.Context(), "refusing to serve a damaged blob", "path", r.URL.Path, "err", err)
	case errors.Is(err, blob.ErrInsufficientStorage):
		h.cfg.Logger.ErrorContext(r.Context(), "upload refused: storage full", "path", r.URL.Path, "err", err)
	case errors.Is(err, blob.ErrUnavailable):
		h.cfg.Logger.ErrorContext(r.Context(), "blob storage unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
	case store.Unavailable(err):
		h.cfg.Logger.ErrorContext(r.Context(), "metadata store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, e.status, e.code, e.message)
}

type specError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError answers with the spec's error body.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Errors []specError `json:"errors"`
	}{[]specError{{Code: code, Message: message}}})
}
