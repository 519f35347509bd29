package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

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
	codeTooManyRequests     = "TOOMANYREQUESTS"
	codeUnknown             = "UNKNOWN"
)

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

// blobReferencedMessage tells the client which manifest holds the blob and what to do.
func blobReferencedMessage(err error) string {
	var ref *store.BlobReferencedError
	if !errors.As(err, &ref) {
		return err.Error() + "; delete the manifests that reference it first"
	}
	return fmt.Sprintf("blob %s is referenced by manifest %s in repository %s; delete the manifest first", ref.Digest, ref.Manifest, ref.Repository)
}
