package inspector

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/reports"
	"github.com/lading-registry/lading/internal/suppression"
)

// Error names, as Inspector2's model and AWS's REST front end spell them.
const (
	errValidation       = "ValidationException"
	errInternal         = "InternalServerException"
	errThrottling       = "ThrottlingException"
	errUnknownOperation = "UnknownOperationException"
	errAccessDenied     = "AccessDeniedException"
	errNotFound         = "ResourceNotFoundException"
	errBadRequest       = "BadRequestException"
	// errNotImplemented answers the model's operations Lading does not implement yet.
	errNotImplemented = "NotImplementedException"
)

// apiError is an error answered with its name in X-Amzn-ErrorType and a JSON body of its
// message and members.
type apiError struct {
	Type    string
	Status  int
	Message string
	Extra   map[string]any
}

func (e *apiError) Error() string { return e.Type + ": " + e.Message }

func (e *apiError) body() []byte {
	m := map[string]any{"message": e.Message}
	for k, v := range e.Extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

// domainErrors is the one mapping from domain errors to Inspector's; the first entry the error
// matches (errors.Is) wins.
var domainErrors = []struct {
	err    error
	toWire func(err error) *apiError
}{
	{auth.ErrAccessDenied, func(err error) *apiError {
		return &apiError{Type: errAccessDenied, Status: http.StatusForbidden, Message: err.Error()}
	}},
	{suppression.ErrNotFound, func(err error) *apiError {
		return &apiError{Type: errNotFound, Status: http.StatusNotFound, Message: err.Error()}
	}},
	{suppression.ErrNameTaken, func(err error) *apiError {
		// Inspector refuses a filter name in use as a bad request.
		return &apiError{Type: errBadRequest, Status: http.StatusBadRequest, Message: err.Error()}
	}},
	{reports.ErrNotFound, func(err error) *apiError {
		return &apiError{Type: errNotFound, Status: http.StatusNotFound, Message: err.Error()}
	}},
	{findings.ErrInvalid, func(err error) *apiError {
		ve := &findings.ValidationError{Reason: findings.ReasonOther}
		errors.As(err, &ve)
		fields := make([]map[string]string, len(ve.Fields))
		for i, f := range ve.Fields {
			fields[i] = map[string]string{"name": f.Name, "message": f.Message}
		}
		extra := map[string]any{"reason": ve.Reason}
		if len(fields) > 0 {
			extra["fields"] = fields
		}
		return &apiError{Type: errValidation, Status: http.StatusBadRequest, Message: ve.Error(), Extra: extra}
	}},
}

// wireError returns Inspector's error for err, or nil for a fault of the server.
func (h *Handler) wireError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	for _, row := range domainErrors {
		if errors.Is(err, row.err) {
			return row.toWire(err)
		}
	}
	return nil
}
