// Package oci serves the OCI Distribution API (distribution-spec v1.1) under /v2/: blobs,
// chunked and monolithic uploads, cross-repository mounts, manifests and indexes, tags, the
// catalog and the referrers API. It translates HTTP to calls on the blob and metadata stores and
// holds no other rules.
package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/pullgate"
	"github.com/lading-registry/lading/internal/registry"
	"github.com/lading-registry/lading/internal/store"
)

// Metadata is what the registry face needs from the metadata store.
type Metadata interface {
	LinkBlob(ctx context.Context, repo, digest string, size int64, create bool) error
	BlobSize(ctx context.Context, repo, digest string) (int64, error)
	CheckBlob(ctx context.Context, repo, digest string) (int64, error)
	MountBlob(ctx context.Context, repo, from, digest string, create bool) (int64, error)
	UnlinkBlob(ctx context.Context, repo, digest string) error
	CreateUpload(ctx context.Context, id, repo string, create bool) error
	UploadRepository(ctx context.Context, id string) (string, error)
	TouchUpload(ctx context.Context, id string) error
	DeleteUpload(ctx context.Context, id string) error
	PutManifest(ctx context.Context, m store.Manifest, refs []store.Reference, tags []string, opts store.PutOptions) (store.PutManifestResult, error)
	GetManifest(ctx context.Context, repo, digest string) (store.Manifest, error)
	ResolveTag(ctx context.Context, repo, tag string) (string, error)
	MarkPulled(ctx context.Context, m store.Manifest, at time.Time) error
	DeleteManifest(ctx context.Context, repo, digest string, allowReferenced bool) (store.Manifest, error)
	DeleteTag(ctx context.Context, repo, tag string) (string, error)
	ListTags(ctx context.Context, repo, after string, limit int) ([]string, error)
	ListRepositories(ctx context.Context, after string, limit int) ([]store.Repository, error)
	RepositoryExists(ctx context.Context, name string) (bool, error)
	Referrers(ctx context.Context, repo, digest string) ([]store.Descriptor, error)
	BlobRepositories(ctx context.Context, digest string, limit int) ([]string, error)
}

// Blobs is what the registry face needs from the blob store.
type Blobs interface {
	Open(ctx context.Context, d digest.Digest) (blob.ReadSeekCloser, error)
	Stat(ctx context.Context, d digest.Digest) (int64, error)
	NewUpload(ctx context.Context) (string, error)
	UploadSize(ctx context.Context, id string) (int64, error)
	Append(ctx context.Context, id string, offset int64, r io.Reader) (int64, error)
	Commit(ctx context.Context, id string, want digest.Digest) (int64, error)
	Cancel(ctx context.Context, id string) error
	// RedirectURL is where a client may fetch the blob directly ("" : serve it here).
	RedirectURL(ctx context.Context, d digest.Digest, ttl time.Duration) (string, error)
}

// redirectTTL is how long a blob GET's redirect URL works: long enough for a slow layer's
// download to start, as CNCF Distribution's default.
const redirectTTL = 20 * time.Minute

// Config tunes the registry face.
type Config struct {
	CreateOnPush bool
	// Authorizer decides every request before it is served; nil serves every request (tests
	// of the protocol alone).
	Authorizer Authorizer
	Logger     *slog.Logger
	Now        func() time.Time
	// PullGate, when set, decides every manifest GET and HEAD (internal/pullgate).
	PullGate PullGate
}

// PullGate refuses pulls of images with findings its policy does not accept.
type PullGate interface {
	Check(ctx context.Context, p pullgate.Caller, repo, digest string) error
}

// Handler serves /v2/.
type Handler struct {
	meta    Metadata
	blobs   Blobs
	cfg     Config
	content *blob.Server
}

// NewHandler returns the registry face over the given stores.
func NewHandler(meta Metadata, blobs Blobs, cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handler{meta: meta, blobs: blobs, cfg: cfg, content: blob.NewServer()}
}

// RouteName names the operation of a request, for metrics labels.
func RouteName(r *http.Request) string {
	rt, ok := parsePath(r.URL.Path)
	if !ok {
		return "v2_unknown"
	}
	return "v2_" + rt.kind
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if err := h.route(w, r); err != nil {
		h.fail(w, r, err)
	}
}

// route serves one request. A handler returns an error only before it has written its answer,
// which fail then writes from the error table.
func (h *Handler) route(w http.ResponseWriter, r *http.Request) error {
	rt, ok := parsePath(r.URL.Path)
	if !ok {
		return refuse(http.StatusNotFound, codeNotFound, "no route for "+r.Method+" "+r.URL.Path)
	}
	if rt.kind != "base" && rt.kind != "catalog" && !registry.ValidRepositoryName(rt.name) {
		return badRequest(codeNameInvalid, "invalid repository name")
	}
	if err := h.authorize(r, rt); err != nil {
		return err
	}
	type op struct{ kind, method string }
	switch (op{rt.kind, r.Method}) {
	case op{"base", http.MethodGet}, op{"base", http.MethodHead}:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
		return nil
	case op{"catalog", http.MethodGet}:
		return h.catalog(w, r)
	case op{"tags", http.MethodGet}:
		return h.listTags(w, r, rt.name)
	case op{"manifest", http.MethodGet}, op{"manifest", http.MethodHead}:
		return h.getManifest(w, r, rt.name, rt.ref)
	case op{"manifest", http.MethodPut}:
		return h.putManifest(w, r, rt.name, rt.ref)
	case op{"manifest", http.MethodDelete}:
		return h.deleteManifest(w, r, rt.name, rt.ref)
	case op{"blob", http.MethodGet}, op{"blob", http.MethodHead}:
		return h.getBlob(w, r, rt.name, rt.ref)
	case op{"blob", http.MethodDelete}:
		return h.deleteBlob(w, r, rt.name, rt.ref)
	case op{"uploads", http.MethodPost}:
		return h.startUpload(w, r, rt.name)
	case op{"upload", http.MethodGet}:
		return h.uploadStatus(w, r, rt.name, rt.ref)
	case op{"upload", http.MethodPatch}:
		return h.patchUpload(w, r, rt.name, rt.ref)
	case op{"upload", http.MethodPut}:
		return h.finishUpload(w, r, rt.name, rt.ref)
	case op{"upload", http.MethodDelete}:
		return h.cancelUpload(w, r, rt.name, rt.ref)
	case op{"referrers", http.MethodGet}:
		return h.referrers(w, r, rt.name, rt.ref)
	}
	return refuse(http.StatusMethodNotAllowed, codeUnsupported, "method not allowed")
}

var errInvalidDigest = badRequest(codeDigestInvalid, "invalid digest")

// parseDigest accepts only digests of algorithms the blob store can verify.
func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", errInvalidDigest
	}
	return d, nil
}

// --- blobs ---------------------------------------------------------------------------------

func (h *Handler) getBlob(w http.ResponseWriter, r *http.Request, repo, ref string) error {
	d, err := parseDigest(ref)
	if err != nil {
		return err
	}
	lookup := h.meta.BlobSize
	if r.Method == http.MethodHead {
		// A client asking before an upload skips it on 200: CheckBlob keeps the link from
		// garbage collection for a grace period, while the client pushes its manifest.
		lookup = h.meta.CheckBlob
	}
	size, err := lookup(r.Context(), repo, d.String())
	if err != nil {
		return err
	}
	hdr := w.Header()
	if r.Method == http.MethodHead {
		// Only the size is asked of the storage: opening the blob would start a download
		// (S3: a GET) that is never read.
		if err := h.checkStoredSize(r.Context(), d, size); err != nil {
			return err
		}
		setBlobHeaders(hdr, d)
		hdr.Set("Content-Length", strconv.FormatInt(size, 10))
		hdr.Set("Accept-Ranges", "bytes")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if redirected, err := h.redirectBlob(w, r, d, size); redirected || err != nil {
		return err
	}
	f, err := h.blobs.Open(r.Context(), d)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := blob.CheckSize(f, size); err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	setBlobHeaders(hdr, d)
	h.content.ServeContent(w, r, f)
	return nil
}

// checkStoredSize confirms, asking the storage for the size only, that blob d holds the size
// recorded when it was verified: a blob that differs was damaged after its commit.
func (h *Handler) checkStoredSize(ctx context.Context, d digest.Digest, size int64) error {
	stored, err := h.blobs.Stat(ctx, d)
	if err != nil {
		return err
	}
	if stored != size {
		return fmt.Errorf("blob %s: %w: %d bytes stored, %d recorded", d, blob.ErrCorrupt, stored, size)
	}
	return nil
}

// setBlobHeaders sets the headers of a blob's GET or HEAD.
func setBlobHeaders(hdr http.Header, d digest.Digest) {
	hdr.Set("Docker-Content-Digest", d.String())
	hdr.Set("Content-Type", "application/octet-stream")
	hdr.Set("ETag", `"`+d.String()+`"`)
	hdr.Set("Cache-Control", "max-age=31536000")
}

// redirectBlob answers a blob GET with a redirect to the storage's own URL, when it gives one;
// the blob's size is checked first, as it is before serving it here.
func (h *Handler) redirectBlob(w http.ResponseWriter, r *http.Request, d digest.Digest, size int64) (bool, error) {
	u, err := h.blobs.RedirectURL(r.Context(), d, redirectTTL)
	if err != nil || u == "" {
		return false, err
	}
	if err := h.checkStoredSize(r.Context(), d, size); err != nil {
		return false, err
	}
	w.Header().Set("Docker-Content-Digest", d.String())
	http.Redirect(w, r, u, http.StatusTemporaryRedirect)
	return true, nil
}

func (h *Handler) deleteBlob(w http.ResponseWriter, r *http.Request, repo, ref string) error {
	d, err := parseDigest(ref)
	if err != nil {
		return err
	}
	if err := h.meta.UnlinkBlob(r.Context(), repo, d.String()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// --- uploads -------------------------------------------------------------------------------

func uploadLocation(repo, id string) string { return "/v2/" + repo + "/blobs/uploads/" + id }

func setUploadHeaders(w http.ResponseWriter, repo, id string, size int64) {
	w.Header().Set("Location", uploadLocation(repo, id))
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Range", fmt.Sprintf("0-%d", max(size-1, 0)))
}

func (h *Handler) blobCreated(w http.ResponseWriter, repo string, d digest.Digest) {
	w.Header().Set("Location", "/v2/"+repo+"/blobs/"+d.String())
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func (h *Handler) startUpload(w http.ResponseWriter, r *http.Request, repo string) error {
	ctx := r.Context()
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		if mounted, err := h.tryMount(w, r, repo, mount, q.Get("from")); mounted || err != nil {
			return err
		}
		// Not mountable: the spec says to fall back to an upload session.
	}
	var d digest.Digest
	if ds := q.Get("digest"); ds != "" { // a monolithic upload in the POST itself
		var err error
		if d, err = parseDigest(ds); err != nil {
			return err
		}
	}
	id, err := h.blobs.NewUpload(ctx)
	if err != nil {
		return err
	}
	if err := h.meta.CreateUpload(ctx, id, repo, h.cfg.CreateOnPush); err != nil {
		_ = h.blobs.Cancel(ctx, id)
		return err
	}
	if d != "" {
		if _, err := h.blobs.Append(ctx, id, 0, r.Body); err != nil {
			h.dropUpload(ctx, id)
			return err
		}
		return h.commit(w, r, repo, id, d)
	}
	setUploadHeaders(w, repo, id, 0)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// tryMount links an existing blob into repo and answers 201; it reports false, with nothing
// written, when the blob cannot be mounted.
func (h *Handler) tryMount(w http.ResponseWriter, r *http.Request, repo, mount, from string) (bool, error) {
	ctx := r.Context()
	d, err := digest.Parse(mount)
	if err != nil {
		return false, nil
	}
	if from == "" {
		// Without "from", mount from a repository holding the blob that the caller may read.
		repos, err := h.meta.BlobRepositories(ctx, d.String(), 100)
		if err != nil {
			return false, err
		}
		for _, repo := range repos {
			if h.mayRead(ctx, repo) {
				from = repo
				break
			}
		}
	}
	// A source the caller may not read is not mounted from: the client uploads the blob.
	if from == "" || !registry.ValidRepositoryName(from) || !h.mayRead(ctx, from) {
		return false, nil
	}
	size, err := h.meta.BlobSize(ctx, from, d.String())
	if err != nil {
		return false, nil
	}
	// Content that no longer matches its record is not mounted: the client then uploads it,
	// which repairs it.
	if stored, err := h.blobs.Stat(ctx, d); err != nil || stored != size {
		return false, nil
	}
	// The store links only if the source link still exists: garbage collection may have
	// removed it (and be removing the file) since it was read above; then this is an upload.
	if _, err := h.meta.MountBlob(ctx, repo, from, d.String(), h.cfg.CreateOnPush); errors.Is(err, store.ErrBlobUnknown) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	h.blobCreated(w, repo, d)
	return true, nil
}

// dropUpload discards a session and its record.
func (h *Handler) dropUpload(ctx context.Context, id string) {
	_ = h.blobs.Cancel(ctx, id)
	_ = h.meta.DeleteUpload(ctx, id)
}

// checkUpload confirms the session exists and belongs to repo.
func (h *Handler) checkUpload(ctx context.Context, repo, id string) error {
	owner, err := h.meta.UploadRepository(ctx, id)
	if err == nil && owner != repo {
		return store.ErrUploadNotFound
	}
	return err
}

func (h *Handler) uploadStatus(w http.ResponseWriter, r *http.Request, repo, id string) error {
	if err := h.checkUpload(r.Context(), repo, id); err != nil {
		return err
	}
	size, err := h.blobs.UploadSize(r.Context(), id)
	if err != nil {
		return err
	}
	setUploadHeaders(w, repo, id, size)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseContentRange reads "start-end" (the spec's form, without "bytes "), returning the start
// offset and the chunk length, or -1 when the header is absent.
func parseContentRange(v string) (start, length int64, err error) {
	if v == "" {
		return -1, -1, nil
	}
	v = strings.TrimPrefix(strings.TrimSpace(v), "bytes ")
	a, b, ok := strings.Cut(v, "-")
	if !ok {
		return 0, 0, errors.New("malformed Content-Range")
	}
	s, err1 := strconv.ParseInt(a, 10, 64)
	e, err2 := strconv.ParseInt(strings.Split(b, "/")[0], 10, 64)
	if err1 != nil || err2 != nil || s < 0 || e < s {
		return 0, 0, errors.New("malformed Content-Range")
	}
	return s, e - s + 1, nil
}

// appendChunk writes the request body into the session, honouring Content-Range, and returns
// the session's new size.
func (h *Handler) appendChunk(w http.ResponseWriter, r *http.Request, repo, id string) (int64, error) {
	ctx := r.Context()
	start, length, err := parseContentRange(r.Header.Get("Content-Range"))
	if err != nil {
		return 0, refuse(http.StatusRequestedRangeNotSatisfiable, codeRangeInvalid, err.Error())
	}
	if length >= 0 && r.ContentLength >= 0 && r.ContentLength != length {
		return 0, refuse(http.StatusRequestedRangeNotSatisfiable, codeRangeInvalid, "Content-Range does not match Content-Length")
	}
	size, err := h.blobs.Append(ctx, id, start, r.Body)
	if errors.Is(err, blob.ErrOffsetMismatch) {
		setUploadHeaders(w, repo, id, size) // where the client should resume
	}
	if err != nil {
		h.forgetDiscarded(ctx, id, err)
		return 0, err
	}
	_ = h.meta.TouchUpload(ctx, id)
	return size, nil
}

// forgetDiscarded removes the record of a session the blob store discarded because it would
// not hold it.
func (h *Handler) forgetDiscarded(ctx context.Context, id string, err error) {
	if errors.Is(err, blob.ErrTooLarge) || errors.Is(err, blob.ErrInsufficientStorage) || errors.Is(err, blob.ErrDigestMismatch) {
		_ = h.meta.DeleteUpload(ctx, id)
	}
}

func (h *Handler) patchUpload(w http.ResponseWriter, r *http.Request, repo, id string) error {
	if err := h.checkUpload(r.Context(), repo, id); err != nil {
		return err
	}
	size, err := h.appendChunk(w, r, repo, id)
	if err != nil {
		return err
	}
	setUploadHeaders(w, repo, id, size)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (h *Handler) finishUpload(w http.ResponseWriter, r *http.Request, repo, id string) error {
	if err := h.checkUpload(r.Context(), repo, id); err != nil {
		return err
	}
	d, err := digest.Parse(r.URL.Query().Get("digest"))
	if err != nil {
		return badRequest(codeDigestInvalid, "digest parameter missing or invalid")
	}
	if r.ContentLength != 0 {
		if _, err := h.appendChunk(w, r, repo, id); err != nil {
			return err
		}
	}
	return h.commit(w, r, repo, id, d)
}

func (h *Handler) commit(w http.ResponseWriter, r *http.Request, repo, id string, d digest.Digest) error {
	ctx := r.Context()
	size, err := h.blobs.Commit(ctx, id, d)
	if err != nil {
		h.forgetDiscarded(ctx, id, err)
		return err
	}
	if err := h.meta.LinkBlob(ctx, repo, d.String(), size, h.cfg.CreateOnPush); err != nil {
		return err
	}
	_ = h.meta.DeleteUpload(ctx, id)
	h.blobCreated(w, repo, d)
	return nil
}

func (h *Handler) cancelUpload(w http.ResponseWriter, r *http.Request, repo, id string) error {
	if err := h.checkUpload(r.Context(), repo, id); err != nil {
		return err
	}
	h.dropUpload(r.Context(), id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- manifests -----------------------------------------------------------------------------

// resolve turns a tag or digest into a digest.
func (h *Handler) resolve(ctx context.Context, repo, ref string) (string, error) {
	if strings.Contains(ref, ":") {
		d, err := parseDigest(ref)
		return d.String(), err
	}
	if !registry.ValidTag(ref) {
		return "", badRequest(codeTagInvalid, "invalid tag")
	}
	return h.meta.ResolveTag(ctx, repo, ref)
}

func (h *Handler) getManifest(w http.ResponseWriter, r *http.Request, repo, ref string) error {
	d, err := h.resolve(r.Context(), repo, ref)
	if err != nil {
		return err
	}
	m, err := h.meta.GetManifest(r.Context(), repo, d)
	if err != nil {
		return err
	}
	if h.cfg.PullGate != nil {
		var p pullgate.Caller // anonymous unless the middleware set a principal
		if got, ok := auth.PrincipalFrom(r.Context()); ok {
			p = pullgate.Caller{AccessKeyID: got.AccessKeyID, Name: got.Name}
		}
		if err := h.cfg.PullGate.Check(r.Context(), p, repo, m.Digest); err != nil {
			return err
		}
	}
	hdr := w.Header()
	hdr.Set("Content-Type", m.MediaType)
	hdr.Set("Docker-Content-Digest", m.Digest)
	hdr.Set("ETag", `"`+m.Digest+`"`)
	hdr.Set("Content-Length", strconv.Itoa(len(m.Content)))
	if m.Subject != "" {
		hdr.Set("OCI-Subject", m.Subject)
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(m.Content)
		if err := h.meta.MarkPulled(r.Context(), m, h.cfg.Now()); err != nil {
			h.cfg.Logger.WarnContext(r.Context(), "record pull time", "err", err)
		}
	}
	return nil
}

func (h *Handler) putManifest(w http.ResponseWriter, r *http.Request, repo, ref string) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, registry.MaxManifestSize+1))
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	push := registry.Push{Repository: repo, Content: body, MediaType: r.Header.Get("Content-Type"),
		Tags: r.URL.Query()["tag"], Options: store.PutOptions{CreateRepository: h.cfg.CreateOnPush}}
	if strings.Contains(ref, ":") {
		push.Digest = ref
	} else {
		push.Tags = append([]string{ref}, push.Tags...)
	}
	pushed, err := registry.PushManifest(r.Context(), h.meta, push)
	if errors.Is(err, store.ErrBlobUnknown) || errors.Is(err, store.ErrManifestUnknown) {
		return fmt.Errorf("%w: %w", errManifestBlobUnknown, err)
	}
	if err != nil {
		return err
	}
	d := pushed.Digest.String()
	w.Header().Set("Location", "/v2/"+repo+"/manifests/"+d)
	w.Header().Set("Docker-Content-Digest", d)
	if pushed.Manifest.Subject != "" {
		w.Header().Set("OCI-Subject", pushed.Manifest.Subject)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (h *Handler) deleteManifest(w http.ResponseWriter, r *http.Request, repo, ref string) error {
	ctx := r.Context()
	if !strings.Contains(ref, ":") {
		if !registry.ValidTag(ref) {
			return badRequest(codeTagInvalid, "invalid tag")
		}
		if _, err := h.meta.DeleteTag(ctx, repo, ref); err != nil {
			return err
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	d, err := parseDigest(ref)
	if err != nil {
		return err
	}
	if _, err := h.meta.DeleteManifest(ctx, repo, d.String(), true); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// --- listings ------------------------------------------------------------------------------

// pageParams reads n and last; n < 0 means "no n given".
func pageParams(r *http.Request) (n int, last string, err error) {
	q := r.URL.Query()
	n = -1
	if s := q.Get("n"); s != "" {
		n, err = strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, "", errors.New("invalid n")
		}
	}
	return n, q.Get("last"), nil
}

// maxPage bounds an unpaginated listing.
const maxPage = 10000

func setNextLink(w http.ResponseWriter, path string, n int, last string) {
	q := url.Values{"n": {strconv.Itoa(n)}, "last": {last}}
	w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, path, q.Encode()))
}

func writeJSON(w http.ResponseWriter, contentType string, v any) error {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
	return nil
}

func (h *Handler) listTags(w http.ResponseWriter, r *http.Request, repo string) error {
	n, last, err := pageParams(r)
	if err != nil {
		return badRequest(codeUnsupported, err.Error())
	}
	limit := maxPage
	if n >= 0 {
		limit = min(n, maxPage)
	}
	tags, err := h.meta.ListTags(r.Context(), repo, last, limit+1)
	if err != nil {
		return err
	}
	if len(tags) > limit {
		tags = tags[:limit]
		setNextLink(w, "/v2/"+repo+"/tags/list", limit, tags[len(tags)-1])
	}
	if tags == nil {
		tags = []string{}
	}
	return writeJSON(w, "application/json", map[string]any{"name": repo, "tags": tags})
}

func (h *Handler) catalog(w http.ResponseWriter, r *http.Request) error {
	n, last, err := pageParams(r)
	if err != nil {
		return badRequest(codeUnsupported, err.Error())
	}
	limit := maxPage
	if n >= 0 {
		limit = min(n, maxPage)
	}
	// The catalog lists what the caller may list (ecr:DescribeRepositories), repository by
	// repository.
	names, err := h.listable(r.Context(), last, limit+1)
	if err != nil {
		return err
	}
	if names == nil {
		names = []string{}
	}
	if len(names) > limit {
		names = names[:limit]
		setNextLink(w, "/v2/_catalog", limit, names[len(names)-1])
	}
	return writeJSON(w, "application/json", map[string]any{"repositories": names})
}

func (h *Handler) referrers(w http.ResponseWriter, r *http.Request, repo, ref string) error {
	d, err := parseDigest(ref)
	if err != nil {
		return err
	}
	descs, err := h.meta.Referrers(r.Context(), repo, d.String())
	if err != nil {
		return err
	}
	filter := r.URL.Query().Get("artifactType")
	manifests := make([]registry.Descriptor, 0, len(descs))
	for _, ds := range descs {
		if filter != "" && ds.ArtifactType != filter {
			continue
		}
		manifests = append(manifests, registry.Descriptor{MediaType: ds.MediaType, Digest: ds.Digest, Size: ds.Size,
			ArtifactType: ds.ArtifactType, Annotations: ds.Annotations})
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, registry.MediaTypeOCIIndex, map[string]any{
		"schemaVersion": 2,
		"mediaType":     registry.MediaTypeOCIIndex,
		"manifests":     manifests,
	})
}
