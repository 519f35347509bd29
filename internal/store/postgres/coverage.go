package postgres

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// EnhancedScans lists the images with an ENHANCED scan (scanning's rescan-window sweep).
func (db *DB) EnhancedScans(ctx context.Context) ([]store.ScannedImage, error) {
	return queryAll(ctx, db.pool, func(r rowScanner) (store.ScannedImage, error) {
		var im store.ScannedImage
		var pushed, pulled int64
		err := r.Scan(&im.Repository, &im.Digest, &im.Status, &pushed, &pulled, &im.ScanOnPush)
		im.PushedAt, im.LastPulledAt = fromMS(pushed), fromMS(pulled)
		return im, err
	}, `SELECT s.repository, s.image_digest, s.status, m.pushed_at, m.last_pulled_at, r.scan_on_push FROM image_scans s
		JOIN manifests m ON m.repository = s.repository AND m.digest = s.image_digest JOIN repositories r ON r.name = s.repository
		WHERE s.scan_type = $1 ORDER BY s.repository, s.image_digest`, policy.ScanTypeEnhanced)
}

// imageCondition is scanning.IsImage in SQL: the manifests ECR scans (not indexes, not
// artifacts).
const imageCondition = `m.media_type IN ('application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json')
	AND m.config_media_type IN ('application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json')
	AND m.artifact_type = ''`

// CoverageRows returns repositories and images in (repository, digest) order, a repository
// (digest "") before its images, after (afterRepo, afterDigest), at most limit (Inspector's
// ListCoverage). Each list reads its primary key's order; the two are merged here.
func (db *DB) CoverageRows(ctx context.Context, names []string, afterRepo, afterDigest string, limit int) ([]findings.CoverageRow, error) {
	var repos, images []findings.CoverageRow
	// No names: every repository.
	every := len(names) == 0
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		repos, err = queryAll(ctx, tx, func(r rowScanner) (findings.CoverageRow, error) {
			var row findings.CoverageRow
			var scanned int64
			err := r.Scan(&row.Repository, &row.ScanOnPush, &scanned)
			row.LastScannedAt = fromMS(scanned)
			return row, err
		}, `SELECT r.name, r.scan_on_push, coalesce((SELECT max(s.completed_at) FROM image_scans s WHERE s.repository = r.name AND s.scan_type = $1), 0)
			FROM repositories r WHERE r.name > $2 AND ($3 OR r.name = ANY($4)) ORDER BY r.name LIMIT $5`,
			policy.ScanTypeEnhanced, afterRepo, every, names, limit)
		if err != nil {
			return fmt.Errorf("coverage of repositories: %w", err)
		}
		images, err = queryAll(ctx, tx, scanCoverageImage, `SELECT m.repository, m.digest, r.scan_on_push, m.pushed_at, m.last_pulled_at,
				(SELECT array_agg(t.tag ORDER BY t.tag) FROM tags t WHERE t.repository = m.repository AND t.digest = m.digest),
				s.status, coalesce(s.description, ''), coalesce(s.completed_at, 0), coalesce(s.updated_at, 0), coalesce(s.not_evaluated_packages, 0),
				coalesce(ii.os = '' AND ii.package_count = 0, false)
			FROM manifests m JOIN repositories r ON r.name = m.repository
			LEFT JOIN image_scans s ON s.repository = m.repository AND s.image_digest = m.digest AND s.scan_type = $1
			LEFT JOIN image_inventories ii ON ii.id = s.inventory_id
			WHERE (m.repository, m.digest) > ($2, $3) AND `+imageCondition+` AND ($4 OR m.repository = ANY($5))
			ORDER BY m.repository, m.digest LIMIT $6`,
			policy.ScanTypeEnhanced, afterRepo, afterDigest, every, names, limit)
		if err != nil {
			return fmt.Errorf("coverage of images: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]findings.CoverageRow, 0, min(limit, len(repos)+len(images)))
	for len(out) < limit && (len(repos) > 0 || len(images) > 0) {
		// A repository sorts before its images (its digest is "").
		if len(images) == 0 || len(repos) > 0 && repos[0].Repository <= images[0].Repository {
			out, repos = append(out, repos[0]), repos[1:]
			continue
		}
		out, images = append(out, images[0]), images[1:]
	}
	return out, nil
}

// CoverageCounts lists the repositories and counts the images by repository, ENHANCED scan
// state and whether the rescan window covers them, in one pass (indexes of 0034).
func (db *DB) CoverageCounts(ctx context.Context, q findings.CoverageCountQuery) (findings.CoverageCounts, error) {
	var out findings.CoverageCounts
	pushedSince := int64(math.MinInt64)
	if !q.PushedSince.IsZero() {
		pushedSince = ceilMS(q.PushedSince)
	}
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		out.Repositories, err = queryAll(ctx, tx, func(r rowScanner) (findings.CoverageRow, error) {
			var row findings.CoverageRow
			return row, r.Scan(&row.Repository, &row.ScanOnPush)
		}, `SELECT name, scan_on_push FROM repositories ORDER BY name`)
		if err != nil {
			return fmt.Errorf("repositories: %w", err)
		}
		out.Images, err = queryAll(ctx, tx, func(r rowScanner) (findings.CoverageGroup, error) {
			var g findings.CoverageGroup
			var status *string
			var failure, noPackages bool
			if err := r.Scan(&g.Repository, &status, &failure, &noPackages, &g.Covered, &g.Images); err != nil {
				return g, err
			}
			if status != nil {
				g.Scan = &findings.CoverageScan{Status: *status, NoPackages: noPackages}
				if failure {
					g.Scan.Description = q.FailurePrefix
				}
			}
			return g, nil
		}, `SELECT m.repository, s.status, coalesce(starts_with(s.description, $1), false), ii.id IS NOT NULL,
				m.pushed_at >= $2 OR (m.last_pulled_at > 0 AND m.last_pulled_at >= $3), count(*)
			FROM manifests m
			LEFT JOIN image_scans s ON s.repository = m.repository AND s.image_digest = m.digest AND s.scan_type = $4
			LEFT JOIN image_inventories ii ON ii.id = s.inventory_id AND ii.os = '' AND ii.package_count = 0
			WHERE `+imageCondition+` GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5`,
			q.FailurePrefix, pushedSince, ceilMS(q.PulledSince), policy.ScanTypeEnhanced)
		if err != nil {
			return fmt.Errorf("images: %w", err)
		}
		return nil
	})
	return out, err
}

// ceilMS is t in milliseconds, rounded up: a stored time (milliseconds) is at or after t
// exactly when it is at or after ceilMS(t).
func ceilMS(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

func scanCoverageImage(r rowScanner) (findings.CoverageRow, error) {
	var row findings.CoverageRow
	var pushed, pulled, completed, updated int64
	var status *string
	var scan findings.CoverageScan
	if err := r.Scan(&row.Repository, &row.Digest, &row.ScanOnPush, &pushed, &pulled, &row.Tags, &status, &scan.Description, &completed, &updated,
		&scan.NotEvaluatedPackages, &scan.NoPackages); err != nil {
		return row, err
	}
	if row.Tags == nil {
		row.Tags = []string{}
	}
	row.PushedAt, row.LastPulledAt = fromMS(pushed), fromMS(pulled)
	if status != nil {
		scan.Status = *status
		row.Scan = &scan
		// A re-evaluation is a scan too (Inspector updates lastScannedAt on CVE-driven rescans).
		last := completed
		if scan.Status == "ACTIVE" {
			last = max(last, updated)
		}
		row.LastScannedAt = fromMS(last)
	}
	return row, nil
}
