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

// ensureRepository returns whether it created the repository; with create false a missing
// repository is ErrRepositoryNotFound.
func ensureRepository(ctx context.Context, tx pgx.Tx, name string, create bool) (bool, error) {
	var one int
	err := tx.QueryRow(ctx, "SELECT 1 FROM repositories WHERE name = $1", name).Scan(&one)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, err
	}
	if !create {
		return false, store.ErrRepositoryNotFound
	}
	_, err = tx.Exec(ctx, "INSERT INTO repositories(name, created_at) VALUES ($1, $2)", name, time.Now().UnixMilli())
	return err == nil, err
}

// CreateRepository creates a repository with the given settings.
func (db *DB) CreateRepository(ctx context.Context, r store.Repository) (store.Repository, error) {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	if r.TagMutability == "" {
		r.TagMutability = store.TagMutable
	}
	if r.EncryptionType == "" {
		r.EncryptionType = "AES256"
	}
	err := db.tx(ctx, func(tx pgx.Tx) error {
		res, err := tx.Exec(ctx, `INSERT INTO repositories(name, created_at, tag_mutability, scan_on_push, encryption_type, kms_key)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT(name) DO NOTHING`,
			r.Name, ms(r.CreatedAt), r.TagMutability, r.ScanOnPush, r.EncryptionType, r.KMSKey)
		if err != nil {
			return err
		}
		if res.RowsAffected() == 0 {
			return store.ErrRepositoryExists
		}
		return putResourceTags(ctx, tx, r.Name, r.Tags)
	})
	return r, err
}

func putResourceTags(ctx context.Context, tx pgx.Tx, repo string, tags map[string]string) error {
	for k, v := range tags {
		if _, err := tx.Exec(ctx, `INSERT INTO repository_resource_tags(repository, key, value) VALUES ($1, $2, $3)
			ON CONFLICT(repository, key) DO UPDATE SET value = excluded.value`, repo, k, v); err != nil {
			return err
		}
	}
	return nil
}

const repositoryColumns = "name, created_at, tag_mutability, scan_on_push, encryption_type, kms_key"

func scanRepository(row rowScanner) (store.Repository, error) {
	var r store.Repository
	var created int64
	err := row.Scan(&r.Name, &created, &r.TagMutability, &r.ScanOnPush, &r.EncryptionType, &r.KMSKey)
	r.CreatedAt = fromMS(created)
	return r, err
}

// GetRepository returns one repository with its resource tags.
func (db *DB) GetRepository(ctx context.Context, name string) (store.Repository, error) {
	r, err := scanRepository(db.pool.QueryRow(ctx, "SELECT "+repositoryColumns+" FROM repositories WHERE name = $1", name))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, store.ErrRepositoryNotFound
	}
	if err != nil {
		return r, fmt.Errorf("get repository: %w", err)
	}
	r.Tags, err = db.resourceTags(ctx, name)
	return r, err
}

func (db *DB) resourceTags(ctx context.Context, repo string) (map[string]string, error) {
	rows, err := db.pool.Query(ctx, "SELECT key, value FROM repository_resource_tags WHERE repository = $1 ORDER BY key", repo)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	tags := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		tags[k] = v
	}
	return tags, rows.Err()
}

// ListRepositories returns up to limit repositories named after `after`, in name order.
func (db *DB) ListRepositories(ctx context.Context, after string, limit int) ([]store.Repository, error) {
	out, err := queryAll(ctx, db.pool, scanRepository, "SELECT "+repositoryColumns+" FROM repositories WHERE name > $1 ORDER BY name LIMIT $2", after, limit)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	return out, nil
}

// DeleteRepository removes a repository; unless force, only when it holds no manifests.
func (db *DB) DeleteRepository(ctx context.Context, name string, force bool) (store.Repository, error) {
	r, err := db.GetRepository(ctx, name)
	if err != nil {
		return r, err
	}
	err = db.tx(ctx, func(tx pgx.Tx) error {
		if !force {
			var n int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM manifests WHERE repository = $1", name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return store.ErrRepositoryNotEmpty
			}
		}
		// Children first, as in store/sqlite.
		for _, q := range []string{
			"DELETE FROM tags WHERE repository = $1",
			"DELETE FROM manifest_references WHERE repository = $1",
			"DELETE FROM manifests WHERE repository = $1",
			"DELETE FROM repository_blobs WHERE repository = $1",
			"DELETE FROM uploads WHERE repository = $1",
			"DELETE FROM image_scans WHERE repository = $1",
			"DELETE FROM finding_rows WHERE target_id IN (SELECT id FROM scan_targets WHERE repository = $1)",
			"DELETE FROM scan_jobs WHERE repository = $1",
			"DELETE FROM lifecycle_policies WHERE repository = $1",
			"DELETE FROM lifecycle_previews WHERE repository = $1",
			"DELETE FROM repositories WHERE name = $1",
		} {
			if _, err := tx.Exec(ctx, q, name); err != nil {
				return err
			}
		}
		return nil
	})
	return r, err
}

// UpdateRepository applies fn to a repository's settings and stores the result.
func (db *DB) UpdateRepository(ctx context.Context, name string, fn func(*store.Repository) error) (store.Repository, error) {
	var r store.Repository
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		r, err = scanRepository(tx.QueryRow(ctx, "SELECT "+repositoryColumns+" FROM repositories WHERE name = $1", name))
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrRepositoryNotFound
		}
		if err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE repositories SET tag_mutability = $1, scan_on_push = $2, encryption_type = $3, kms_key = $4 WHERE name = $5`,
			r.TagMutability, r.ScanOnPush, r.EncryptionType, r.KMSKey, name)
		return err
	})
	return r, err
}

// TagRepository adds or replaces resource tags.
func (db *DB) TagRepository(ctx context.Context, name string, tags map[string]string) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := ensureRepository(ctx, tx, name, false); err != nil {
			return err
		}
		return putResourceTags(ctx, tx, name, tags)
	})
}

// UntagRepository removes resource tags by key.
func (db *DB) UntagRepository(ctx context.Context, name string, keys []string) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := ensureRepository(ctx, tx, name, false); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM repository_resource_tags WHERE repository = $1 AND key = ANY($2)", name, keys)
		return err
	})
}

// ResourceTags returns a repository's resource tags.
func (db *DB) ResourceTags(ctx context.Context, name string) (map[string]string, error) {
	if _, err := db.GetRepository(ctx, name); err != nil {
		return nil, err
	}
	return db.resourceTags(ctx, name)
}

// RepositoryExists reports whether a repository exists.
func (db *DB) RepositoryExists(ctx context.Context, name string) (bool, error) {
	var one int
	err := db.pool.QueryRow(ctx, "SELECT 1 FROM repositories WHERE name = $1", name).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// LinkBlob makes a committed blob visible in a repository, creating the repository when create is set.
func (db *DB) LinkBlob(ctx context.Context, repo, digest string, size int64, create bool) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := ensureRepository(ctx, tx, repo, create); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO repository_blobs(repository, digest, size, linked_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT(repository, digest) DO NOTHING`, repo, digest, size, db.now().UnixMilli())
		return err
	})
}

// BlobSize returns the size of a blob linked into repo, or ErrBlobUnknown.
func (db *DB) BlobSize(ctx context.Context, repo, digest string) (int64, error) {
	var size int64
	err := db.pool.QueryRow(ctx, "SELECT size FROM repository_blobs WHERE repository = $1 AND digest = $2", repo, digest).Scan(&size)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, store.ErrBlobUnknown
	}
	return size, err
}

// AnyBlobSize returns the size of a blob linked into any repository, or ErrBlobUnknown.
func (db *DB) AnyBlobSize(ctx context.Context, digest string) (int64, error) {
	var size int64
	err := db.pool.QueryRow(ctx, "SELECT size FROM repository_blobs WHERE digest = $1 LIMIT 1", digest).Scan(&size)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, store.ErrBlobUnknown
	}
	return size, err
}

// UnlinkBlob removes a blob from a repository. The content stays for other repositories. A blob
// that a manifest of the repository references (as config or layer) stays, with a
// *store.BlobReferencedError: the image would no longer pull. The check runs in the transaction
// that unlinks, so a manifest push cannot come between them.
func (db *DB) UnlinkBlob(ctx context.Context, repo, digest string) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		res, err := tx.Exec(ctx, "DELETE FROM repository_blobs WHERE repository = $1 AND digest = $2", repo, digest)
		if err != nil {
			return err
		}
		if res.RowsAffected() == 0 {
			return store.ErrBlobUnknown
		}
		return blobReferenced(ctx, tx, repo, digest)
	})
}

// blobReferenced returns a *store.BlobReferencedError when a manifest of repo references the
// blob digest as config or layer; the rollback of the caller's transaction keeps the link.
func blobReferenced(ctx context.Context, tx pgx.Tx, repo, digest string) error {
	var manifest string
	err := tx.QueryRow(ctx, `SELECT manifest FROM manifest_references
		WHERE repository = $1 AND target = $2 AND kind IN ($3, $4) ORDER BY manifest LIMIT 1`,
		repo, digest, store.RefConfig, store.RefLayer).Scan(&manifest)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return err
	}
	return &store.BlobReferencedError{Repository: repo, Digest: digest, Manifest: manifest}
}

// BlobLinked reports whether any repository still links digest (so its content must stay).
func (db *DB) BlobLinked(ctx context.Context, digest string) (bool, error) {
	_, err := db.AnyBlobSize(ctx, digest)
	if errors.Is(err, store.ErrBlobUnknown) {
		return false, nil
	}
	return err == nil, err
}

// CreateUpload records an upload session for repo.
func (db *DB) CreateUpload(ctx context.Context, id, repo string, create bool) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := ensureRepository(ctx, tx, repo, create); err != nil {
			return err
		}
		now := db.now().UnixMilli()
		_, err := tx.Exec(ctx, "INSERT INTO uploads(id, repository, created_at, updated_at) VALUES ($1, $2, $3, $4)", id, repo, now, now)
		return err
	})
}

// UploadRepository returns the repository an upload session belongs to.
func (db *DB) UploadRepository(ctx context.Context, id string) (string, error) {
	var repo string
	err := db.pool.QueryRow(ctx, "SELECT repository FROM uploads WHERE id = $1", id).Scan(&repo)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", store.ErrUploadNotFound
	}
	return repo, err
}

// DeleteUpload forgets an upload session. One statement that reads nothing first runs as its
// own transaction: one round trip where a SERIALIZABLE transaction takes three (BEGIN, the
// statement, COMMIT), on every blob pushed.
func (db *DB) DeleteUpload(ctx context.Context, id string) error {
	_, err := db.pool.Exec(ctx, "DELETE FROM uploads WHERE id = $1", id)
	return err
}

// DeleteUploadsBefore forgets sessions idle since before t and returns their ids.
func (db *DB) DeleteUploadsBefore(ctx context.Context, t time.Time) ([]string, error) {
	var ids []string
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		ids, err = queryStrings(ctx, tx, "DELETE FROM uploads WHERE updated_at < $1 RETURNING id", t.UnixMilli())
		return err
	})
	return ids, err
}

// TouchUpload records activity on a session, so that the TTL counts from the last chunk: one
// statement as its own transaction, as DeleteUpload.
func (db *DB) TouchUpload(ctx context.Context, id string) error {
	_, err := db.pool.Exec(ctx, "UPDATE uploads SET updated_at = $1 WHERE id = $2", db.now().UnixMilli(), id)
	return err
}

// PutManifest stores a manifest, its references and tags in one transaction. Required
// references must exist in the repository (ErrBlobUnknown / ErrManifestUnknown otherwise), with
// the size their descriptor gives (a *store.SizeMismatchError otherwise).
func (db *DB) PutManifest(ctx context.Context, m store.Manifest, refs []store.Reference, tags []string, opts store.PutOptions) (store.PutManifestResult, error) {
	var res store.PutManifestResult
	var eff store.Effects
	ann := ""
	if len(m.Annotations) > 0 {
		b, err := json.Marshal(m.Annotations)
		if err != nil {
			return res, err
		}
		ann = string(b)
	}
	err := db.tx(ctx, func(tx pgx.Tx) error {
		res = store.PutManifestResult{}
		created, err := ensureRepository(ctx, tx, m.Repository, opts.CreateRepository)
		if err != nil {
			return err
		}
		res.RepositoryCreated = created
		if opts.RefuseUnchanged {
			if err := refuseUnchanged(ctx, tx, m, tags); err != nil {
				return err
			}
		}
		var mutability string
		if err := tx.QueryRow(ctx, "SELECT tag_mutability FROM repositories WHERE name = $1", m.Repository).Scan(&mutability); err != nil {
			return err
		}
		if opts.Generated && m.Subject != "" {
			// A generated referrer (an SBOM) describes its subject and goes with it: refused
			// once the subject is deleted, so none is left behind by a delete during its making.
			var one int
			err := tx.QueryRow(ctx, "SELECT 1 FROM manifests WHERE repository = $1 AND digest = $2", m.Repository, m.Subject).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("%w: subject %s", store.ErrManifestUnknown, m.Subject)
			}
			if err != nil {
				return err
			}
		}
		imageSize := int64(0)
		for _, r := range refs {
			switch r.Kind {
			case store.RefManifest:
				var size, childImage int64
				err := tx.QueryRow(ctx, "SELECT size, image_size FROM manifests WHERE repository = $1 AND digest = $2", m.Repository, r.Digest).Scan(&size, &childImage)
				if errors.Is(err, pgx.ErrNoRows) {
					if r.Required {
						return fmt.Errorf("%w: %s", store.ErrManifestUnknown, r.Digest)
					}
					continue
				}
				if err != nil {
					return err
				}
				if err := checkSize(r, size); err != nil {
					return err
				}
				imageSize += childImage
			default:
				if r.Required {
					var size int64
					err := tx.QueryRow(ctx, "SELECT size FROM repository_blobs WHERE repository = $1 AND digest = $2", m.Repository, r.Digest).Scan(&size)
					if errors.Is(err, pgx.ErrNoRows) {
						return fmt.Errorf("%w: %s", store.ErrBlobUnknown, r.Digest)
					}
					if err != nil {
						return err
					}
					if err := checkSize(r, size); err != nil {
						return err
					}
				}
				imageSize += r.Size
			}
		}
		if mutability == store.TagImmutable {
			for _, tag := range tags {
				var cur string
				err := tx.QueryRow(ctx, "SELECT digest FROM tags WHERE repository = $1 AND tag = $2", m.Repository, tag).Scan(&cur)
				if err == nil && cur != m.Digest {
					return fmt.Errorf("%w: %s", store.ErrTagImmutable, tag)
				}
				if err != nil && !errors.Is(err, pgx.ErrNoRows) {
					return err
				}
			}
		}
		now := db.now().UnixMilli()
		r, err := tx.Exec(ctx, `INSERT INTO manifests(repository, digest, media_type, artifact_type, config_media_type, config_digest,
				subject, annotations, size, image_size, content, pushed_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT(repository, digest) DO NOTHING`,
			m.Repository, m.Digest, m.MediaType, m.ArtifactType, m.ConfigMediaType, m.ConfigDigest, m.Subject, ann,
			m.Size, imageSize, m.Content, now)
		if err != nil {
			return err
		}
		if r.RowsAffected() > 0 {
			res.Created = true
			for i, ref := range refs {
				if _, err := tx.Exec(ctx, `INSERT INTO manifest_references(repository, manifest, target, kind, position) VALUES ($1, $2, $3, $4, $5)`,
					m.Repository, m.Digest, ref.Digest, ref.Kind, i); err != nil {
					return err
				}
			}
		}
		for _, tag := range tags {
			if _, err := tx.Exec(ctx, `INSERT INTO tags(repository, tag, digest, updated_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT(repository, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
				m.Repository, tag, m.Digest, now); err != nil {
				return err
			}
		}
		pushed := m
		pushed.Content = nil
		pushed.PushedAt = fromMS(now)
		eff, err = db.applyEffects(ctx, tx, store.Change{Kind: store.ChangePush, Repository: m.Repository, Manifest: pushed, Tags: tags, Created: res.Created,
			Generated: opts.Generated})
		return err
	})
	if err == nil {
		db.reportEffects(eff)
	}
	return res, err
}

// refuseUnchanged returns ErrImageAlreadyExists when m is stored already and every tag names it.
func refuseUnchanged(ctx context.Context, tx pgx.Tx, m store.Manifest, tags []string) error {
	var one int
	err := tx.QueryRow(ctx, "SELECT 1 FROM manifests WHERE repository = $1 AND digest = $2", m.Repository, m.Digest).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, tag := range tags {
		var cur string
		err := tx.QueryRow(ctx, "SELECT digest FROM tags WHERE repository = $1 AND tag = $2", m.Repository, tag).Scan(&cur)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && cur != m.Digest) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return store.ErrImageAlreadyExists
}

// checkSize refuses a descriptor whose size is not the stored content's: a client verifies the
// size it was told, so such a manifest could not be pulled.
func checkSize(r store.Reference, stored int64) error {
	if r.Size == stored {
		return nil
	}
	return &store.SizeMismatchError{Kind: r.Kind, Digest: r.Digest, DescriptorSize: r.Size, StoredSize: stored}
}

const manifestColumns = `repository, digest, media_type, artifact_type, config_media_type, config_digest, subject, annotations,
	size, image_size, pushed_at, last_pulled_at`

func scanManifest(row rowScanner, extra ...any) (store.Manifest, error) {
	var m store.Manifest
	var ann string
	var pushed, pulled int64
	dest := append([]any{&m.Repository, &m.Digest, &m.MediaType, &m.ArtifactType, &m.ConfigMediaType, &m.ConfigDigest,
		&m.Subject, &ann, &m.Size, &m.ImageSize, &pushed, &pulled}, extra...)
	if err := row.Scan(dest...); err != nil {
		return m, err
	}
	m.PushedAt, m.LastPulledAt = fromMS(pushed), fromMS(pulled)
	if ann != "" {
		if err := json.Unmarshal([]byte(ann), &m.Annotations); err != nil {
			return m, fmt.Errorf("decode annotations: %w", err)
		}
	}
	return m, nil
}

// GetManifest returns a manifest with its content.
func (db *DB) GetManifest(ctx context.Context, repo, digest string) (store.Manifest, error) {
	var content []byte
	m, err := scanManifest(db.pool.QueryRow(ctx, "SELECT "+manifestColumns+", content FROM manifests WHERE repository = $1 AND digest = $2", repo, digest), &content)
	if errors.Is(err, pgx.ErrNoRows) {
		return m, store.ErrManifestNotFound
	}
	m.Content = content
	return m, err
}

// ResolveTag returns the digest a tag points at.
func (db *DB) ResolveTag(ctx context.Context, repo, tag string) (string, error) {
	var d string
	err := db.pool.QueryRow(ctx, "SELECT digest FROM tags WHERE repository = $1 AND tag = $2", repo, tag).Scan(&d)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", store.ErrTagNotFound
	}
	return d, err
}

// MarkPulled records a pull. Writes are coalesced to one a minute per manifest, since ECR's
// lastRecordedPullTime is approximate and a write per pull would make every pull a write.
func (db *DB) MarkPulled(ctx context.Context, m store.Manifest, at time.Time) error {
	if at.Sub(m.LastPulledAt) < time.Minute {
		return nil
	}
	// One statement, no read before it: a plain autocommit update cannot conflict.
	_, err := db.pool.Exec(ctx, "UPDATE manifests SET last_pulled_at = $1 WHERE repository = $2 AND digest = $3", at.UnixMilli(), m.Repository, m.Digest)
	return err
}

// DeleteManifest removes a manifest and the tags pointing at it. Unless allowReferenced, a
// manifest that an index in the repository lists is refused with ErrReferencedByIndex.
func (db *DB) DeleteManifest(ctx context.Context, repo, digest string, allowReferenced bool) (store.Manifest, error) {
	var m store.Manifest
	var eff store.Effects
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		m, err = scanManifest(tx.QueryRow(ctx, "SELECT "+manifestColumns+" FROM manifests WHERE repository = $1 AND digest = $2", repo, digest))
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrManifestNotFound
		}
		if err != nil {
			return err
		}
		m.Tags, err = queryStrings(ctx, tx, "SELECT tag FROM tags WHERE repository = $1 AND digest = $2 ORDER BY tag", repo, digest)
		if err != nil {
			return err
		}
		if !allowReferenced {
			if err := referencedByIndex(ctx, tx, repo, digest); err != nil {
				return err
			}
		}
		if err := deleteManifestTx(ctx, tx, repo, digest); err != nil {
			return err
		}
		eff, err = db.applyEffects(ctx, tx, store.Change{Kind: store.ChangeDelete, Repository: repo, Manifest: m, Tags: m.Tags, ManifestDeleted: true,
			Generated: generatedSBOM(m)})
		return err
	})
	if err == nil {
		db.reportEffects(eff)
	}
	return m, err
}

// generatedSBOM reports whether a manifest is an SBOM referrer Lading generated.
func generatedSBOM(m store.Manifest) bool {
	return m.Subject != "" && m.Annotations[store.AnnotationGeneratedSBOM] == "true"
}

// referencedByIndex returns ErrReferencedByIndex when an index of repo lists digest.
func referencedByIndex(ctx context.Context, tx pgx.Tx, repo, digest string) error {
	var parent string
	err := tx.QueryRow(ctx, `SELECT manifest FROM manifest_references WHERE repository = $1 AND target = $2 AND kind = 'manifest' LIMIT 1`,
		repo, digest).Scan(&parent)
	if err == nil {
		return fmt.Errorf("%w %s", store.ErrReferencedByIndex, parent)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	return nil
}

// generatedSBOMClause selects the SBOM referrers Lading generated (store.AnnotationGeneratedSBOM
// set to "true"). The annotations are encoding/json's text of a map[string]string (PutManifest):
// the member is found in the text, where a key begins after '{' or ',' and a quote inside a
// string is escaped, so the bytes cannot occur otherwise. Not with PostgreSQL's JSON functions:
// they refuse a document holding an escaped NUL, which a client's annotation may.
const generatedSBOMClause = `subject <> '' AND (strpos(annotations, '{` + generatedSBOMMember + `') > 0 OR strpos(annotations, ',` +
	generatedSBOMMember + `') > 0)`

const generatedSBOMMember = `"` + store.AnnotationGeneratedSBOM + `":"true"`

// deleteManifestTx removes a manifest with its tags, references and scan state, and the SBOM
// referrers Lading generated for it (they describe it and nothing else), and its findings.
func deleteManifestTx(ctx context.Context, tx pgx.Tx, repo, digest string) error {
	sboms, err := queryStrings(ctx, tx, "SELECT digest FROM manifests WHERE repository = $1 AND "+generatedSBOMClause+" AND subject = $2", repo, digest)
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
		"DELETE FROM tags WHERE repository = $1 AND digest = $2",
		"DELETE FROM manifest_references WHERE repository = $1 AND manifest = $2",
		"DELETE FROM manifests WHERE repository = $1 AND digest = $2",
		"DELETE FROM image_scans WHERE repository = $1 AND image_digest = $2",
		"DELETE FROM finding_rows WHERE target_id IN (SELECT id FROM scan_targets WHERE repository = $1 AND image_digest = $2)",
		"DELETE FROM scan_jobs WHERE repository = $1 AND image_digest = $2",
	} {
		if _, err := tx.Exec(ctx, q, repo, digest); err != nil {
			return err
		}
	}
	return nil
}

// DeleteTag removes a tag, leaving its manifest.
func (db *DB) DeleteTag(ctx context.Context, repo, tag string) (string, error) {
	var d string
	var eff store.Effects
	err := db.tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, "DELETE FROM tags WHERE repository = $1 AND tag = $2 RETURNING digest", repo, tag).Scan(&d)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrTagNotFound
		}
		if err != nil {
			return err
		}
		m, err := scanManifest(tx.QueryRow(ctx, "SELECT "+manifestColumns+" FROM manifests WHERE repository = $1 AND digest = $2", repo, d))
		if err != nil {
			return err
		}
		eff, err = db.applyEffects(ctx, tx, store.Change{Kind: store.ChangeDelete, Repository: repo, Manifest: m, Tags: []string{tag}})
		return err
	})
	if err == nil {
		db.reportEffects(eff)
	}
	return d, err
}

// ListTags returns up to limit tags of repo after `after`, in bytewise order.
func (db *DB) ListTags(ctx context.Context, repo, after string, limit int) ([]string, error) {
	if err := db.requireRepository(ctx, repo); err != nil {
		return nil, err
	}
	return queryStrings(ctx, db.pool, "SELECT tag FROM tags WHERE repository = $1 AND tag > $2 ORDER BY tag LIMIT $3", repo, after, limit)
}

// TagsOf returns the tags pointing at a manifest.
func (db *DB) TagsOf(ctx context.Context, repo, digest string) ([]string, error) {
	return queryStrings(ctx, db.pool, "SELECT tag FROM tags WHERE repository = $1 AND digest = $2 ORDER BY tag", repo, digest)
}

// Referrers lists the manifests whose subject is digest, oldest first.
func (db *DB) Referrers(ctx context.Context, repo, digest string) ([]store.Descriptor, error) {
	out, err := queryAll(ctx, db.pool, func(r rowScanner) (store.Descriptor, error) {
		m, err := scanManifest(r)
		at := m.ArtifactType
		if at == "" {
			at = m.ConfigMediaType
		}
		return store.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, ArtifactType: at, Annotations: m.Annotations}, err
	}, "SELECT "+manifestColumns+" FROM manifests WHERE repository = $1 AND subject = $2 ORDER BY pushed_at, digest", repo, digest)
	if err != nil {
		return nil, fmt.Errorf("referrers: %w", err)
	}
	return out, nil
}

// requireRepository returns ErrRepositoryNotFound unless repo exists.
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

// CountUploads returns how many upload sessions are open.
func (db *DB) CountUploads(ctx context.Context) (int64, error) {
	var n int64
	if err := db.pool.QueryRow(ctx, "SELECT count(*) FROM uploads").Scan(&n); err != nil {
		return 0, fmt.Errorf("count uploads: %w", err)
	}
	return n, nil
}
