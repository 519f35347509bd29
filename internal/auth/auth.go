// Package auth holds Lading's identities: access keys (an id and a secret, as AWS issues them),
// the bootstrap admin key, HTTP Basic authentication for the registry face, registry tokens
// (what GetAuthorizationToken returns) and SigV4 verification for the API faces.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lading-registry/lading/internal/store"
)

// Errors of authentication.
var (
	ErrNoCredentials  = errors.New("no credentials")
	ErrBadCredentials = errors.New("invalid credentials")
	ErrTokenExpired   = errors.New("token expired")
)

// KeyStore is what authentication needs from the metadata store.
type KeyStore interface {
	AccessKey(ctx context.Context, id string) (store.AccessKey, error)
	CreateAccessKey(ctx context.Context, k store.AccessKey) error
	ListAccessKeys(ctx context.Context) ([]store.AccessKey, error)
	DeleteAccessKey(ctx context.Context, id string) error
	UpdateAccessKeyPolicy(ctx context.Context, id, preset, policy string) error
	SettingOrInit(ctx context.Context, key string, init func() (string, error)) (string, error)
}

// Principal is the caller of a request: an access key, with its name and its policy as they
// were stored when the request was authenticated, or the zero Principal, anonymous.
type Principal struct {
	AccessKeyID string
	// Name is the key's IAM user name.
	Name string
	// Preset names the key's policy among the presets; when empty, Policy is the document.
	Preset string
	Policy string
}

// Anonymous reports a caller without credentials.
func (p Principal) Anonymous() bool { return p.AccessKeyID == "" }

func principalOf(k store.AccessKey) Principal {
	return Principal{AccessKeyID: k.ID, Name: k.Name, Preset: k.Preset, Policy: k.Policy}
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller of a request, if authenticated.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// NewAccessKey generates a key in AWS's shape: a 20-character id starting with "LAK" (instead of
// AWS's "AKIA") and a 40-character secret.
func NewAccessKey(description string) (store.AccessKey, error) {
	const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, 17+30)
	if _, err := rand.Read(b); err != nil {
		return store.AccessKey{}, err
	}
	id := []byte("LAK")
	for _, c := range b[:17] {
		id = append(id, idAlphabet[int(c)%len(idAlphabet)])
	}
	secret := base64.StdEncoding.EncodeToString(b[17:])[:40]
	secret = strings.NewReplacer("+", "x", "/", "y").Replace(secret)
	return store.AccessKey{ID: string(id), Secret: secret, Description: description, CreatedAt: time.Now().UTC()}, nil
}

// CredentialsFile is the name, in the data directory, of the generated admin credentials.
const CredentialsFile = "admin-credentials"

// BootstrapName is the name the bootstrap admin key takes when no other key has it.
const BootstrapName = "admin"

// Bootstrap makes sure an admin key exists. With id and secret given (from the environment) it
// registers that pair, with full access (the environment is authoritative: a policy narrowed
// since is widened again); otherwise, when no key exists yet, it generates one and writes it
// to a 0600 file in dataDir, logging the file's path but never the secret.
func Bootstrap(ctx context.Context, keys KeyStore, dataDir, id, secret string, log *slog.Logger) error {
	if id != "" || secret != "" {
		if id == "" || secret == "" {
			return errors.New("LADING_ADMIN_ACCESS_KEY_ID and LADING_ADMIN_SECRET_ACCESS_KEY must be set together")
		}
		// Nodes sharing a store start together with the same environment: the one that
		// loses the race to create the key finds it made by another, and checks it again.
		err := bootstrapFromEnv(ctx, keys, id, secret)
		for attempt := 1; errors.Is(err, store.ErrAccessKeyFound) && attempt < 3; attempt++ {
			err = bootstrapFromEnv(ctx, keys, id, secret)
		}
		return err
	}
	return bootstrapGenerated(ctx, keys, dataDir, log)
}

// bootstrapFromEnv registers the environment's admin key id with secret.
func bootstrapFromEnv(ctx context.Context, keys KeyStore, id, secret string) error {
	existing, err := keys.AccessKey(ctx, id)
	switch {
	case err == nil:
		if existing.Secret != secret {
			// The environment is authoritative for the bootstrap admin: rotate to it.
			if err := keys.DeleteAccessKey(ctx, id); err != nil {
				return err
			}
			return keys.CreateAccessKey(ctx, store.AccessKey{ID: id, Secret: secret, Description: "bootstrap admin (environment)",
				Name: existing.Name, Preset: PresetAdministrator})
		}
		if existing.Preset != PresetAdministrator || existing.Policy != "" {
			return keys.UpdateAccessKeyPolicy(ctx, id, PresetAdministrator, "")
		}
		return nil
	case errors.Is(err, store.ErrNotFound):
		name, err := bootstrapName(ctx, keys, id)
		if err != nil {
			return err
		}
		return keys.CreateAccessKey(ctx, store.AccessKey{ID: id, Secret: secret, Description: "bootstrap admin (environment)",
			Name: name, Preset: PresetAdministrator})
	default:
		return err
	}
}

// bootstrapGenerated makes an admin key, written to a file in dataDir, when no key exists.
func bootstrapGenerated(ctx context.Context, keys KeyStore, dataDir string, log *slog.Logger) error {
	existing, err := keys.ListAccessKeys(ctx)
	if err != nil {
		return err
	}
	path := filepath.Join(dataDir, CredentialsFile)
	if len(existing) > 0 {
		if _, err := os.Stat(path); err == nil {
			log.Info("admin credentials", "file", path)
		}
		return nil
	}
	k, err := NewAccessKey("bootstrap admin (generated)")
	if err != nil {
		return err
	}
	k.Name, k.Preset = BootstrapName, PresetAdministrator
	content := fmt.Sprintf("LADING_ADMIN_ACCESS_KEY_ID=%s\nLADING_ADMIN_SECRET_ACCESS_KEY=%s\n", k.ID, k.Secret)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("write admin credentials: %w", err)
	}
	if err := keys.CreateAccessKey(ctx, k); err != nil {
		return err
	}
	// Warn, so that it shows at every log level: the operator needs this path once.
	log.Warn("generated admin credentials; the secret is only in this file", "file", path, "access_key_id", k.ID)
	return nil
}

// bootstrapName is BootstrapName, or the key's id when another key has that name.
func bootstrapName(ctx context.Context, keys KeyStore, id string) (string, error) {
	all, err := keys.ListAccessKeys(ctx)
	if err != nil {
		return "", err
	}
	for _, k := range all {
		if k.Name == BootstrapName {
			return id, nil
		}
	}
	return BootstrapName, nil
}

// Authenticator checks credentials. Its request-level methods (Request, CheckSigV4Header,
// VerifySigV4) slow down failed authentication: after a few failures from one source or for one
// access key, requests from it or for it are refused for a growing while without their
// credentials being checked (a *ThrottledError).
type Authenticator struct {
	keys    KeyStore
	now     func() time.Time
	limiter *limiter
}

// Options tunes an Authenticator.
type Options struct {
	// Now is the server clock; nil is time.Now.
	Now      func() time.Time
	Throttle ThrottleConfig
}

// NewAuthenticator returns an Authenticator over keys.
func NewAuthenticator(keys KeyStore, opts Options) *Authenticator {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Authenticator{keys: keys, now: opts.Now, limiter: newLimiter(opts.Throttle, opts.Now)}
}

// Secret returns the secret of an access key, for SigV4 verification.
func (a *Authenticator) Secret(ctx context.Context, id string) (string, error) {
	k, err := a.key(ctx, id)
	return k.Secret, err
}

// key returns an access key; an unknown one is ErrBadCredentials.
func (a *Authenticator) key(ctx context.Context, id string) (store.AccessKey, error) {
	k, err := a.keys.AccessKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.AccessKey{}, ErrBadCredentials
	}
	return k, err
}

// Basic authenticates HTTP Basic credentials: an access key id and its secret, or the user
// "AWS" with a registry token.
func (a *Authenticator) Basic(ctx context.Context, user, password string) (Principal, error) {
	if user == "AWS" {
		return a.verifyToken(ctx, password)
	}
	k, err := a.keys.AccessKey(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrBadCredentials
	}
	if err != nil {
		return Principal{}, err
	}
	if subtle.ConstantTimeCompare([]byte(k.Secret), []byte(password)) != 1 {
		return Principal{}, ErrBadCredentials
	}
	return principalOf(k), nil
}

// Request authenticates an HTTP request's Basic credentials, throttling failures by the
// request's source and claimed key, and fills in the request's Attempt. Requests without
// credentials (ErrNoCredentials) are neither counted nor throttled: every docker client probes
// anonymously first.
func (a *Authenticator) Request(r *http.Request) (Principal, error) {
	const face = "registry"
	att := attemptFrom(r.Context())
	user, pass, ok := r.BasicAuth()
	if !ok {
		att.set(face, "", ResultAnonymous)
		return Principal{}, ErrNoCredentials
	}
	claimed := user
	if user == "AWS" {
		claimed = tokenKeyID(pass)
	}
	claimed = truncate(claimed, maxSubjectName)
	source := clientSource(r)
	if wait := a.limiter.wait(source, claimed); wait > 0 {
		att.set(face, claimed, ResultThrottled)
		return Principal{}, &ThrottledError{RetryAfter: wait}
	}
	p, err := a.Basic(r.Context(), user, pass)
	switch {
	case err == nil:
		a.limiter.success(p.AccessKeyID)
		att.set(face, p.AccessKeyID, ResultOK)
	case errors.Is(err, ErrBadCredentials), errors.Is(err, ErrTokenExpired):
		a.limiter.failure(source, claimed)
		att.set(face, claimed, ResultFailed)
	default:
		att.set(face, claimed, ResultError)
	}
	return p, err
}

// TokenTTL is how long a registry token is valid, as on ECR.
const TokenTTL = 12 * time.Hour

const tokenKeySetting = "auth.token_key"

func (a *Authenticator) tokenKey(ctx context.Context) ([]byte, error) {
	v, err := a.keys.SettingOrInit(ctx, tokenKeySetting, func() (string, error) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		return hex.EncodeToString(b), nil
	})
	if err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	return hex.DecodeString(v)
}

type tokenClaims struct {
	AccessKeyID string `json:"k"`
	Expires     int64  `json:"e"`
}

// IssueToken returns a registry password for p, valid for TokenTTL, and its expiry. The token is
// signed with a key kept in the metadata store, so every node accepts it; it holds no ':' so
// that "AWS:<token>" splits as the AWS CLI expects.
func (a *Authenticator) IssueToken(ctx context.Context, p Principal) (string, time.Time, error) {
	key, err := a.tokenKey(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := a.now().Add(TokenTTL).Truncate(time.Second)
	body, _ := json.Marshal(tokenClaims{AccessKeyID: p.AccessKeyID, Expires: exp.Unix()})
	payload := base64.RawURLEncoding.EncodeToString(body)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), exp, nil
}

// tokenKeyID returns the key id a registry token claims to be issued to, without verifying it,
// for throttling and logging; "" when the token does not parse.
func tokenKeyID(token string) string {
	payload, _, _ := strings.Cut(token, ".")
	body, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return ""
	}
	var c tokenClaims
	if json.Unmarshal(body, &c) != nil {
		return ""
	}
	return c.AccessKeyID
}

func (a *Authenticator) verifyToken(ctx context.Context, token string) (Principal, error) {
	payload, sig, ok := strings.Cut(token, ".")
	if !ok {
		return Principal{}, ErrBadCredentials
	}
	key, err := a.tokenKey(ctx)
	if err != nil {
		return Principal{}, err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(payload))
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return Principal{}, ErrBadCredentials
	}
	body, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return Principal{}, ErrBadCredentials
	}
	var c tokenClaims
	if err := json.Unmarshal(body, &c); err != nil {
		return Principal{}, ErrBadCredentials
	}
	if a.now().Unix() >= c.Expires {
		return Principal{}, ErrTokenExpired
	}
	// A token dies with the key that obtained it, and carries only its identity: what it may do
	// is the key's policy of the moment, read here at every request.
	k, err := a.keys.AccessKey(ctx, c.AccessKeyID)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrBadCredentials
	}
	if err != nil {
		return Principal{}, err
	}
	return principalOf(k), nil
}
