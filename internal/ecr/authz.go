package ecr

import (
	"context"
	"encoding/json"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/store"
)

// Authorizer decides what a caller may do (internal/auth).
type Authorizer interface {
	Authorize(ctx context.Context, p auth.Principal, action, resource string) error
	Allowed(ctx context.Context, p auth.Principal, action, resource string) bool
	AllowedWithRepositoryPolicy(ctx context.Context, p auth.Principal, action, resource, repoPolicy string) bool
	AuthorizeList(ctx context.Context, p auth.Principal, action string) error
	// AllowedRepositories filters repository names as Allowed would, in one read of the
	// policies.
	AllowedRepositories(ctx context.Context, p auth.Principal, action string, repos []string) ([]string, error)
	RepositoryARN(name string) string
}

// Policies stores the repository and registry policies.
type Policies interface {
	RepositoryPolicy(ctx context.Context, repo string) (string, error)
	PutRepositoryPolicy(ctx context.Context, repo, policy string) error
	DeleteRepositoryPolicy(ctx context.Context, repo string) (string, error)
	RegistryPolicy(ctx context.Context) (string, error)
	PutRegistryPolicy(ctx context.Context, policy string) error
	DeleteRegistryPolicy(ctx context.Context) (string, error)
}

const errAccessDenied = "AccessDeniedException"

// registerAuthz adds the policy operations and makes repository listings show only what the
// caller may describe.
func (h *Handler) registerAuthz() {
	h.ops["SetRepositoryPolicy"] = h.setRepositoryPolicy
	h.ops["GetRepositoryPolicy"] = h.getRepositoryPolicy
	h.ops["DeleteRepositoryPolicy"] = h.deleteRepositoryPolicy
	h.ops["PutRegistryPolicy"] = h.putRegistryPolicy
	h.ops["GetRegistryPolicy"] = h.getRegistryPolicy
	h.ops["DeleteRegistryPolicy"] = h.deleteRegistryPolicy
	if h.cfg.Authorizer != nil {
		h.meta = listingFilter{Metadata: h.meta, az: h.cfg.Authorizer}
	}
}

// authorize is the one authorization of an ECR call, made before the operation runs, so that a
// refused call changes nothing: ecr:<Op> on the repositories the request names (IAM's ECR table
// scopes every repository operation to its repository) or on "*" for registry-level operations.
// A request naming no repository it could act on (a malformed one) is authorized on the
// resource it names as given, and then refused by its validation.
func (h *Handler) authorize(ctx context.Context, c *call, body []byte) error {
	if h.cfg.Authorizer == nil {
		return nil
	}
	var in struct {
		RepositoryName  *string  `json:"repositoryName"`
		RepositoryNames []string `json:"repositoryNames"`
		ResourceArn     *string  `json:"resourceArn"`
	}
	_ = json.Unmarshal(body, &in) // a body that does not parse names no repository, and fails later
	action := "ecr:" + c.op
	az := h.cfg.Authorizer
	var resources []string
	switch {
	case len(in.RepositoryNames) > 0:
		for _, name := range in.RepositoryNames {
			resources = append(resources, az.RepositoryARN(name))
		}
	case in.RepositoryName != nil:
		resources = []string{az.RepositoryARN(*in.RepositoryName)}
	case in.ResourceArn != nil:
		// An ARN may name any region; the decision is on this registry's canonical one.
		if name, ok := h.repoFromARN(*in.ResourceArn); ok {
			resources = []string{az.RepositoryARN(name)}
		} else {
			resources = []string{*in.ResourceArn}
		}
	case c.op == "DescribeRepositories":
		// A listing: what it shows is filtered repository by repository (listingFilter).
		return h.denied(az.AuthorizeList(ctx, c.principal, action))
	default:
		resources = []string{"*"}
	}
	for _, res := range resources {
		if err := az.Authorize(ctx, c.principal, action, res); err != nil {
			return h.denied(err)
		}
	}
	return nil
}

// denied answers a refusal as AWS does: AccessDeniedException, naming the action and resource.
func (h *Handler) denied(err error) error {
	return h.domainError(err, about{})
}

// listingFilter shows a caller only the repositories it may describe, reading on past the ones
// it may not, so that pages stay full and nextToken stays right.
type listingFilter struct {
	Metadata
	az Authorizer
}

func (f listingFilter) ListRepositories(ctx context.Context, after string, limit int) ([]store.Repository, error) {
	p, ok := auth.PrincipalFrom(ctx)
	if !ok {
		return f.Metadata.ListRepositories(ctx, after, limit)
	}
	var out []store.Repository
	batch := max(limit, 100)
	for len(out) < limit {
		page, err := f.Metadata.ListRepositories(ctx, after, batch)
		if err != nil {
			return nil, err
		}
		names := make([]string, len(page))
		byName := make(map[string]store.Repository, len(page))
		for i, r := range page {
			names[i], byName[r.Name] = r.Name, r
		}
		allowed, err := f.az.AllowedRepositories(ctx, p, "ecr:DescribeRepositories", names)
		if err != nil {
			return nil, err
		}
		for _, name := range allowed[:min(len(allowed), limit-len(out))] {
			out = append(out, byName[name])
		}
		if len(page) < batch {
			break
		}
		after = page[len(page)-1].Name
	}
	return out, nil
}
