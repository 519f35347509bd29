package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lading-registry/lading/internal/pullgate"
)

// RepositoryPullGate returns a repository's override of the pull gate.
func (db *DB) RepositoryPullGate(ctx context.Context, repo string) (pullgate.Policy, bool, error) {
	var p pullgate.Policy
	var grace int64
	var exempt string
	err := db.read.QueryRowContext(ctx, "SELECT severity, grace_ms, exempt FROM pull_gates WHERE repository = ?", repo).Scan(&p.Severity, &grace, &exempt)
	if errors.Is(err, sql.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("read pull gate of %s: %w", repo, err)
	}
	p.Grace = time.Duration(grace) * time.Millisecond
	if err := json.Unmarshal([]byte(exempt), &p.Exempt); err != nil {
		return p, false, fmt.Errorf("pull gate of %s: exempt identities do not decode: %w", repo, err)
	}
	return p, true, nil
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
	return db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO pull_gates(repository, severity, grace_ms, exempt, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT(repository) DO UPDATE SET severity = excluded.severity, grace_ms = excluded.grace_ms, exempt = excluded.exempt,
			updated_at = excluded.updated_at`, repo, p.Severity, p.Grace.Milliseconds(), string(b), ms(db.now()))
		return err
	})
}

// DeleteRepositoryPullGate removes a repository's override; it reports whether there was one.
func (db *DB) DeleteRepositoryPullGate(ctx context.Context, repo string) (bool, error) {
	var n int64
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM pull_gates WHERE repository = ?", repo)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n > 0, err
}

// RepositoryPullGates lists the overrides by repository.
func (db *DB) RepositoryPullGates(ctx context.Context) (map[string]pullgate.Policy, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT repository FROM pull_gates ORDER BY repository")
	if err != nil {
		return nil, err
	}
	var repos []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			_ = rows.Close()
			return nil, err
		}
		repos = append(repos, r)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	out := make(map[string]pullgate.Policy, len(repos))
	for _, r := range repos {
		p, _, err := db.RepositoryPullGate(ctx, r)
		if err != nil {
			return nil, err
		}
		out[r] = p
	}
	return out, nil
}

// BlockingFindings returns what blocks a pull of the image (pullgate.Store).
func (db *DB) BlockingFindings(ctx context.Context, repo, digest, scanType string, minRank int, observedBy time.Time) ([]string, error) {
	ids, err := queryStrings(ctx, db.read, `SELECT vulnerability_id FROM findings
		WHERE repository = ? AND image_digest = ? AND scan_type = ? AND status = 'ACTIVE' AND suppressed = 0
			AND `+gateRankExpr+` >= ? AND first_observed_at <= ?
		ORDER BY `+gateRankExpr+` DESC, vulnerability_id`, repo, digest, scanType, minRank, ms(observedBy))
	if err != nil {
		return nil, fmt.Errorf("blocking findings: %w", err)
	}
	return ids, nil
}

// gateRankExpr is pullgate.Rank in SQL.
const gateRankExpr = `(CASE severity WHEN 'CRITICAL' THEN 5 WHEN 'HIGH' THEN 4 WHEN 'MEDIUM' THEN 3 WHEN 'LOW' THEN 2
	WHEN 'INFORMATIONAL' THEN 1 ELSE 0 END)`
