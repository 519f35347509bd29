package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/store"
)

// Image queries for the ECR face: listings by digest with their tags, and untagging.

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
	out, err := queryAll(ctx, db.pool, func(r rowScanner) (store.ImageID, error) {
		var id store.ImageID
		return id, r.Scan(&id.Digest, &id.Tag)
	}, `SELECT m.digest, coalesce(t.tag, '') AS tag
		FROM manifests m LEFT JOIN tags t ON t.repository = m.repository AND t.digest = m.digest
		WHERE m.repository = $1 AND (m.digest, coalesce(t.tag, '')) > ($2, $3) AND NOT (m.`+generatedSBOMClause+`)`+where+`
		ORDER BY m.digest, coalesce(t.tag, '') LIMIT $4`, repo, afterDigest, afterTag, limit)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return out, nil
}

// imageColumns are manifestColumns with ECR's image size (for an index, the largest of its
// children's, as DescribeImages reports it) and the tags, sorted.
const imageColumns = `m.repository, m.digest, m.media_type, m.artifact_type, m.config_media_type, m.config_digest, m.subject,
	m.annotations, m.size,
	CASE WHEN m.media_type IN ('application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json')
		THEN coalesce((SELECT max(c.image_size) FROM manifest_references r JOIN manifests c ON c.repository = r.repository AND c.digest = r.target
			WHERE r.repository = m.repository AND r.manifest = m.digest AND r.kind = 'manifest'), 0)
		ELSE m.image_size END,
	m.pushed_at, m.last_pulled_at,
	coalesce((SELECT array_agg(t.tag ORDER BY t.tag) FROM tags t WHERE t.repository = m.repository AND t.digest = m.digest), '{}')`

func scanImage(row rowScanner) (store.Manifest, error) {
	var tags []string
	m, err := scanManifest(row, &tags)
	if err != nil {
		return m, err
	}
	m.Tags = tags
	if m.Tags == nil {
		m.Tags = []string{}
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
	out, err := queryAll(ctx, db.pool, scanImage, "SELECT "+imageColumns+" FROM manifests m WHERE m.repository = $1 AND m.digest > $2 AND NOT (m."+generatedSBOMClause+")"+clause+
		" ORDER BY m.digest LIMIT $3", repo, afterDigest, limit)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return out, nil
}

// GetImage returns one manifest (without content) with its tags and ECR image size.
func (db *DB) GetImage(ctx context.Context, repo, digest string) (store.Manifest, error) {
	m, err := scanImage(db.pool.QueryRow(ctx, "SELECT "+imageColumns+" FROM manifests m WHERE m.repository = $1 AND m.digest = $2", repo, digest))
	if errors.Is(err, pgx.ErrNoRows) {
		return m, store.ErrManifestNotFound
	}
	return m, err
}

// UntagImage removes a tag. When it was the manifest's last tag the manifest goes too, as in
// ECR's BatchDeleteImage, unless an index in the repository lists it (ErrReferencedByIndex; the
// tag then stays). It returns the manifest the tag pointed at and whether it was deleted.
func (db *DB) UntagImage(ctx context.Context, repo, tag string) (store.Manifest, bool, error) {
	var m store.Manifest
	var deleted bool
	var eff store.Effects
	err := db.tx(ctx, func(tx pgx.Tx) error {
		deleted = false
		var digest string
		err := tx.QueryRow(ctx, "SELECT digest FROM tags WHERE repository = $1 AND tag = $2", repo, tag).Scan(&digest)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrTagNotFound
		}
		if err != nil {
			return err
		}
		m, err = scanManifest(tx.QueryRow(ctx, "SELECT "+manifestColumns+" FROM manifests WHERE repository = $1 AND digest = $2", repo, digest))
		if err != nil {
			return err
		}
		m.Tags = []string{tag}
		var others int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM tags WHERE repository = $1 AND digest = $2 AND tag <> $3", repo, digest, tag).Scan(&others); err != nil {
			return err
		}
		if others > 0 {
			if _, err = tx.Exec(ctx, "DELETE FROM tags WHERE repository = $1 AND tag = $2", repo, tag); err != nil {
				return err
			}
		} else {
			if err := referencedByIndex(ctx, tx, repo, digest); err != nil {
				return err
			}
			if err := deleteManifestTx(ctx, tx, repo, digest); err != nil {
				return err
			}
			deleted = true
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
	m, err := scanManifest(db.pool.QueryRow(ctx, "SELECT "+manifestColumns+`, content FROM manifests
		WHERE repository = $1 AND digest = (SELECT manifest FROM manifest_references WHERE repository = $1 AND target = $2 LIMIT 1)`,
		repo, digest), &content)
	if errors.Is(err, pgx.ErrNoRows) {
		return m, store.ErrManifestNotFound
	}
	m.Content = content
	return m, err
}
