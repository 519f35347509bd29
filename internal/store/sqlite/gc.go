package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lading-registry/lading/internal/store"
)

// Garbage collection's queries. A blob link (repository_blobs) is kept while a manifest of its
// repository references the blob as config or layer, or while it is younger than the grace
// period: that covers a push between its layer uploads and its manifest. A blob's content is
// kept while any link or any manifest reference names it.

// prunableLink is the condition on repository_blobs rb of a link garbage collection removes:
// older than the cutoff (?1) and referenced by no manifest of its repository.
const prunableLink = `rb.linked_at < ? AND NOT EXISTS (SELECT 1 FROM manifest_references mr
	WHERE mr.repository = rb.repository AND mr.target = rb.digest AND mr.kind IN ('config', 'layer'))`

// PruneBlobLinks removes, in one transaction, the links older than cutoff that no manifest of
// their repository references, and returns them; with dryRun it only lists them. The condition
// is evaluated inside the transaction, so a manifest that commits first keeps its links, and
// one that commits after finds them gone (as it would find a blob never uploaded).
func (db *DB) PruneBlobLinks(ctx context.Context, cutoff time.Time, dryRun bool) ([]store.BlobLink, error) {
	scan := func(r rowScanner) (store.BlobLink, error) {
		var l store.BlobLink
		var at int64
		err := r.Scan(&l.Repository, &l.Digest, &l.Size, &at)
		l.LinkedAt = fromMS(at)
		return l, err
	}
	if dryRun {
		out, err := queryAll(ctx, db.read, scan, `SELECT rb.repository, rb.digest, rb.size, rb.linked_at
			FROM repository_blobs rb WHERE `+prunableLink+` ORDER BY rb.repository, rb.digest`, cutoff.UnixMilli())
		if err != nil {
			return nil, fmt.Errorf("list prunable blob links: %w", err)
		}
		return out, nil
	}
	var out []store.BlobLink
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = queryAll(ctx, tx, scan, `DELETE FROM repository_blobs AS rb WHERE `+prunableLink+`
			RETURNING repository, digest, size, linked_at`, cutoff.UnixMilli())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("prune blob links: %w", err)
	}
	return out, nil
}

// BlobsInUse returns the digests whose content must stay: named by a link or by a manifest's
// config or layer, in any repository. With linksPrunedBefore set, links PruneBlobLinks would
// remove with that cutoff do not count (what a dry run reports).
func (db *DB) BlobsInUse(ctx context.Context, linksPrunedBefore time.Time) (map[string]bool, error) {
	q := `SELECT digest FROM repository_blobs UNION SELECT target FROM manifest_references WHERE kind IN ('config', 'layer')`
	var args []any
	if !linksPrunedBefore.IsZero() {
		q = `SELECT rb.digest FROM repository_blobs rb WHERE NOT (` + prunableLink + `)
			UNION SELECT target FROM manifest_references WHERE kind IN ('config', 'layer')`
		args = append(args, linksPrunedBefore.UnixMilli())
	}
	ds, err := queryStrings(ctx, db.read, q, args...)
	if err != nil {
		return nil, fmt.Errorf("blobs in use: %w", err)
	}
	out := make(map[string]bool, len(ds))
	for _, d := range ds {
		out[d] = true
	}
	return out, nil
}

// BlobInUse reports whether any link or manifest reference names digest, as committed now.
func (db *DB) BlobInUse(ctx context.Context, digest string) (bool, error) {
	var one int
	err := db.read.QueryRowContext(ctx, `SELECT 1 FROM repository_blobs WHERE digest = ?
		UNION ALL SELECT 1 FROM manifest_references WHERE target = ? AND kind IN ('config', 'layer') LIMIT 1`, digest, digest).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("blob in use: %w", err)
	}
	return true, nil
}

// MountBlob links into repo a blob that repository from (any repository when from is empty)
// links, in one transaction, and returns its size. When no such link exists any more (garbage
// collection removed it after the caller looked), it links nothing and returns ErrBlobUnknown,
// so that the caller falls back to an upload instead of linking content that may be gone.
func (db *DB) MountBlob(ctx context.Context, repo, from, digest string, create bool) (int64, error) {
	var size int64
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		q, args := "SELECT size FROM repository_blobs WHERE digest = ? LIMIT 1", []any{digest}
		if from != "" {
			q, args = "SELECT size FROM repository_blobs WHERE repository = ? AND digest = ?", []any{from, digest}
		}
		err := tx.QueryRowContext(ctx, q, args...).Scan(&size)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrBlobUnknown
		}
		if err != nil {
			return err
		}
		if _, err := ensureRepository(ctx, tx, repo, create); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO repository_blobs(repository, digest, size, linked_at) VALUES (?, ?, ?, ?)
			ON CONFLICT(repository, digest) DO UPDATE SET linked_at = excluded.linked_at`, repo, digest, size, db.now().UnixMilli())
		return err
	})
	return size, err
}

// linkRefreshEvery bounds how often a blob's link is re-stamped when clients ask whether it
// exists: once a minute at most, so that existence checks do not each cost a write.
const linkRefreshEvery = time.Minute

// CheckBlob is BlobSize for a client deciding whether to upload a blob (HEAD, ECR's
// BatchCheckLayerAvailability): a link it is told exists is stamped as just made, so that
// garbage collection spares it for a grace period while the client goes on to push the
// manifest that references it.
func (db *DB) CheckBlob(ctx context.Context, repo, digest string) (int64, error) {
	var size, at int64
	err := db.read.QueryRowContext(ctx, "SELECT size, linked_at FROM repository_blobs WHERE repository = ? AND digest = ?", repo, digest).Scan(&size, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, store.ErrBlobUnknown
	}
	if err != nil {
		return 0, err
	}
	now := db.now()
	if now.Sub(fromMS(at)) < linkRefreshEvery {
		return size, nil
	}
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE repository_blobs SET linked_at = ? WHERE repository = ? AND digest = ? AND linked_at < ?",
			now.UnixMilli(), repo, digest, now.UnixMilli())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// Pruned since the read (or stamped by another check): look again.
			return tx.QueryRowContext(ctx, "SELECT size FROM repository_blobs WHERE repository = ? AND digest = ?", repo, digest).Scan(&size)
		}
		return nil
	})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, store.ErrBlobUnknown
	}
	return size, err
}

// PruneInventories removes cached inventories no image needs: layer inventories of layers no
// manifest references, and image inventories of digests no repository holds and no scan state
// points at (with their package index rows), when written before cutoff. With dryRun it only
// counts them.
func (db *DB) PruneInventories(ctx context.Context, cutoff time.Time, dryRun bool) (store.InventoryPrune, error) {
	var res store.InventoryPrune
	layers := `FROM layer_inventories li WHERE li.created_at < ? AND NOT EXISTS (
		SELECT 1 FROM manifest_references mr WHERE mr.target = li.layer_digest AND mr.kind = 'layer')`
	images := `FROM image_inventories ii WHERE ii.created_at < ?
		AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = ii.image_digest)
		AND NOT EXISTS (SELECT 1 FROM image_scans s WHERE s.inventory_id = ii.id)`
	c := cutoff.UnixMilli()
	if dryRun {
		err := db.read.QueryRowContext(ctx, "SELECT count(*), coalesce(sum(length(li.inventory)), 0) "+layers, c).Scan(&res.LayerInventories, &res.Bytes)
		if err != nil {
			return res, fmt.Errorf("count unused layer inventories: %w", err)
		}
		var n, b, pb int64
		if err := db.read.QueryRowContext(ctx, "SELECT count(*), coalesce(sum(length(ii.inventory)), 0) "+images, c).Scan(&n, &b); err != nil {
			return res, fmt.Errorf("count unused image inventories: %w", err)
		}
		// The parts only those inventories link would go with them.
		err = db.read.QueryRowContext(ctx, `WITH gone AS (SELECT ii.id `+images+`)
			SELECT coalesce(sum(length(p.data)), 0) FROM inventory_parts p
			WHERE EXISTS (SELECT 1 FROM inventory_part_links l WHERE l.part_id = p.id AND l.inventory_id IN (SELECT id FROM gone))
				AND NOT EXISTS (SELECT 1 FROM inventory_part_links l WHERE l.part_id = p.id AND l.inventory_id NOT IN (SELECT id FROM gone))`, c).Scan(&pb)
		if err != nil {
			return res, fmt.Errorf("count unused inventory parts: %w", err)
		}
		res.ImageInventories, res.Bytes = n, res.Bytes+b+pb
		return res, nil
	}
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		res = store.InventoryPrune{}
		if err := tx.QueryRowContext(ctx, "SELECT count(*), coalesce(sum(length(li.inventory)), 0) "+layers, c).Scan(&res.LayerInventories, &res.Bytes); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM layer_inventories WHERE rowid IN (SELECT li.rowid "+layers+")", c); err != nil {
			return err
		}
		ids, err := queryAll(ctx, tx, func(r rowScanner) (int64, error) {
			var id, n int64
			err := r.Scan(&id, &n)
			res.Bytes += n
			return id, err
		}, "SELECT ii.id, length(ii.inventory) "+images, c)
		if err != nil {
			return err
		}
		for chunk := range chunks(ids, 200) {
			marks := placeholders(len(chunk))
			if _, err := tx.ExecContext(ctx, "DELETE FROM inventory_packages WHERE inventory_id IN ("+marks+")", toAny(chunk)...); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM image_inventories WHERE id IN ("+marks+")", toAny(chunk)...); err != nil {
				return err
			}
		}
		parts, err := unlinkPartsTx(ctx, tx, ids)
		if err != nil {
			return err
		}
		n, err := dropOrphanPartsTx(ctx, tx, parts)
		if err != nil {
			return err
		}
		res.ImageInventories, res.Bytes = int64(len(ids)), res.Bytes+n
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("prune inventories: %w", err)
	}
	return res, nil
}

// UploadSessions returns every upload session's id and last activity.
func (db *DB) UploadSessions(ctx context.Context) (map[string]time.Time, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT id, updated_at FROM uploads")
	if err != nil {
		return nil, fmt.Errorf("list upload sessions: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			return nil, err
		}
		out[id] = fromMS(at)
	}
	return out, rows.Err()
}

// DeleteUploadIfIdle forgets session id if it has had no activity since before cutoff.
func (db *DB) DeleteUploadIfIdle(ctx context.Context, id string, cutoff time.Time) (bool, error) {
	var n int64
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM uploads WHERE id = ? AND updated_at < ?", id, cutoff.UnixMilli())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n > 0, err
}
