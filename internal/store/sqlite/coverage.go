package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// EnhancedScans lists the images with an ENHANCED scan (scanning's rescan-window sweep).
func (db *DB) EnhancedScans(ctx context.Context) ([]store.ScannedImage, error) {
	return queryAll(ctx, db.read, func(r rowScanner) (store.ScannedImage, error) {
		var im store.ScannedImage
		var pushed, pulled int64
		err := r.Scan(&im.Repository, &im.Digest, &im.Status, &pushed, &pulled, &im.ScanOnPush)
		im.PushedAt = fromMS(pushed)
		if pulled > 0 {
			im.LastPulledAt = fromMS(pulled)
		}
		return im, err
	}, `SELECT s.repository, s.image_digest, s.status, m.pushed_at, m.last_pulled_at, r.scan_on_push FROM image_scans s
		JOIN manifests m ON m.repository = s.repository AND m.digest = s.image_digest JOIN repositories r ON r.name = s.repository
		WHERE s.scan_type = ?`, policy.ScanTypeEnhanced)
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
	repoCond, imageCond := "", ""
	var nameArgs []any
	if len(names) > 0 {
		repoCond = " AND r.name IN (" + placeholders(len(names)) + ")"
		imageCond = " AND m.repository IN (" + placeholders(len(names)) + ")"
		nameArgs = toAny(names)
	}
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		repos, err = queryAll(ctx, tx, func(r rowScanner) (findings.CoverageRow, error) {
			var row findings.CoverageRow
			var scanned int64
			err := r.Scan(&row.Repository, &row.ScanOnPush, &scanned)
			if scanned > 0 {
				row.LastScannedAt = fromMS(scanned)
			}
			return row, err
		}, `SELECT r.name, r.scan_on_push, coalesce((SELECT max(s.completed_at) FROM image_scans s WHERE s.repository = r.name AND s.scan_type = ?), 0)
			FROM repositories r WHERE r.name > ?`+repoCond+` ORDER BY r.name LIMIT ?`, append(append([]any{policy.ScanTypeEnhanced, afterRepo}, nameArgs...), limit)...)
		if err != nil {
			return fmt.Errorf("coverage of repositories: %w", err)
		}
		images, err = queryAll(ctx, tx, scanCoverageImage, `SELECT m.repository, m.digest, r.scan_on_push, m.pushed_at, m.last_pulled_at,
				(SELECT json_group_array(t.tag) FROM tags t WHERE t.repository = m.repository AND t.digest = m.digest),
				s.status, coalesce(s.description, ''), coalesce(s.completed_at, 0), coalesce(s.updated_at, 0), coalesce(s.not_evaluated_packages, 0),
				coalesce(ii.os = '' AND ii.package_count = 0, 0)
			FROM manifests m JOIN repositories r ON r.name = m.repository
			LEFT JOIN image_scans s ON s.repository = m.repository AND s.image_digest = m.digest AND s.scan_type = ?
			LEFT JOIN image_inventories ii ON ii.id = s.inventory_id
			WHERE (m.repository, m.digest) > (?, ?) AND `+imageCondition+imageCond+` ORDER BY m.repository, m.digest LIMIT ?`,
			append(append([]any{policy.ScanTypeEnhanced, afterRepo, afterDigest}, nameArgs...), limit)...)
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

// descriptionHead is how many characters of an ENHANCED scan's description image_coverage
// keeps (0042): CoverageCounts classes descriptions by a prefix no longer than that.
const descriptionHead = 32

// CoverageCounts lists the repositories and counts the images by repository, ENHANCED scan
// state and whether the rescan window covers them, in one pass over image_coverage (0042).
func (db *DB) CoverageCounts(ctx context.Context, q findings.CoverageCountQuery) (findings.CoverageCounts, error) {
	var out findings.CoverageCounts
	if n := utf8.RuneCountInString(q.FailurePrefix); n > descriptionHead {
		return out, fmt.Errorf("coverage counts: a failure prefix of %d characters, over the %d stored", n, descriptionHead)
	}
	pushedSince := int64(math.MinInt64)
	if !q.PushedSince.IsZero() {
		pushedSince = ceilMS(q.PushedSince)
	}
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		out.Repositories, err = queryAll(ctx, tx, func(r rowScanner) (findings.CoverageRow, error) {
			var row findings.CoverageRow
			return row, r.Scan(&row.Repository, &row.ScanOnPush)
		}, `SELECT name, scan_on_push FROM repositories ORDER BY name`)
		if err != nil {
			return fmt.Errorf("repositories: %w", err)
		}
		// The index image_coverage_state is in the GROUP BY's order: no sort. Its groups are
		// finer (a description head, not whether it starts with the prefix; the times summed,
		// not grouped): mergeCoverage makes them the query's groups.
		var rows []coverageRow
		rows, err = queryAll(ctx, tx, func(r rowScanner) (coverageRow, error) {
			var c coverageRow
			var status sql.NullString
			err := r.Scan(&c.repository, &status, &c.failure, &c.noPackages, &c.covered, &c.images)
			c.scanned, c.status = status.Valid, status.String
			return c, err
		}, `SELECT repository, status, coalesce(substr(description_head, 1, length(?1)) = ?1, 0), no_packages,
				sum(pushed_at >= ?2 OR (last_pulled_at > 0 AND last_pulled_at >= ?3)), count(*)
			FROM image_coverage INDEXED BY image_coverage_state GROUP BY repository, status, description_head, no_packages`,
			q.FailurePrefix, pushedSince, ceilMS(q.PulledSince))
		if err != nil {
			return fmt.Errorf("images: %w", err)
		}
		out.Images = mergeCoverage(rows, q.FailurePrefix)
		return nil
	})
	return out, err
}

// coverageRow is a group of image_coverage_state: a repository's images with one scan status,
// description head and inventory emptiness; covered of them in the rescan window.
type coverageRow struct {
	repository, status           string
	scanned, failure, noPackages bool
	covered, images              int64
}

// mergeCoverage makes rows, in (repository, status) order, the groups CoverageCounts returns:
// by repository, scan status, failure, inventory emptiness and window, in that order.
func mergeCoverage(rows []coverageRow, failurePrefix string) []findings.CoverageGroup {
	type key struct{ failure, noPackages, covered bool }
	var out []findings.CoverageGroup
	for len(rows) > 0 {
		// The rows of one repository and status.
		n := 1
		for n < len(rows) && rows[n].repository == rows[0].repository && rows[n].scanned == rows[0].scanned && rows[n].status == rows[0].status {
			n++
		}
		counts := map[key]int64{}
		for _, r := range rows[:n] {
			if r.covered > 0 {
				counts[key{r.failure, r.noPackages, true}] += r.covered
			}
			if r.images > r.covered {
				counts[key{r.failure, r.noPackages, false}] += r.images - r.covered
			}
		}
		first := rows[0]
		for _, failure := range []bool{false, true} {
			for _, noPackages := range []bool{false, true} {
				for _, covered := range []bool{false, true} {
					c := counts[key{failure, noPackages, covered}]
					if c == 0 {
						continue
					}
					g := findings.CoverageGroup{Repository: first.repository, Covered: covered, Images: c}
					if first.scanned {
						g.Scan = &findings.CoverageScan{Status: first.status, NoPackages: noPackages}
						if failure {
							g.Scan.Description = failurePrefix
						}
					}
					out = append(out, g)
				}
			}
		}
		rows = rows[n:]
	}
	return out
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
	var tags string
	var status sql.NullString
	var scan findings.CoverageScan
	if err := r.Scan(&row.Repository, &row.Digest, &row.ScanOnPush, &pushed, &pulled, &tags, &status, &scan.Description, &completed, &updated,
		&scan.NotEvaluatedPackages, &scan.NoPackages); err != nil {
		return row, err
	}
	if err := json.Unmarshal([]byte(tags), &row.Tags); err != nil {
		return row, fmt.Errorf("tags of %s@%s: %w", row.Repository, row.Digest, err)
	}
	slices.Sort(row.Tags)
	row.PushedAt = fromMS(pushed)
	if pulled > 0 {
		row.LastPulledAt = fromMS(pulled)
	}
	if status.Valid {
		scan.Status = status.String
		row.Scan = &scan
		// A re-evaluation is a scan too (Inspector updates lastScannedAt on CVE-driven rescans).
		last := completed
		if scan.Status == "ACTIVE" {
			last = max(last, updated)
		}
		if last > 0 {
			row.LastScannedAt = fromMS(last)
		}
	}
	return row, nil
}
