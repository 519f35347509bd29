// Package ecr serves Amazon ECR's control API (AWS JSON 1.1, `POST /` with
// `X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Operation>`, SigV4 with service `ecr`):
// repositories, images, layer uploads, authorization tokens and the scanning configuration. It
// validates requests as the service model does, translates them to calls on the metadata and
// blob stores and answers errors under the names ECR gives them.
package ecr

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/report"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// TargetPrefix starts the X-Amz-Target header of every ECR operation.
const TargetPrefix = "AmazonEC2ContainerRegistry_V20150921."

// DownloadPath is where GetDownloadUrlForLayer's URLs point.
const DownloadPath = "/_lading/ecr/layer"

// maxRequestBody bounds a request: a 20 MiB layer part is about 27 MiB once base64-encoded.
const maxRequestBody = 30 << 20

// Metadata is what the ECR face needs from the metadata store.
type Metadata interface {
	CreateRepository(ctx context.Context, r store.Repository) (store.Repository, error)
	GetRepository(ctx context.Context, name string) (store.Repository, error)
	ListRepositories(ctx context.Context, after string, limit int) ([]store.Repository, error)
	DeleteRepository(ctx context.Context, name string, force bool) (store.Repository, error)
	UpdateRepository(ctx context.Context, name string, fn func(*store.Repository) error) (store.Repository, error)
	TagRepository(ctx context.Context, name string, tags map[string]string) error
	UntagRepository(ctx context.Context, name string, keys []string) error
	ResourceTags(ctx context.Context, name string) (map[string]string, error)

	ListImageIDs(ctx context.Context, repo, tagStatus, afterDigest, afterTag string, limit int) ([]store.ImageID, error)
	ListImages(ctx context.Context, repo, tagStatus, afterDigest string, limit int) ([]store.Manifest, error)
	GetImage(ctx context.Context, repo, digest string) (store.Manifest, error)
	GetManifest(ctx context.Context, repo, digest string) (store.Manifest, error)
	ResolveTag(ctx context.Context, repo, tag string) (string, error)
	PutManifest(ctx context.Context, m store.Manifest, refs []store.Reference, tags []string, opts store.PutOptions) (store.PutManifestResult, error)
	DeleteManifest(ctx context.Context, repo, digest string, allowReferenced bool) (store.Manifest, error)
	UntagImage(ctx context.Context, repo, tag string) (store.Manifest, bool, error)
	ReferencingManifest(ctx context.Context, repo, digest string) (store.Manifest, error)

	BlobSize(ctx context.Context, repo, digest string) (int64, error)
	CheckBlob(ctx context.Context, repo, digest string) (int64, error)
	LinkBlob(ctx context.Context, repo, digest string, size int64, create bool) error
	CreateUpload(ctx context.Context, id, repo string, create bool) error
	UploadRepository(ctx context.Context, id string) (string, error)
	TouchUpload(ctx context.Context, id string) error
	DeleteUpload(ctx context.Context, id string) error

	LifecyclePolicy(ctx context.Context, repo string) (store.LifecyclePolicy, error)
	DeleteLifecyclePolicy(ctx context.Context, repo string) (store.LifecyclePolicy, error)
	LifecyclePreview(ctx context.Context, repo string) (store.LifecyclePreview, error)

	ScanningPolicy(ctx context.Context) (policy.Policy, error)
	PutScanningPolicy(ctx context.Context, p policy.Policy) error
}

// Blobs is what the ECR face needs from the blob store.
type Blobs interface {
	Open(ctx context.Context, d digest.Digest) (blob.ReadSeekCloser, error)
	// RedirectURL is a URL of the storage's own for the blob, valid for ttl ("" : none).
	RedirectURL(ctx context.Context, d digest.Digest, ttl time.Duration) (string, error)
	Stat(ctx context.Context, d digest.Digest) (int64, error)
	NewUpload(ctx context.Context) (string, error)
	UploadSize(ctx context.Context, id string) (int64, error)
	Append(ctx context.Context, id string, offset int64, r io.Reader) (int64, error)
	Commit(ctx context.Context, id string, want digest.Digest) (int64, error)
	Cancel(ctx context.Context, id string) error
}

// Authenticator verifies callers and issues what GetAuthorizationToken and
// GetDownloadUrlForLayer hand out.
type Authenticator interface {
	CheckSigV4Header(r *http.Request, policy auth.SigV4Policy) error
	VerifySigV4(r *http.Request, body []byte, policy auth.SigV4Policy) (auth.SigV4Result, error)
	IssueToken(ctx context.Context, p auth.Principal) (string, time.Time, error)
	SignResource(ctx context.Context, resource string, exp time.Time) (string, error)
	VerifyResource(ctx context.Context, resource string, expires int64, signature string) error
}

// Config tunes the ECR face.
type Config struct {
	RegistryID string
	// Region is the region in ARNs; requests may be signed for any region.
	Region string
	// Scans serves the scanning operations; nil answers them as if no image was ever scanned.
	Scans Scans
	// Lifecycle serves the lifecycle policy operations' rules; nil refuses them.
	Lifecycle Lifecycle
	// Authorizer decides every call before its operation runs; nil runs every call (tests of
	// the protocol alone). Policies stores the repository and registry policies.
	Authorizer Authorizer
	Policies   Policies
	// Exploits, when set, says which vulnerabilities are known to be exploited (enhanced
	// findings' exploitAvailable).
	Exploits report.Exploits
	// DownloadURLTTL is how long a GetDownloadUrlForLayer URL works (default one hour).
	DownloadURLTTL time.Duration
	Logger         *slog.Logger
	Now            func() time.Time
}

// Handler serves the ECR API.
type Handler struct {
	meta  Metadata
	blobs Blobs
	auth  Authenticator
	// sigV4 is AWS JSON 1.1's: X-Amz-Target names the operation, so it must be signed.
	sigV4 auth.SigV4Policy
	cfg   Config
	ops   map[string]operation
	// content serves the layers of download URLs.
	content *blob.Server
}

// call is one API request being served.
type call struct {
	r         *http.Request
	op        string
	principal auth.Principal
	region    string // the region the client signed for
}

type operation func(ctx context.Context, c *call, body []byte) (any, error)

// NewHandler returns the ECR face over the given stores.
func NewHandler(meta Metadata, blobs Blobs, authn Authenticator, cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DownloadURLTTL <= 0 {
		cfg.DownloadURLTTL = time.Hour
	}
	h := &Handler{meta: meta, blobs: blobs, auth: authn, sigV4: auth.AWSJSONPolicy("ecr"), cfg: cfg, content: blob.NewServer()}
	h.ops = map[string]operation{
		"CreateRepository":                        h.createRepository,
		"DescribeRepositories":                    h.describeRepositories,
		"DeleteRepository":                        h.deleteRepository,
		"PutImageTagMutability":                   h.putImageTagMutability,
		"PutImageScanningConfiguration":           h.putImageScanningConfiguration,
		"TagResource":                             h.tagResource,
		"UntagResource":                           h.untagResource,
		"ListTagsForResource":                     h.listTagsForResource,
		"ListImages":                              h.listImages,
		"DescribeImages":                          h.describeImages,
		"BatchGetImage":                           h.batchGetImage,
		"BatchDeleteImage":                        h.batchDeleteImage,
		"PutImage":                                h.putImage,
		"BatchCheckLayerAvailability":             h.batchCheckLayerAvailability,
		"GetDownloadUrlForLayer":                  h.getDownloadURLForLayer,
		"InitiateLayerUpload":                     h.initiateLayerUpload,
		"UploadLayerPart":                         h.uploadLayerPart,
		"CompleteLayerUpload":                     h.completeLayerUpload,
		"GetAuthorizationToken":                   h.getAuthorizationToken,
		"DescribeRegistry":                        h.describeRegistry,
		"PutRegistryScanningConfiguration":        h.putRegistryScanningConfiguration,
		"GetRegistryScanningConfiguration":        h.getRegistryScanningConfiguration,
		"BatchGetRepositoryScanningConfiguration": h.batchGetRepositoryScanningConfiguration,
		"StartImageScan":                          h.startImageScan,
		"DescribeImageScanFindings":               h.describeImageScanFindings,
		"PutLifecyclePolicy":                      h.putLifecyclePolicy,
		"GetLifecyclePolicy":                      h.getLifecyclePolicy,
		"DeleteLifecyclePolicy":                   h.deleteLifecyclePolicy,
		"StartLifecyclePolicyPreview":             h.startLifecyclePolicyPreview,
		"GetLifecyclePolicyPreview":               h.getLifecyclePolicyPreview,
	}
	h.registerAuthz()
	return h
}

// Operations lists the operations this face implements.
func (h *Handler) Operations() []string {
	out := make([]string, 0, len(h.ops))
	for name := range h.ops {
		out = append(out, name)
	}
	return out
}

// RouteName names the operation of a request, for metrics labels; unknown operations share one
// name so that clients cannot create labels at will.
func (h *Handler) RouteName(r *http.Request) string {
	if r.Method != http.MethodPost {
		return "ecr_layer_download"
	}
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
	if _, ok := h.ops[op]; !ok {
		return "ecr_unknown"
	}
	return "ecr_" + op
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if strings.HasPrefix(r.URL.Path, DownloadPath+"/") {
			h.download(w, r)
			return
		}
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		h.writeError(w, r, "", newError(errUnknownOperation, "ECR operations are POST /"))
		return
	}
	// Everything but the signature is checked before the body is read, so that clients without
	// a valid key cannot make the server buffer large bodies.
	if err := h.auth.CheckSigV4Header(r, h.sigV4); err != nil {
		h.authError(w, r, err)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		h.writeError(w, r, "", newError(errSerialization, "could not read the request body"))
		return
	}
	if len(body) > maxRequestBody {
		e := newError(errRequestEntityTooLarge, "Request body exceeds %d bytes", maxRequestBody)
		e.Status = http.StatusRequestEntityTooLarge
		h.writeError(w, r, "", e)
		return
	}
	res, err := h.auth.VerifySigV4(r, body, h.sigV4)
	if err != nil {
		h.authError(w, r, err)
		return
	}
	opName, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
	op, ok := h.ops[opName]
	if !ok {
		h.writeError(w, r, opName, newError(errUnknownOperation, "Operation %s is not supported by Lading", quote(r.Header.Get("X-Amz-Target"))))
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	c := &call{r: r, op: opName, principal: res.Principal, region: res.Region}
	h.cfg.Logger.DebugContext(r.Context(), "ECR call", "op", opName, "access_key_id", res.Principal.AccessKeyID, "signing_region", res.Region)
	ctx := auth.WithPrincipal(r.Context(), res.Principal)
	if err := h.authorize(ctx, c, body); err != nil {
		h.writeError(w, r, opName, err)
		return
	}
	out, err := op(ctx, c, body)
	if err != nil {
		h.writeError(w, r, opName, err)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		h.writeError(w, r, opName, err)
		return
	}
	h.writeJSON(w, http.StatusOK, b)
}

// authError answers a SigV4 refusal under AWS's name for it. A throttled caller gets
// ThrottlingException, as AWS's JSON services answer it (HTTP 400, "Rate exceeded"), with
// Retry-After for the clients that read it.
func (h *Handler) authError(w http.ResponseWriter, r *http.Request, err error) {
	var se *auth.SigV4Error
	var te *auth.ThrottledError
	switch {
	case errors.As(err, &se):
		err = newError(se.Code, "%s", se.Message)
	case errors.As(err, &te):
		w.Header().Set("Retry-After", strconv.Itoa(te.RetryAfterSeconds()))
		err = newError(errThrottling, "Rate exceeded")
	}
	h.writeError(w, r, "", err)
}

func (h *Handler) writeJSON(w http.ResponseWriter, status int, b []byte) {
	var id [16]byte
	_, _ = rand.Read(id[:])
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", hex.EncodeToString(id[:]))
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, op string, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		if errors.Is(err, context.Canceled) {
			return
		}
		h.cfg.Logger.ErrorContext(r.Context(), "ECR operation failed", "op", op, "err", err)
		ae = newError(errServer, "An internal error occurred in Lading")
		if store.Unavailable(err) {
			// A ServerException the SDKs retry, with the status that says "later".
			ae = &apiError{Type: errServer, Message: "The metadata store is unavailable; retry later", Status: http.StatusServiceUnavailable}
		}
	}
	auth.NoteError(r.Context(), ae.Type)
	h.writeJSON(w, ae.Status, ae.body())
}

// decode reads a request body into v. Malformed JSON and members of the wrong type are
// SerializationException, as in AWS's JSON protocol; unknown members are ignored.
func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return newError(errSerialization, "Unexpected value type for member '%s'", te.Field)
		}
		return newError(errSerialization, "Could not parse the request body as JSON")
	}
	return nil
}

// --- identities -------------------------------------------------------------------------------

func (c *call) scheme() string {
	if p := c.r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		return p
	}
	if c.r.TLS != nil {
		return "https"
	}
	return "http"
}

// endpoint is this server's URL as the client reached it.
func (c *call) endpoint() string { return c.scheme() + "://" + c.r.Host }

func (h *Handler) arn(repo string) string {
	return "arn:aws:ecr:" + h.cfg.Region + ":" + h.cfg.RegistryID + ":repository/" + repo
}

// repoFromARN returns the repository an ARN names. Any region is accepted (clients sign for
// whatever region they are configured with); the account must be this registry.
func (h *Handler) repoFromARN(arn string) (string, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] != "aws" || parts[2] != "ecr" || parts[3] == "" || parts[4] != h.cfg.RegistryID {
		return "", false
	}
	name, ok := strings.CutPrefix(parts[5], "repository/")
	if !ok || !repoNameRegexp().MatchString(name) {
		return "", false
	}
	return name, true
}

// checkRegistry accepts an absent registry id or this registry's.
func (h *Handler) checkRegistry(id *string) error {
	if id != nil && *id != h.cfg.RegistryID {
		return newError(errInvalidParameter, "Invalid parameter at 'registryId' failed to satisfy constraint: 'registry %s is not this registry (%s)'", *id, h.cfg.RegistryID)
	}
	return nil
}

// repository checks that a request names this registry and an existing repository, and
// returns the repository's name.
func (h *Handler) repository(ctx context.Context, registryID, name *string) (string, error) {
	if err := h.checkRegistry(registryID); err != nil {
		return "", err
	}
	if _, err := h.meta.GetRepository(ctx, *name); err != nil {
		return "", h.storeError(err, *name)
	}
	return *name, nil
}

// storeError is domainError for a request about repo.
func (h *Handler) storeError(err error, repo string) error {
	return h.domainError(err, about{repo: repo})
}

// epoch is a timestamp on the wire: epoch seconds, as a JSON number. The wire shapes that
// DescribeImageScanFindings shares with `lading scan` are internal/report's.
type epoch = report.Epoch

func epochPtr(t time.Time) *epoch { return report.EpochOf(t) }
