package ecr

import (
	"context"
	"errors"
	"strings"

	"github.com/lading-registry/lading/internal/auth"
)

// Policy errors of the ECR model.
const (
	errRepositoryPolicyNotFound = "RepositoryPolicyNotFoundException"
	errRegistryPolicyNotFound   = "RegistryPolicyNotFoundException"
)

// maxPolicyText is the model's limit on RepositoryPolicyText and RegistryPolicyText.
const maxPolicyText = 10240

type repositoryPolicyOut struct {
	RegistryID     string `json:"registryId"`
	RepositoryName string `json:"repositoryName"`
	PolicyText     string `json:"policyText"`
}

type registryPolicyOut struct {
	RegistryID string `json:"registryId"`
	PolicyText string `json:"policyText"`
}

func (h *Handler) policies() (Policies, error) {
	if h.cfg.Policies == nil {
		return nil, errors.New("the ECR face has no policy store")
	}
	return h.cfg.Policies, nil
}

// invalidPolicy answers a policy document Lading cannot enforce as written, saying why.
func invalidPolicy(what string, err error) error {
	reason := strings.TrimPrefix(err.Error(), auth.ErrInvalidPolicy.Error()+": ")
	return newError(errInvalidParameter, "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid %s policy provided: %s'", what, reason)
}

func (h *Handler) setRepositoryPolicy(ctx context.Context, c *call, body []byte) (any, error) {
	var in struct {
		RegistryID     *string `json:"registryId"`
		RepositoryName *string `json:"repositoryName"`
		PolicyText     *string `json:"policyText"`
		Force          bool    `json:"force"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.registryID(in.RegistryID)
	v.repositoryName("repositoryName", in.RepositoryName, true)
	v.str("policyText", in.PolicyText, true, 0, maxPolicyText, nil)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := h.policies()
	if err != nil {
		return nil, err
	}
	repo, err := h.repository(ctx, in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if _, err := auth.ParseResourcePolicy(*in.PolicyText); err != nil {
		return nil, invalidPolicy("repository", err)
	}
	// As on ECR, a policy that would stop its author from setting another one needs force.
	if az := h.cfg.Authorizer; az != nil && !in.Force &&
		!az.AllowedWithRepositoryPolicy(ctx, c.principal, "ecr:SetRepositoryPolicy", az.RepositoryARN(repo), *in.PolicyText) {
		return nil, newError(errInvalidParameter, "Invalid parameter at 'PolicyText' failed to satisfy constraint: "+
			"'The policy would prevent you from setting another policy on the repository; use force to set it anyway'")
	}
	if err := st.PutRepositoryPolicy(ctx, repo, *in.PolicyText); err != nil {
		return nil, h.storeError(err, repo)
	}
	return repositoryPolicyOut{RegistryID: h.cfg.RegistryID, RepositoryName: repo, PolicyText: *in.PolicyText}, nil
}

// repositoryPolicyRequest reads the request of GetRepositoryPolicy and DeleteRepositoryPolicy.
func repositoryPolicyRequest(body []byte) (registryID, name *string, err error) {
	var in struct {
		RegistryID     *string `json:"registryId"`
		RepositoryName *string `json:"repositoryName"`
	}
	if err := decode(body, &in); err != nil {
		return nil, nil, err
	}
	v := &validator{}
	v.registryID(in.RegistryID)
	v.repositoryName("repositoryName", in.RepositoryName, true)
	return in.RegistryID, in.RepositoryName, v.err()
}

func (h *Handler) getRepositoryPolicy(ctx context.Context, _ *call, body []byte) (any, error) {
	registryID, name, err := repositoryPolicyRequest(body)
	if err != nil {
		return nil, err
	}
	st, err := h.policies()
	if err != nil {
		return nil, err
	}
	if err := h.checkRegistry(registryID); err != nil {
		return nil, err
	}
	text, err := st.RepositoryPolicy(ctx, *name)
	if err != nil {
		return nil, h.storeError(err, *name)
	}
	return repositoryPolicyOut{RegistryID: h.cfg.RegistryID, RepositoryName: *name, PolicyText: text}, nil
}

func (h *Handler) deleteRepositoryPolicy(ctx context.Context, _ *call, body []byte) (any, error) {
	registryID, name, err := repositoryPolicyRequest(body)
	if err != nil {
		return nil, err
	}
	st, err := h.policies()
	if err != nil {
		return nil, err
	}
	if err := h.checkRegistry(registryID); err != nil {
		return nil, err
	}
	text, err := st.DeleteRepositoryPolicy(ctx, *name)
	if err != nil {
		return nil, h.storeError(err, *name)
	}
	return repositoryPolicyOut{RegistryID: h.cfg.RegistryID, RepositoryName: *name, PolicyText: text}, nil
}

func (h *Handler) putRegistryPolicy(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		PolicyText *string `json:"policyText"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{coral: true}
	v.str("policyText", in.PolicyText, true, 0, maxPolicyText, nil)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := h.policies()
	if err != nil {
		return nil, err
	}
	if _, err := auth.ParseResourcePolicy(*in.PolicyText); err != nil {
		return nil, invalidPolicy("registry", err)
	}
	if err := st.PutRegistryPolicy(ctx, *in.PolicyText); err != nil {
		return nil, err
	}
	return registryPolicyOut{RegistryID: h.cfg.RegistryID, PolicyText: *in.PolicyText}, nil
}

func (h *Handler) getRegistryPolicy(ctx context.Context, _ *call, body []byte) (any, error) {
	return h.registryPolicy(ctx, body, func(st Policies) (string, error) { return st.RegistryPolicy(ctx) })
}

func (h *Handler) deleteRegistryPolicy(ctx context.Context, _ *call, body []byte) (any, error) {
	return h.registryPolicy(ctx, body, func(st Policies) (string, error) { return st.DeleteRegistryPolicy(ctx) })
}

func (h *Handler) registryPolicy(_ context.Context, body []byte, fn func(Policies) (string, error)) (any, error) {
	var in struct{}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, err := h.policies()
	if err != nil {
		return nil, err
	}
	text, err := fn(st)
	if err != nil {
		return nil, h.domainError(err, about{})
	}
	return registryPolicyOut{RegistryID: h.cfg.RegistryID, PolicyText: text}, nil
}
