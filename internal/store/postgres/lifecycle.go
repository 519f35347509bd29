package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/store"
)

// PutLifecyclePolicy sets a repository's lifecycle policy.
func (db *DB) PutLifecyclePolicy(ctx context.Context, repo, text string) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := ensureRepository(ctx, tx, repo, false); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO lifecycle_policies(repository, policy, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT(repository) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at`, repo, text, db.now().UnixMilli())
		return err
	})
}

// LifecyclePolicy returns a repository's lifecycle policy: ErrRepositoryNotFound, or
// ErrLifecyclePolicyNotFound when it has none.
func (db *DB) LifecyclePolicy(ctx context.Context, repo string) (store.LifecyclePolicy, error) {
	if err := db.requireRepository(ctx, repo); err != nil {
		return store.LifecyclePolicy{}, err
	}
	p := store.LifecyclePolicy{Repository: repo}
	var at int64
	err := db.pool.QueryRow(ctx, "SELECT policy, last_evaluated_at FROM lifecycle_policies WHERE repository = $1", repo).Scan(&p.Text, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, store.ErrLifecyclePolicyNotFound
	}
	p.LastEvaluatedAt = fromMS(at)
	return p, err
}

// DeleteLifecyclePolicy removes a repository's lifecycle policy and returns it.
func (db *DB) DeleteLifecyclePolicy(ctx context.Context, repo string) (store.LifecyclePolicy, error) {
	p := store.LifecyclePolicy{Repository: repo}
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := ensureRepository(ctx, tx, repo, false); err != nil {
			return err
		}
		var at int64
		err := tx.QueryRow(ctx, "DELETE FROM lifecycle_policies WHERE repository = $1 RETURNING policy, last_evaluated_at", repo).Scan(&p.Text, &at)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrLifecyclePolicyNotFound
		}
		p.LastEvaluatedAt = fromMS(at)
		return err
	})
	return p, err
}

// LifecyclePolicies returns every repository's lifecycle policy, by repository name.
func (db *DB) LifecyclePolicies(ctx context.Context) ([]store.LifecyclePolicy, error) {
	return queryAll(ctx, db.pool, func(r rowScanner) (store.LifecyclePolicy, error) {
		var p store.LifecyclePolicy
		var at int64
		err := r.Scan(&p.Repository, &p.Text, &at)
		p.LastEvaluatedAt = fromMS(at)
		return p, err
	}, "SELECT repository, policy, last_evaluated_at FROM lifecycle_policies ORDER BY repository")
}

// MarkLifecycleEvaluated records a run of the repository's policy, if it still has the one run.
func (db *DB) MarkLifecycleEvaluated(ctx context.Context, repo, text string, at time.Time) error {
	_, err := db.pool.Exec(ctx, "UPDATE lifecycle_policies SET last_evaluated_at = $1 WHERE repository = $2 AND policy = $3", at.UnixMilli(), repo, text)
	return err
}

// PutLifecyclePreview replaces a repository's preview.
func (db *DB) PutLifecyclePreview(ctx context.Context, p store.LifecyclePreview) error {
	if p.Results == nil {
		p.Results = []store.LifecyclePreviewResult{}
	}
	results, err := json.Marshal(p.Results)
	if err != nil {
		return err
	}
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := ensureRepository(ctx, tx, p.Repository, false); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO lifecycle_previews(repository, policy, status, results, created_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT(repository) DO UPDATE SET policy = excluded.policy, status = excluded.status, results = excluded.results,
				created_at = excluded.created_at`, p.Repository, p.Text, p.Status, string(results), p.CreatedAt.UnixMilli())
		return err
	})
}

// LifecyclePreview returns a repository's last preview, or ErrLifecyclePreviewNotFound.
func (db *DB) LifecyclePreview(ctx context.Context, repo string) (store.LifecyclePreview, error) {
	if err := db.requireRepository(ctx, repo); err != nil {
		return store.LifecyclePreview{}, err
	}
	p := store.LifecyclePreview{Repository: repo}
	var results string
	var at int64
	err := db.pool.QueryRow(ctx, "SELECT policy, status, results, created_at FROM lifecycle_previews WHERE repository = $1", repo).
		Scan(&p.Text, &p.Status, &results, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, store.ErrLifecyclePreviewNotFound
	}
	if err != nil {
		return p, err
	}
	p.CreatedAt = fromMS(at)
	if err := json.Unmarshal([]byte(results), &p.Results); err != nil {
		return p, fmt.Errorf("decode lifecycle preview: %w", err)
	}
	return p, nil
}

// LifecycleImages returns the images a lifecycle policy considers, with their tags and push
// times: every manifest of the repository except those an index of it lists, which stay as
// long as their index (expiring one would break the index), and the SBOM referrers Lading
// generated, which go with their image.
func (db *DB) LifecycleImages(ctx context.Context, repo string) ([]store.Manifest, error) {
	if err := db.requireRepository(ctx, repo); err != nil {
		return nil, err
	}
	out, err := queryAll(ctx, db.pool, func(r rowScanner) (store.Manifest, error) {
		var m store.Manifest
		var pushed int64
		err := r.Scan(&m.Digest, &pushed, &m.Tags)
		m.Repository, m.PushedAt = repo, fromMS(pushed)
		return m, err
	}, `SELECT m.digest, m.pushed_at, (SELECT array_agg(t.tag ORDER BY t.tag) FROM tags t
			WHERE t.repository = m.repository AND t.digest = m.digest)
		FROM manifests m WHERE m.repository = $1 AND NOT EXISTS (SELECT 1 FROM manifest_references r
			WHERE r.repository = m.repository AND r.target = m.digest AND r.kind = 'manifest')
			AND NOT (m.`+generatedSBOMClause+`)
		ORDER BY m.digest`, repo)
	if err != nil {
		return nil, fmt.Errorf("lifecycle images: %w", err)
	}
	return out, nil
}

// ExpireImage deletes an image a lifecycle policy expired, with its effects (the "ECR Image
// Action" DELETE event) in the same transaction, provided it is still as the policy saw it: pushed at pushedAt, with exactly these tags, listed by no index. Otherwise (a tag
// moved onto it, it was pushed again) it is left, and ExpireImage reports false.
func (db *DB) ExpireImage(ctx context.Context, repo, digest string, tags []string, pushedAt time.Time) (bool, error) {
	var deleted bool
	var eff store.Effects
	err := db.tx(ctx, func(tx pgx.Tx) error {
		deleted = false
		m, err := scanManifest(tx.QueryRow(ctx, "SELECT "+manifestColumns+" FROM manifests WHERE repository = $1 AND digest = $2", repo, digest))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if ms(m.PushedAt) != ms(pushedAt) {
			return nil
		}
		m.Tags, err = queryStrings(ctx, tx, "SELECT tag FROM tags WHERE repository = $1 AND digest = $2 ORDER BY tag", repo, digest)
		if err != nil {
			return err
		}
		want := slices.Sorted(slices.Values(tags))
		if !slices.Equal(m.Tags, want) && !(len(m.Tags) == 0 && len(want) == 0) {
			return nil
		}
		var parent string
		err = tx.QueryRow(ctx, `SELECT manifest FROM manifest_references WHERE repository = $1 AND target = $2 AND kind = 'manifest' LIMIT 1`,
			repo, digest).Scan(&parent)
		if err == nil {
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err := deleteManifestTx(ctx, tx, repo, digest); err != nil {
			return err
		}
		deleted = true
		eff, err = db.applyEffects(ctx, tx, store.Change{Kind: store.ChangeDelete, Repository: repo, Manifest: m, Tags: m.Tags, ManifestDeleted: true})
		return err
	})
	if err == nil && deleted {
		db.reportEffects(eff)
	}
	return deleted, err
}
