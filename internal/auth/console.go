package auth

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/lading-registry/lading/internal/store"
)

// consoleKeySetting names the key the console signs its session cookies with. Kept in the
// metadata store, sealed with the data directory's secret key as the token key is, so that
// every node accepts a session any node issued.
const consoleKeySetting = "console.session_key"

// SessionKey returns the key console sessions are signed with, made on first use.
func (a *Authenticator) SessionKey(ctx context.Context) ([]byte, error) {
	v, err := a.keys.SettingOrInit(ctx, consoleKeySetting, randomHexKey)
	if err != nil {
		return nil, fmt.Errorf("console session key: %w", err)
	}
	return hex.DecodeString(v)
}

// SignIn authenticates an access key id and secret typed into the console's sign-in form,
// throttled as the registry's Basic authentication is (by the request's source and the
// claimed key): a *ThrottledError refuses it unchecked.
func (a *Authenticator) SignIn(r *http.Request, id, secret string) (Principal, error) {
	const face = "console"
	att := attemptFrom(r.Context())
	claimed := truncate(id, maxSubjectName)
	if id == "" || secret == "" || strings.EqualFold(id, "AWS") {
		// Registry tokens are for docker clients, not people.
		a.limiter.failure(clientSource(r), claimed)
		att.set(face, claimed, ResultFailed)
		return Principal{}, ErrBadCredentials
	}
	source := clientSource(r)
	if wait := a.limiter.wait(source, claimed); wait > 0 {
		att.set(face, claimed, ResultThrottled)
		return Principal{}, &ThrottledError{RetryAfter: wait}
	}
	p, err := a.Basic(r.Context(), id, secret)
	switch {
	case err == nil:
		a.limiter.success(p.AccessKeyID)
		att.set(face, p.AccessKeyID, ResultOK)
	case errors.Is(err, ErrBadCredentials):
		a.limiter.failure(source, claimed)
		att.set(face, claimed, ResultFailed)
	default:
		att.set(face, claimed, ResultError)
	}
	return p, err
}

// Principal returns the principal of an access key as it is stored now (its current policy),
// for a console session that names the key: a deleted key is ErrBadCredentials, which ends
// the session.
func (a *Authenticator) Principal(ctx context.Context, id string) (Principal, error) {
	k, err := a.keys.AccessKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrBadCredentials
	}
	if err != nil {
		return Principal{}, err
	}
	return principalOf(k), nil
}
