package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/scanning/policy"
)

const msPerDay = int64(24 * time.Hour / time.Millisecond)

// FindingDays returns the ENHANCED findings first observed and closed on each UTC day from the
// day of from, for days days, from finding_days (kept by the writers:
// 0035_finding_days.sql). Days without a row count zero.
func (db *DB) FindingDays(ctx context.Context, from time.Time, days int) ([]findings.DayCount, error) {
	first := from.UnixMilli() / msPerDay // truncated as SQLite truncates the stored times
	out := make([]findings.DayCount, days)
	for i := range out {
		out[i].Day = time.UnixMilli((first + int64(i)) * msPerDay).UTC()
	}
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT day, opened, closed FROM finding_days WHERE scan_type = ? AND day >= ? AND day < ? ORDER BY day",
			policy.ScanTypeEnhanced, first, first+int64(days))
		if err != nil {
			return fmt.Errorf("finding days: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var day int64
			var opened, closed int
			if err := rows.Scan(&day, &opened, &closed); err != nil {
				return err
			}
			out[day-first].Opened, out[day-first].Closed = opened, closed
		}
		return rows.Err()
	})
	return out, err
}
