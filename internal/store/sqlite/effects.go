package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/lading-registry/lading/internal/store"
)

// SetEffects installs the function that computes what a manifest change causes (events, scan
// jobs), written in the change's own transaction, and a function told after the commit (to wake
// the event dispatcher and the scan workers). Call it once, before serving.
func (db *DB) SetEffects(fn store.EffectsFunc, committed func(store.Effects)) {
	db.effects, db.committed = fn, committed
}

// applyEffects computes and writes the effects of a change inside tx. The effects are returned
// so the caller can report them once the transaction commits.
func (db *DB) applyEffects(ctx context.Context, tx *sql.Tx, c store.Change) (store.Effects, error) {
	if db.effects == nil {
		return store.Effects{}, nil
	}
	if err := tx.QueryRowContext(ctx, "SELECT scan_on_push FROM repositories WHERE name = ?", c.Repository).Scan(&c.RepositoryScanOnPush); err != nil {
		return store.Effects{}, err
	}
	eff, err := db.effects(ctx, c)
	if err != nil {
		return eff, err
	}
	if err := appendOutboxTx(ctx, tx, eff.Events); err != nil {
		return eff, err
	}
	for _, j := range eff.Scans {
		if err := enqueueScanTx(ctx, tx, j); err != nil {
			return eff, err
		}
	}
	return eff, nil
}

// reportEffects tells the committed hook about effects that were written.
func (db *DB) reportEffects(eff store.Effects) {
	if db.committed != nil && (len(eff.Events) > 0 || len(eff.Scans) > 0) {
		db.committed(eff)
	}
}

// generatedSBOMClause selects the SBOM referrers Lading generated (store.AnnotationGeneratedSBOM);
// CASE, because json_extract fails on the empty annotations of most manifests.
const generatedSBOMClause = `subject != '' AND coalesce(CASE WHEN json_valid(annotations) THEN json_extract(annotations, '$."` +
	store.AnnotationGeneratedSBOM + `"') END, '') = 'true'`

// generatedSBOM reports whether a manifest is an SBOM referrer Lading generated.
func generatedSBOM(m store.Manifest) bool {
	return m.Subject != "" && m.Annotations[store.AnnotationGeneratedSBOM] == "true"
}

// deleteManifestTx removes a manifest with its tags, references and scan state, and the SBOM
// referrers Lading generated for it (they describe it and nothing else).
func deleteManifestTx(ctx context.Context, tx *sql.Tx, repo, digest string) error {
	sboms, err := queryStrings(ctx, tx, "SELECT digest FROM manifests WHERE repository = ? AND "+generatedSBOMClause+" AND subject = ?", repo, digest)
	if err != nil {
		return err
	}
	for _, d := range sboms {
		if d == digest {
			continue
		}
		if err := deleteManifestTx(ctx, tx, repo, d); err != nil {
			return err
		}
	}
	for _, q := range []string{
		"DELETE FROM tags WHERE repository = ? AND digest = ?",
		"DELETE FROM manifest_references WHERE repository = ? AND manifest = ?",
		"DELETE FROM manifests WHERE repository = ? AND digest = ?",
		"DELETE FROM image_scans WHERE repository = ? AND image_digest = ?",
		"DELETE FROM finding_rows WHERE target_id IN (SELECT id FROM scan_targets WHERE repository = ? AND image_digest = ?)",
		"DELETE FROM scan_targets WHERE repository = ? AND image_digest = ?",
		"DELETE FROM scan_jobs WHERE repository = ? AND image_digest = ?",
	} {
		if _, err := tx.ExecContext(ctx, q, repo, digest); err != nil {
			return err
		}
	}
	return nil
}

// enqueueScanTx queues a scan job unless one for the same image and scan type is already
// queued or running.
func enqueueScanTx(ctx context.Context, tx *sql.Tx, j store.ScanJob) error {
	now := time.Now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO scan_jobs(repository, image_digest, scan_type, trigger, state, created_at)
		VALUES (?, ?, ?, ?, 'queued', ?) ON CONFLICT(repository, image_digest, scan_type) DO NOTHING`,
		j.Repository, j.Digest, j.ScanType, j.Trigger, now.UnixMilli()); err != nil {
		return err
	}
	if p := j.Pending; p != nil {
		_, err := tx.ExecContext(ctx, `INSERT INTO image_scans(repository, image_digest, scan_type, status, description, frequency, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(repository, image_digest, scan_type) DO NOTHING`,
			j.Repository, j.Digest, j.ScanType, p.Status, p.Description, p.Frequency, now.UnixMilli())
		return err
	}
	return nil
}
