package postgres

import (
	"context"
	"fmt"
	"time"
)

// AcquireLease takes the lease name for holder until ttl from now, or renews it when holder
// has it, and reports whether holder holds it now. One conditional upsert, timed by the
// database's clock so that the nodes' clocks need not agree: of racing holders, one wins.
func (db *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	res, err := db.pool.Exec(ctx, `INSERT INTO leases(name, holder, expires_at)
		VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond')
		ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= clock_timestamp()`,
		name, holder, ttl.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return res.RowsAffected() == 1, nil
}

// ReleaseLease gives up holder's lease name, so that another holder need not wait for it to
// expire; a lease holder no longer has is left alone.
func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := db.pool.Exec(ctx, "DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
