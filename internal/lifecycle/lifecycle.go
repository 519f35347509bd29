// Package lifecycle applies repositories' lifecycle policies (ECR's): on a schedule, expiring
// the images a policy selects, and on demand, as a preview that expires nothing. Which images a
// policy expires is decided by internal/lifecycle/policy; this package reads the repository,
// and deletes through the store, each expiry with its "ECR Image Action" DELETE event in the
// same transaction.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/lading-registry/lading/internal/lifecycle/policy"
	"github.com/lading-registry/lading/internal/store"
)

// Preview statuses, as ECR names them.
const (
	StatusComplete = "COMPLETE"
)

// Store is what lifecycle needs from the metadata store.
type Store interface {
	LifecyclePolicy(ctx context.Context, repo string) (store.LifecyclePolicy, error)
	LifecyclePolicies(ctx context.Context) ([]store.LifecyclePolicy, error)
	LifecycleImages(ctx context.Context, repo string) ([]store.Manifest, error)
	ExpireImage(ctx context.Context, repo, digest string, tags []string, pushedAt time.Time) (bool, error)
	MarkLifecycleEvaluated(ctx context.Context, repo, text string, at time.Time) error
	PutLifecyclePreview(ctx context.Context, p store.LifecyclePreview) error
	PutLifecyclePolicy(ctx context.Context, repo, text string) error
}

// Service runs lifecycle policies.
type Service struct {
	store Store
	now   func() time.Time
	log   *slog.Logger
}

// New returns a Service; now is its clock (time.Now when nil).
func New(s Store, now func() time.Time, log *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Service{store: s, now: now, log: log}
}

// PutPolicy validates text and makes it repo's policy, stored (and returned) compacted, as ECR
// returns a policy. An invalid policy is a *policy.Error.
func (s *Service) PutPolicy(ctx context.Context, repo, text string) (string, error) {
	if _, err := policy.Parse(text); err != nil {
		return "", err
	}
	text = policy.Canonical(text)
	return text, s.store.PutLifecyclePolicy(ctx, repo, text)
}

// Evaluate returns what policy text would expire in repo now.
func (s *Service) Evaluate(ctx context.Context, repo, text string) ([]policy.Expiry, error) {
	p, err := policy.Parse(text)
	if err != nil {
		return nil, err
	}
	manifests, err := s.store.LifecycleImages(ctx, repo)
	if err != nil {
		return nil, err
	}
	images := make([]policy.Image, len(manifests))
	for i, m := range manifests {
		images[i] = policy.Image{Digest: m.Digest, Tags: m.Tags, PushedAt: m.PushedAt}
	}
	return policy.Evaluate(p, images, s.now()), nil
}

// Preview evaluates text (the repository's own policy when text is empty) and stores the
// result as the repository's preview, which it returns. Nothing expires.
func (s *Service) Preview(ctx context.Context, repo, text string) (store.LifecyclePreview, error) {
	if text == "" {
		p, err := s.store.LifecyclePolicy(ctx, repo)
		if err != nil {
			return store.LifecyclePreview{}, err
		}
		text = p.Text
	}
	expiries, err := s.Evaluate(ctx, repo, text)
	if err != nil {
		return store.LifecyclePreview{}, err
	}
	text = policy.Canonical(text)
	pv := store.LifecyclePreview{Repository: repo, Text: text, Status: StatusComplete, CreatedAt: s.now(),
		Results: make([]store.LifecyclePreviewResult, len(expiries))}
	for i, e := range expiries {
		pv.Results[i] = store.LifecyclePreviewResult{Digest: e.Image.Digest, Tags: e.Image.Tags, PushedAt: e.Image.PushedAt, RulePriority: e.RulePriority}
	}
	return pv, s.store.PutLifecyclePreview(ctx, pv)
}

// RunResult says what one run over a repository did.
type RunResult struct {
	Repository string
	Expired    []policy.Expiry
	// Skipped are expiries the store refused because the image changed since it was read.
	Skipped int
}

// RunRepository applies repo's policy now.
func (s *Service) RunRepository(ctx context.Context, repo string) (RunResult, error) {
	res := RunResult{Repository: repo}
	p, err := s.store.LifecyclePolicy(ctx, repo)
	if err != nil {
		return res, err
	}
	at := s.now()
	expiries, err := s.Evaluate(ctx, repo, p.Text)
	if err != nil {
		return res, err
	}
	for _, e := range expiries {
		deleted, err := s.store.ExpireImage(ctx, repo, e.Image.Digest, e.Image.Tags, e.Image.PushedAt)
		if err != nil {
			return res, fmt.Errorf("expire %s in %s: %w", e.Image.Digest, repo, err)
		}
		if !deleted {
			res.Skipped++
			continue
		}
		res.Expired = append(res.Expired, e)
		s.log.InfoContext(ctx, "lifecycle policy expired an image", "repository", repo, "digest", e.Image.Digest,
			"tags", e.Image.Tags, "rule_priority", e.RulePriority)
	}
	return res, s.store.MarkLifecycleEvaluated(ctx, repo, p.Text, at)
}

// Run applies every repository's policy once. A repository that fails is logged and the others
// still run; the first error is returned.
func (s *Service) Run(ctx context.Context) ([]RunResult, error) {
	policies, err := s.store.LifecyclePolicies(ctx)
	if err != nil {
		return nil, err
	}
	var out []RunResult
	var first error
	for _, p := range policies {
		res, err := s.RunRepository(ctx, p.Repository)
		if errors.Is(err, store.ErrRepositoryNotFound) || errors.Is(err, store.ErrLifecyclePolicyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			s.log.WarnContext(ctx, "lifecycle policy run", "repository", p.Repository, "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		out = append(out, res)
	}
	return out, first
}

// Loop runs every policy every interval until ctx ends.
func (s *Service) Loop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, _ = s.Run(ctx)
	}
}
