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

	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/store"
)

// MaxManifestSize is the largest manifest accepted (as ECR and Distribution).
const MaxManifestSize = 4 << 20

// Metadata is what the registry face needs from the metadata store.
type Metadata interface {
	LinkBlob(ctx context.Context, repo, digest string, size int64, create bool) error
	BlobSize(ctx context.Context, repo, digest string) (int64, error)
	AnyBlobSize(ctx context.Context, digest string) (int64, error)
	UnlinkBlob(ctx context.Context, repo, digest string) error
	CreateUpload(ctx context.Context, id, repo string, create bool) error
	UploadRepository(ctx context.Context, id string) (string, error)
	TouchUpload(ctx context.Context, id string) error
	DeleteUpload(ctx context.Context, id string) error
	PutManifest(ctx context.Context, m store.Manifest, refs []store.Reference, tags []string, create bool) (store.PutManifestResult, error)
	GetManifest(ctx context.Context, repo, digest string) (store.Manifest, error)
	ResolveTag(ctx context.Context, repo, tag string) (string, error)
	MarkPulled(ctx context.Context, m store.Manifest, at time.Time) error
	DeleteManifest(ctx context.Context, repo, digest string, allowReferenced bool) (store.Manifest, error)
	DeleteTag(ctx context.Context, repo, tag string) (string, error)
	ListTags(ctx context.Context, repo, after string, limit int) ([]string, error)
	ListRepositories(ctx context.Context, after string, limit int) ([]store.Repository, error)
	RepositoryExists(ctx context.Context, name string) (bool, error)
	Referrers(ctx context.Context, repo, digest string) ([]store.Descriptor, error)
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
}

// Config tunes the registry face.
type Config struct {
	CreateOnPush bool
	Logger       *slog.Logger
	Now          func() time.Time
}

// Handler serves /v2/.
type Handler struct {
	meta  Metadata
	blobs Blobs
	cfg   Config
}

// NewHandler returns the registry face over the given stores.
func NewHandler(meta Metadata, blobs Blobs, cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handler{meta: meta, blobs: blobs, cfg: cfg}
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
	rt, ok := parsePath(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, codeNameUnknown, "no such route")
		return
	}
	if rt.kind != "base" && rt.kind != "catalog" && !ValidRepositoryName(rt.name) {
		writeError(w, http.StatusBadRequest, codeNameInvalid, "invalid repository name")
		return
	}
	type op struct{ kind, method string }
	switch (op{rt.kind, r.Method}) {
	case op{"base", http.MethodGet}, op{"base", http.MethodHead}:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
	case op{"catalog", http.MethodGet}:
		h.catalog(w, r)
	case op{"tags", http.MethodGet}:
		h.listTags(w, r, rt.name)
	case op{"manifest", http.MethodGet}, op{"manifest", http.MethodHead}:
		h.getManifest(w, r, rt.name, rt.ref)
	case op{"manifest", http.MethodPut}:
		h.putManifest(w, r, rt.name, rt.ref)
	case op{"manifest", http.MethodDelete}:
		h.deleteManifest(w, r, rt.name, rt.ref)
	case op{"blob", http.MethodGet}, op{"blob", http.MethodHead}:
		h.getBlob(w, r, rt.name, rt.ref)
	case op{"blob", http.MethodDelete}:
		h.deleteBlob(w, r, rt.name, rt.ref)
	case op{"uploads", http.MethodPost}:
		h.startUpload(w, r, rt.name)
	case op{"upload", http.MethodGet}:
		h.uploadStatus(w, r, rt.name, rt.ref)
	case op{"upload", http.MethodPatch}:
		h.patchUpload(w, r, rt.name, rt.ref)
	case op{"upload", http.MethodPut}:
		h.finishUpload(w, r, rt.name, rt.ref)
	case op{"upload", http.MethodDelete}:
		h.cancelUpload(w, r, rt.name, rt.ref)
	case op{"referrers", http.MethodGet}:
		h.referrers(w, r, rt.name, rt.ref)
	default:
		writeError(w, http.StatusMethodNotAllowed, codeUnsupported, "method not allowed")
	}
}

func (h *Handler) internalError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	h.cfg.Logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, codeUnknown, "internal error")
}

// parseDigest accepts only digests of algorithms the blob store can verify.
func parseDigest(s string) (digest.Digest, bool) {
	d, err := digest.Parse(s)
	return d, err == nil
}

// --- blobs ---------------------------------------------------------------------------------

func (h *Handler) getBlob(w http.ResponseWriter, r *http.Request, repo, ref string) {
	d, ok := parseDigest(ref)
	if !ok {
		writeError(w, http.StatusBadRequest, codeDigestInvalid, "invalid digest")
		return
	}
	size, err := h.meta.BlobSize(r.Context(), repo, d.String())
	if errors.Is(err, store.ErrBlobUnknown) {
		writeError(w, http.StatusNotFound, codeBlobUnknown, "blob unknown to registry")
		return
	}
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	f, err := h.blobs.Open(r.Context(), d)
	if errors.Is(err, blob.ErrNotFound) {
		writeError(w, http.StatusNotFound, codeBlobUnknown, "blob content missing")
		return
	}
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	defer f.Close()
	if err := blob.CheckSize(f, size); err != nil {
		h.damagedBlob(w, r, d, err)
		return
	}
	hdr := w.Header()
	hdr.Set("Docker-Content-Digest", d.String())
	hdr.Set("Content-Type", "application/octet-stream")
	hdr.Set("ETag", `"`+d.String()+`"`)
	hdr.Set("Cache-Control", "max-age=31536000")
	if r.Method == http.MethodHead {
		hdr.Set("Content-Length", strconv.FormatInt(size, 10))
		hdr.Set("Accept-Ranges", "bytes")
		w.WriteHeader(http.StatusOK)
		return
	}
	// ServeContent handles Range and If-None-Match, and hands an *os.File to sendfile.
	http.ServeContent(w, r, "", time.Time{}, f)
}

// damagedBlob answers for a blob whose stored content no longer matches its record: as unknown,
// so that a client pushing the image uploads it again, which replaces the damaged file.
func (h *Handler) damagedBlob(w http.ResponseWriter, r *http.Request, d digest.Digest, err error) {
	if !errors.Is(err, blob.ErrCorrupt) {
		h.internalError(w, r, err)
		return
	}
	h.cfg.Logger.ErrorContext(r.Context(), "refusing to serve a damaged blob", "digest", d.String(), "err", err)
	writeError(w, http.StatusNotFound, codeBlobUnknown, "blob content is damaged; push it again")
}

func (h *Handler) deleteBlob(w http.ResponseWriter, r *http.Request, repo, ref string) {
	d, ok := parseDigest(ref)
	if !ok {
		writeError(w, http.StatusBadRequest, codeDigestInvalid, "invalid digest")
		return
	}
	err := h.meta.UnlinkBlob(r.Context(), repo, d.String())
	if errors.Is(err, store.ErrBlobUnknown) {
		writeError(w, http.StatusNotFound, codeBlobUnknown, "blob unknown to repository")
		return
	}
	if errors.Is(err, store.ErrBlobReferenced) {
		// 409: the refusal is due to another resource, which the client can delete first.
		writeError(w, http.StatusConflict, codeDenied, blobReferencedMessage(err))
		return
	}
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
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

func (h *Handler) repoError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrRepositoryNotFound) {
		writeError(w, http.StatusNotFound, codeNameUnknown, "repository name not known to registry")
		return
	}
	h.internalError(w, r, err)
}

func (h *Handler) startUpload(w http.ResponseWriter, r *http.Request, repo string) {
	ctx := r.Context()
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		if h.tryMount(w, r, repo, mount, q.Get("from")) {
			return
		}
		// Not mountable: the spec says to fall back to an upload session.
	}
	id, err := h.blobs.NewUpload(ctx)
	if err != nil {
		h.uploadError(w, r, "", err)
		return
	}
	if err := h.meta.CreateUpload(ctx, id, repo, h.cfg.CreateOnPush); err != nil {
		_ = h.blobs.Cancel(ctx, id)
		h.repoError(w, r, err)
		return
	}
	if ds := q.Get("digest"); ds != "" {
		// Monolithic upload in the POST itself.
		d, ok := parseDigest(ds)
		if !ok {
			h.dropUpload(ctx, id)
			writeError(w, http.StatusBadRequest, codeDigestInvalid, "invalid digest")
			return
		}
		if _, err := h.blobs.Append(ctx, id, 0, r.Body); err != nil {
			h.dropUpload(ctx, id)
			h.uploadError(w, r, id, err)
			return
		}
		h.commit(w, r, repo, id, d)
		return
	}
	setUploadHeaders(w, repo, id, 0)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

// tryMount links an existing blob into repo and answers 201; it returns false when the blob
// cannot be mounted, leaving the response unwritten.
func (h *Handler) tryMount(w http.ResponseWriter, r *http.Request, repo, mount, from string) bool {
	ctx := r.Context()
	d, ok := parseDigest(mount)
	if !ok {
		return false
	}
	var size int64
	var err error
	if from != "" {
		if !ValidRepositoryName(from) {
			return false
		}
		size, err = h.meta.BlobSize(ctx, from, d.String())
	} else {
		// Without "from", mount from any repository: every principal may read every repository.
		size, err = h.meta.AnyBlobSize(ctx, d.String())
	}
	if err != nil {
		return false
	}
	// Content that no longer matches its record is not mounted: the client then uploads it,
	// which repairs it.
	if stored, err := h.blobs.Stat(ctx, d); err != nil || stored != size {
		return false
	}
	if err := h.meta.LinkBlob(ctx, repo, d.String(), size, h.cfg.CreateOnPush); err != nil {
		h.repoError(w, r, err)
		return true
	}
	h.blobCreated(w, repo, d)
	return true
}

func (h *Handler) dropUpload(ctx context.Context, id string) {
	_ = h.blobs.Cancel(ctx, id)
	_ = h.meta.DeleteUpload(ctx, id)
}

// checkUpload confirms the session exists and belongs to repo.
func (h *Handler) checkUpload(w http.ResponseWriter, r *http.Request, repo, id string) bool {
	owner, err := h.meta.UploadRepository(r.Context(), id)
	if errors.Is(err, store.ErrUploadNotFound) || (err == nil && owner != repo) {
		writeError(w, http.StatusNotFound, codeBlobUploadUnknown, "upload unknown")
		return false
	}
	if err != nil {
		h.internalError(w, r, err)
		return false
	}
	return true
}

func (h *Handler) uploadStatus(w http.ResponseWriter, r *http.Request, repo, id string) {
	if !h.checkUpload(w, r, repo, id) {
		return
	}
	size, err := h.blobs.UploadSize(r.Context(), id)
	if errors.Is(err, blob.ErrUploadNotFound) {
		writeError(w, http.StatusNotFound, codeBlobUploadUnknown, "upload unknown")
		return
	}
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	setUploadHeaders(w, repo, id, size)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
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

// appendChunk writes the request body into the session, honouring Content-Range. It writes the
// error response itself and returns ok=false on failure.
func (h *Handler) appendChunk(w http.ResponseWriter, r *http.Request, repo, id string) (int64, bool) {
	ctx := r.Context()
	start, length, err := parseContentRange(r.Header.Get("Content-Range"))
	if err != nil {
		writeError(w, http.StatusRequestedRangeNotSatisfiable, codeRangeInvalid, err.Error())
		return 0, false
	}
	if length >= 0 && r.ContentLength >= 0 && r.ContentLength != length {
		writeError(w, http.StatusRequestedRangeNotSatisfiable, codeRangeInvalid, "Content-Range does not match Content-Length")
		return 0, false
	}
	size, err := h.blobs.Append(ctx, id, start, r.Body)
	if errors.Is(err, blob.ErrOffsetMismatch) {
		setUploadHeaders(w, repo, id, size)
		writeError(w, http.StatusRequestedRangeNotSatisfiable, codeRangeInvalid, "chunk out of order")
		return 0, false
	}
	if err != nil {
		h.uploadError(w, r, id, err)
		return 0, false
	}
	_ = h.meta.TouchUpload(ctx, id)
	return size, true
}

func (h *Handler) patchUpload(w http.ResponseWriter, r *http.Request, repo, id string) {
	if !h.checkUpload(w, r, repo, id) {
		return
	}
	size, ok := h.appendChunk(w, r, repo, id)
	if !ok {
		return
	}
	setUploadHeaders(w, repo, id, size)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

func (h *Handler) finishUpload(w http.ResponseWriter, r *http.Request, repo, id string) {
	if !h.checkUpload(w, r, repo, id) {
		return
	}
	d, ok := parseDigest(r.URL.Query().Get("digest"))
	if !ok {
		writeError(w, http.StatusBadRequest, codeDigestInvalid, "digest parameter missing or invalid")
		return
	}
	if r.ContentLength != 0 {
		if _, ok := h.appendChunk(w, r, repo, id); !ok {
			return
		}
	}
	h.commit(w, r, repo, id, d)
}

func (h *Handler) commit(w http.ResponseWriter, r *http.Request, repo, id string, d digest.Digest) {
	ctx := r.Context()
	size, err := h.blobs.Commit(ctx, id, d)
	if errors.Is(err, blob.ErrDigestMismatch) {
		_ = h.meta.DeleteUpload(ctx, id)
		writeError(w, http.StatusBadRequest, codeDigestInvalid, "provided digest did not match uploaded content")
		return
	}
	if err != nil {
		h.uploadError(w, r, id, err)
		return
	}
	if err := h.meta.LinkBlob(ctx, repo, d.String(), size, h.cfg.CreateOnPush); err != nil {
		h.repoError(w, r, err)
		return
	}
	_ = h.meta.DeleteUpload(ctx, id)
	h.blobCreated(w, repo, d)
}

// uploadError answers a blob store error met by upload session id ("" before it exists). The
// store has already discarded a session it refused to hold; its record goes with it.
func (h *Handler) uploadError(w http.ResponseWriter, r *http.Request, id string, err error) {
	switch {
	case errors.Is(err, blob.ErrUploadNotFound):
		writeError(w, http.StatusNotFound, codeBlobUploadUnknown, "upload unknown")
	case errors.Is(err, blob.ErrTooLarge):
		h.forgetUpload(r.Context(), id)
		writeError(w, http.StatusRequestEntityTooLarge, codeSizeInvalid, err.Error()+"; the upload was discarded")
	case errors.Is(err, blob.ErrInsufficientStorage):
		h.forgetUpload(r.Context(), id)
		h.cfg.Logger.ErrorContext(r.Context(), "upload refused: storage full", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInsufficientStorage, codeBlobUploadInvalid,
			"the registry is out of storage space ("+err.Error()+"); the upload was discarded")
	default:
		h.internalError(w, r, err)
	}
}

func (h *Handler) forgetUpload(ctx context.Context, id string) {
	if id != "" {
		_ = h.meta.DeleteUpload(ctx, id)
	}
}

func (h *Handler) cancelUpload(w http.ResponseWriter, r *http.Request, repo, id string) {
	if !h.checkUpload(w, r, repo, id) {
		return
	}
	h.dropUpload(r.Context(), id)
	w.WriteHeader(http.StatusNoContent)
}

// --- manifests -----------------------------------------------------------------------------

// resolve turns a tag or digest into a digest, writing the error response when it cannot.
func (h *Handler) resolve(w http.ResponseWriter, r *http.Request, repo, ref string) (string, bool) {
	if strings.Contains(ref, ":") {
		d, ok := parseDigest(ref)
		if !ok {
			writeError(w, http.StatusBadRequest, codeDigestInvalid, "invalid digest")
			return "", false
		}
		return d.String(), true
	}
	if !ValidTag(ref) {
		writeError(w, http.StatusBadRequest, codeTagInvalid, "invalid tag")
		return "", false
	}
	d, err := h.meta.ResolveTag(r.Context(), repo, ref)
	if errors.Is(err, store.ErrTagNotFound) {
		writeError(w, http.StatusNotFound, codeManifestUnknown, "manifest unknown")
		return "", false
	}
	if err != nil {
		h.internalError(w, r, err)
		return "", false
	}
	return d, true
}

func (h *Handler) getManifest(w http.ResponseWriter, r *http.Request, repo, ref string) {
	d, ok := h.resolve(w, r, repo, ref)
	if !ok {
		return
	}
	m, err := h.meta.GetManifest(r.Context(), repo, d)
	if errors.Is(err, store.ErrManifestNotFound) {
		writeError(w, http.StatusNotFound, codeManifestUnknown, "manifest unknown")
		return
	}
	if err != nil {
		h.internalError(w, r, err)
		return
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
}

func (h *Handler) putManifest(w http.ResponseWriter, r *http.Request, repo, ref string) {
	ctx := r.Context()
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxManifestSize+1))
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	if len(body) > MaxManifestSize {
		writeError(w, http.StatusRequestEntityTooLarge, codeSizeInvalid, fmt.Sprintf("manifest exceeds %d bytes", MaxManifestSize))
		return
	}
	var tags []string
	var d digest.Digest
	if strings.Contains(ref, ":") {
		want, ok := parseDigest(ref)
		if !ok {
			writeError(w, http.StatusBadRequest, codeDigestInvalid, "invalid digest")
			return
		}
		d = want.Algorithm().FromBytes(body)
		if d != want {
			writeError(w, http.StatusBadRequest, codeDigestInvalid, "manifest digest does not match content")
			return
		}
	} else {
		if !ValidTag(ref) {
			writeError(w, http.StatusBadRequest, codeTagInvalid, "invalid tag")
			return
		}
		d = digest.SHA256.FromBytes(body)
		tags = append(tags, ref)
	}
	for _, t := range r.URL.Query()["tag"] {
		if !ValidTag(t) {
			writeError(w, http.StatusBadRequest, codeTagInvalid, "invalid tag "+strconv.Quote(t))
			return
		}
		tags = append(tags, t)
	}
	parsed, err := ParseManifest(r.Header.Get("Content-Type"), body)
	if errors.Is(err, errUnsupportedMediaType) {
		writeError(w, http.StatusUnsupportedMediaType, codeManifestInvalid, err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, codeManifestInvalid, err.Error())
		return
	}
	m := store.Manifest{
		Repository: repo, Digest: d.String(), MediaType: parsed.MediaType, ArtifactType: parsed.ArtifactType,
		ConfigMediaType: parsed.ConfigMediaType, ConfigDigest: parsed.ConfigDigest, Subject: parsed.Subject,
		Annotations: parsed.Annotations, Size: int64(len(body)), Content: body,
	}
	_, err = h.meta.PutManifest(ctx, m, parsed.References, tags, h.cfg.CreateOnPush)
	switch {
	case errors.Is(err, store.ErrBlobUnknown), errors.Is(err, store.ErrManifestUnknown):
		writeError(w, http.StatusBadRequest, codeManifestBlobUnknown, err.Error())
		return
	case errors.Is(err, store.ErrSizeMismatch):
		writeError(w, http.StatusBadRequest, codeSizeInvalid, err.Error())
		return
	case errors.Is(err, store.ErrTagImmutable):
		writeError(w, http.StatusBadRequest, codeTagInvalid, "The image tag already exists in the repository and cannot be overwritten because the repository is immutable.")
		return
	case err != nil:
		h.repoError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v2/"+repo+"/manifests/"+d.String())
	w.Header().Set("Docker-Content-Digest", d.String())
	if parsed.Subject != "" {
		w.Header().Set("OCI-Subject", parsed.Subject)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func (h *Handler) deleteManifest(w http.ResponseWriter, r *http.Request, repo, ref string) {
	ctx := r.Context()
	if !strings.Contains(ref, ":") {
		if !ValidTag(ref) {
			writeError(w, http.StatusBadRequest, codeTagInvalid, "invalid tag")
			return
		}
		_, err := h.meta.DeleteTag(ctx, repo, ref)
		if errors.Is(err, store.ErrTagNotFound) {
			writeError(w, http.StatusNotFound, codeManifestUnknown, "tag unknown")
			return
		}
		if err != nil {
			h.internalError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	d, ok := parseDigest(ref)
	if !ok {
		writeError(w, http.StatusBadRequest, codeDigestInvalid, "invalid digest")
		return
	}
	_, err := h.meta.DeleteManifest(ctx, repo, d.String(), true)
	if errors.Is(err, store.ErrManifestNotFound) {
		writeError(w, http.StatusNotFound, codeManifestUnknown, "manifest unknown")
		return
	}
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
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

func writeJSON(w http.ResponseWriter, contentType string, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) listTags(w http.ResponseWriter, r *http.Request, repo string) {
	n, last, err := pageParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeUnsupported, err.Error())
		return
	}
	limit := maxPage
	if n >= 0 {
		limit = min(n, maxPage)
	}
	tags, err := h.meta.ListTags(r.Context(), repo, last, limit+1)
	if err != nil {
		h.repoError(w, r, err)
		return
	}
	if len(tags) > limit {
		tags = tags[:limit]
		setNextLink(w, "/v2/"+repo+"/tags/list", limit, tags[len(tags)-1])
	}
	if tags == nil {
		tags = []string{}
	}
	writeJSON(w, "application/json", map[string]any{"name": repo, "tags": tags})
}

func (h *Handler) catalog(w http.ResponseWriter, r *http.Request) {
	n, last, err := pageParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeUnsupported, err.Error())
		return
	}
	limit := maxPage
	if n >= 0 {
		limit = min(n, maxPage)
	}
	repos, err := h.meta.ListRepositories(r.Context(), last, limit+1)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	names := make([]string, 0, len(repos))
	for _, rp := range repos {
		names = append(names, rp.Name)
	}
	if len(names) > limit {
		names = names[:limit]
		setNextLink(w, "/v2/_catalog", limit, names[len(names)-1])
	}
	writeJSON(w, "application/json", map[string]any{"repositories": names})
}

func (h *Handler) referrers(w http.ResponseWriter, r *http.Request, repo, ref string) {
	d, ok := parseDigest(ref)
	if !ok {
		writeError(w, http.StatusBadRequest, codeDigestInvalid, "invalid digest")
		return
	}
	descs, err := h.meta.Referrers(r.Context(), repo, d.String())
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	filter := r.URL.Query().Get("artifactType")
	manifests := make([]descriptor, 0, len(descs))
	for _, ds := range descs {
		if filter != "" && ds.ArtifactType != filter {
			continue
		}
		manifests = append(manifests, descriptor{MediaType: ds.MediaType, Digest: ds.Digest, Size: ds.Size,
			ArtifactType: ds.ArtifactType, Annotations: ds.Annotations})
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	writeJSON(w, MediaTypeOCIIndex, map[string]any{
		"schemaVersion": 2,
		"mediaType":     MediaTypeOCIIndex,
		"manifests":     manifests,
	})
}
