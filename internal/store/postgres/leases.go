package postgres

import (
	"context"
	"fmt"
	"time"
)

// AcquireLease takes the lease name for holder until ttl from now, or renews it if holder has
// it, and reports whether holder has it now: false while another holder's lease runs. It is
// one conditional upsert, so two nodes never both get it; the time is the database's, so the
// nodes' clocks need not agree.
func (db *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	// Outside db.tx: a single statement is atomic, and it must not queue behind the writers'
	// semaphore, or a busy node would let its leases lapse.
	res, err := db.pool.Exec(ctx, `WITH now AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms)
		INSERT INTO leases(name, holder, expires_at) SELECT $1, $2, ms + $3 FROM now
		ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= (SELECT ms FROM now)`,
		name, holder, ttl.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return res.RowsAffected() == 1, nil
}

// ReleaseLease gives up holder's lease name, so another holder may take it at once; a lease
// holder does not have is left alone.
func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := db.pool.Exec(ctx, "DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
