package ecr

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/lading-registry/lading/internal/store"
)

// Lifecycle serves the lifecycle policy operations' rules: validating a policy and previewing
// one (internal/lifecycle).
type Lifecycle interface {
	PutPolicy(ctx context.Context, repo, text string) (string, error)
	Preview(ctx context.Context, repo, text string) (store.LifecyclePreview, error)
}

// lifecycleTextMin and lifecycleTextMax bound lifecyclePolicyText in the model.
const (
	lifecycleTextMin = 100
	lifecycleTextMax = 30720
)

type lifecyclePolicyOut struct {
	RegistryID          string `json:"registryId"`
	RepositoryName      string `json:"repositoryName"`
	LifecyclePolicyText string `json:"lifecyclePolicyText"`
	LastEvaluatedAt     *epoch `json:"lastEvaluatedAt,omitempty"`
}

// lifecycleRepo validates the members every lifecycle operation has and returns the repository.
func (h *Handler) lifecycleRepo(ctx context.Context, v *validator, registryID, repo *string) (string, error) {
	v.registryID(registryID)
	v.repositoryName("repositoryName", repo, true)
	if err := v.err(); err != nil {
		return "", err
	}
	return h.repository(ctx, registryID, repo)
}

func (h *Handler) lifecycleService() (Lifecycle, error) {
	if h.cfg.Lifecycle == nil {
		return nil, newError(errServer, "Lifecycle policies are not configured on this server")
	}
	return h.cfg.Lifecycle, nil
}

func (h *Handler) putLifecyclePolicy(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		RegistryID          *string `json:"registryId"`
		RepositoryName      *string `json:"repositoryName"`
		LifecyclePolicyText *string `json:"lifecyclePolicyText"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{coral: true}
	v.str("lifecyclePolicyText", in.LifecyclePolicyText, true, lifecycleTextMin, lifecycleTextMax, nil)
	repo, err := h.lifecycleRepo(ctx, v, in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	lc, err := h.lifecycleService()
	if err != nil {
		return nil, err
	}
	text, err := lc.PutPolicy(ctx, repo, *in.LifecyclePolicyText)
	if err != nil {
		return nil, h.storeError(err, repo)
	}
	return lifecyclePolicyOut{RegistryID: h.cfg.RegistryID, RepositoryName: repo, LifecyclePolicyText: text}, nil
}

// lastEvaluated is lastEvaluatedAt on the wire: ECR answers 0 for a policy never run.
func lastEvaluated(p store.LifecyclePolicy) *epoch {
	if e := epochPtr(p.LastEvaluatedAt); e != nil {
		return e
	}
	zero := epoch(time.Unix(0, 0))
	return &zero
}

// getLifecyclePolicy and deleteLifecyclePolicy take the same request and answer the same policy:
// the one stored, or the one deleted.
func (h *Handler) getLifecyclePolicy(ctx context.Context, _ *call, body []byte) (any, error) {
	return h.lifecyclePolicyOp(ctx, body, h.meta.LifecyclePolicy)
}

func (h *Handler) deleteLifecyclePolicy(ctx context.Context, _ *call, body []byte) (any, error) {
	return h.lifecyclePolicyOp(ctx, body, h.meta.DeleteLifecyclePolicy)
}

func (h *Handler) lifecyclePolicyOp(ctx context.Context, body []byte, op func(ctx context.Context, repo string) (store.LifecyclePolicy, error)) (any, error) {
	var in struct {
		RegistryID     *string `json:"registryId"`
		RepositoryName *string `json:"repositoryName"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	repo, err := h.lifecycleRepo(ctx, &validator{coral: true}, in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	p, err := op(ctx, repo)
	if err != nil {
		return nil, h.storeError(err, repo)
	}
	return lifecyclePolicyOut{RegistryID: h.cfg.RegistryID, RepositoryName: repo, LifecyclePolicyText: p.Text, LastEvaluatedAt: lastEvaluated(p)}, nil
}

func (h *Handler) startLifecyclePolicyPreview(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		RegistryID          *string `json:"registryId"`
		RepositoryName      *string `json:"repositoryName"`
		LifecyclePolicyText *string `json:"lifecyclePolicyText"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{coral: true}
	v.str("lifecyclePolicyText", in.LifecyclePolicyText, false, lifecycleTextMin, lifecycleTextMax, nil)
	repo, err := h.lifecycleRepo(ctx, v, in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	lc, err := h.lifecycleService()
	if err != nil {
		return nil, err
	}
	// The preview is computed here and now, so it is COMPLETE at once (ECR answers
	// IN_PROGRESS and completes later; clients poll GetLifecyclePolicyPreview either way).
	text := ""
	if in.LifecyclePolicyText != nil {
		text = *in.LifecyclePolicyText
	}
	pv, err := lc.Preview(ctx, repo, text)
	if err != nil {
		return nil, h.storeError(err, repo)
	}
	return map[string]any{"registryId": h.cfg.RegistryID, "repositoryName": repo, "lifecyclePolicyText": pv.Text, "status": pv.Status}, nil
}

type previewResultOut struct {
	ImageTags           []string            `json:"imageTags"`
	ImageDigest         string              `json:"imageDigest"`
	ImagePushedAt       *epoch              `json:"imagePushedAt,omitempty"`
	Action              previewResultAction `json:"action"`
	AppliedRulePriority int                 `json:"appliedRulePriority"`
}

type previewResultAction struct {
	Type string `json:"type"`
}

func (h *Handler) getLifecyclePolicyPreview(ctx context.Context, c *call, body []byte) (any, error) {
	var in struct {
		RegistryID     *string   `json:"registryId"`
		RepositoryName *string   `json:"repositoryName"`
		ImageIDs       []imageID `json:"imageIds"`
		NextToken      *string   `json:"nextToken"`
		MaxResults     *int64    `json:"maxResults"`
		Filter         *struct {
			TagStatus *string `json:"tagStatus"`
		} `json:"filter"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{coral: true}
	validateImageIDs(v, in.ImageIDs, false)
	v.intRange("maxResults", in.MaxResults, false, 1, 100)
	tagStatus := store.TagStatusAny
	if in.Filter != nil {
		v.enum("filter.tagStatus", in.Filter.TagStatus, false, store.TagStatusTagged, store.TagStatusUntagged, store.TagStatusAny)
		if in.Filter.TagStatus != nil {
			tagStatus = *in.Filter.TagStatus
		}
	}
	repo, err := h.lifecycleRepo(ctx, v, in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if in.ImageIDs != nil && (in.NextToken != nil || in.MaxResults != nil) {
		return nil, newError(errInvalidParameter, "Invalid parameter: maxResults and nextToken cannot be used with imageIds")
	}
	pv, err := h.meta.LifecyclePreview(ctx, repo)
	if err != nil {
		return nil, h.storeError(err, repo)
	}
	var results []store.LifecyclePreviewResult
	for _, r := range pv.Results {
		switch {
		case tagStatus == store.TagStatusTagged && len(r.Tags) == 0, tagStatus == store.TagStatusUntagged && len(r.Tags) > 0:
			continue
		case in.ImageIDs != nil && !slices.ContainsFunc(in.ImageIDs, func(id imageID) bool { return previewNames(r, id) }):
			continue
		}
		results = append(results, r)
	}
	limit := 100
	if in.MaxResults != nil {
		limit = int(*in.MaxResults)
	}
	// A token is bound to the preview it pages through: a new preview makes it invalid.
	filter := tagStatus + "|" + strconv.FormatInt(pv.CreatedAt.UnixNano(), 10)
	tok, err := decodePageToken(in.NextToken, c.op, repo, filter)
	if err != nil {
		return nil, err
	}
	from := 0
	if tok.After != "" {
		if from, err = strconv.Atoi(tok.After); err != nil || from < 0 || from > len(results) {
			return nil, newError(errInvalidParameter, "Invalid parameter at 'nextToken' failed to satisfy constraint: 'the token is not one this listing issued'")
		}
	}
	resp := struct {
		RegistryID          string             `json:"registryId"`
		RepositoryName      string             `json:"repositoryName"`
		LifecyclePolicyText string             `json:"lifecyclePolicyText"`
		Status              string             `json:"status"`
		NextToken           *string            `json:"nextToken,omitempty"`
		PreviewResults      []previewResultOut `json:"previewResults"`
		Summary             map[string]int     `json:"summary"`
	}{RegistryID: h.cfg.RegistryID, RepositoryName: repo, LifecyclePolicyText: pv.Text, Status: pv.Status,
		PreviewResults: []previewResultOut{}, Summary: map[string]int{"expiringImageTotalCount": len(pv.Results)}}
	to := len(results)
	if in.ImageIDs == nil && from+limit < to {
		to = from + limit
		resp.NextToken = pageToken{Op: c.op, Repo: repo, Filter: filter, After: strconv.Itoa(to)}.encode()
	}
	for _, r := range results[from:to] {
		tags := r.Tags
		if tags == nil {
			tags = []string{}
		}
		resp.PreviewResults = append(resp.PreviewResults, previewResultOut{ImageTags: tags, ImageDigest: r.Digest,
			ImagePushedAt: epochPtr(r.PushedAt), Action: previewResultAction{Type: "EXPIRE"}, AppliedRulePriority: r.RulePriority})
	}
	return resp, nil
}

// previewNames reports whether an image id names a preview result (by digest, tag, or both).
func previewNames(r store.LifecyclePreviewResult, id imageID) bool {
	if id.ImageDigest != nil && *id.ImageDigest != r.Digest {
		return false
	}
	if id.ImageTag != nil && !slices.Contains(r.Tags, *id.ImageTag) {
		return false
	}
	return id.ImageDigest != nil || id.ImageTag != nil
}
