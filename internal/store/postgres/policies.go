package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/store"
)

// ResourcePolicies returns the registry policy and repo's policy, "" for each that is not set,
// in one read: authorization asks for them on every request.
func (db *DB) ResourcePolicies(ctx context.Context, repo string) (registry, repository string, err error) {
	err = db.pool.QueryRow(ctx, `SELECT coalesce((SELECT policy FROM registry_policy WHERE id = 1), ''),
		coalesce((SELECT policy FROM repository_policies WHERE repository = $1), '')`, repo).Scan(&registry, &repository)
	if err != nil {
		return "", "", fmt.Errorf("read resource policies: %w", err)
	}
	return registry, repository, nil
}

// RepositoryPolicies returns the registry policy ("" when not set) and the policies of the
// repositories named that have one, in one read transaction: authorization of a listing.
func (db *DB) RepositoryPolicies(ctx context.Context, repos []string) (registry string, repository map[string]string, err error) {
	repository = map[string]string{}
	err = db.readTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT policy FROM registry_policy WHERE id = 1), '')`).Scan(&registry); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT repository, policy FROM repository_policies WHERE repository = ANY($1)`, repos)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name, doc string
			if err := rows.Scan(&name, &doc); err != nil {
				return err
			}
			repository[name] = doc
		}
		return rows.Err()
	})
	if err != nil {
		return "", nil, fmt.Errorf("read resource policies: %w", err)
	}
	return registry, repository, nil
}

// RepositoryPolicy returns a repository's policy: ErrRepositoryNotFound when the repository
// does not exist, ErrRepositoryPolicyNotFound when it has none.
func (db *DB) RepositoryPolicy(ctx context.Context, repo string) (string, error) {
	var policy *string
	err := db.pool.QueryRow(ctx, `SELECT p.policy FROM repositories r
		LEFT JOIN repository_policies p ON p.repository = r.name WHERE r.name = $1`, repo).Scan(&policy)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", store.ErrRepositoryNotFound
	case err != nil:
		return "", fmt.Errorf("read repository policy: %w", err)
	case policy == nil:
		return "", store.ErrRepositoryPolicyNotFound
	}
	return *policy, nil
}

// PutRepositoryPolicy sets a repository's policy, or returns ErrRepositoryNotFound.
func (db *DB) PutRepositoryPolicy(ctx context.Context, repo, policy string) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := ensureRepository(ctx, tx, repo, false); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO repository_policies(repository, policy, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT(repository) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at`,
			repo, policy, time.Now().UnixMilli())
		if err != nil {
			return fmt.Errorf("put repository policy: %w", err)
		}
		return nil
	})
}

// DeleteRepositoryPolicy removes a repository's policy and returns it: ErrRepositoryNotFound or
// ErrRepositoryPolicyNotFound when there is none.
func (db *DB) DeleteRepositoryPolicy(ctx context.Context, repo string) (string, error) {
	var policy string
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := ensureRepository(ctx, tx, repo, false); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, "DELETE FROM repository_policies WHERE repository = $1 RETURNING policy", repo).Scan(&policy)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrRepositoryPolicyNotFound
		}
		return err
	})
	return policy, err
}

// RegistryPolicy returns the registry policy, or ErrRegistryPolicyNotFound.
func (db *DB) RegistryPolicy(ctx context.Context) (string, error) {
	var policy string
	err := db.pool.QueryRow(ctx, "SELECT policy FROM registry_policy WHERE id = 1").Scan(&policy)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", store.ErrRegistryPolicyNotFound
	}
	return policy, err
}

// PutRegistryPolicy sets the registry policy.
func (db *DB) PutRegistryPolicy(ctx context.Context, policy string) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO registry_policy(id, policy, updated_at) VALUES (1, $1, $2)
		ON CONFLICT(id) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at`, policy, time.Now().UnixMilli())
	return err
}

// DeleteRegistryPolicy removes the registry policy and returns it, or ErrRegistryPolicyNotFound.
func (db *DB) DeleteRegistryPolicy(ctx context.Context) (string, error) {
	var policy string
	err := db.pool.QueryRow(ctx, "DELETE FROM registry_policy WHERE id = 1 RETURNING policy").Scan(&policy)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", store.ErrRegistryPolicyNotFound
	}
	return policy, err
}

// BlobRepositories returns up to limit repositories a blob is linked into, in name order, so
// that a mount without a source repository can look for one its caller may read.
func (db *DB) BlobRepositories(ctx context.Context, digest string, limit int) ([]string, error) {
	out, err := queryStrings(ctx, db.pool, "SELECT repository FROM repository_blobs WHERE digest = $1 ORDER BY repository LIMIT $2", digest, limit)
	if err != nil {
		return nil, fmt.Errorf("blob repositories: %w", err)
	}
	return out, nil
}
