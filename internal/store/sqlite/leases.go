package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// AcquireLease takes the lease name for holder until ttl from now, or renews it when holder
// has it, and returns who holds it now (holder, when it was taken or renewed). One
// conditional upsert: of racing holders, one wins. Leases keep the wall clock, not
// SetClock's (they time real work).
func (db *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (string, error) {
	now := time.Now()
	var current string
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO leases(name, holder, expires_at) VALUES (?, ?, ?)
			ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`,
			name, holder, now.Add(ttl).UnixMilli(), now.UnixMilli()); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, "SELECT holder FROM leases WHERE name = ?", name).Scan(&current)
	})
	if err != nil {
		return "", fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return current, nil
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
