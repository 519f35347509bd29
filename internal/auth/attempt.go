package auth

import "context"

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

// Attempt records a request's authentication for the request log, which runs outside the faces
// that authenticate: the log puts an empty Attempt in the request's context (WithAttempt) and
// the Authenticator fills it in. It never holds a secret or a token.
type Attempt struct {
	// Face is "registry" (HTTP Basic) or the SigV4 service ("ecr").
	Face string
	// AccessKeyID is the principal's key on success (for a registry token, the key it was issued
	// to) and the key the request claimed otherwise; empty when none could be read.
	AccessKeyID string
	Result      Result
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
