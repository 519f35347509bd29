package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lading-registry/lading/internal/store"
)

// EnqueueScans queues scan jobs (one per image and scan type at a time).
func (db *DB) EnqueueScans(ctx context.Context, jobs ...store.ScanJob) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		for _, j := range jobs {
			if err := enqueueScanTx(ctx, tx, j); err != nil {
				return err
			}
		}
		return nil
	})
}

// ClaimScanJob takes the oldest queued job, or a running one whose lease ran out (its worker
// died), and leases it to owner until now+lease. Workers on several nodes claiming at once
// take different jobs: a row another claim has locked is skipped, not waited for.
func (db *DB) ClaimScanJob(ctx context.Context, owner string, now time.Time, lease time.Duration) (store.ScanJob, bool, error) {
	var j store.ScanJob
	var created int64
	// One statement in its own (READ COMMITTED) transaction: SKIP LOCKED is what keeps claims
	// apart, and a serializable transaction would make concurrent claims conflict instead.
	err := db.pool.QueryRow(ctx, `UPDATE scan_jobs SET state = 'running', attempts = attempts + 1, lease_owner = $1, lease_until = $2
		WHERE id = (SELECT id FROM scan_jobs WHERE state = 'queued' OR (state = 'running' AND lease_until < $3)
			ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING id, repository, image_digest, scan_type, trigger, attempts, created_at`,
		owner, now.Add(lease).UnixMilli(), now.UnixMilli()).
		Scan(&j.ID, &j.Repository, &j.Digest, &j.ScanType, &j.Trigger, &j.Attempts, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ScanJob{}, false, nil
	}
	if err != nil {
		return store.ScanJob{}, false, fmt.Errorf("claim scan job: %w", err)
	}
	j.CreatedAt = fromMS(created)
	return j, true, nil
}

// ReleaseScanJob puts a claimed job back in the queue (after a failure worth retrying).
func (db *DB) ReleaseScanJob(ctx context.Context, id int64) error {
	_, err := db.pool.Exec(ctx, `UPDATE scan_jobs SET state = 'queued', lease_owner = '', lease_until = 0 WHERE id = $1`, id)
	return err
}

// ExtendScanLease keeps a running job leased to owner until t (a heartbeat).
func (db *DB) ExtendScanLease(ctx context.Context, id int64, owner string, t time.Time) error {
	_, err := db.pool.Exec(ctx, "UPDATE scan_jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3", t.UnixMilli(), id, owner)
	return err
}

// RunningScanJobs lists the jobs currently leased, with their owners.
func (db *DB) RunningScanJobs(ctx context.Context) ([]store.ScanJob, error) {
	return queryAll(ctx, db.pool, func(r rowScanner) (store.ScanJob, error) {
		var j store.ScanJob
		return j, r.Scan(&j.ID, &j.Repository, &j.Digest, &j.ScanType, &j.Trigger, &j.Attempts, &j.LeaseOwner)
	}, "SELECT id, repository, image_digest, scan_type, trigger, attempts, lease_owner FROM scan_jobs WHERE state = 'running' ORDER BY id")
}

// PendingScanJobs counts queued and running jobs.
func (db *DB) PendingScanJobs(ctx context.Context) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, "SELECT count(*) FROM scan_jobs").Scan(&n)
	return n, err
}

// ImageScan returns the scan state of a repository image, or ErrNotFound.
func (db *DB) ImageScan(ctx context.Context, repo, digest, scanType string) (store.ImageScan, error) {
	s, err := scanImageScan(db.pool.QueryRow(ctx, "SELECT "+imageScanColumns+" FROM image_scans WHERE repository = $1 AND image_digest = $2 AND scan_type = $3",
		repo, digest, scanType))
	if errors.Is(err, pgx.ErrNoRows) {
		return s, store.ErrNotFound
	}
	return s, err
}

const imageScanColumns = `repository, image_digest, scan_type, status, description, frequency, coalesce(inventory_id, 0),
	last_scan_started_at, completed_at, source_updated_at, updated_at, image_facts, not_evaluated, not_evaluated_packages`

func scanImageScan(row rowScanner) (store.ImageScan, error) {
	var s store.ImageScan
	var started, completed, source, updated int64
	var facts, notEvaluated string
	err := row.Scan(&s.Repository, &s.Digest, &s.ScanType, &s.Status, &s.Description, &s.Frequency, &s.InventoryID,
		&started, &completed, &source, &updated, &facts, &notEvaluated, &s.NotEvaluatedPackages)
	s.LastScanStartedAt, s.CompletedAt, s.SourceUpdatedAt, s.UpdatedAt = fromMS(started), fromMS(completed), fromMS(source), fromMS(updated)
	if facts != "" {
		s.ImageFacts = []byte(facts)
	}
	if notEvaluated != "" {
		s.NotEvaluated = []byte(notEvaluated)
	}
	return s, err
}

// PutImageScan records a scan state outside a scan job (e.g. a manual scan being accepted).
func (db *DB) PutImageScan(ctx context.Context, s store.ImageScan) error {
	return putImageScanTx(ctx, db.pool, s)
}

// execer runs a statement: the pool, or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func putImageScanTx(ctx context.Context, tx execer, s store.ImageScan) error {
	_, err := tx.Exec(ctx, putImageScan, imageScanArgs(s)...)
	return err
}

// putImageScan writes an image scan state; imageScanArgs are its arguments. Image facts written
// empty are kept: only a write of findings sets them.
const putImageScan = `INSERT INTO image_scans(` + putImageScanColumns + `) VALUES (` + putImageScanValues + `)
	ON CONFLICT(repository, image_digest, scan_type) DO UPDATE SET ` + putImageScanSet

// putImageScan's columns, values and conflict update, which putImageScanObserved extends.
const (
	putImageScanColumns = `repository, image_digest, scan_type, status, description, frequency, inventory_id,
		last_scan_started_at, completed_at, source_updated_at, updated_at, image_facts, not_evaluated, not_evaluated_packages, architecture`
	putImageScanValues = `$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15`
	putImageScanSet    = `status = excluded.status, description = excluded.description,
		frequency = excluded.frequency, inventory_id = excluded.inventory_id, last_scan_started_at = excluded.last_scan_started_at,
		completed_at = excluded.completed_at, source_updated_at = excluded.source_updated_at, updated_at = excluded.updated_at,
		image_facts = CASE WHEN excluded.image_facts = '' THEN image_scans.image_facts ELSE excluded.image_facts END,
		architecture = CASE WHEN excluded.image_facts = '' THEN image_scans.architecture ELSE excluded.architecture END,
		not_evaluated = excluded.not_evaluated, not_evaluated_packages = excluded.not_evaluated_packages`
)

func imageScanArgs(s store.ImageScan) []any {
	var inv any
	if s.InventoryID != 0 {
		inv = s.InventoryID
	}
	if s.UpdatedAt.IsZero() {
		s.UpdatedAt = time.Now()
	}
	// The architecture the finding queries read, from the facts.
	arch := jsonText(jsonObject(s.ImageFacts)["architecture"])
	return []any{s.Repository, s.Digest, s.ScanType, s.Status, s.Description, s.Frequency, inv,
		ms(s.LastScanStartedAt), ms(s.CompletedAt), ms(s.SourceUpdatedAt), ms(s.UpdatedAt), string(s.ImageFacts), string(s.NotEvaluated),
		s.NotEvaluatedPackages, arch}
}

// ImageScans returns the scan states of a repository's images for the given digests.
func (db *DB) ImageScans(ctx context.Context, repo string, digests []string) (map[string][]store.ImageScan, error) {
	out := map[string][]store.ImageScan{}
	scans, err := queryAll(ctx, db.pool, scanImageScan, "SELECT "+imageScanColumns+` FROM image_scans
		WHERE repository = $1 AND image_digest = ANY($2) ORDER BY image_digest, scan_type`, repo, digests)
	if err != nil {
		return nil, fmt.Errorf("image scans: %w", err)
	}
	for _, s := range scans {
		out[s.Digest] = append(out[s.Digest], s)
	}
	return out, nil
}
