package ecr

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/registry"
	"github.com/lading-registry/lading/internal/store"
)

// partSize is what InitiateLayerUpload tells clients to send per part (ECR says 10 MiB).
const partSize = 10 << 20

// maxPartSize is the model's limit on one layer part.
const maxPartSize = 20 << 20

type layerOut struct {
	LayerDigest       string `json:"layerDigest"`
	LayerAvailability string `json:"layerAvailability"`
	LayerSize         *int64 `json:"layerSize,omitempty"`
	MediaType         string `json:"mediaType,omitempty"`
}

type layerFailure struct {
	LayerDigest   *string `json:"layerDigest,omitempty"`
	FailureCode   string  `json:"failureCode"`
	FailureReason string  `json:"failureReason"`
}

// mediaTypeOf tells the media type under which a manifest of repo references a blob, or "".
func (h *Handler) mediaTypeOf(ctx context.Context, repo, d string) string {
	m, err := h.meta.ReferencingManifest(ctx, repo, d)
	if err != nil {
		return ""
	}
	parsed, err := registry.ParseManifest(m.MediaType, m.Content)
	if err != nil {
		return ""
	}
	for _, r := range parsed.References {
		if r.Digest == d {
			return r.MediaType
		}
	}
	return ""
}

func (h *Handler) batchCheckLayerAvailability(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		RegistryID     *string  `json:"registryId"`
		RepositoryName *string  `json:"repositoryName"`
		LayerDigests   []string `json:"layerDigests"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.registryID(in.RegistryID)
	v.repositoryName("repositoryName", in.RepositoryName, true)
	v.list("layerDigests", len(in.LayerDigests), in.LayerDigests != nil, true, 1, 100)
	for i := range in.LayerDigests {
		v.str("layerDigests."+itoa(i+1)+".member", &in.LayerDigests[i], true, 0, 1000, nil)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	repo, err := h.repository(ctx, in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	resp := struct {
		Layers   []layerOut     `json:"layers"`
		Failures []layerFailure `json:"failures"`
	}{Layers: []layerOut{}, Failures: []layerFailure{}}
	for _, ds := range in.LayerDigests {
		if ds == "" {
			resp.Failures = append(resp.Failures, layerFailure{FailureCode: "MissingLayerDigest", FailureReason: "The layer digest is missing"})
			continue
		}
		d, err := digest.Parse(ds)
		if err != nil {
			resp.Failures = append(resp.Failures, layerFailure{LayerDigest: &ds, FailureCode: "InvalidLayerDigest", FailureReason: "Invalid layer digest"})
			continue
		}
		// An answer of AVAILABLE lets the client skip the upload: CheckBlob keeps the link
		// from garbage collection for a grace period.
		size, err := h.meta.CheckBlob(ctx, repo, d.String())
		if errors.Is(err, store.ErrBlobUnknown) {
			resp.Layers = append(resp.Layers, layerOut{LayerDigest: ds, LayerAvailability: "UNAVAILABLE"})
			continue
		}
		if err != nil {
			return nil, err
		}
		resp.Layers = append(resp.Layers, layerOut{LayerDigest: ds, LayerAvailability: "AVAILABLE", LayerSize: &size,
			MediaType: h.mediaTypeOf(ctx, repo, d.String())})
	}
	return resp, nil
}

// downloadResource is what a download URL's signature covers.
func downloadResource(repo, d string) string { return "ecr-layer\x00" + repo + "\x00" + d }

func (h *Handler) getDownloadURLForLayer(ctx context.Context, c *call, body []byte) (any, error) {
	var in struct {
		RegistryID     *string `json:"registryId"`
		RepositoryName *string `json:"repositoryName"`
		LayerDigest    *string `json:"layerDigest"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.registryID(in.RegistryID)
	v.repositoryName("repositoryName", in.RepositoryName, true)
	v.str("layerDigest", in.LayerDigest, true, 0, -1, layerDigestPattern())
	if err := v.err(); err != nil {
		return nil, err
	}
	repo, err := h.repository(ctx, in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	d, err := digest.Parse(*in.LayerDigest)
	if err != nil {
		return nil, newError(errInvalidParameter, "Invalid parameter at 'layerDigest' failed to satisfy constraint: 'Invalid layer digest'")
	}
	if _, err := h.meta.BlobSize(ctx, repo, d.String()); errors.Is(err, store.ErrBlobUnknown) {
		return nil, newError(errLayersNotFound, "The image layer '%s' does not exist in the repository with name '%s' in the registry with id '%s'", d, repo, h.cfg.RegistryID)
	} else if err != nil {
		return nil, err
	}
	// With redirects on, the URL is the bucket's own presigned one, as ECR's are.
	if u, err := h.blobs.RedirectURL(ctx, d, h.cfg.DownloadURLTTL); err != nil {
		return nil, err
	} else if u != "" {
		return map[string]any{"downloadUrl": u, "layerDigest": d.String()}, nil
	}
	exp := h.cfg.Now().Add(h.cfg.DownloadURLTTL)
	sig, err := h.auth.SignResource(ctx, downloadResource(repo, d.String()), exp)
	if err != nil {
		return nil, err
	}
	q := url.Values{"repository": {repo}, "expires": {strconv.FormatInt(exp.Unix(), 10)}, "signature": {sig}}
	u := c.endpoint() + DownloadPath + "/" + d.String() + "?" + q.Encode()
	return map[string]any{"downloadUrl": u, "layerDigest": d.String()}, nil
}

// download serves a layer to whoever holds a valid, unexpired URL from GetDownloadUrlForLayer,
// like ECR's presigned S3 URLs: no other credentials are needed.
func (h *Handler) download(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		http.Error(w, msg, status)
	}
	d, err := digest.Parse(strings.TrimPrefix(r.URL.Path, DownloadPath+"/"))
	if err != nil {
		fail(http.StatusNotFound, "no such layer")
		return
	}
	q := r.URL.Query()
	repo := q.Get("repository")
	expires, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil || repo == "" {
		fail(http.StatusForbidden, "missing or malformed signature parameters")
		return
	}
	switch err := h.auth.VerifyResource(r.Context(), downloadResource(repo, d.String()), expires, q.Get("signature")); {
	case err == nil:
	case errors.Is(err, auth.ErrTokenExpired):
		fail(http.StatusForbidden, "Request has expired")
		return
	case errors.Is(err, auth.ErrBadCredentials):
		fail(http.StatusForbidden, "The request signature does not match")
		return
	default:
		h.cfg.Logger.ErrorContext(r.Context(), "verify download URL", "err", err)
		fail(http.StatusInternalServerError, "internal error")
		return
	}
	size, err := h.meta.BlobSize(r.Context(), repo, d.String())
	if err != nil {
		fail(http.StatusNotFound, "no such layer")
		return
	}
	f, err := h.blobs.Open(r.Context(), d)
	if errors.Is(err, blob.ErrUnavailable) {
		h.cfg.Logger.ErrorContext(r.Context(), "blob storage unavailable", "digest", d.String(), "err", err)
		fail(http.StatusServiceUnavailable, "blob storage is unavailable; retry later")
		return
	}
	if err != nil {
		fail(http.StatusNotFound, "no such layer")
		return
	}
	defer f.Close()
	if err := blob.CheckSize(f, size); err != nil {
		h.cfg.Logger.ErrorContext(r.Context(), "refusing to serve a damaged blob", "digest", d.String(), "err", err)
		fail(http.StatusNotFound, "no such layer")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+d.String()+`"`)
	h.content.ServeContent(w, r, f)
}

// Upload ids are the blob store's 32 hex digits, shown as a UUID as the model requires.
func uploadIDToUUID(id string) string {
	if len(id) != 32 {
		return id
	}
	return id[:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:]
}

func uuidToUploadID(u string) string { return strings.ToLower(strings.ReplaceAll(u, "-", "")) }

func (h *Handler) initiateLayerUpload(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		RegistryID     *string `json:"registryId"`
		RepositoryName *string `json:"repositoryName"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.registryID(in.RegistryID)
	v.repositoryName("repositoryName", in.RepositoryName, true)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := h.checkRegistry(in.RegistryID); err != nil {
		return nil, err
	}
	repo := *in.RepositoryName
	id, err := h.blobs.NewUpload(ctx)
	if err != nil {
		return nil, h.uploadError(ctx, "", "", err)
	}
	if err := h.meta.CreateUpload(ctx, id, repo, false); err != nil {
		_ = h.blobs.Cancel(ctx, id)
		return nil, h.storeError(err, repo)
	}
	return map[string]any{"uploadId": uploadIDToUUID(id), "partSize": partSize}, nil
}

// checkUpload confirms an upload session exists and belongs to repo.
func (h *Handler) checkUpload(ctx context.Context, repo, uploadID string) (string, error) {
	if _, err := h.meta.GetRepository(ctx, repo); err != nil {
		return "", h.storeError(err, repo)
	}
	id := uuidToUploadID(uploadID)
	owner, err := h.meta.UploadRepository(ctx, id)
	if err == nil && owner != repo {
		err = store.ErrUploadNotFound
	}
	if err != nil {
		return "", h.domainError(err, about{repo: repo, upload: uploadID})
	}
	return id, err
}

func (h *Handler) uploadLayerPart(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		RegistryID     *string `json:"registryId"`
		RepositoryName *string `json:"repositoryName"`
		UploadID       *string `json:"uploadId"`
		PartFirstByte  *int64  `json:"partFirstByte"`
		PartLastByte   *int64  `json:"partLastByte"`
		LayerPartBlob  []byte  `json:"layerPartBlob"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.registryID(in.RegistryID)
	v.repositoryName("repositoryName", in.RepositoryName, true)
	v.str("uploadId", in.UploadID, true, 0, -1, uploadIDPattern())
	v.intRange("partFirstByte", in.PartFirstByte, true, 0, -1)
	v.intRange("partLastByte", in.PartLastByte, true, 0, -1)
	v.required("layerPartBlob", in.LayerPartBlob != nil)
	if len(in.LayerPartBlob) > maxPartSize {
		v.add("layerPartBlob", "'<blob>'", "must have length less than or equal to "+itoa(maxPartSize))
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := h.checkRegistry(in.RegistryID); err != nil {
		return nil, err
	}
	repo := *in.RepositoryName
	id, err := h.checkUpload(ctx, repo, *in.UploadID)
	if err != nil {
		return nil, err
	}
	size, err := h.blobs.UploadSize(ctx, id)
	if err != nil {
		return nil, h.domainError(err, about{repo: repo, upload: *in.UploadID})
	}
	invalid := func(reason string, last int64) error {
		e := newError(errInvalidLayerPart, "%s", reason)
		e.Extra = map[string]any{"registryId": h.cfg.RegistryID, "repositoryName": repo, "uploadId": *in.UploadID, "lastValidByteReceived": last}
		return e
	}
	first, lastByte := *in.PartFirstByte, *in.PartLastByte
	if first != size {
		return nil, invalid("The part's first byte "+strconv.FormatInt(first, 10)+" does not follow the last byte received", size-1)
	}
	if lastByte < first || lastByte-first+1 != int64(len(in.LayerPartBlob)) {
		return nil, invalid("The part's byte range does not match the size of layerPartBlob", size-1)
	}
	newSize, err := h.blobs.Append(ctx, id, first, bytes.NewReader(in.LayerPartBlob))
	if errors.Is(err, blob.ErrOffsetMismatch) {
		return nil, invalid("The part's first byte does not follow the last byte received", newSize-1)
	}
	if err != nil {
		return nil, h.uploadError(ctx, repo, *in.UploadID, err)
	}
	if err := h.meta.TouchUpload(ctx, id); err != nil {
		return nil, err
	}
	return map[string]any{"registryId": h.cfg.RegistryID, "repositoryName": repo, "uploadId": *in.UploadID, "lastByteReceived": newSize - 1}, nil
}

func (h *Handler) completeLayerUpload(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		RegistryID     *string  `json:"registryId"`
		RepositoryName *string  `json:"repositoryName"`
		UploadID       *string  `json:"uploadId"`
		LayerDigests   []string `json:"layerDigests"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.registryID(in.RegistryID)
	v.repositoryName("repositoryName", in.RepositoryName, true)
	v.str("uploadId", in.UploadID, true, 0, -1, uploadIDPattern())
	v.list("layerDigests", len(in.LayerDigests), in.LayerDigests != nil, true, 1, 100)
	for i := range in.LayerDigests {
		v.str("layerDigests."+itoa(i+1)+".member", &in.LayerDigests[i], true, 0, -1, layerDigestPattern())
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := h.checkRegistry(in.RegistryID); err != nil {
		return nil, err
	}
	repo := *in.RepositoryName
	id, err := h.checkUpload(ctx, repo, *in.UploadID)
	if err != nil {
		return nil, err
	}
	// Every digest given must name the uploaded content; they are all checked against the one
	// hash computed while the parts arrived.
	want, err := digest.Parse(in.LayerDigests[0])
	if err != nil {
		return nil, newError(errInvalidLayer, "Invalid layer digest %s", quote(in.LayerDigests[0]))
	}
	for _, other := range in.LayerDigests[1:] {
		if other != in.LayerDigests[0] {
			return nil, newError(errInvalidLayer, "The layer digests given disagree: %s and %s", quote(in.LayerDigests[0]), quote(other))
		}
	}
	size, err := h.blobs.UploadSize(ctx, id)
	if err != nil {
		return nil, h.domainError(err, about{repo: repo, upload: *in.UploadID})
	}
	if size == 0 {
		return nil, newError(errEmptyUpload, "The upload with id '%s' contains no layer parts", *in.UploadID)
	}
	// A layer already stored intact is not stored again; one whose content no longer matches
	// its record is, which repairs it.
	if recorded, err := h.meta.CheckBlob(ctx, repo, want.String()); err == nil {
		if stored, err := h.blobs.Stat(ctx, want); err == nil && stored == recorded {
			h.dropUpload(ctx, id)
			return nil, newError(errLayerAlreadyExists, "The image layer '%s' already exists in the repository with name '%s' in the registry with id '%s'", want, repo, h.cfg.RegistryID)
		}
	}
	size, err = h.blobs.Commit(ctx, id, want)
	if errors.Is(err, blob.ErrDigestMismatch) {
		_ = h.meta.DeleteUpload(ctx, id)
		return nil, newError(errInvalidLayer, "The layer digest calculated for the upload with id '%s' does not match the digest %s", *in.UploadID, want)
	}
	if err != nil {
		return nil, h.uploadError(ctx, repo, *in.UploadID, err)
	}
	if err := h.meta.LinkBlob(ctx, repo, want.String(), size, false); err != nil {
		return nil, h.storeError(err, repo)
	}
	_ = h.meta.DeleteUpload(ctx, id)
	return map[string]any{"registryId": h.cfg.RegistryID, "repositoryName": repo, "uploadId": *in.UploadID, "layerDigest": want.String()}, nil
}

// uploadError answers an error met by an upload (uploadID "" before it exists). The blob store
// has already discarded a session it refused to hold; its record goes with it.
func (h *Handler) uploadError(ctx context.Context, repo, uploadID string, err error) error {
	if errors.Is(err, blob.ErrTooLarge) || errors.Is(err, blob.ErrInsufficientStorage) {
		if uploadID != "" {
			_ = h.meta.DeleteUpload(ctx, uuidToUploadID(uploadID))
		}
		if errors.Is(err, blob.ErrInsufficientStorage) {
			h.cfg.Logger.ErrorContext(ctx, "upload refused: storage full", "err", err)
		}
	}
	return h.domainError(err, about{repo: repo, upload: uploadID})
}

func (h *Handler) dropUpload(ctx context.Context, id string) {
	_ = h.blobs.Cancel(ctx, id)
	_ = h.meta.DeleteUpload(ctx, id)
}
