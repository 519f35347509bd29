package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// ActiveFindingCounts returns, for each of a repository's digests with ACTIVE findings of
// scanType, how many there are of each severity (ACTIVE and not suppressed), from
// image_finding_counts: a row an image. Severities with none are left out; digests with none
// are absent.
func (db *DB) ActiveFindingCounts(ctx context.Context, repo string, digests []string, scanType string) (map[string]map[string]int, error) {
	rows, err := db.pool.Query(ctx, `SELECT image_digest, n_critical, n_high, n_medium, n_low, n_informational, n_undefined
		FROM image_finding_counts WHERE repository = $1 AND scan_type = $2 AND n_all > 0 AND image_digest = ANY($3)`, repo, scanType, digests)
	if err != nil {
		return nil, fmt.Errorf("active finding counts of %s: %w", repo, err)
	}
	defer rows.Close()
	out := map[string]map[string]int{}
	for rows.Next() {
		var dgst string
		var n [6]int
		if err := rows.Scan(&dgst, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5]); err != nil {
			return nil, fmt.Errorf("active finding counts of %s: %w", repo, err)
		}
		out[dgst] = store.CountsBySeverity(n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("active finding counts of %s: %w", repo, err)
	}
	return out, nil
}

// RepositoryFindingCounts returns, per repository with any, its images' ACTIVE unsuppressed
// findings of scanType by severity, summed.
func (db *DB) RepositoryFindingCounts(ctx context.Context, scanType string) (map[string]map[string]int, error) {
	rows, err := db.pool.Query(ctx, `SELECT repository, sum(n_critical), sum(n_high), sum(n_medium), sum(n_low), sum(n_informational), sum(n_undefined)
		FROM image_finding_counts WHERE scan_type = $1 AND n_all > 0 GROUP BY repository`, scanType)
	if err != nil {
		return nil, fmt.Errorf("repository finding counts: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]int{}
	for rows.Next() {
		var repo string
		var n [6]int
		if err := rows.Scan(&repo, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5]); err != nil {
			return nil, fmt.Errorf("repository finding counts: %w", err)
		}
		out[repo] = store.CountsBySeverity(n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("repository finding counts: %w", err)
	}
	return out, nil
}

const msPerDay = int64(24 * time.Hour / time.Millisecond)

// FindingDays returns the ENHANCED findings first observed and closed on each UTC day from the
// day of from, for days days. SQLite keeps these counts in a table (its 0035_finding_days.sql);
// here they are counted from the findings of the period, which gives the same answer (that
// table's triggers undo a deleted finding's counts) at the cost of reading those findings.
func (db *DB) FindingDays(ctx context.Context, from time.Time, days int) ([]findings.DayCount, error) {
	first := from.UnixMilli() / msPerDay
	out := make([]findings.DayCount, days)
	for i := range out {
		out[i].Day = time.UnixMilli((first + int64(i)) * msPerDay).UTC()
	}
	lo, hi := first*msPerDay, (first+int64(days))*msPerDay
	rows, err := db.pool.Query(ctx, `SELECT day, sum(opened), sum(closed) FROM (
			SELECT first_observed_at / $4 AS day, 1 AS opened, 0 AS closed FROM findings
			WHERE scan_type = $1 AND first_observed_at >= $2 AND first_observed_at < $3
			UNION ALL
			SELECT updated_at / $4, 0, 1 FROM findings
			WHERE scan_type = $1 AND status = 'CLOSED' AND updated_at >= $2 AND updated_at < $3) d
		GROUP BY day`, policy.ScanTypeEnhanced, lo, hi, msPerDay)
	if err != nil {
		return nil, fmt.Errorf("finding days: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var day int64
		var opened, closed int
		if err := rows.Scan(&day, &opened, &closed); err != nil {
			return nil, fmt.Errorf("finding days: %w", err)
		}
		out[day-first].Opened, out[day-first].Closed = opened, closed
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("finding days: %w", err)
	}
	return out, nil
}
