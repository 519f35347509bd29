package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AcquireLease takes the lease name for holder until ttl from now, or renews it when holder
// has it, and returns who holds it now (holder, when it was taken or renewed). One
// conditional upsert, timed by the database's clock so that the nodes' clocks need not
// agree: of racing holders, one wins.
func (db *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (string, error) {
	res, err := db.pool.Exec(ctx, `INSERT INTO leases(name, holder, expires_at)
		VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond')
		ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= clock_timestamp()`,
		name, holder, ttl.Milliseconds())
	if err != nil {
		return "", fmt.Errorf("acquire lease %s: %w", name, err)
	}
	if res.RowsAffected() == 1 {
		return holder, nil
	}
	var current string
	err = db.pool.QueryRow(ctx, "SELECT holder FROM leases WHERE name = $1", name).Scan(&current)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil // released since: free, taken on the next try
	}
	if err != nil {
		return "", fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return current, nil
}

// ReleaseLease gives up holder's lease name, so that another holder need not wait for it to
// expire; a lease holder no longer has is left alone.
func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := db.pool.Exec(ctx, "DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
