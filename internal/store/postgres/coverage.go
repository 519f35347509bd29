package postgres

import (
	"context"
	"fmt"

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
