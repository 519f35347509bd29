package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/store"
)

// SetEffects installs the function that computes what a manifest change causes (events, scan
// jobs), written in the change's own transaction, and a function told after the commit (to wake
// the event dispatcher and the scan workers). Call it once, before serving. The function may
// run more than once for one change (a transaction retried after a serialization conflict);
// only the run of the committed attempt is written and reported.
func (db *DB) SetEffects(fn store.EffectsFunc, committed func(store.Effects)) {
	db.effects, db.committed = fn, committed
}

// applyEffects computes and writes the effects of a change inside tx. The effects are returned
// so the caller can report them once the transaction commits.
func (db *DB) applyEffects(ctx context.Context, tx pgx.Tx, c store.Change) (store.Effects, error) {
	if db.effects == nil {
		return store.Effects{}, nil
	}
	if err := tx.QueryRow(ctx, "SELECT scan_on_push FROM repositories WHERE name = $1", c.Repository).Scan(&c.RepositoryScanOnPush); err != nil {
		return store.Effects{}, err
	}
	eff, err := db.effects(ctx, c)
	if err != nil {
		return eff, err
	}
	for _, j := range eff.Scans {
		if err := enqueueScanTx(ctx, tx, j); err != nil {
			return eff, err
		}
	}
	// Last: the outbox lock is held from here to the commit.
	if err := appendOutboxTx(ctx, tx, eff.Events); err != nil {
		return eff, err
	}
	return eff, nil
}

// reportEffects tells the committed hook about effects that were written.
func (db *DB) reportEffects(eff store.Effects) {
	if db.committed != nil && (len(eff.Events) > 0 || len(eff.Scans) > 0) {
		db.committed(eff)
	}
}

// enqueueScanTx queues a scan job unless one for the same image and scan type is already
// queued or running.
func enqueueScanTx(ctx context.Context, tx pgx.Tx, j store.ScanJob) error {
	now := time.Now()
	if _, err := tx.Exec(ctx, `INSERT INTO scan_jobs(repository, image_digest, scan_type, trigger, state, created_at)
		VALUES ($1, $2, $3, $4, 'queued', $5) ON CONFLICT(repository, image_digest, scan_type) DO NOTHING`,
		j.Repository, j.Digest, j.ScanType, j.Trigger, now.UnixMilli()); err != nil {
		return err
	}
	if p := j.Pending; p != nil {
		_, err := tx.Exec(ctx, `INSERT INTO image_scans(repository, image_digest, scan_type, status, description, frequency, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT(repository, image_digest, scan_type) DO NOTHING`,
			j.Repository, j.Digest, j.ScanType, p.Status, p.Description, p.Frequency, now.UnixMilli())
		return err
	}
	return nil
}
