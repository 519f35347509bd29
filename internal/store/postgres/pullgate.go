package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/pullgate"
)

// RepositoryPullGate returns a repository's override of the pull gate.
func (db *DB) RepositoryPullGate(ctx context.Context, repo string) (pullgate.Policy, bool, error) {
	p, err := scanPullGate(db.pool.QueryRow(ctx, "SELECT severity, grace_ms, exempt FROM pull_gates WHERE repository = $1", repo))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("read pull gate of %s: %w", repo, err)
	}
	return p, true, nil
}

func scanPullGate(r rowScanner, extra ...any) (pullgate.Policy, error) {
	var p pullgate.Policy
	var grace int64
	var exempt string
	if err := r.Scan(append(extra, &p.Severity, &grace, &exempt)...); err != nil {
		return p, err
	}
	p.Grace = time.Duration(grace) * time.Millisecond
	if err := json.Unmarshal([]byte(exempt), &p.Exempt); err != nil {
		return p, fmt.Errorf("exempt identities do not decode: %w", err)
	}
	return p, nil
}

// SetRepositoryPullGate sets (replaces) a repository's override of the pull gate.
func (db *DB) SetRepositoryPullGate(ctx context.Context, repo string, p pullgate.Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	exempt := p.Exempt
	if exempt == nil {
		exempt = []string{}
	}
	b, err := json.Marshal(exempt)
	if err != nil {
		return err
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO pull_gates(repository, severity, grace_ms, exempt, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT(repository) DO UPDATE SET severity = excluded.severity, grace_ms = excluded.grace_ms, exempt = excluded.exempt,
		updated_at = excluded.updated_at`, repo, p.Severity, p.Grace.Milliseconds(), string(b), ms(db.now()))
	return err
}

// DeleteRepositoryPullGate removes a repository's override; it reports whether there was one.
func (db *DB) DeleteRepositoryPullGate(ctx context.Context, repo string) (bool, error) {
	res, err := db.pool.Exec(ctx, "DELETE FROM pull_gates WHERE repository = $1", repo)
	if err != nil {
		return false, err
	}
	return res.RowsAffected() > 0, nil
}

// RepositoryPullGates lists the overrides by repository.
func (db *DB) RepositoryPullGates(ctx context.Context) (map[string]pullgate.Policy, error) {
	rows, err := db.pool.Query(ctx, "SELECT repository, severity, grace_ms, exempt FROM pull_gates ORDER BY repository")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]pullgate.Policy{}
	for rows.Next() {
		var repo string
		p, err := scanPullGate(rows, &repo)
		if err != nil {
			return nil, fmt.Errorf("pull gate of %s: %w", repo, err)
		}
		out[repo] = p
	}
	return out, rows.Err()
}
