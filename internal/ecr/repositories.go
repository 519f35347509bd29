package ecr

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"github.com/lading-registry/lading/internal/store"
)

// Resource tag limits (ECR's quotas and Tag shape).
const (
	maxResourceTags = 50
	maxTagKeyLen    = 128
	maxTagValueLen  = 256
)

type tagWire struct {
	Key   *string `json:"Key"`
	Value *string `json:"Value"`
}

type tagOut struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type scanOnPushConfig struct {
	ScanOnPush *bool `json:"scanOnPush,omitempty"`
}

type scanOnPushOut struct {
	ScanOnPush bool `json:"scanOnPush"`
}

type encryptionConfig struct {
	EncryptionType *string `json:"encryptionType"`
	KMSKey         *string `json:"kmsKey"`
}

type encryptionOut struct {
	EncryptionType string `json:"encryptionType"`
	KMSKey         string `json:"kmsKey,omitempty"`
}

type repositoryOut struct {
	RepositoryArn              string        `json:"repositoryArn"`
	RegistryID                 string        `json:"registryId"`
	RepositoryName             string        `json:"repositoryName"`
	RepositoryURI              string        `json:"repositoryUri"`
	CreatedAt                  *epoch        `json:"createdAt,omitempty"`
	ImageTagMutability         string        `json:"imageTagMutability"`
	ImageScanningConfiguration scanOnPushOut `json:"imageScanningConfiguration"`
	EncryptionConfiguration    encryptionOut `json:"encryptionConfiguration"`
}

func (h *Handler) repositoryOut(c *call, r store.Repository) repositoryOut {
	return repositoryOut{
		RepositoryArn:              h.arn(r.Name),
		RegistryID:                 h.cfg.RegistryID,
		RepositoryName:             r.Name,
		RepositoryURI:              c.r.Host + "/" + r.Name,
		CreatedAt:                  epochPtr(r.CreatedAt),
		ImageTagMutability:         r.TagMutability,
		ImageScanningConfiguration: scanOnPushOut{ScanOnPush: r.ScanOnPush},
		EncryptionConfiguration:    encryptionOut{EncryptionType: r.EncryptionType, KMSKey: r.KMSKey},
	}
}

// checkTags validates resource tags and returns them as a map.
func checkTags(v *validator, tags []tagWire) (map[string]string, error) {
	out := map[string]string{}
	for i, t := range tags {
		path := "tags." + itoa(i+1) + ".member"
		v.str(path+".Key", t.Key, true, 1, maxTagKeyLen, nil)
		v.str(path+".Value", t.Value, true, 0, maxTagValueLen, nil)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	for _, t := range tags {
		if strings.HasPrefix(strings.ToLower(*t.Key), "aws:") {
			return nil, newError(errInvalidTagParameter, "The tag key '%s' is invalid: keys beginning with 'aws:' are reserved", *t.Key)
		}
		out[*t.Key] = *t.Value
	}
	if len(out) > maxResourceTags {
		return nil, newError(errTooManyTags, "A resource may have at most %d tags", maxResourceTags)
	}
	return out, nil
}

func itoa(i int) string { return strconv.Itoa(i) }

// checkMutability accepts the values Lading implements; the *_WITH_EXCLUSION modes (tag
// filters exempt from the rule) are not.
func checkMutability(v *validator, s *string, required bool) error {
	v.enum("imageTagMutability", s, required, "MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION")
	if err := v.err(); err != nil {
		return err
	}
	if s != nil && strings.HasSuffix(*s, "_WITH_EXCLUSION") {
		return newError(errInvalidParameter, "Invalid parameter at 'imageTagMutability' failed to satisfy constraint: '%s is not supported by Lading; use MUTABLE or IMMUTABLE'", *s)
	}
	return nil
}

func (h *Handler) createRepository(ctx context.Context, c *call, body []byte) (any, error) {
	var in struct {
		RegistryID                         *string           `json:"registryId"`
		RepositoryName                     *string           `json:"repositoryName"`
		Tags                               []tagWire         `json:"tags"`
		ImageTagMutability                 *string           `json:"imageTagMutability"`
		ImageTagMutabilityExclusionFilters []json.RawMessage `json:"imageTagMutabilityExclusionFilters"`
		ImageScanningConfiguration         *scanOnPushConfig `json:"imageScanningConfiguration"`
		EncryptionConfiguration            *encryptionConfig `json:"encryptionConfiguration"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.registryID(in.RegistryID)
	v.repositoryName("repositoryName", in.RepositoryName, true)
	if in.EncryptionConfiguration != nil {
		v.enum("encryptionConfiguration.encryptionType", in.EncryptionConfiguration.EncryptionType, true, "AES256", "KMS", "KMS_DSSE")
		v.str("encryptionConfiguration.kmsKey", in.EncryptionConfiguration.KMSKey, false, 1, 2048, nil)
	}
	if err := checkMutability(v, in.ImageTagMutability, false); err != nil {
		return nil, err
	}
	tags, err := checkTags(v, in.Tags)
	if err != nil {
		return nil, err
	}
	if err := h.checkRegistry(in.RegistryID); err != nil {
		return nil, err
	}
	if len(in.ImageTagMutabilityExclusionFilters) > 0 {
		return nil, newError(errInvalidParameter, "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'not supported by Lading'")
	}
	repo := store.Repository{Name: *in.RepositoryName, TagMutability: store.TagMutable, EncryptionType: "AES256", Tags: tags}
	if in.ImageTagMutability != nil {
		repo.TagMutability = *in.ImageTagMutability
	}
	if in.ImageScanningConfiguration != nil && in.ImageScanningConfiguration.ScanOnPush != nil {
		repo.ScanOnPush = *in.ImageScanningConfiguration.ScanOnPush
	}
	if ec := in.EncryptionConfiguration; ec != nil {
		if *ec.EncryptionType != "AES256" {
			return nil, newError(errInvalidParameter, "Invalid parameter at 'encryptionConfiguration.encryptionType' failed to satisfy constraint: 'Lading encrypts at rest only as AES256 (its storage's own encryption); %s is not supported'", *ec.EncryptionType)
		}
		if ec.KMSKey != nil {
			return nil, newError(errInvalidParameter, "Invalid parameter: kmsKey can only be specified when encryptionType is KMS")
		}
	}
	created, err := h.meta.CreateRepository(ctx, repo)
	if err != nil {
		return nil, h.storeError(err, repo.Name)
	}
	return map[string]any{"repository": h.repositoryOut(c, created)}, nil
}

func (h *Handler) describeRepositories(ctx context.Context, c *call, body []byte) (any, error) {
	var in struct {
		RegistryID      *string  `json:"registryId"`
		RepositoryNames []string `json:"repositoryNames"`
		NextToken       *string  `json:"nextToken"`
		MaxResults      *int64   `json:"maxResults"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.registryID(in.RegistryID)
	v.list("repositoryNames", len(in.RepositoryNames), in.RepositoryNames != nil, false, 1, 100)
	for i := range in.RepositoryNames {
		v.repositoryName("repositoryNames."+itoa(i+1)+".member", &in.RepositoryNames[i], true)
	}
	v.intRange("maxResults", in.MaxResults, false, 1, 1000)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := h.checkRegistry(in.RegistryID); err != nil {
		return nil, err
	}
	if in.RepositoryNames != nil {
		if in.NextToken != nil || in.MaxResults != nil {
			return nil, newError(errInvalidParameter, "Invalid parameter: maxResults and nextToken cannot be used with repositoryNames")
		}
		out := make([]repositoryOut, 0, len(in.RepositoryNames))
		seen := map[string]bool{}
		for _, name := range in.RepositoryNames {
			if seen[name] {
				continue
			}
			seen[name] = true
			r, err := h.meta.GetRepository(ctx, name)
			if err != nil {
				return nil, h.storeError(err, name)
			}
			out = append(out, h.repositoryOut(c, r))
		}
		return map[string]any{"repositories": out}, nil
	}
	tok, err := decodePageToken(in.NextToken, c.op, "", "")
	if err != nil {
		return nil, err
	}
	limit := 100
	if in.MaxResults != nil {
		limit = int(*in.MaxResults)
	}
	repos, err := h.meta.ListRepositories(ctx, tok.After, limit+1)
	if err != nil {
		return nil, err
	}
	resp := struct {
		Repositories []repositoryOut `json:"repositories"`
		NextToken    *string         `json:"nextToken,omitempty"`
	}{Repositories: []repositoryOut{}}
	if len(repos) > limit {
		repos = repos[:limit]
		resp.NextToken = pageToken{Op: c.op, After: repos[len(repos)-1].Name}.encode()
	}
	for _, r := range repos {
		resp.Repositories = append(resp.Repositories, h.repositoryOut(c, r))
	}
	return resp, nil
}

func (h *Handler) deleteRepository(ctx context.Context, c *call, body []byte) (any, error) {
	var in struct {
		RegistryID     *string `json:"registryId"`
		RepositoryName *string `json:"repositoryName"`
		Force          bool    `json:"force"`
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
	r, err := h.meta.DeleteRepository(ctx, *in.RepositoryName, in.Force)
	if err != nil {
		return nil, h.storeError(err, *in.RepositoryName)
	}
	return map[string]any{"repository": h.repositoryOut(c, r)}, nil
}

func (h *Handler) putImageTagMutability(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		RegistryID         *string           `json:"registryId"`
		RepositoryName     *string           `json:"repositoryName"`
		ImageTagMutability *string           `json:"imageTagMutability"`
		ExclusionFilters   []json.RawMessage `json:"imageTagMutabilityExclusionFilters"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.registryID(in.RegistryID)
	v.repositoryName("repositoryName", in.RepositoryName, true)
	if err := checkMutability(v, in.ImageTagMutability, true); err != nil {
		return nil, err
	}
	if err := h.checkRegistry(in.RegistryID); err != nil {
		return nil, err
	}
	if len(in.ExclusionFilters) > 0 {
		return nil, newError(errInvalidParameter, "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'not supported by Lading'")
	}
	r, err := h.meta.UpdateRepository(ctx, *in.RepositoryName, func(r *store.Repository) error {
		r.TagMutability = *in.ImageTagMutability
		return nil
	})
	if err != nil {
		return nil, h.storeError(err, *in.RepositoryName)
	}
	return map[string]any{"registryId": h.cfg.RegistryID, "repositoryName": r.Name, "imageTagMutability": r.TagMutability}, nil
}

func (h *Handler) putImageScanningConfiguration(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		RegistryID                 *string           `json:"registryId"`
		RepositoryName             *string           `json:"repositoryName"`
		ImageScanningConfiguration *scanOnPushConfig `json:"imageScanningConfiguration"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{coral: true}
	v.registryID(in.RegistryID)
	v.repositoryName("repositoryName", in.RepositoryName, true)
	v.required("imageScanningConfiguration", in.ImageScanningConfiguration != nil)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := h.checkRegistry(in.RegistryID); err != nil {
		return nil, err
	}
	// Stored as ECR does: basic scanning still honours the flag; enhanced scanning ignores it
	// (policy.Evaluate applies both rules).
	scanOnPush := in.ImageScanningConfiguration.ScanOnPush != nil && *in.ImageScanningConfiguration.ScanOnPush
	r, err := h.meta.UpdateRepository(ctx, *in.RepositoryName, func(r *store.Repository) error {
		r.ScanOnPush = scanOnPush
		return nil
	})
	if err != nil {
		return nil, h.storeError(err, *in.RepositoryName)
	}
	return map[string]any{"registryId": h.cfg.RegistryID, "repositoryName": r.Name,
		"imageScanningConfiguration": scanOnPushOut{ScanOnPush: r.ScanOnPush}}, nil
}

// resourceRepo validates a resource ARN and returns the repository it names.
func (h *Handler) resourceRepo(v *validator, arn *string) (string, error) {
	v.required("resourceArn", arn != nil)
	if err := v.err(); err != nil {
		return "", err
	}
	name, ok := h.repoFromARN(*arn)
	if !ok {
		return "", newError(errInvalidParameter, "Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN %s: want arn:aws:ecr:<region>:%s:repository/<name>'", quote(*arn), h.cfg.RegistryID)
	}
	return name, nil
}

func (h *Handler) tagResource(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		ResourceArn *string   `json:"resourceArn"`
		Tags        []tagWire `json:"tags"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.list("tags", len(in.Tags), in.Tags != nil, true, 0, -1)
	name, err := h.resourceRepo(v, in.ResourceArn)
	if err != nil {
		return nil, err
	}
	tags, err := checkTags(v, in.Tags)
	if err != nil {
		return nil, err
	}
	existing, err := h.meta.ResourceTags(ctx, name)
	if err != nil {
		return nil, h.storeError(err, name)
	}
	for k := range tags {
		existing[k] = ""
	}
	if len(existing) > maxResourceTags {
		return nil, newError(errTooManyTags, "A resource may have at most %d tags", maxResourceTags)
	}
	if err := h.meta.TagRepository(ctx, name, tags); err != nil {
		return nil, h.storeError(err, name)
	}
	return struct{}{}, nil
}

func (h *Handler) untagResource(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		ResourceArn *string  `json:"resourceArn"`
		TagKeys     []string `json:"tagKeys"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.list("tagKeys", len(in.TagKeys), in.TagKeys != nil, true, 0, -1)
	for i := range in.TagKeys {
		v.str("tagKeys."+itoa(i+1)+".member", &in.TagKeys[i], true, 1, maxTagKeyLen, nil)
	}
	name, err := h.resourceRepo(v, in.ResourceArn)
	if err != nil {
		return nil, err
	}
	for _, k := range in.TagKeys {
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, newError(errInvalidTagParameter, "The tag key '%s' is invalid: keys beginning with 'aws:' are reserved", k)
		}
	}
	if err := h.meta.UntagRepository(ctx, name, in.TagKeys); err != nil {
		return nil, h.storeError(err, name)
	}
	return struct{}{}, nil
}

func (h *Handler) listTagsForResource(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		ResourceArn *string `json:"resourceArn"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	name, err := h.resourceRepo(&validator{}, in.ResourceArn)
	if err != nil {
		return nil, err
	}
	tags, err := h.meta.ResourceTags(ctx, name)
	if err != nil {
		return nil, h.storeError(err, name)
	}
	out := make([]tagOut, 0, len(tags))
	for k, v := range tags {
		out = append(out, tagOut{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return map[string]any{"tags": out}, nil
}
