package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/lading-registry/lading/internal/store"
)

// Image queries for the ECR face: listings by digest with their tags, and untagging.

func (db *DB) requireRepository(ctx context.Context, repo string) error {
	ok, err := db.RepositoryExists(ctx, repo)
	if err != nil {
		return err
	}
	if !ok {
		return store.ErrRepositoryNotFound
	}
	return nil
}

func tagStatusClause(tagStatus string) (string, error) {
	switch tagStatus {
	case "", store.TagStatusAny:
		return "", nil
	case store.TagStatusTagged:
		return " AND EXISTS (SELECT 1 FROM tags t WHERE t.repository = m.repository AND t.digest = m.digest)", nil
	case store.TagStatusUntagged:
		return " AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository = m.repository AND t.digest = m.digest)", nil
	}
	return "", fmt.Errorf("unknown tag status %q", tagStatus)
}

// ListImageIDs lists a repository's images as ECR's ListImages does: one entry per tag, and one
// digest-only entry per untagged manifest, ordered by digest then tag, after (afterDigest,
// afterTag). Lading's SBOM referrers are left out: a script written for ECR sees the images
// it pushed.
func (db *DB) ListImageIDs(ctx context.Context, repo, tagStatus, afterDigest, afterTag string, limit int) ([]store.ImageID, error) {
	if err := db.requireRepository(ctx, repo); err != nil {
		return nil, err
	}
	var where string
	switch tagStatus {
	case "", store.TagStatusAny:
	case store.TagStatusTagged:
		where = " AND t.tag IS NOT NULL"
	case store.TagStatusUntagged:
		where = " AND t.tag IS NULL"
	default:
		return nil, fmt.Errorf("unknown tag status %q", tagStatus)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT m.digest, coalesce(t.tag, '') AS tag
		FROM manifests m LEFT JOIN tags t ON t.repository = m.repository AND t.digest = m.digest
		WHERE m.repository = ? AND (m.digest, coalesce(t.tag, '')) > (?, ?) AND NOT (m.`+generatedSBOMClause+`)`+where+`
		ORDER BY m.digest, coalesce(t.tag, '') LIMIT ?`, repo, afterDigest, afterTag, limit)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	defer rows.Close()
	var out []store.ImageID
	for rows.Next() {
		var id store.ImageID
		if err := rows.Scan(&id.Digest, &id.Tag); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// imageColumns are manifestColumns with ECR's image size (for an index, the largest of its
// children's, as DescribeImages reports it) and the tags, comma-joined (tags hold no comma).
const imageColumns = `m.repository, m.digest, m.media_type, m.artifact_type, m.config_media_type, m.config_digest, m.subject,
	m.annotations, m.size,
	CASE WHEN m.media_type IN ('application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json')
		THEN coalesce((SELECT max(c.image_size) FROM manifest_references r JOIN manifests c ON c.repository = r.repository AND c.digest = r.target
			WHERE r.repository = m.repository AND r.manifest = m.digest AND r.kind = 'manifest'), 0)
		ELSE m.image_size END,
	m.pushed_at, m.last_pulled_at,
	coalesce((SELECT group_concat(tag, ',') FROM (SELECT tag FROM tags t WHERE t.repository = m.repository AND t.digest = m.digest ORDER BY tag)), '')`

func scanImage(row interface{ Scan(...any) error }) (store.Manifest, error) {
	var tags string
	m, err := scanManifest(row, &tags)
	if err != nil {
		return m, err
	}
	m.Tags = []string{}
	if tags != "" {
		m.Tags = strings.Split(tags, ",")
	}
	return m, nil
}

// ListImages returns up to limit manifests of repo (without content) with their tags, in digest
// order after afterDigest, filtered by tag status; Lading's SBOM referrers are left out, as by
// ListImageIDs.
func (db *DB) ListImages(ctx context.Context, repo, tagStatus, afterDigest string, limit int) ([]store.Manifest, error) {
	if err := db.requireRepository(ctx, repo); err != nil {
		return nil, err
	}
	clause, err := tagStatusClause(tagStatus)
	if err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx, "SELECT "+imageColumns+" FROM manifests m WHERE m.repository = ? AND m.digest > ? AND NOT (m."+generatedSBOMClause+")"+clause+
		" ORDER BY m.digest LIMIT ?", repo, afterDigest, limit)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	defer rows.Close()
	var out []store.Manifest
	for rows.Next() {
		m, err := scanImage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// GetImage returns one manifest (without content) with its tags and ECR image size.
func (db *DB) GetImage(ctx context.Context, repo, digest string) (store.Manifest, error) {
	m, err := scanImage(db.read.QueryRowContext(ctx, "SELECT "+imageColumns+" FROM manifests m WHERE m.repository = ? AND m.digest = ?", repo, digest))
	if errors.Is(err, sql.ErrNoRows) {
		return m, store.ErrManifestNotFound
	}
	return m, err
}

// UntagImage removes a tag. When it was the manifest's last tag the manifest goes too, as in
// ECR's BatchDeleteImage, unless an index in the repository lists it (ErrReferencedByIndex; the
// tag then stays). It returns the manifest the tag pointed at and whether it was deleted.
func (db *DB) UntagImage(ctx context.Context, repo, tag string) (store.Manifest, bool, error) {
	var m store.Manifest
	var eff store.Effects
	deleted := false
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var digest string
		err := tx.QueryRowContext(ctx, "SELECT digest FROM tags WHERE repository = ? AND tag = ?", repo, tag).Scan(&digest)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrTagNotFound
		}
		if err != nil {
			return err
		}
		m, err = scanManifest(tx.QueryRowContext(ctx, "SELECT "+manifestColumns+" FROM manifests WHERE repository = ? AND digest = ?", repo, digest))
		if err != nil {
			return err
		}
		m.Tags = []string{tag}
		var others int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM tags WHERE repository = ? AND digest = ? AND tag <> ?", repo, digest, tag).Scan(&others); err != nil {
			return err
		}
		if others == 0 {
			var parent string
			err := tx.QueryRowContext(ctx, `SELECT manifest FROM manifest_references WHERE repository = ? AND target = ? AND kind = 'manifest' LIMIT 1`,
				repo, digest).Scan(&parent)
			if err == nil {
				return fmt.Errorf("%w %s", store.ErrReferencedByIndex, parent)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if err := deleteManifestTx(ctx, tx, repo, digest); err != nil {
				return err
			}
			deleted = true
		} else if _, err = tx.ExecContext(ctx, "DELETE FROM tags WHERE repository = ? AND tag = ?", repo, tag); err != nil {
			return err
		}
		eff, err = db.applyEffects(ctx, tx, store.Change{Kind: store.ChangeDelete, Repository: repo, Manifest: m, Tags: m.Tags, ManifestDeleted: deleted})
		return err
	})
	if err == nil {
		db.reportEffects(eff)
	}
	return m, deleted, err
}

// ReferencingManifest returns (with content) a manifest of repo that references digest as a
// config, layer or child manifest, or ErrManifestNotFound. It tells the media type of a blob.
func (db *DB) ReferencingManifest(ctx context.Context, repo, digest string) (store.Manifest, error) {
	var content []byte
	m, err := scanManifest(db.read.QueryRowContext(ctx, "SELECT "+manifestColumns+`, content FROM manifests
		WHERE repository = ? AND digest = (SELECT manifest FROM manifest_references WHERE repository = ? AND target = ? LIMIT 1)`,
		repo, repo, digest), &content)
	if errors.Is(err, sql.ErrNoRows) {
		return m, store.ErrManifestNotFound
	}
	m.Content = content
	return m, err
}
