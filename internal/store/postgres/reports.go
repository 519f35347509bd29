package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/store"
)

const reportJobColumns = `id, kind, format, status, error_code, error_message, bucket, key_prefix, kms_key_arn, criteria, files, owner,
	created_at, updated_at`

func scanReportJob(r rowScanner) (store.ReportJob, error) {
	var j store.ReportJob
	var files string
	var created, updated int64
	if err := r.Scan(&j.ID, &j.Kind, &j.Format, &j.Status, &j.ErrorCode, &j.ErrorMessage, &j.Bucket, &j.KeyPrefix, &j.KMSKeyARN,
		&j.Criteria, &files, &j.Owner, &created, &updated); err != nil {
		return j, err
	}
	j.CreatedAt, j.UpdatedAt = fromMS(created), fromMS(updated)
	if err := json.Unmarshal([]byte(files), &j.Files); err != nil {
		return j, fmt.Errorf("report %s: files: %w", j.ID, err)
	}
	return j, nil
}

func nonNilStrings(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// CreateReportJob stores a new report job.
func (db *DB) CreateReportJob(ctx context.Context, j store.ReportJob) error {
	files, err := json.Marshal(nonNilStrings(j.Files))
	if err != nil {
		return err
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO report_jobs(`+reportJobColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		j.ID, j.Kind, j.Format, j.Status, j.ErrorCode, j.ErrorMessage, j.Bucket, j.KeyPrefix, j.KMSKeyARN, j.Criteria, string(files), j.Owner,
		ms(j.CreatedAt), ms(j.UpdatedAt))
	return err
}

// ReportJob returns a report job of a kind, or store.ErrNotFound.
func (db *DB) ReportJob(ctx context.Context, kind, id string) (store.ReportJob, error) {
	j, err := scanReportJob(db.pool.QueryRow(ctx, "SELECT "+reportJobColumns+" FROM report_jobs WHERE kind = $1 AND id = $2", kind, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return j, store.ErrNotFound
	}
	return j, err
}

// LatestReportJob returns the most recently created job of a kind, or store.ErrNotFound.
func (db *DB) LatestReportJob(ctx context.Context, kind string) (store.ReportJob, error) {
	j, err := scanReportJob(db.pool.QueryRow(ctx, "SELECT "+reportJobColumns+" FROM report_jobs WHERE kind = $1 ORDER BY created_at DESC, id DESC LIMIT 1", kind))
	if errors.Is(err, pgx.ErrNoRows) {
		return j, store.ErrNotFound
	}
	return j, err
}

// FinishReportJob ends a job that is still IN_PROGRESS with a status, an error (empty on
// success) and the files it wrote. It reports false when the job had ended already (a cancel
// came first), leaving it as it was.
func (db *DB) FinishReportJob(ctx context.Context, id, status, code, message string, files []string, at time.Time) (bool, error) {
	b, err := json.Marshal(nonNilStrings(files))
	if err != nil {
		return false, err
	}
	// One statement: the row lock it takes decides between a finish and a cancel racing.
	res, err := db.pool.Exec(ctx, `UPDATE report_jobs SET status = $1, error_code = $2, error_message = $3, files = $4, updated_at = $5
		WHERE id = $6 AND status = 'IN_PROGRESS'`, status, code, message, string(b), ms(at), id)
	if err != nil {
		return false, err
	}
	return res.RowsAffected() > 0, nil
}

// RunningReportJobs returns the jobs still IN_PROGRESS.
func (db *DB) RunningReportJobs(ctx context.Context) ([]store.ReportJob, error) {
	return queryAll(ctx, db.pool, scanReportJob, "SELECT "+reportJobColumns+" FROM report_jobs WHERE status = 'IN_PROGRESS' ORDER BY created_at, id")
}

// ScannedImages returns the images holding a stored inventory of a scan type (the images an
// SBOM export covers), with their tags, by repository and digest.
func (db *DB) ScannedImages(ctx context.Context, scanType string) ([]store.InventoriedImage, error) {
	return queryAll(ctx, db.pool, func(r rowScanner) (store.InventoriedImage, error) {
		var im store.InventoriedImage
		var pushed int64
		err := r.Scan(&im.Repository, &im.Digest, &pushed, &im.InventoryID, &im.Tags)
		im.PushedAt = fromMS(pushed)
		return im, err
	}, `SELECT m.repository, m.digest, m.pushed_at, s.inventory_id, (SELECT array_agg(t.tag ORDER BY t.tag) FROM tags t
			WHERE t.repository = m.repository AND t.digest = m.digest)
		FROM image_scans s JOIN manifests m ON m.repository = s.repository AND m.digest = s.image_digest
		WHERE s.scan_type = $1 AND s.inventory_id > 0
		ORDER BY m.repository, m.digest`, scanType)
}

// ReportFile returns the latest job that wrote a file (bucket and key), or store.ErrNotFound.
func (db *DB) ReportFile(ctx context.Context, bucket, key string) (store.ReportJob, error) {
	j, err := scanReportJob(db.pool.QueryRow(ctx, "SELECT "+reportJobColumns+` FROM report_jobs j
		WHERE j.bucket = $1 AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(j.files::jsonb) f WHERE f = $2)
		ORDER BY j.created_at DESC, j.id DESC LIMIT 1`, bucket, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return j, store.ErrNotFound
	}
	return j, err
}
