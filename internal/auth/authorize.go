package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Permissions are decided here, once, for every face: a face names the action ("ecr:PutImage",
// "inspector2:ListFindings") and the resource (a repository ARN, or "*" for what is not a
// repository), and Authorize applies IAM's rules to the caller's policy (its access key's),
// the registry policy and the repository's policy:
//
//   - an explicit Deny in any of them refuses;
//   - otherwise an Allow in any of them grants (in one account, an identity policy and a
//     resource policy each suffice);
//   - otherwise the request is refused (default deny).
//
// Faces authorize before they act, so that a refused request leaves no trace.

// ErrAccessDenied is matched (errors.Is) by every *AccessDeniedError.
var ErrAccessDenied = errors.New("access denied")

// DenyReason says why a request was refused, in the words AWS's message uses.
type DenyReason int

// Reasons of a refusal.
const (
	// NoAllow: no policy grants the action (default deny).
	NoAllow DenyReason = iota
	// IdentityDeny: the access key's policy denies it.
	IdentityDeny
	// ResourceDeny: the registry or repository policy denies it.
	ResourceDeny
)

// AccessDeniedError is a refused request: who, what, on which resource, and why. Its message
// is AWS's.
type AccessDeniedError struct {
	// User is the caller's IAM user ARN, or "anonymous".
	User      string
	Principal Principal
	Action    string
	Resource  string
	Reason    DenyReason
}

func (e *AccessDeniedError) Error() string {
	base := "User: " + e.User + " is not authorized to perform: " + e.Action + " on resource: " + e.Resource
	switch e.Reason {
	case IdentityDeny:
		return base + " with an explicit deny in an identity-based policy"
	case ResourceDeny:
		return base + " with an explicit deny in a resource-based policy"
	}
	if e.Principal.Anonymous() {
		return base + " because no resource-based policy allows the " + e.Action + " action"
	}
	return base + " because no identity-based policy allows the " + e.Action + " action"
}

// Is makes errors.Is(err, ErrAccessDenied) hold.
func (e *AccessDeniedError) Is(target error) bool { return target == ErrAccessDenied }

// PolicyStore is what authorization needs from the metadata store.
type PolicyStore interface {
	// ResourcePolicies returns the registry policy and repo's policy ("" when not set; repo ""
	// asks for the registry's only).
	ResourcePolicies(ctx context.Context, repo string) (registry, repository string, err error)
	// RepositoryPolicies returns the registry policy and the policies of the repositories
	// named that have one, in one read.
	RepositoryPolicies(ctx context.Context, repos []string) (registry string, repository map[string]string, err error)
}

// AuthorizerOptions configure an Authorizer.
type AuthorizerOptions struct {
	RegistryID string
	Region     string
	// AnonymousPull makes every repository allow anyone to pull and list, as if each had a
	// policy granting Principal "*" the read actions of the registry face.
	AnonymousPull bool
}

// anonymousPullActions are what AnonymousPull grants: what a pull, a tag listing and the
// catalog need.
var anonymousPullActions = []string{"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability",
	"ecr:ListImages", "ecr:DescribeRepositories"}

// Authorizer decides whether a principal may perform an action on a resource.
type Authorizer struct {
	store      PolicyStore
	opts       AuthorizerOptions
	repoPrefix string // arn:aws:ecr:<region>:<id>:repository/
	anonPull   *Policy
	cache      *policyCache
}

// NewAuthorizer returns an Authorizer over the store's resource policies.
func NewAuthorizer(st PolicyStore, opts AuthorizerOptions) *Authorizer {
	a := &Authorizer{
		store:      st,
		opts:       opts,
		repoPrefix: "arn:aws:ecr:" + opts.Region + ":" + opts.RegistryID + ":repository/",
		cache:      newPolicyCache(256),
	}
	if opts.AnonymousPull {
		a.anonPull = &Policy{Statements: []Statement{{Actions: anonymousPullActions, Principals: []string{"*"}}}}
	}
	return a
}

// RepositoryARN is arn:aws:ecr:<region>:<registry id>:repository/<name>.
func (a *Authorizer) RepositoryARN(name string) string { return a.repoPrefix + name }

// UserARN is the IAM user ARN of a principal, "anonymous" for an anonymous caller.
func (a *Authorizer) UserARN(p Principal) string {
	if p.Anonymous() {
		return "anonymous"
	}
	return "arn:aws:iam::" + a.opts.RegistryID + ":user/" + p.Name
}

// Authorize returns nil when p may perform action on resource, a *AccessDeniedError when it
// may not, and another error when the policies could not be read. The decision is recorded in
// the request's Attempt (for the request and audit logs).
func (a *Authorizer) Authorize(ctx context.Context, p Principal, action, resource string) error {
	err := a.decide(ctx, p, action, resource, "")
	attemptFrom(ctx).decided(p, action, resource, err)
	return err
}

// Check is Authorize for the principal of ctx (anonymous when there is none): the hook the
// Inspector face and the console call.
func (a *Authorizer) Check(ctx context.Context, action, resource string) error {
	p, _ := PrincipalFrom(ctx)
	return a.Authorize(ctx, p, action, resource)
}

// Allowed reports whether p may perform action on resource, without recording anything: for
// filtering listings and trying alternatives. Errors reading the policies count as "no".
func (a *Authorizer) Allowed(ctx context.Context, p Principal, action, resource string) bool {
	return a.decide(ctx, p, action, resource, "") == nil
}

// AllowedWithRepositoryPolicy is Allowed with repoPolicy in place of the resource's stored
// policy: would the caller still be allowed once a new repository policy is set?
func (a *Authorizer) AllowedWithRepositoryPolicy(ctx context.Context, p Principal, action, resource, repoPolicy string) bool {
	return a.decide(ctx, p, action, resource, repoPolicy) == nil
}

// AuthorizeList decides whether p may list resources with action at all: some policy must
// allow the action somewhere (the listing then shows what Allowed grants one by one), and no
// Deny may cover every repository. Repository policies grant access to their own repository,
// not a listing. Recorded as Authorize is, on the resource repository/*.
func (a *Authorizer) AuthorizeList(ctx context.Context, p Principal, action string) error {
	resource := a.RepositoryARN("*")
	err := a.decideList(ctx, p, action, resource)
	attemptFrom(ctx).decided(p, action, resource, err)
	return err
}

func (a *Authorizer) decideList(ctx context.Context, p Principal, action, resource string) error {
	identity, err := a.identity(p)
	if err != nil {
		return err
	}
	registry, _, err := a.resourcePolicies(ctx, "", "")
	if err != nil {
		return err
	}
	req := a.request(p, action, resource)
	deny := &AccessDeniedError{User: a.UserARN(p), Principal: p, Action: action, Resource: resource}
	switch {
	case identity.evaluate(req, IdentityPolicy).deny:
		deny.Reason = IdentityDeny
		return deny
	case registry.evaluate(req, ResourcePolicy).deny:
		deny.Reason = ResourceDeny
		return deny
	case identity.allowsAction(req, IdentityPolicy), registry.allowsAction(req, ResourcePolicy), a.anonPull.allowsAction(req, ResourcePolicy):
		return nil
	}
	return deny
}

func (a *Authorizer) request(p Principal, action, resource string) request {
	req := request{action: action, resource: resource, account: a.opts.RegistryID}
	if !p.Anonymous() {
		req.principal = a.UserARN(p)
	}
	return req
}

// decide applies the policies; repoPolicy, when not empty, stands in for the stored one.
func (a *Authorizer) decide(ctx context.Context, p Principal, action, resource, repoPolicy string) error {
	identity, err := a.identity(p)
	if err != nil {
		return err
	}
	repo, _ := strings.CutPrefix(resource, a.repoPrefix)
	if repo == resource {
		repo = "" // not one of this registry's repositories
	}
	registry, repository, err := a.resourcePolicies(ctx, repo, repoPolicy)
	if err != nil {
		return err
	}
	return a.judge(p, action, resource, repo != "", identity, registry, repository)
}

// judge applies IAM's rules to the parsed policies; isRepo: the resource is one of the
// registry's repositories (where AnonymousPull applies).
func (a *Authorizer) judge(p Principal, action, resource string, isRepo bool, identity, registry, repository *Policy) error {
	req := a.request(p, action, resource)
	iv := identity.evaluate(req, IdentityPolicy)
	rv := registry.evaluate(req, ResourcePolicy)
	pv := repository.evaluate(req, ResourcePolicy)
	var av verdict
	if isRepo {
		av = a.anonPull.evaluate(req, ResourcePolicy)
	}
	deny := &AccessDeniedError{User: a.UserARN(p), Principal: p, Action: action, Resource: resource}
	switch {
	case iv.deny:
		deny.Reason = IdentityDeny
		return deny
	case rv.deny || pv.deny:
		deny.Reason = ResourceDeny
		return deny
	case iv.allow || rv.allow || pv.allow || av.allow:
		return nil
	}
	return deny
}

// AllowedRepositories returns the repositories named (in their order) on which p may perform
// action, as Allowed decides each, reading the policies of them all at once: a listing's
// filter. Unlike Allowed, an error reading or parsing the policies is returned.
func (a *Authorizer) AllowedRepositories(ctx context.Context, p Principal, action string, repos []string) ([]string, error) {
	if len(repos) == 0 {
		return nil, nil
	}
	identity, err := a.identity(p)
	if err != nil {
		return nil, err
	}
	var registry *Policy
	var docs map[string]string
	if a.store != nil {
		var regDoc string
		if regDoc, docs, err = a.store.RepositoryPolicies(ctx, repos); err != nil {
			return nil, err
		}
		if regDoc != "" {
			if registry, err = a.cache.parse(regDoc, ResourcePolicy); err != nil {
				return nil, fmt.Errorf("stored registry policy: %w", err)
			}
		}
	}
	var out []string
	for _, name := range repos {
		var repository *Policy
		if doc := docs[name]; doc != "" {
			if repository, err = a.cache.parse(doc, ResourcePolicy); err != nil {
				return nil, fmt.Errorf("stored policy of repository %s: %w", name, err)
			}
		}
		if a.judge(p, action, a.RepositoryARN(name), true, identity, registry, repository) == nil {
			out = append(out, name)
		}
	}
	return out, nil
}

// identity is the parsed policy of p's access key; nil (nothing allowed) for an anonymous
// caller. A stored policy that no longer parses allows nothing and says so.
func (a *Authorizer) identity(p Principal) (*Policy, error) {
	if p.Anonymous() {
		return nil, nil
	}
	doc := p.Policy
	if p.Preset != "" {
		var ok bool
		if doc, ok = PresetDocument(p.Preset); !ok {
			return nil, fmt.Errorf("access key %s: unknown policy preset %q", p.AccessKeyID, p.Preset)
		}
	}
	if doc == "" {
		return nil, nil
	}
	pol, err := a.cache.parse(doc, IdentityPolicy)
	if err != nil {
		return nil, fmt.Errorf("access key %s: stored policy: %w", p.AccessKeyID, err)
	}
	return pol, nil
}

func (a *Authorizer) resourcePolicies(ctx context.Context, repo, override string) (registry, repository *Policy, err error) {
	if a.store == nil {
		return nil, nil, nil
	}
	regDoc, repoDoc, err := a.store.ResourcePolicies(ctx, repo)
	if err != nil {
		return nil, nil, err
	}
	if override != "" {
		repoDoc = override
	}
	if regDoc != "" {
		if registry, err = a.cache.parse(regDoc, ResourcePolicy); err != nil {
			return nil, nil, fmt.Errorf("stored registry policy: %w", err)
		}
	}
	if repoDoc != "" && repo != "" {
		if repository, err = a.cache.parse(repoDoc, ResourcePolicy); err != nil {
			return nil, nil, fmt.Errorf("stored policy of repository %s: %w", repo, err)
		}
	}
	return registry, repository, nil
}

// policyCache keeps parsed policies by their text: every request is decided under the stored
// policies of the moment, without parsing them each time.
type policyCache struct {
	mu    sync.Mutex
	max   int
	items map[policyKey]*Policy
}

type policyKey struct {
	kind PolicyKind
	doc  string
}

func newPolicyCache(max int) *policyCache {
	return &policyCache{max: max, items: map[policyKey]*Policy{}}
}

func (c *policyCache) parse(doc string, kind PolicyKind) (*Policy, error) {
	k := policyKey{kind, doc}
	c.mu.Lock()
	p, ok := c.items[k]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := parsePolicy(doc, kind)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.items) >= c.max {
		clear(c.items) // policies are few; a full cache means churn, and starting over is fine
	}
	c.items[k] = p
	c.mu.Unlock()
	return p, nil
}

// IsMutating tells whether an action changes something (IAM's Write, Tagging and Permissions
// management access levels), as opposed to reading: the audit log records every mutating call.
func IsMutating(action string) bool {
	_, name, _ := strings.Cut(action, ":")
	for _, read := range []string{"Get", "List", "Describe", "BatchGet", "BatchCheck", "Search"} {
		if strings.HasPrefix(name, read) {
			return false
		}
	}
	return true
}
