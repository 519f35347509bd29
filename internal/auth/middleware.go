package auth

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/lading-registry/lading/internal/store"
)

// RegistryMiddleware authenticates the registry face's requests with HTTP Basic. A request
// without credentials goes on as anonymous, for the face to authorize (a repository policy may
// let anyone pull), except the base endpoint /v2/, which asks for credentials unless
// anonymousPull is set: docker clients probe it and log in when challenged. Wrong credentials
// get 401 with ECR's Basic challenge before any routing, so that they reveal nothing about
// which repositories exist; a source or key that failed too often gets 429 TOOMANYREQUESTS with
// Retry-After, its credentials unchecked.
func RegistryMiddleware(a *Authenticator, anonymousPull bool, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Request(r)
		var throttled *ThrottledError
		switch {
		case err == nil:
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
			return
		case errors.Is(err, ErrNoCredentials):
			if isBase(r.URL.Path) && !anonymousPull {
				Unauthorized(w, r)
				return
			}
			next.ServeHTTP(w, r)
			return
		case errors.As(err, &throttled):
			w.Header().Set("Retry-After", strconv.Itoa(throttled.RetryAfterSeconds()))
			w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			// ECR's registry answers throttling in these words, which docker shows as they are.
			_, _ = w.Write([]byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"Rate exceeded"}]}` + "\n"))
			return
		case errors.Is(err, ErrBadCredentials), errors.Is(err, ErrTokenExpired):
			Unauthorized(w, r)
		case store.Unavailable(err):
			// The keys live in the metadata store: while it is away, "later", not a fault.
			log.ErrorContext(r.Context(), "authentication failed: metadata store unavailable", "err", err)
			w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAVAILABLE","message":"the metadata store is unavailable; retry later"}]}` + "\n"))
		default:
			log.ErrorContext(r.Context(), "authentication failed", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	})
}

func isBase(path string) bool { return path == "/v2" || path == "/v2/" }

// Unauthorized answers 401 with ECR's Basic challenge, asking the client for credentials.
func Unauthorized(w http.ResponseWriter, r *http.Request) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="`+scheme+"://"+r.Host+`/",service="ecr.amazonaws.com"`)
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}` + "\n"))
}
