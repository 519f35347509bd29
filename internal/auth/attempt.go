package auth

import (
	"context"
	"errors"
)

// Result is how a request's authentication ended, as the request log reports it.
type Result string

// Results of authentication.
const (
	ResultOK        Result = "ok"
	ResultFailed    Result = "failed"
	ResultThrottled Result = "throttled"
	ResultAnonymous Result = "anonymous"
	// ResultError: the credentials could not be checked (the key store failed).
	ResultError Result = "error"
)

// Authorization outcomes, as the request and audit logs report them.
const (
	AuthzAllowed = "allowed"
	AuthzDenied  = "denied"
)

// Attempt records a request's authentication and authorization for the request and audit
// logs, which run outside the faces: the log puts an empty Attempt in the request's context
// (WithAttempt), the Authenticator and the Authorizer fill it in. It never holds a secret or
// a token.
type Attempt struct {
	// Face is "registry" (HTTP Basic) or the SigV4 service ("ecr").
	Face string
	// AccessKeyID is the principal's key on success (for a registry token, the key it was issued
	// to) and the key the request claimed otherwise; empty when none could be read.
	AccessKeyID string
	Result      Result

	// Name is the principal's name, once authorized.
	Name string
	// Action and Resource are what the request was authorized for: the first action allowed,
	// or the one refused.
	Action, Resource string
	// Authz is AuthzAllowed, AuthzDenied or "" (nothing was authorized).
	Authz string
	// Denial is the refusal's message (AWS's words), when refused.
	Denial string
	// ErrorCode is what the face answered when the call failed (NoteError).
	ErrorCode string
}

// decided records an authorization; a refusal overrides what was allowed before it.
func (a *Attempt) decided(p Principal, action, resource string, err error) {
	switch {
	case err == nil && a.Authz == "":
		a.Authz, a.Action, a.Resource = AuthzAllowed, action, resource
	case errors.Is(err, ErrAccessDenied):
		a.Authz, a.Action, a.Resource, a.Denial = AuthzDenied, action, resource, err.Error()
	default:
		return
	}
	a.Name = p.Name
}

// NoteError records the error code a face answered a request with, for the audit log.
func NoteError(ctx context.Context, code string) {
	if a, ok := ctx.Value(attemptKey{}).(*Attempt); ok && a != nil {
		a.ErrorCode = code
	}
}

func (a *Attempt) set(face, keyID string, res Result) {
	a.Face, a.AccessKeyID, a.Result = face, truncate(keyID, maxSubjectName), res
}

type attemptKey struct{}

// WithAttempt returns ctx carrying a, for the Authenticator to fill in.
func WithAttempt(ctx context.Context, a *Attempt) context.Context {
	return context.WithValue(ctx, attemptKey{}, a)
}

// attemptFrom returns the Attempt in ctx, or a throwaway one when nobody asked for it.
func attemptFrom(ctx context.Context) *Attempt {
	if a, ok := ctx.Value(attemptKey{}).(*Attempt); ok && a != nil {
		return a
	}
	return &Attempt{}
}
