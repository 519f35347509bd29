package oci

import (
	"context"
	"errors"
	"net/http"

	"github.com/lading-registry/lading/internal/auth"
)

// Authorizer decides what the caller of a request may do (internal/auth); the principal is
// the one the registry middleware put in the request's context, anonymous when none.
type Authorizer interface {
	Authorize(ctx context.Context, p auth.Principal, action, resource string) error
	Allowed(ctx context.Context, p auth.Principal, action, resource string) bool
	AuthorizeList(ctx context.Context, p auth.Principal, action string) error
	// AllowedRepositories filters repository names as Allowed would, in one read of the
	// policies.
	AllowedRepositories(ctx context.Context, p auth.Principal, action string, repos []string) ([]string, error)
	RepositoryARN(name string) string
}

// The registry face's requests are ECR's actions, as ECR's own registry endpoint maps them.
const (
	actionPull       = "ecr:BatchGetImage"
	actionPullBlob   = "ecr:GetDownloadUrlForLayer"
	actionCheck      = "ecr:BatchCheckLayerAvailability"
	actionList       = "ecr:ListImages"
	actionCatalog    = "ecr:DescribeRepositories"
	actionInitiate   = "ecr:InitiateLayerUpload"
	actionUploadPart = "ecr:UploadLayerPart"
	actionComplete   = "ecr:CompleteLayerUpload"
	actionPush       = "ecr:PutImage"
	actionDelete     = "ecr:BatchDeleteImage"
	actionCreate     = "ecr:CreateRepository"
)

// Permission is what a request needs: every action of All, and, when Any is set, one of Any
// (a HEAD only tells whether something exists, which pulling and pushing both may know).
type Permission struct {
	All []string
	Any []string
}

// Permissions returns what a /v2/ request for a route of kind (as RouteName names them, without
// "v2_") needs on its repository; ok is false for the base, the catalog (filtered instead) and
// unknown routes.
func Permissions(kind, method string, r *http.Request) (Permission, bool) {
	head := method == http.MethodHead
	switch kind {
	case "tags":
		return Permission{All: []string{actionList}}, true
	case "manifest":
		switch method {
		case http.MethodGet:
			return Permission{All: []string{actionPull}}, true
		case http.MethodHead:
			return Permission{Any: []string{actionPull, actionCheck}}, true
		case http.MethodPut:
			return Permission{All: []string{actionPush}}, true
		case http.MethodDelete:
			return Permission{All: []string{actionDelete}}, true
		}
	case "blob":
		switch {
		case head:
			return Permission{Any: []string{actionPullBlob, actionCheck}}, true
		case method == http.MethodGet:
			return Permission{All: []string{actionPullBlob}}, true
		case method == http.MethodDelete:
			return Permission{All: []string{actionDelete}}, true
		}
	case "uploads":
		if r != nil && r.URL.Query().Get("digest") != "" && r.URL.Query().Get("mount") == "" {
			// A monolithic upload is the whole upload in one request.
			return Permission{All: []string{actionInitiate, actionUploadPart, actionComplete}}, true
		}
		return Permission{All: []string{actionInitiate}}, true
	case "upload":
		switch method {
		case http.MethodPut:
			if r != nil && r.ContentLength != 0 {
				return Permission{All: []string{actionUploadPart, actionComplete}}, true
			}
			return Permission{All: []string{actionComplete}}, true
		default: // GET (status), PATCH, DELETE (cancel)
			return Permission{All: []string{actionUploadPart}}, true
		}
	case "referrers":
		return Permission{All: []string{actionPull}}, true
	}
	return Permission{}, false
}

// authorize refuses, before anything is read or changed, a request its caller may not make.
// A push that would create its repository (create-on-push) needs ecr:CreateRepository too.
func (h *Handler) authorize(r *http.Request, rt route) error {
	if h.cfg.Authorizer == nil {
		return nil
	}
	ctx := r.Context()
	p, _ := auth.PrincipalFrom(ctx)
	switch rt.kind {
	case "base":
		return nil
	case "catalog":
		return h.cfg.Authorizer.AuthorizeList(ctx, p, actionCatalog)
	}
	perm, ok := Permissions(rt.kind, r.Method, r)
	if !ok {
		return nil // the router answers it; nothing is read
	}
	arn := h.cfg.Authorizer.RepositoryARN(rt.name)
	for _, action := range perm.All {
		if err := h.cfg.Authorizer.Authorize(ctx, p, action, arn); err != nil {
			return err
		}
	}
	if len(perm.Any) > 0 {
		action := perm.Any[0] // the one a refusal names
		for _, a := range perm.Any {
			if h.cfg.Authorizer.Allowed(ctx, p, a, arn) {
				action = a
				break
			}
		}
		if err := h.cfg.Authorizer.Authorize(ctx, p, action, arn); err != nil {
			return err
		}
	}
	creates := (rt.kind == "uploads" || (rt.kind == "manifest" && r.Method == http.MethodPut)) && h.cfg.CreateOnPush
	if creates {
		exists, err := h.meta.RepositoryExists(ctx, rt.name)
		if err != nil {
			return err
		}
		if !exists {
			return h.cfg.Authorizer.Authorize(ctx, p, actionCreate, arn)
		}
	}
	return nil
}

// mayRead reports whether the caller may pull blobs from repo (for mounts from it).
func (h *Handler) mayRead(ctx context.Context, repo string) bool {
	if h.cfg.Authorizer == nil {
		return true
	}
	p, _ := auth.PrincipalFrom(ctx)
	return h.cfg.Authorizer.Allowed(ctx, p, actionPullBlob, h.cfg.Authorizer.RepositoryARN(repo))
}

// listable returns the repositories after `after` that the caller may see, up to limit, reading
// the store in pages until it has them or runs out.
func (h *Handler) listable(ctx context.Context, after string, limit int) ([]string, error) {
	var p auth.Principal
	if h.cfg.Authorizer != nil {
		p, _ = auth.PrincipalFrom(ctx)
	}
	var names []string
	for len(names) < limit {
		page, err := h.meta.ListRepositories(ctx, after, max(limit, 100))
		if err != nil {
			return nil, err
		}
		allowed := make([]string, len(page))
		for i, rp := range page {
			allowed[i] = rp.Name
		}
		if h.cfg.Authorizer != nil {
			var err error
			if allowed, err = h.cfg.Authorizer.AllowedRepositories(ctx, p, actionCatalog, allowed); err != nil {
				return nil, err
			}
		}
		names = append(names, allowed[:min(len(allowed), limit-len(names))]...)
		if len(page) < max(limit, 100) {
			break
		}
		after = page[len(page)-1].Name
	}
	return names, nil
}

// deniedAnswer is how a refusal is answered: an anonymous caller is asked for credentials (so
// that clients that probed anonymously log in); a key is told it may not (403 DENIED).
func deniedAnswer(w http.ResponseWriter, r *http.Request, err error) bool {
	var denied *auth.AccessDeniedError
	if !errors.As(err, &denied) {
		return false
	}
	auth.NoteError(r.Context(), codeDenied)
	if denied.Principal.Anonymous() {
		auth.Unauthorized(w, r)
		return true
	}
	writeError(w, http.StatusForbidden, codeDenied, denied.Error())
	return true
}
