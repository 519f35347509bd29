package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/store"
)

// Garbage collection's queries, as store/sqlite's. A blob link (repository_blobs) is kept while
// a manifest of its repository references the blob as config or layer, or while it is younger
// than the grace period: that covers a push between its layer uploads and its manifest. A
// blob's content is kept while any link or any manifest reference names it.

// prunableLink is the condition on repository_blobs rb of a link garbage collection removes:
// older than the cutoff ($1) and referenced by no manifest of its repository.
const prunableLink = `rb.linked_at < $1 AND NOT EXISTS (SELECT 1 FROM manifest_references mr
	WHERE mr.repository = rb.repository AND mr.target = rb.digest AND mr.kind IN ('config', 'layer'))`

func scanBlobLink(r rowScanner) (store.BlobLink, error) {
	var l store.BlobLink
	var at int64
	err := r.Scan(&l.Repository, &l.Digest, &l.Size, &at)
	l.LinkedAt = fromMS(at)
	return l, err
}

// PruneBlobLinks removes, in one transaction, the links older than cutoff that no manifest of
// their repository references, and returns them; with dryRun it only lists them. The condition
// is evaluated inside a serializable transaction, so a manifest that commits first keeps its
// links, and one that commits after finds them gone (as it would find a blob never uploaded).
func (db *DB) PruneBlobLinks(ctx context.Context, cutoff time.Time, dryRun bool) ([]store.BlobLink, error) {
	if dryRun {
		out, err := queryAll(ctx, db.pool, scanBlobLink, `SELECT rb.repository, rb.digest, rb.size, rb.linked_at
			FROM repository_blobs rb WHERE `+prunableLink+` ORDER BY rb.repository, rb.digest`, cutoff.UnixMilli())
		if err != nil {
			return nil, fmt.Errorf("list prunable blob links: %w", err)
		}
		return out, nil
	}
	var out []store.BlobLink
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = queryAll(ctx, tx, scanBlobLink, `DELETE FROM repository_blobs AS rb WHERE `+prunableLink+`
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
	ds, err := queryStrings(ctx, db.pool, q, args...)
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
	err := db.pool.QueryRow(ctx, `SELECT 1 FROM repository_blobs WHERE digest = $1
		UNION ALL SELECT 1 FROM manifest_references WHERE target = $1 AND kind IN ('config', 'layer') LIMIT 1`, digest).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
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
	err := db.tx(ctx, func(tx pgx.Tx) error {
		q, args := "SELECT size FROM repository_blobs WHERE digest = $1 LIMIT 1", []any{digest}
		if from != "" {
			q, args = "SELECT size FROM repository_blobs WHERE repository = $1 AND digest = $2", []any{from, digest}
		}
		err := tx.QueryRow(ctx, q, args...).Scan(&size)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrBlobUnknown
		}
		if err != nil {
			return err
		}
		if _, err := ensureRepository(ctx, tx, repo, create); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO repository_blobs(repository, digest, size, linked_at) VALUES ($1, $2, $3, $4)
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
	err := db.pool.QueryRow(ctx, "SELECT size, linked_at FROM repository_blobs WHERE repository = $1 AND digest = $2", repo, digest).Scan(&size, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, store.ErrBlobUnknown
	}
	if err != nil {
		return 0, err
	}
	now := db.now()
	if now.Sub(fromMS(at)) < linkRefreshEvery {
		return size, nil
	}
	// One statement: the link is re-stamped if it is still there (GREATEST keeps a newer stamp
	// another node wrote), and its absence, pruned since the read, is ErrBlobUnknown.
	err = db.pool.QueryRow(ctx, `UPDATE repository_blobs SET linked_at = GREATEST(linked_at, $1)
		WHERE repository = $2 AND digest = $3 RETURNING size`, now.UnixMilli(), repo, digest).Scan(&size)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, store.ErrBlobUnknown
	}
	return size, err
}

// UploadSessions returns every upload session's id and last activity.
func (db *DB) UploadSessions(ctx context.Context) (map[string]time.Time, error) {
	rows, err := db.pool.Query(ctx, "SELECT id, updated_at FROM uploads")
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
	res, err := db.pool.Exec(ctx, "DELETE FROM uploads WHERE id = $1 AND updated_at < $2", id, cutoff.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("delete idle upload: %w", err)
	}
	return res.RowsAffected() > 0, nil
}
