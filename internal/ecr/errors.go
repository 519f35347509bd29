package ecr

import (
	"encoding/json"
	"fmt"
	"net/http"
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
