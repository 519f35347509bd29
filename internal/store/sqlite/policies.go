package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lading-registry/lading/internal/store"
)

// ResourcePolicies returns the registry policy and repo's policy, "" for each that is not set,
// in one read: authorization asks for them on every request.
func (db *DB) ResourcePolicies(ctx context.Context, repo string) (registry, repository string, err error) {
	var reg, rp sql.NullString
	err = db.read.QueryRowContext(ctx, `SELECT (SELECT policy FROM registry_policy WHERE id = 1),
		(SELECT policy FROM repository_policies WHERE repository = ?)`, repo).Scan(&reg, &rp)
	if err != nil {
		return "", "", fmt.Errorf("read resource policies: %w", err)
	}
	return reg.String, rp.String, nil
}

// RepositoryPolicies returns the registry policy ("" when not set) and the policies of the
// repositories named that have one, in one read transaction: authorization of a listing.
func (db *DB) RepositoryPolicies(ctx context.Context, repos []string) (registry string, repository map[string]string, err error) {
	names, err := json.Marshal(repos)
	if err != nil {
		return "", nil, err
	}
	repository = map[string]string{}
	err = db.readTx(ctx, func(tx *sql.Tx) error {
		var reg sql.NullString
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT policy FROM registry_policy WHERE id = 1)`).Scan(&reg); err != nil {
			return err
		}
		registry = reg.String
		rows, err := tx.QueryContext(ctx, `SELECT repository, policy FROM repository_policies WHERE repository IN (SELECT value FROM json_each(?))`, string(names))
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
	var policy sql.NullString
	err := db.read.QueryRowContext(ctx, `SELECT p.policy FROM repositories r
		LEFT JOIN repository_policies p ON p.repository = r.name WHERE r.name = ?`, repo).Scan(&policy)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", store.ErrRepositoryNotFound
	case err != nil:
		return "", fmt.Errorf("read repository policy: %w", err)
	case !policy.Valid:
		return "", store.ErrRepositoryPolicyNotFound
	}
	return policy.String, nil
}

// PutRepositoryPolicy sets a repository's policy, or returns ErrRepositoryNotFound.
func (db *DB) PutRepositoryPolicy(ctx context.Context, repo, policy string) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		if err := requireRepository(ctx, tx, repo); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO repository_policies(repository, policy, updated_at) VALUES (?, ?, ?)
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
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if err := requireRepository(ctx, tx, repo); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, "DELETE FROM repository_policies WHERE repository = ? RETURNING policy", repo).Scan(&policy)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrRepositoryPolicyNotFound
		}
		return err
	})
	return policy, err
}

// RegistryPolicy returns the registry policy, or ErrRegistryPolicyNotFound.
func (db *DB) RegistryPolicy(ctx context.Context) (string, error) {
	var policy string
	err := db.read.QueryRowContext(ctx, "SELECT policy FROM registry_policy WHERE id = 1").Scan(&policy)
	if errors.Is(err, sql.ErrNoRows) {
		return "", store.ErrRegistryPolicyNotFound
	}
	return policy, err
}

// PutRegistryPolicy sets the registry policy.
func (db *DB) PutRegistryPolicy(ctx context.Context, policy string) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO registry_policy(id, policy, updated_at) VALUES (1, ?, ?)
			ON CONFLICT(id) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at`, policy, time.Now().UnixMilli())
		return err
	})
}

// DeleteRegistryPolicy removes the registry policy and returns it, or ErrRegistryPolicyNotFound.
func (db *DB) DeleteRegistryPolicy(ctx context.Context) (string, error) {
	var policy string
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, "DELETE FROM registry_policy WHERE id = 1 RETURNING policy").Scan(&policy)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrRegistryPolicyNotFound
		}
		return err
	})
	return policy, err
}

// BlobRepositories returns up to limit repositories a blob is linked into, in name order, so
// that a mount without a source repository can look for one its caller may read.
func (db *DB) BlobRepositories(ctx context.Context, digest string, limit int) ([]string, error) {
	out, err := queryAll(ctx, db.read, func(r rowScanner) (string, error) {
		var name string
		return name, r.Scan(&name)
	}, "SELECT repository FROM repository_blobs WHERE digest = ? ORDER BY repository LIMIT ?", digest, limit)
	if err != nil {
		return nil, fmt.Errorf("blob repositories: %w", err)
	}
	return out, nil
}

// requireRepository returns ErrRepositoryNotFound unless repo exists.
func requireRepository(ctx context.Context, tx *sql.Tx, repo string) error {
	var one int
	err := tx.QueryRowContext(ctx, "SELECT 1 FROM repositories WHERE name = ?", repo).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrRepositoryNotFound
	}
	return err
}
