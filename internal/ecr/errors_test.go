package ecr

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/registry"
	"github.com/lading-registry/lading/internal/store"
)

// TestDomainErrorTable: every domain error a face can meet becomes its ECR exception, wrapped or
// not, with a message that names what the request concerned; anything else stays a server fault.
func TestDomainErrorTable(t *testing.T) {
	h := &Handler{cfg: Config{RegistryID: "123456789012"}}
	a := about{repo: "team/app", digest: "sha256:abc", tag: "v1", upload: "0123-upload"}
	for _, tc := range []struct {
		err  error
		typ  string
		says string
	}{
		{store.ErrRepositoryNotFound, errRepositoryNotFound, "'team/app' does not exist in the registry with id '123456789012'"},
		{store.ErrRepositoryExists, errRepositoryAlreadyExists, "'team/app' already exists"},
		{store.ErrRepositoryNotEmpty, errRepositoryNotEmpty, "still contains images"},
		{store.ErrImageAlreadyExists, errImageAlreadyExists, "digest 'sha256:abc' and tag 'v1'"},
		{store.ErrTagImmutable, errImageTagAlreadyExists, "tag 'v1' already exists in the 'team/app' repository"},
		{fmt.Errorf("%w: sha256:l1", store.ErrBlobUnknown), errLayersNotFound, "Layers with digests 'sha256:l1'"},
		{fmt.Errorf("%w: sha256:m1", store.ErrManifestUnknown), errReferencedImagesNotFound, "Images with digests 'sha256:m1'"},
		{&store.SizeMismatchError{Kind: store.RefLayer, Digest: "sha256:l1", DescriptorSize: 2, StoredSize: 1}, errInvalidParameter, "Layer with digest sha256:l1 has size 2"},
		{store.ErrManifestNotFound, errImageNotFound, "imageDigest:'sha256:abc'"},
		{store.ErrUploadNotFound, errUploadNotFound, "upload with id '0123-upload'"},
		{blob.ErrUploadNotFound, errUploadNotFound, "upload with id '0123-upload'"},
		{blob.ErrTooLarge, errLimitExceeded, "size limit"},
		{blob.ErrInsufficientStorage, errLimitExceeded, "out of storage space"},
		{registry.ErrManifestTooLarge, errInvalidParameter, "'imageManifest'"},
		{registry.ErrInvalidTag, errInvalidParameter, "'imageTag'"},
		{registry.ErrInvalidDigest, errInvalidParameter, "'imageDigest'"},
		{&registry.DigestMismatchError{Pushed: digest.FromString("a"), Content: digest.FromString("b")}, errImageDigestDoesNotMatch, "does not match the digest of the manifest"},
		{registry.ErrUnsupportedMediaType, errInvalidParameter, "'ImageManifest'"},
		{registry.ErrInvalidManifest, errInvalidParameter, "'ImageManifest'"},
	} {
		for _, err := range []error{tc.err, fmt.Errorf("context: %w", tc.err)} {
			var ae *apiError
			if !errors.As(h.domainError(err, a), &ae) || ae.Type != tc.typ || !strings.Contains(ae.Message, tc.says) {
				t.Errorf("%v: got %v, want %s saying %q", err, h.domainError(err, a), tc.typ, tc.says)
			}
		}
	}
	fault := errors.New("disk on fire")
	if got := h.domainError(fault, a); got != fault {
		t.Errorf("a server fault became %v", got)
	}
	already := newError(errValidation, "refused by the face")
	if got := h.domainError(already, a); got != error(already) {
		t.Errorf("an answer of the face became %v", got)
	}
}
