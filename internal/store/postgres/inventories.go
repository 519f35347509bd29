package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/store"
)

// LayerInventory returns a layer inventory cached under fingerprint, or ErrNotFound.
func (db *DB) LayerInventory(ctx context.Context, layerDigest, mode, fingerprint string) ([]byte, error) {
	var b []byte
	err := db.pool.QueryRow(ctx, "SELECT inventory FROM layer_inventories WHERE layer_digest = $1 AND mode = $2 AND fingerprint = $3",
		layerDigest, mode, fingerprint).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return b, err
}

// PutLayerInventory caches a layer inventory under the fingerprint of the extractors that
// read it, replacing one cached under another.
func (db *DB) PutLayerInventory(ctx context.Context, layerDigest, mode, fingerprint string, inventory []byte) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO layer_inventories(layer_digest, mode, fingerprint, inventory, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT(layer_digest, mode) DO UPDATE SET fingerprint = excluded.fingerprint, inventory = excluded.inventory,
			created_at = excluded.created_at`, layerDigest, mode, fingerprint, inventory, time.Now().UnixMilli())
	return err
}

// PutImageInventory stores an image's merged inventory (its header, and its parts, kept once
// however many inventories hold them) and indexes its package keys, returning its id: the keys
// of its parts in the parts' rows (key_ids, once per part), any other key in inventory_packages.
// An existing inventory for the digest and mode is replaced, and the parts only it held deleted.
func (db *DB) PutImageInventory(ctx context.Context, digest, mode, fingerprint string, os string, keys []store.PackageKey, packages int, inventory []byte, parts []store.InventoryPart) (int64, error) {
	var id int64
	own := store.KeysOutsideParts(keys, parts)
	var ecos, names []string
	for _, k := range own {
		ecos, names = append(ecos, k.Ecosystem), append(names, k.Name)
	}
	allEcos, allNames := slices.Clone(ecos), slices.Clone(names)
	for _, p := range parts {
		for _, k := range p.Keys {
			allEcos, allNames = append(allEcos, k.Ecosystem), append(allNames, k.Name)
		}
	}
	err := db.tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO image_inventories(image_digest, mode, fingerprint, os, package_count, inventory, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT(image_digest, mode) DO UPDATE SET fingerprint = excluded.fingerprint, os = excluded.os,
				package_count = excluded.package_count, inventory = excluded.inventory, created_at = excluded.created_at RETURNING id`,
			digest, mode, fingerprint, os, packages, inventory, time.Now().UnixMilli()).Scan(&id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM inventory_packages WHERE inventory_id = $1", id); err != nil {
			return err
		}
		if len(allEcos) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO package_keys(ecosystem, name) SELECT DISTINCT e, n FROM unnest($1::text[], $2::text[]) AS k(e, n)
				ON CONFLICT DO NOTHING`, allEcos, allNames); err != nil {
				return err
			}
		}
		if err := linkParts(ctx, tx, id, parts); err != nil {
			return err
		}
		if len(own) == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO inventory_packages(key_id, inventory_id)
			SELECT pk.id, $3 FROM package_keys pk JOIN unnest($1::text[], $2::text[]) AS k(e, n) ON pk.ecosystem = k.e AND pk.name = k.n
			ON CONFLICT DO NOTHING`, ecos, names, id)
		return err
	})
	return id, err
}

// partKeyIDs is the key_ids of part p.ord (1-based) of the parts whose keys $3, $4, $5 list
// (part number, ecosystem, name), their package_keys rows written before.
const partKeyIDs = `(SELECT coalesce(array_agg(DISTINCT pk.id::int4 ORDER BY pk.id::int4), '{}'::int4[])
	FROM unnest($3::int4[], $4::text[], $5::text[]) AS k(i, e, n) JOIN package_keys pk ON pk.ecosystem = k.e AND pk.name = k.n
	WHERE k.i = p.ord)`

// linkParts replaces the parts an inventory links with parts, storing those no inventory
// shares with their keys, and deletes the parts it linked before that nothing links any more.
func linkParts(ctx context.Context, tx pgx.Tx, inventoryID int64, parts []store.InventoryPart) error {
	var old []int64
	err := tx.QueryRow(ctx, `WITH gone AS (DELETE FROM inventory_part_links WHERE inventory_id = $1 RETURNING part_id)
		SELECT coalesce(array_agg(DISTINCT part_id), '{}') FROM gone`, inventoryID).Scan(&old)
	if err != nil {
		return fmt.Errorf("unlink inventory parts: %w", err)
	}
	hashes, data := make([][]byte, len(parts)), make([][]byte, len(parts))
	var keyPart []int32
	var keyEco, keyName []string
	distinct := map[string]bool{}
	for i, p := range parts {
		hashes[i], data[i] = p.Hash, p.Data
		distinct[string(p.Hash)] = true
		for _, k := range p.Keys {
			keyPart, keyEco, keyName = append(keyPart, int32(i+1)), append(keyEco, k.Ecosystem), append(keyName, k.Name)
		}
	}
	// A part inserted here may be deleted by a concurrent PruneInventories before it is linked
	// (it was an orphan): the link then misses it, and it is inserted again. Once linked, the
	// link's foreign key check holds it (FOR KEY SHARE), which the prune skips.
	for attempt := 0; len(parts) > 0; attempt++ {
		if attempt == 3 {
			return errors.New("link inventory parts: parts deleted while linked, three times")
		}
		// The keys are looked up only for the parts not stored yet.
		if _, err := tx.Exec(ctx, `INSERT INTO inventory_parts(hash, data, key_ids)
			SELECT p.h, p.d, `+partKeyIDs+` FROM unnest($1::bytea[], $2::bytea[]) WITH ORDINALITY AS p(h, d, ord)
			WHERE NOT EXISTS (SELECT 1 FROM inventory_parts x WHERE x.hash = p.h)
			ON CONFLICT (hash) DO NOTHING`, hashes, data, keyPart, keyEco, keyName); err != nil {
			return fmt.Errorf("store inventory parts: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO inventory_part_links(inventory_id, part_id) SELECT $1, id FROM inventory_parts WHERE hash = ANY($2)
			ON CONFLICT DO NOTHING`, inventoryID, hashes); err != nil {
			return fmt.Errorf("link inventory parts: %w", err)
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM inventory_part_links WHERE inventory_id = $1", inventoryID).Scan(&n); err != nil {
			return fmt.Errorf("link inventory parts: %w", err)
		}
		if n == len(distinct) {
			break
		}
	}
	// A part stored before 0046 has no keys yet: they are filled in now.
	if len(parts) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE inventory_parts x SET key_ids = `+partKeyIDs+`
			FROM unnest($1::bytea[], $2::bytea[]) WITH ORDINALITY AS p(h, d, ord)
			WHERE x.hash = p.h AND x.key_ids IS NULL`, hashes, data, keyPart, keyEco, keyName); err != nil {
			return fmt.Errorf("inventory part keys: %w", err)
		}
	}
	if len(old) == 0 {
		return nil
	}
	_, err = tx.Exec(ctx, `DELETE FROM inventory_parts p WHERE p.id = ANY($1)
		AND NOT EXISTS (SELECT 1 FROM inventory_part_links l WHERE l.part_id = p.id)`, old)
	if err != nil {
		return fmt.Errorf("delete unlinked inventory parts: %w", err)
	}
	return nil
}

// InventoryParts returns the stored inventory parts of these hashes, in their order.
func (db *DB) InventoryParts(ctx context.Context, hashes [][]byte) ([][]byte, error) {
	rows, err := db.pool.Query(ctx, "SELECT hash, data FROM inventory_parts WHERE hash = ANY($1)", hashes)
	if err != nil {
		return nil, fmt.Errorf("inventory parts: %w", err)
	}
	byHash := make(map[string][]byte, len(hashes))
	for rows.Next() {
		var h, d []byte
		if err := rows.Scan(&h, &d); err != nil {
			rows.Close()
			return nil, fmt.Errorf("inventory parts: %w", err)
		}
		byHash[string(h)] = d
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inventory parts: %w", err)
	}
	return store.PartsInOrder(hashes, byHash)
}

// ImageInventory returns a stored image inventory by id.
func (db *DB) ImageInventory(ctx context.Context, id int64) ([]byte, error) {
	var b []byte
	err := db.pool.QueryRow(ctx, "SELECT inventory FROM image_inventories WHERE id = $1", id).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return b, err
}

// InventoriesHolding returns the repository images, scanned with scanType, whose inventory
// holds any of keys: the candidates for re-evaluation when those packages' advisories change.
// An inventory holds a key through one of its parts (inventory_parts.key_ids) or, written
// before 0046, its own index rows (inventory_packages).
func (db *DB) InventoriesHolding(ctx context.Context, scanType string, keys []store.PackageKey) ([]store.InventoryRef, error) {
	if keys == nil {
		return db.inventoryRefs(ctx, "s.inventory_id IS NOT NULL AND s.scan_type = $1", scanType)
	}
	var out []store.InventoryRef
	for chunk := range slices.Chunk(keys, keyChunk) {
		exactEco, exactName, bareEco, bareName := splitKeys(chunk)
		// The ids are gathered into arrays (= ANY(ARRAY(...))), not joined: the planner cannot
		// tell how few parts hold the keys, and joined it scanned every part link and every
		// image scan (33 ms at 10,000 images, against 5 ms through the indexes).
		refs, err := db.inventoryRefs(ctx, `s.scan_type = $1 AND s.inventory_id = ANY(ARRAY(SELECT ip.inventory_id FROM inventory_packages ip
				WHERE ip.key_id IN (`+keyIDsOf(2)+`)
				UNION SELECT l.inventory_id FROM inventory_part_links l WHERE l.part_id = ANY(ARRAY(SELECT p.id FROM inventory_parts p
					WHERE p.key_ids && ARRAY(SELECT id::int4 FROM (`+keyIDsOf(2)+`) k)))))`,
			scanType, exactEco, exactName, bareEco, bareName)
		if err != nil {
			return nil, fmt.Errorf("inventories holding packages: %w", err)
		}
		out = append(out, refs...)
	}
	return out, nil
}

// keyIDsOf selects the ids of the package keys given as four text arrays from parameter
// $first on: exact keys (ecosystem, name) and keys of bare ecosystems (ecosystem, name). A key
// of a bare ecosystem ("Debian") also names the package in each of its releases ("Debian:12"),
// as its advisories apply to them all.
func keyIDsOf(first int) string {
	return fmt.Sprintf(`SELECT pk.id FROM package_keys pk JOIN unnest($%d::text[], $%d::text[]) AS k(e, n) ON pk.ecosystem = k.e AND pk.name = k.n
	UNION
	SELECT pk.id FROM package_keys pk JOIN unnest($%d::text[], $%d::text[]) AS k(e, n) ON pk.name = k.n
		AND (pk.ecosystem = k.e OR (pk.ecosystem >= k.e || ':' AND pk.ecosystem < k.e || ';'))`, first, first+1, first+2, first+3)
}

// splitKeys splits keys into those of a release ("Debian:12") and those of a bare ecosystem.
func splitKeys(keys []store.PackageKey) (exactEco, exactName, bareEco, bareName []string) {
	for _, k := range keys {
		if strings.Contains(k.Ecosystem, ":") {
			exactEco, exactName = append(exactEco, k.Ecosystem), append(exactName, k.Name)
		} else {
			bareEco, bareName = append(bareEco, k.Ecosystem), append(bareName, k.Name)
		}
	}
	return exactEco, exactName, bareEco, bareName
}

// InventoryPartsHolding returns the hashes of the stored inventory parts that may hold any of
// keys: those whose keys hold one, and those stored before 0046, whose keys are unknown.
func (db *DB) InventoryPartsHolding(ctx context.Context, keys []store.PackageKey) ([][]byte, error) {
	scan := func(r rowScanner) ([]byte, error) {
		var h []byte
		return h, r.Scan(&h)
	}
	out, err := queryAll(ctx, db.pool, scan, "SELECT hash FROM inventory_parts WHERE key_ids IS NULL")
	if err != nil {
		return nil, fmt.Errorf("inventory parts holding packages: %w", err)
	}
	for chunk := range slices.Chunk(keys, keyChunk) {
		exactEco, exactName, bareEco, bareName := splitKeys(chunk)
		got, err := queryAll(ctx, db.pool, scan, `SELECT hash FROM inventory_parts
			WHERE key_ids && ARRAY(SELECT id::int4 FROM (`+keyIDsOf(1)+`) k)`, exactEco, exactName, bareEco, bareName)
		if err != nil {
			return nil, fmt.Errorf("inventory parts holding packages: %w", err)
		}
		out = append(out, got...)
	}
	return out, nil
}

func (db *DB) inventoryRefs(ctx context.Context, where string, args ...any) ([]store.InventoryRef, error) {
	return queryAll(ctx, db.pool, func(row rowScanner) (store.InventoryRef, error) {
		var r store.InventoryRef
		var pushed, pulled int64
		err := row.Scan(&r.Repository, &r.Digest, &r.InventoryID, &pushed, &pulled, &r.ScanOnPush)
		r.PushedAt, r.LastPulledAt = fromMS(pushed), fromMS(pulled)
		return r, err
	}, `SELECT s.repository, s.image_digest, s.inventory_id, m.pushed_at, m.last_pulled_at, r.scan_on_push
		FROM image_scans s
		JOIN manifests m ON m.repository = s.repository AND m.digest = s.image_digest
		JOIN repositories r ON r.name = s.repository
		WHERE `+where, args...)
}

// PruneInventories removes cached inventories no image needs: layer inventories of layers no
// manifest references, and image inventories of digests no repository holds and no scan state
// points at (with their package index rows), when written before cutoff. With dryRun it only
// counts them.
func (db *DB) PruneInventories(ctx context.Context, cutoff time.Time, dryRun bool) (store.InventoryPrune, error) {
	const layers = `FROM layer_inventories li WHERE li.created_at < $1 AND NOT EXISTS (
		SELECT 1 FROM manifest_references mr WHERE mr.target = li.layer_digest AND mr.kind = 'layer')`
	const images = `FROM image_inventories ii WHERE ii.created_at < $1
		AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = ii.image_digest)
		AND NOT EXISTS (SELECT 1 FROM image_scans s WHERE s.inventory_id = ii.id)`
	c := cutoff.UnixMilli()
	var res store.InventoryPrune
	if dryRun {
		var lb, ib, pb int64
		err := db.pool.QueryRow(ctx, `WITH gone AS (SELECT ii.id `+images+`)
			SELECT (SELECT count(*) `+layers+`), (SELECT coalesce(sum(length(li.inventory)), 0) `+layers+`),
			(SELECT count(*) `+images+`), (SELECT coalesce(sum(length(ii.inventory)), 0) `+images+`),
			(SELECT coalesce(sum(length(p.data)), 0) FROM inventory_parts p
				WHERE NOT EXISTS (SELECT 1 FROM inventory_part_links l WHERE l.part_id = p.id AND l.inventory_id NOT IN (SELECT id FROM gone)))`, c).
			Scan(&res.LayerInventories, &lb, &res.ImageInventories, &ib, &pb)
		if err != nil {
			return store.InventoryPrune{}, fmt.Errorf("count unused inventories: %w", err)
		}
		res.Bytes = lb + ib + pb
		return res, nil
	}
	err := db.tx(ctx, func(tx pgx.Tx) error {
		res = store.InventoryPrune{}
		var lb, ib int64
		err := tx.QueryRow(ctx, `WITH gone AS (DELETE FROM layer_inventories WHERE (layer_digest, mode) IN (SELECT li.layer_digest, li.mode `+layers+`)
			RETURNING length(inventory) AS n) SELECT count(*), coalesce(sum(n), 0) FROM gone`, c).Scan(&res.LayerInventories, &lb)
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `WITH gone AS (DELETE FROM image_inventories WHERE id IN (SELECT ii.id `+images+`)
				RETURNING id, length(inventory) AS n),
			unindexed AS (DELETE FROM inventory_packages WHERE inventory_id IN (SELECT id FROM gone)),
			unlinked AS (DELETE FROM inventory_part_links WHERE inventory_id IN (SELECT id FROM gone))
			SELECT count(*), coalesce(sum(n), 0) FROM gone`, c).Scan(&res.ImageInventories, &ib)
		if err != nil {
			return err
		}
		// Every part no inventory links, not only those of the inventories just deleted: a
		// part a concurrent PutImageInventory is linking is locked, and skipped.
		var pb int64
		err = tx.QueryRow(ctx, `WITH gone AS (DELETE FROM inventory_parts WHERE id IN (SELECT p.id FROM inventory_parts p
				WHERE NOT EXISTS (SELECT 1 FROM inventory_part_links l WHERE l.part_id = p.id) FOR UPDATE SKIP LOCKED)
				RETURNING length(data) AS n)
			SELECT coalesce(sum(n), 0) FROM gone`).Scan(&pb)
		res.Bytes = lb + ib + pb
		return err
	})
	if err != nil {
		return store.InventoryPrune{}, fmt.Errorf("prune inventories: %w", err)
	}
	return res, nil
}

// RecentImages lists the manifests of every repository pushed or pulled since t, for
// bringing existing images into continuous coverage.
func (db *DB) RecentImages(ctx context.Context, since time.Time) ([]store.Manifest, error) {
	return queryAll(ctx, db.pool, func(r rowScanner) (store.Manifest, error) { return scanManifest(r) },
		"SELECT "+manifestColumns+" FROM manifests WHERE pushed_at >= $1 OR last_pulled_at >= $1 ORDER BY repository, digest", since.UnixMilli())
}
