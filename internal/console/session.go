package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lading-registry/lading/internal/auth"
)

// DefaultSessionTTL is how long a sign-in lasts unless configured: a working day, as a
// registry token.
const DefaultSessionTTL = 12 * time.Hour

// Cookies of the console. The session names the access key and when it expires, signed with
// the session key (auth.SessionKey); the sign-in cookie carries the nonce the sign-in form's
// CSRF token is derived from, before there is a session.
const (
	sessionCookie = "lading_session"
	signInCookie  = "lading_signin"
	csrfField     = "csrf"
	// maxForm bounds what a console form may post.
	maxForm = 64 << 10
)

// claims are what a session cookie says.
type claims struct {
	KeyID   string `json:"k"`
	Expires int64  `json:"e"`
	// Nonce is random per sign-in: the CSRF token of the session's forms is derived from it.
	Nonce string `json:"n"`
}

// sessionCtx is the signed-in caller of a request.
type sessionCtx struct {
	Principal auth.Principal
	CSRF      string
	Expires   time.Time
}

func sign(key []byte, purpose, payload string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(purpose + "\x00" + payload))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func csrfToken(key []byte, nonce string) string { return sign(key, "csrf", nonce) }

func newNonce() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// encodeSession makes a session cookie's value.
func encodeSession(key []byte, c claims) string {
	body, _ := json.Marshal(c)
	payload := base64.RawURLEncoding.EncodeToString(body)
	return payload + "." + sign(key, "session", payload)
}

// Errors of a session cookie.
var (
	errNoSession      = errors.New("no session")
	errSessionExpired = errors.New("session expired")
)

// decodeSession checks a session cookie's signature and expiry.
func decodeSession(key []byte, value string, now time.Time) (claims, error) {
	payload, sig, ok := strings.Cut(value, ".")
	if !ok || len(value) > 1024 || !hmac.Equal([]byte(sig), []byte(sign(key, "session", payload))) {
		return claims{}, errNoSession
	}
	body, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return claims{}, errNoSession
	}
	var c claims
	if err := json.Unmarshal(body, &c); err != nil || c.KeyID == "" || c.Nonce == "" {
		return claims{}, errNoSession
	}
	if now.Unix() >= c.Expires {
		return claims{}, errSessionExpired
	}
	return c, nil
}

// safeNext returns where to go after signing in: a console path of this server, never
// another origin ("//evil", "/\evil", "https://..."); the overview otherwise.
func safeNext(next string) string {
	if len(next) > 2048 || !strings.HasPrefix(next, Prefix) || strings.ContainsAny(next, "\\\r\n\t") {
		return Prefix
	}
	u, err := url.Parse(next)
	if err != nil || u.IsAbs() || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, Prefix) || strings.Contains(u.Path, "..") {
		return Prefix
	}
	return u.RequestURI()
}

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// session wraps a page that needs a signed-in caller: without a valid session a page is
// refused (GET: to the sign-in page, htmx: 401 with HX-Redirect; POST: 403), and every POST
// must carry the session's CSRF token.
func (h *Handler) session(next func(http.ResponseWriter, *http.Request, *sessionCtx)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		s, err := h.currentSession(r)
		if errors.Is(err, errNoSession) || errors.Is(err, errSessionExpired) || errors.Is(err, auth.ErrBadCredentials) {
			h.setCookie(w, r, sessionCookie, "", -1)
			target := Prefix + "signin?next=" + url.QueryEscape(r.URL.RequestURI())
			if errors.Is(err, errSessionExpired) {
				target += "&expired=1"
			}
			switch {
			case r.Method != http.MethodGet && r.Method != http.MethodHead:
				h.render(w, r, nil, http.StatusForbidden, "error", "error", map[string]any{"Status": http.StatusForbidden,
					"Title": "Signed out", "Message": "Your session has ended; sign in again."})
			case r.Header.Get("HX-Request") != "":
				w.Header().Set("HX-Redirect", target)
				w.WriteHeader(http.StatusUnauthorized)
			default:
				http.Redirect(w, r, target, http.StatusSeeOther)
			}
			return
		}
		if err != nil {
			h.fail(w, r, nil, err)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				h.fail(w, r, s, fmt.Errorf("%w: the form could not be read", errBadRequest))
				return
			}
			if !hmac.Equal([]byte(r.PostForm.Get(csrfField)), []byte(s.CSRF)) {
				h.render(w, r, s, http.StatusForbidden, "error", "error", map[string]any{"Status": http.StatusForbidden,
					"Title": "Form refused", "Message": "The form did not carry this session's CSRF token; reload the page and try again."})
				return
			}
		}
		next(w, r.WithContext(auth.WithPrincipal(r.Context(), s.Principal)), s)
	}
}

// currentSession reads the request's session and its key as stored now.
func (h *Handler) currentSession(r *http.Request) (*sessionCtx, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, errNoSession
	}
	key, err := h.cfg.Auth.SessionKey(r.Context())
	if err != nil {
		return nil, err
	}
	cl, err := decodeSession(key, c.Value, h.cfg.Now())
	if err != nil {
		return nil, err
	}
	p, err := h.cfg.Auth.Principal(r.Context(), cl.KeyID)
	if err != nil {
		return nil, err
	}
	return &sessionCtx{Principal: p, CSRF: csrfToken(key, cl.Nonce), Expires: time.Unix(cl.Expires, 0)}, nil
}

// signInPage shows the sign-in form, with a fresh sign-in nonce for its CSRF token.
func (h *Handler) signInPage(w http.ResponseWriter, r *http.Request) {
	h.renderSignIn(w, r, http.StatusOK, "")
}

func (h *Handler) renderSignIn(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	key, err := h.cfg.Auth.SessionKey(r.Context())
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	nonce, err := newNonce()
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	h.setCookie(w, r, signInCookie, nonce+"."+sign(key, "signin", nonce), 3600)
	next := safeNext(r.FormValue("next"))
	if msg == "" && r.URL.Query().Get("expired") == "1" {
		msg = "Your session expired; sign in again."
	}
	h.render(w, r, nil, status, "signin", "signin", map[string]any{"CSRF": csrfToken(key, nonce), "Next": next, "Message": msg,
		"KeyID": r.PostFormValue("access_key_id")})
}

// signIn checks the form's CSRF token (bound to the sign-in cookie) and the access key, and
// starts a session.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.renderSignIn(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	key, err := h.cfg.Auth.SessionKey(r.Context())
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	var nonce, sig string
	if c, err := r.Cookie(signInCookie); err == nil {
		nonce, sig, _ = strings.Cut(c.Value, ".")
	}
	if nonce == "" || !hmac.Equal([]byte(sig), []byte(sign(key, "signin", nonce))) ||
		!hmac.Equal([]byte(r.PostForm.Get(csrfField)), []byte(csrfToken(key, nonce))) {
		h.renderSignIn(w, r, http.StatusForbidden, "The sign-in form expired or was not this server's; try again.")
		return
	}
	p, err := h.cfg.Auth.SignIn(r, strings.TrimSpace(r.PostForm.Get("access_key_id")), r.PostForm.Get("secret_access_key"))
	var throttled *auth.ThrottledError
	switch {
	case errors.As(err, &throttled):
		w.Header().Set("Retry-After", strconv.Itoa(throttled.RetryAfterSeconds()))
		h.renderSignIn(w, r, http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins; try again in %d seconds.", throttled.RetryAfterSeconds()))
		return
	case errors.Is(err, auth.ErrBadCredentials):
		h.renderSignIn(w, r, http.StatusUnauthorized, "Wrong access key id or secret access key.")
		return
	case err != nil:
		h.fail(w, r, nil, err)
		return
	}
	sessionNonce, err := newNonce()
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	exp := h.cfg.Now().Add(h.cfg.SessionTTL)
	h.setCookie(w, r, sessionCookie, encodeSession(key, claims{KeyID: p.AccessKeyID, Expires: exp.Unix(), Nonce: sessionNonce}), int(h.cfg.SessionTTL/time.Second))
	h.setCookie(w, r, signInCookie, "", -1)
	h.cfg.Logger.InfoContext(r.Context(), "console sign-in", "access_key_id", p.AccessKeyID, "name", p.Name)
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

func (h *Handler) signOut(w http.ResponseWriter, r *http.Request, _ *sessionCtx) {
	h.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
}

// principalOf is the request's signed-in principal.
func principalOf(ctx context.Context) auth.Principal {
	p, _ := auth.PrincipalFrom(ctx)
	return p
}
