package findings

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every *ValidationError.
var ErrInvalid = errors.New("invalid request")

// Reasons of a validation failure, as Inspector names them.
const (
	ReasonCannotParse           = "CANNOT_PARSE"
	ReasonFieldValidationFailed = "FIELD_VALIDATION_FAILED"
	ReasonOther                 = "OTHER"
)

// FieldError is one field at fault.
type FieldError struct {
	Name    string
	Message string
}

// ValidationError says why a request is refused and which fields are at fault.
type ValidationError struct {
	Reason string
	Fields []FieldError
	// Message, when set, replaces the summary of the fields.
	Message string
}

func (e *ValidationError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Name + ": " + f.Message
	}
	noun := "errors"
	if len(parts) == 1 {
		noun = "error"
	}
	return fmt.Sprintf("%d validation %s detected: %s", len(parts), noun, strings.Join(parts, "; "))
}

func (e *ValidationError) Unwrap() error { return ErrInvalid }

// Invalid returns a validation error about one field.
func Invalid(reason, field, msg string) *ValidationError {
	return &ValidationError{Reason: reason, Fields: []FieldError{{Name: field, Message: msg}}}
}
