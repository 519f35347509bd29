package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// AcquireLease takes the lease name for holder until ttl from now, or renews it when holder
// has it, and reports whether holder holds it now. One conditional upsert: of racing
// holders, one wins. Leases keep the wall clock, not SetClock's (they time real work).
func (db *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := time.Now()
	var res sql.Result
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = tx.ExecContext(ctx, `INSERT INTO leases(name, holder, expires_at) VALUES (?, ?, ?)
			ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`,
			name, holder, now.Add(ttl).UnixMilli(), now.UnixMilli())
		return err
	})
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return n == 1, nil
}

// ReleaseLease gives up holder's lease name, so that another holder need not wait for it to
// expire; a lease holder no longer has is left alone.
func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM leases WHERE name = ? AND holder = ?", name, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
