package ecr

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/registry"
	"github.com/lading-registry/lading/internal/report"
	"github.com/lading-registry/lading/internal/store"
)

type imageID = report.ImageID

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type imageFailure struct {
	ImageID       imageID `json:"imageId"`
	FailureCode   string  `json:"failureCode"`
	FailureReason string  `json:"failureReason"`
}

// Image failure codes (ImageFailureCode).
const (
	failInvalidImageDigest    = "InvalidImageDigest"
	failInvalidImageTag       = "InvalidImageTag"
	failTagDoesNotMatchDigest = "ImageTagDoesNotMatchDigest"
	failImageNotFound         = "ImageNotFound"
	failMissingDigestAndTag   = "MissingDigestAndTag"
	failReferencedByIndex     = "ImageReferencedByManifestList"
)

func validateImageIDs(v *validator, ids []imageID, required bool) {
	v.list("imageIds", len(ids), ids != nil, required, 1, 100)
	for i, id := range ids {
		v.str("imageIds."+itoa(i+1)+".member.imageTag", id.ImageTag, false, 1, 300, nil)
	}
}

// resolveImage finds the manifest an image id names. It returns a failure (code and reason) for
// ids that name nothing, as the batch operations report them.
func (h *Handler) resolveImage(ctx context.Context, repo string, id imageID) (string, *imageFailure, error) {
	fail := func(code, reason string) (string, *imageFailure, error) {
		return "", &imageFailure{ImageID: id, FailureCode: code, FailureReason: reason}, nil
	}
	if id.ImageDigest == nil && id.ImageTag == nil {
		return fail(failMissingDigestAndTag, "Invalid request parameters: both tag and digest cannot be null")
	}
	var want string
	if id.ImageDigest != nil {
		d, err := digest.Parse(*id.ImageDigest)
		if err != nil {
			return fail(failInvalidImageDigest, "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'")
		}
		want = d.String()
	}
	if id.ImageTag != nil {
		if !registry.ValidTag(*id.ImageTag) {
			return fail(failInvalidImageTag, "Invalid request parameters: image tag "+quote(*id.ImageTag)+" is not a valid tag")
		}
		d, err := h.meta.ResolveTag(ctx, repo, *id.ImageTag)
		if errors.Is(err, store.ErrTagNotFound) {
			return fail(failImageNotFound, "Requested image not found")
		}
		if err != nil {
			return "", nil, err
		}
		if want != "" && d != want {
			return fail(failTagDoesNotMatchDigest, "Invalid request parameters: image tag and digest do not match")
		}
		return d, nil, nil
	}
	if _, err := h.meta.GetImage(ctx, repo, want); errors.Is(err, store.ErrManifestNotFound) {
		return fail(failImageNotFound, "Requested image not found")
	} else if err != nil {
		return "", nil, err
	}
	return want, nil, nil
}

type listFilter struct {
	TagStatus   *string `json:"tagStatus"`
	ImageStatus *string `json:"imageStatus"`
}

func (f *listFilter) validate(v *validator) {
	if f == nil {
		return
	}
	v.enum("filter.tagStatus", f.TagStatus, false, store.TagStatusTagged, store.TagStatusUntagged, store.TagStatusAny)
	v.enum("filter.imageStatus", f.ImageStatus, false, "ACTIVE", "ARCHIVED", "ACTIVATING", "ANY")
}

func (f *listFilter) tagStatus() string {
	if f == nil || f.TagStatus == nil {
		return store.TagStatusAny
	}
	return *f.TagStatus
}

// noneMatch reports a filter asking only for archived or activating images, which Lading never
// has (it has no archive storage class).
func (f *listFilter) noneMatch() bool {
	return f != nil && f.ImageStatus != nil && (*f.ImageStatus == "ARCHIVED" || *f.ImageStatus == "ACTIVATING")
}

func (f *listFilter) key() string {
	if f == nil {
		return ""
	}
	s := f.tagStatus()
	if f.ImageStatus != nil {
		s += "/" + *f.ImageStatus
	}
	return s
}

func (h *Handler) listImages(ctx context.Context, c *call, body []byte) (any, error) {
	var in struct {
		RegistryID     *string     `json:"registryId"`
		RepositoryName *string     `json:"repositoryName"`
		NextToken      *string     `json:"nextToken"`
		MaxResults     *int64      `json:"maxResults"`
		Filter         *listFilter `json:"filter"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.registryID(in.RegistryID)
	v.repositoryName("repositoryName", in.RepositoryName, true)
	v.intRange("maxResults", in.MaxResults, false, 1, 1000)
	in.Filter.validate(v)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := h.checkRegistry(in.RegistryID); err != nil {
		return nil, err
	}
	repo := *in.RepositoryName
	tok, err := decodePageToken(in.NextToken, c.op, repo, in.Filter.key())
	if err != nil {
		return nil, err
	}
	limit := 100
	if in.MaxResults != nil {
		limit = int(*in.MaxResults)
	}
	resp := struct {
		ImageIDs  []imageID `json:"imageIds"`
		NextToken *string   `json:"nextToken,omitempty"`
	}{ImageIDs: []imageID{}}
	ids, err := h.meta.ListImageIDs(ctx, repo, in.Filter.tagStatus(), tok.After, tok.After2, limit+1)
	if err != nil {
		return nil, h.storeError(err, repo)
	}
	if in.Filter.noneMatch() {
		return resp, nil
	}
	if len(ids) > limit {
		ids = ids[:limit]
		last := ids[len(ids)-1]
		resp.NextToken = pageToken{Op: c.op, Repo: repo, Filter: in.Filter.key(), After: last.Digest, After2: last.Tag}.encode()
	}
	for _, id := range ids {
		resp.ImageIDs = append(resp.ImageIDs, imageID{ImageDigest: strPtr(id.Digest), ImageTag: strPtr(id.Tag)})
	}
	return resp, nil
}

type imageDetail struct {
	RegistryID             string   `json:"registryId"`
	RepositoryName         string   `json:"repositoryName"`
	ImageDigest            string   `json:"imageDigest"`
	ImageTags              []string `json:"imageTags,omitempty"`
	ImageSizeInBytes       int64    `json:"imageSizeInBytes"`
	ImagePushedAt          *epoch   `json:"imagePushedAt,omitempty"`
	ImageManifestMediaType string   `json:"imageManifestMediaType,omitempty"`
	ArtifactMediaType      string   `json:"artifactMediaType,omitempty"`
	LastRecordedPullTime   *epoch   `json:"lastRecordedPullTime,omitempty"`
	SubjectManifestDigest  string   `json:"subjectManifestDigest,omitempty"`
	ImageStatus            string   `json:"imageStatus"`
	// Lading fills the scan members, which ECR leaves empty.
	ImageScanStatus          *imageScanStatus     `json:"imageScanStatus,omitempty"`
	ImageScanFindingsSummary *scanFindingsSummary `json:"imageScanFindingsSummary,omitempty"`
}

func (h *Handler) imageDetail(m store.Manifest) imageDetail {
	// ECR's artifactMediaType is the config's media type; artifacts with an empty config name
	// their type in artifactType instead.
	artifact := m.ConfigMediaType
	if m.ArtifactType != "" {
		artifact = m.ArtifactType
	}
	return imageDetail{
		RegistryID: h.cfg.RegistryID, RepositoryName: m.Repository, ImageDigest: m.Digest, ImageTags: m.Tags,
		ImageSizeInBytes: m.ImageSize, ImagePushedAt: epochPtr(m.PushedAt), ImageManifestMediaType: m.MediaType,
		ArtifactMediaType: artifact, LastRecordedPullTime: epochPtr(m.LastPulledAt), SubjectManifestDigest: m.Subject,
		ImageStatus: "ACTIVE",
	}
}

func (h *Handler) describeImages(ctx context.Context, c *call, body []byte) (any, error) {
	var in struct {
		RegistryID     *string     `json:"registryId"`
		RepositoryName *string     `json:"repositoryName"`
		ImageIDs       []imageID   `json:"imageIds"`
		NextToken      *string     `json:"nextToken"`
		MaxResults     *int64      `json:"maxResults"`
		Filter         *listFilter `json:"filter"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.registryID(in.RegistryID)
	v.repositoryName("repositoryName", in.RepositoryName, true)
	validateImageIDs(v, in.ImageIDs, false)
	v.intRange("maxResults", in.MaxResults, false, 1, 1000)
	in.Filter.validate(v)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := h.checkRegistry(in.RegistryID); err != nil {
		return nil, err
	}
	repo := *in.RepositoryName
	resp := struct {
		ImageDetails []imageDetail `json:"imageDetails"`
		NextToken    *string       `json:"nextToken,omitempty"`
	}{ImageDetails: []imageDetail{}}
	if in.ImageIDs != nil {
		if in.NextToken != nil || in.MaxResults != nil {
			return nil, newError(errInvalidParameter, "Invalid parameter: maxResults and nextToken cannot be used with imageIds")
		}
		if _, err := h.meta.GetRepository(ctx, repo); err != nil {
			return nil, h.storeError(err, repo)
		}
		seen := map[string]bool{}
		for _, id := range in.ImageIDs {
			d, fail, err := h.resolveImage(ctx, repo, id)
			if err != nil {
				return nil, err
			}
			if fail != nil {
				if fail.FailureCode == failImageNotFound {
					return nil, newError(errImageNotFound, "The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
						deref(id.ImageDigest), deref(id.ImageTag), repo, h.cfg.RegistryID)
				}
				return nil, newError(errInvalidParameter, "%s", fail.FailureReason)
			}
			if seen[d] {
				continue
			}
			seen[d] = true
			m, err := h.meta.GetImage(ctx, repo, d)
			if err != nil {
				return nil, err
			}
			resp.ImageDetails = append(resp.ImageDetails, h.imageDetail(m))
		}
		return resp, h.scanDetails(ctx, repo, resp.ImageDetails)
	}
	tok, err := decodePageToken(in.NextToken, c.op, repo, in.Filter.key())
	if err != nil {
		return nil, err
	}
	limit := 100
	if in.MaxResults != nil {
		limit = int(*in.MaxResults)
	}
	imgs, err := h.meta.ListImages(ctx, repo, in.Filter.tagStatus(), tok.After, limit+1)
	if err != nil {
		return nil, h.storeError(err, repo)
	}
	if in.Filter.noneMatch() {
		return resp, nil
	}
	if len(imgs) > limit {
		imgs = imgs[:limit]
		resp.NextToken = pageToken{Op: c.op, Repo: repo, Filter: in.Filter.key(), After: imgs[len(imgs)-1].Digest}.encode()
	}
	for _, m := range imgs {
		resp.ImageDetails = append(resp.ImageDetails, h.imageDetail(m))
	}
	return resp, h.scanDetails(ctx, repo, resp.ImageDetails)
}

func deref(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

type imageOut struct {
	RegistryID             string  `json:"registryId"`
	RepositoryName         string  `json:"repositoryName"`
	ImageID                imageID `json:"imageId"`
	ImageManifest          string  `json:"imageManifest"`
	ImageManifestMediaType string  `json:"imageManifestMediaType"`
}

func (h *Handler) batchGetImage(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		RegistryID         *string   `json:"registryId"`
		RepositoryName     *string   `json:"repositoryName"`
		ImageIDs           []imageID `json:"imageIds"`
		AcceptedMediaTypes []string  `json:"acceptedMediaTypes"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.registryID(in.RegistryID)
	v.repositoryName("repositoryName", in.RepositoryName, true)
	validateImageIDs(v, in.ImageIDs, true)
	v.list("acceptedMediaTypes", len(in.AcceptedMediaTypes), in.AcceptedMediaTypes != nil, false, 1, 100)
	for i := range in.AcceptedMediaTypes {
		v.str("acceptedMediaTypes."+itoa(i+1)+".member", &in.AcceptedMediaTypes[i], true, 1, 255, nil)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	repo, err := h.repository(ctx, in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	resp := struct {
		Images   []imageOut     `json:"images"`
		Failures []imageFailure `json:"failures"`
	}{Images: []imageOut{}, Failures: []imageFailure{}}
	for _, id := range in.ImageIDs {
		d, fail, err := h.resolveImage(ctx, repo, id)
		if err != nil {
			return nil, err
		}
		if fail != nil {
			resp.Failures = append(resp.Failures, *fail)
			continue
		}
		m, err := h.meta.GetManifest(ctx, repo, d)
		if errors.Is(err, store.ErrManifestNotFound) {
			resp.Failures = append(resp.Failures, imageFailure{ImageID: id, FailureCode: failImageNotFound, FailureReason: "Requested image not found"})
			continue
		}
		if err != nil {
			return nil, err
		}
		// Lading stores manifests as pushed and converts none: when the stored type is not among
		// acceptedMediaTypes the manifest is still returned, as ECR does when it cannot convert,
		// and the caller decides (imageManifestMediaType says what it got).
		out := imageOut{RegistryID: h.cfg.RegistryID, RepositoryName: repo,
			ImageID:       imageID{ImageDigest: strPtr(m.Digest), ImageTag: id.ImageTag},
			ImageManifest: string(m.Content), ImageManifestMediaType: m.MediaType}
		resp.Images = append(resp.Images, out)
	}
	return resp, nil
}

func (h *Handler) batchDeleteImage(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		RegistryID     *string   `json:"registryId"`
		RepositoryName *string   `json:"repositoryName"`
		ImageIDs       []imageID `json:"imageIds"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.registryID(in.RegistryID)
	v.repositoryName("repositoryName", in.RepositoryName, true)
	validateImageIDs(v, in.ImageIDs, true)
	if err := v.err(); err != nil {
		return nil, err
	}
	repo, err := h.repository(ctx, in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	resp := struct {
		ImageIDs []imageID      `json:"imageIds"`
		Failures []imageFailure `json:"failures"`
	}{ImageIDs: []imageID{}, Failures: []imageFailure{}}
	referenced := func(id imageID, err error) {
		parent := strings.TrimSpace(strings.TrimPrefix(err.Error(), store.ErrReferencedByIndex.Error()))
		resp.Failures = append(resp.Failures, imageFailure{ImageID: id, FailureCode: failReferencedByIndex,
			FailureReason: "Requested image referenced by manifest list: [" + parent + "]"})
	}
	for _, id := range in.ImageIDs {
		d, fail, err := h.resolveImage(ctx, repo, id)
		if err != nil {
			return nil, err
		}
		if fail != nil {
			resp.Failures = append(resp.Failures, *fail)
			continue
		}
		if id.ImageTag != nil && id.ImageDigest == nil {
			m, _, err := h.meta.UntagImage(ctx, repo, *id.ImageTag)
			switch {
			case errors.Is(err, store.ErrReferencedByIndex):
				referenced(id, err)
				continue
			case errors.Is(err, store.ErrTagNotFound):
				resp.Failures = append(resp.Failures, imageFailure{ImageID: id, FailureCode: failImageNotFound, FailureReason: "Requested image not found"})
				continue
			case err != nil:
				return nil, err
			}
			resp.ImageIDs = append(resp.ImageIDs, imageID{ImageDigest: strPtr(m.Digest), ImageTag: id.ImageTag})
			continue
		}
		// A digest (with or without its tag) deletes the image and every tag on it.
		m, err := h.meta.DeleteManifest(ctx, repo, d, false)
		switch {
		case errors.Is(err, store.ErrReferencedByIndex):
			referenced(id, err)
			continue
		case errors.Is(err, store.ErrManifestNotFound):
			resp.Failures = append(resp.Failures, imageFailure{ImageID: id, FailureCode: failImageNotFound, FailureReason: "Requested image not found"})
			continue
		case err != nil:
			return nil, err
		}
		if len(m.Tags) == 0 {
			resp.ImageIDs = append(resp.ImageIDs, imageID{ImageDigest: strPtr(m.Digest)})
		}
		for _, t := range m.Tags {
			resp.ImageIDs = append(resp.ImageIDs, imageID{ImageDigest: strPtr(m.Digest), ImageTag: strPtr(t)})
		}
	}
	return resp, nil
}

func (h *Handler) putImage(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		RegistryID             *string `json:"registryId"`
		RepositoryName         *string `json:"repositoryName"`
		ImageManifest          *string `json:"imageManifest"`
		ImageManifestMediaType *string `json:"imageManifestMediaType"`
		ImageTag               *string `json:"imageTag"`
		ImageDigest            *string `json:"imageDigest"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.registryID(in.RegistryID)
	v.repositoryName("repositoryName", in.RepositoryName, true)
	v.str("imageManifest", in.ImageManifest, true, 1, registry.MaxManifestSize, nil)
	v.str("imageManifestMediaType", in.ImageManifestMediaType, false, 1, 255, nil)
	v.str("imageTag", in.ImageTag, false, 1, 300, nil)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := h.checkRegistry(in.RegistryID); err != nil {
		return nil, err
	}
	repo := *in.RepositoryName
	content := []byte(*in.ImageManifest)
	push := registry.Push{Repository: repo, Content: content, Options: store.PutOptions{RefuseUnchanged: true}}
	if in.ImageTag != nil {
		push.Tags = []string{*in.ImageTag}
	}
	if in.ImageDigest != nil {
		push.Digest = *in.ImageDigest
	}
	if in.ImageManifestMediaType != nil {
		push.MediaType = *in.ImageManifestMediaType
	}
	pushed, err := registry.PushManifest(ctx, h.meta, push)
	if err != nil {
		return nil, h.putImageError(err, push)
	}
	d := pushed.Digest
	parsed := pushed.Manifest
	return map[string]any{"image": imageOut{
		RegistryID: h.cfg.RegistryID, RepositoryName: repo,
		ImageID:       imageID{ImageDigest: strPtr(d.String()), ImageTag: in.ImageTag},
		ImageManifest: *in.ImageManifest, ImageManifestMediaType: parsed.MediaType,
	}}, nil
}

// putImageError is ECR's answer to a refused manifest push.
func (h *Handler) putImageError(err error, p registry.Push) error {
	a := about{repo: p.Repository, digest: p.Digest}
	if a.digest == "" {
		a.digest = digest.SHA256.FromBytes(p.Content).String()
	}
	if len(p.Tags) > 0 {
		a.tag = p.Tags[0]
	}
	return h.domainError(err, a)
}

// sizeMismatchReason says which descriptor of a manifest has a size other than its content's.
func sizeMismatchReason(err error) string {
	var e *store.SizeMismatchError
	if !errors.As(err, &e) {
		return err.Error()
	}
	what := "Layer"
	switch e.Kind {
	case store.RefConfig:
		what = "Config"
	case store.RefManifest:
		what = "Referenced image"
	}
	return fmt.Sprintf("%s with digest %s has size %d in the manifest but %d in the repository", what, e.Digest, e.DescriptorSize, e.StoredSize)
}
