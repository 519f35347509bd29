package ecr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/blob"
	lifecyclepolicy "github.com/lading-registry/lading/internal/lifecycle/policy"
	"github.com/lading-registry/lading/internal/registry"
	"github.com/lading-registry/lading/internal/store"
)

// Error names, as the ECR model and AWS's JSON protocol spell them.
const (
	errServer                   = "ServerException"
	errInvalidParameter         = "InvalidParameterException"
	errValidation               = "ValidationException"
	errSerialization            = "SerializationException"
	errUnknownOperation         = "UnknownOperationException"
	errRepositoryNotFound       = "RepositoryNotFoundException"
	errRepositoryAlreadyExists  = "RepositoryAlreadyExistsException"
	errRepositoryNotEmpty       = "RepositoryNotEmptyException"
	errImageNotFound            = "ImageNotFoundException"
	errImageAlreadyExists       = "ImageAlreadyExistsException"
	errImageTagAlreadyExists    = "ImageTagAlreadyExistsException"
	errImageDigestDoesNotMatch  = "ImageDigestDoesNotMatchException"
	errLayersNotFound           = "LayersNotFoundException"
	errReferencedImagesNotFound = "ReferencedImagesNotFoundException"
	errUploadNotFound           = "UploadNotFoundException"
	errInvalidLayerPart         = "InvalidLayerPartException"
	errInvalidLayer             = "InvalidLayerException"
	errLayerAlreadyExists       = "LayerAlreadyExistsException"
	errEmptyUpload              = "EmptyUploadException"
	errInvalidTagParameter      = "InvalidTagParameterException"
	errTooManyTags              = "TooManyTagsException"
	errRequestEntityTooLarge    = "RequestEntityTooLargeException"
	errThrottling               = "ThrottlingException"
	errLimitExceeded            = "LimitExceededException"
	errLifecyclePolicyNotFound  = "LifecyclePolicyNotFoundException"
	errLifecyclePreviewNotFound = "LifecyclePolicyPreviewNotFoundException"
)

// apiError is an error answered to the client as {"__type": Type, "message": Message} plus any
// extra members the error shape has.
type apiError struct {
	Type    string
	Message string
	Status  int
	Extra   map[string]any
}

func (e *apiError) Error() string { return e.Type + ": " + e.Message }

func newError(typ, format string, args ...any) *apiError {
	status := http.StatusBadRequest
	if typ == errServer {
		status = http.StatusInternalServerError
	}
	return &apiError{Type: typ, Message: fmt.Sprintf(format, args...), Status: status}
}

func (e *apiError) body() []byte {
	m := map[string]any{"__type": e.Type, "message": e.Message}
	for k, v := range e.Extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

// about is what a request concerned, for the messages of domainErrors.
type about struct {
	registry string // the registry id
	repo     string
	digest   string
	tag      string
	upload   string // the upload id as the client sent it
}

// domainErrors is the one mapping from domain errors to ECR's exceptions; the first entry the
// error matches (errors.Is) wins, so specific errors come before the ones they wrap. Messages
// are AWS's, filled in from what the request concerned.
var domainErrors = []struct {
	err     error
	typ     string
	message func(a about, err error) string
}{
	{auth.ErrAccessDenied, errAccessDenied, func(_ about, err error) string { return err.Error() }},
	{store.ErrRepositoryPolicyNotFound, errRepositoryPolicyNotFound, func(a about, _ error) string {
		return fmt.Sprintf("Repository policy does not exist for the repository with name '%s' in the registry with id '%s'", a.repo, a.registry)
	}},
	{store.ErrRegistryPolicyNotFound, errRegistryPolicyNotFound, func(a about, _ error) string {
		return fmt.Sprintf("Registry policy does not exist in the registry with id '%s'", a.registry)
	}},
	{store.ErrRepositoryNotFound, errRepositoryNotFound, func(a about, _ error) string {
		return fmt.Sprintf("The repository with name '%s' does not exist in the registry with id '%s'", a.repo, a.registry)
	}},
	{store.ErrRepositoryExists, errRepositoryAlreadyExists, func(a about, _ error) string {
		return fmt.Sprintf("The repository with name '%s' already exists in the registry with id '%s'", a.repo, a.registry)
	}},
	{store.ErrRepositoryNotEmpty, errRepositoryNotEmpty, func(a about, _ error) string {
		return fmt.Sprintf("The repository with name '%s' in registry with id '%s' cannot be deleted because it still contains images", a.repo, a.registry)
	}},
	{store.ErrImageAlreadyExists, errImageAlreadyExists, func(a about, _ error) string {
		if a.tag == "" {
			return fmt.Sprintf("Image with digest '%s' already exists in the repository with name '%s' in registry with id '%s'", a.digest, a.repo, a.registry)
		}
		return fmt.Sprintf("Image with digest '%s' and tag '%s' already exists in the repository with name '%s' in registry with id '%s'", a.digest, a.tag, a.repo, a.registry)
	}},
	{store.ErrTagImmutable, errImageTagAlreadyExists, func(a about, _ error) string {
		return fmt.Sprintf("The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the repository is immutable.", a.tag, a.repo)
	}},
	{store.ErrBlobUnknown, errLayersNotFound, func(a about, err error) string {
		return fmt.Sprintf("Layers with digests '%s' required for pushing image into repository with name '%s' in the registry with id '%s' do not exist",
			detailOf(err, store.ErrBlobUnknown), a.repo, a.registry)
	}},
	{store.ErrManifestUnknown, errReferencedImagesNotFound, func(a about, err error) string {
		return fmt.Sprintf("Images with digests '%s' referenced by the manifest list do not exist in the repository with name '%s'", detailOf(err, store.ErrManifestUnknown), a.repo)
	}},
	// ECR's model has no size error; it refuses what a manifest says with InvalidParameterException
	// at 'ImageManifest', and LayersNotFoundException is for layers that are absent.
	{store.ErrSizeMismatch, errInvalidParameter, func(_ about, err error) string {
		return fmt.Sprintf("Invalid parameter at 'ImageManifest' failed to satisfy constraint: '%s'", sizeMismatchReason(err))
	}},
	{store.ErrManifestNotFound, errImageNotFound, func(a about, _ error) string {
		return fmt.Sprintf("The image with imageId {imageDigest:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'", a.digest, a.repo, a.registry)
	}},
	{store.ErrUploadNotFound, errUploadNotFound, uploadNotFound},
	{blob.ErrUploadNotFound, errUploadNotFound, uploadNotFound},
	// ECR models no "storage full": LimitExceededException is the closest, and unlike
	// ServerException it does not make the SDKs retry into a full disk.
	{blob.ErrTooLarge, errLimitExceeded, func(_ about, err error) string {
		return fmt.Sprintf("The layer exceeds the registry's size limit (%s); the upload was discarded", err)
	}},
	{blob.ErrInsufficientStorage, errLimitExceeded, func(_ about, err error) string {
		return fmt.Sprintf("The registry is out of storage space (%s); the upload was discarded", err)
	}},
	{registry.ErrManifestTooLarge, errInvalidParameter, func(about, error) string {
		return fmt.Sprintf("Invalid parameter at 'imageManifest' failed to satisfy constraint: 'Member must have length less than or equal to %d'", registry.MaxManifestSize)
	}},
	{registry.ErrInvalidTag, errInvalidParameter, func(about, error) string {
		return "Invalid parameter at 'imageTag' failed to satisfy constraint: 'must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}'"
	}},
	{registry.ErrInvalidDigest, errInvalidParameter, func(about, error) string {
		return "Invalid parameter at 'imageDigest' failed to satisfy constraint: 'Invalid image digest'"
	}},
	{registry.ErrDigestMismatch, errImageDigestDoesNotMatch, func(_ about, err error) string {
		var m *registry.DigestMismatchError
		if !errors.As(err, &m) {
			return err.Error()
		}
		return fmt.Sprintf("Invalid parameter at 'imageDigest' failed to satisfy constraint: 'Provided digest %s does not match the digest of the manifest %s'", m.Pushed, m.Content)
	}},
	{store.ErrLifecyclePolicyNotFound, errLifecyclePolicyNotFound, func(a about, _ error) string {
		return fmt.Sprintf("Lifecycle policy does not exist for the repository with name '%s' in the registry with id '%s'", a.repo, a.registry)
	}},
	{store.ErrLifecyclePreviewNotFound, errLifecyclePreviewNotFound, func(a about, _ error) string {
		return fmt.Sprintf("There is no lifecycle policy preview for the repository with name '%s' in the registry with id '%s'", a.repo, a.registry)
	}},
	{lifecyclepolicy.ErrInvalid, errInvalidParameter, func(_ about, err error) string {
		reason := err.Error()
		var pe *lifecyclepolicy.Error
		if errors.As(err, &pe) {
			reason = pe.Reason
		}
		return fmt.Sprintf("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: %s'", reason)
	}},
	{registry.ErrUnsupportedMediaType, errInvalidParameter, invalidManifest},
	{registry.ErrInvalidManifest, errInvalidParameter, invalidManifest},
}

func uploadNotFound(a about, _ error) string {
	return fmt.Sprintf("The upload with id '%s' does not exist in the repository with name '%s' in the registry with id '%s'", a.upload, a.repo, a.registry)
}

func invalidManifest(_ about, err error) string {
	return fmt.Sprintf("Invalid parameter at 'ImageManifest' failed to satisfy constraint: '%s'", err)
}

// detailOf is what a store error adds after the sentinel's text (the digests it names).
func detailOf(err, sentinel error) string {
	s := err.Error()
	if _, after, ok := strings.Cut(s, sentinel.Error()+": "); ok {
		return after
	}
	return s
}

// domainError turns a domain error into ECR's exception for it, or returns it unchanged (a
// fault of the server, answered as ServerException) when the table has no entry.
func (h *Handler) domainError(err error, a about) error {
	var ae *apiError
	if err == nil || errors.As(err, &ae) {
		return err
	}
	a.registry = h.cfg.RegistryID
	if errors.Is(err, blob.ErrUnavailable) {
		// A ServerException the SDKs retry, with the status that says "later".
		return &apiError{Type: errServer, Message: "Blob storage is unavailable; retry later", Status: http.StatusServiceUnavailable}
	}
	for _, row := range domainErrors {
		if errors.Is(err, row.err) {
			return newError(row.typ, "%s", row.message(a, err))
		}
	}
	return err
}
