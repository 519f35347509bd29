package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/vulndb"
)

// The advisory store (vulndb.Store), as store/sqlite's: see migrations/0010_advisories.sql.

var _ vulndb.Store = (*DB)(nil)

const (
	// keptChangeSets is how many versions keep their change sets; a reader further behind
	// reloads everything.
	keptChangeSets = 64
	// staleBatchAge is when a batch that never committed (its process died) is collected.
	staleBatchAge = 6 * time.Hour
	// flushRecords and flushBytes bound how much a staged batch buffers before writing.
	flushRecords = 500
	flushBytes   = 16 << 20
	// keyChunk bounds the keys of one lookup.
	keyChunk = 5000
)

// AdvisoryVersion returns the current advisory database version.
func (db *DB) AdvisoryVersion(ctx context.Context) (int64, error) {
	v, err := advisoryVersion(ctx, db.pool)
	if err != nil {
		return 0, fmt.Errorf("read advisory version: %w", err)
	}
	return v, nil
}

type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func advisoryVersion(ctx context.Context, q rowQuerier) (int64, error) {
	var v int64
	err := q.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM advisory_batches").Scan(&v)
	return v, err
}

// readTx runs fn in a read-only REPEATABLE READ transaction: everything fn reads comes from
// one snapshot.
func (db *DB) readTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// plainTx runs fn in a READ COMMITTED transaction, for writes that decide nothing from what
// they read (a batch's own staging rows), which a serializable one would only make retry.
func (db *DB) plainTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{}, fn)
}

const currentRecords = `SELECT r.id, r.modified, r.withdrawn, r.hash, r.raw
	FROM advisory_current c JOIN advisory_records r ON r.id = c.id AND r.batch_id = c.batch_id`

func scanRecords(rows pgx.Rows, fn func(vulndb.StoredRecord) error) error {
	defer rows.Close()
	for rows.Next() {
		var r vulndb.StoredRecord
		var mod int64
		if err := rows.Scan(&r.ID, &mod, &r.Withdrawn, &r.Hash, &r.Raw); err != nil {
			return err
		}
		r.Modified = time.UnixMicro(mod).UTC()
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// LoadAdvisories streams current records, all of them or those affecting keys.
func (db *DB) LoadAdvisories(ctx context.Context, keys []advisory.PackageKey, fn func(vulndb.StoredRecord) error) (int64, error) {
	var version int64
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		if version, err = advisoryVersion(ctx, tx); err != nil {
			return err
		}
		if keys == nil {
			rows, err := tx.Query(ctx, currentRecords+" ORDER BY c.id")
			if err != nil {
				return err
			}
			return scanRecords(rows, fn)
		}
		return loadByKeys(ctx, tx, keys, fn)
	})
	if err != nil {
		return 0, fmt.Errorf("load advisories: %w", err)
	}
	return version, nil
}

// loadByKeys finds the current records affecting keys, then streams each once.
func loadByKeys(ctx context.Context, tx pgx.Tx, keys []advisory.PackageKey, fn func(vulndb.StoredRecord) error) error {
	ids := map[string]bool{}
	for chunk := range slices.Chunk(keys, keyChunk) {
		ecos, names := make([]string, len(chunk)), make([]string, len(chunk))
		for i, k := range chunk {
			ecos[i], names[i] = k.Ecosystem, k.Name
		}
		found, err := queryStrings(ctx, tx, `SELECT DISTINCT p.id FROM advisory_packages p
			JOIN advisory_current c ON c.id = p.id AND c.batch_id = p.batch_id
			WHERE (p.ecosystem, p.name) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, ecos, names)
		if err != nil {
			return err
		}
		for _, id := range found {
			ids[id] = true
		}
	}
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	slices.Sort(list)
	for chunk := range slices.Chunk(list, keyChunk) {
		rows, err := tx.Query(ctx, currentRecords+" WHERE c.id = ANY($1) ORDER BY c.id", chunk)
		if err != nil {
			return err
		}
		if err := scanRecords(rows, fn); err != nil {
			return err
		}
	}
	return nil
}

// AdvisoryChanges returns the keys changed after version after, and optionally the
// current records affecting them, from one snapshot.
func (db *DB) AdvisoryChanges(ctx context.Context, after int64, load func(vulndb.StoredRecord) error) (vulndb.ChangeSet, error) {
	cs := vulndb.ChangeSet{From: after}
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		cs = vulndb.ChangeSet{From: after}
		var err error
		if cs.To, err = advisoryVersion(ctx, tx); err != nil {
			return err
		}
		if cs.To <= after {
			cs.To, cs.Complete = after, true
			return nil
		}
		var pruned int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM advisory_batches
			WHERE version > $1 AND version <= $2 AND NOT changes_kept`, after, cs.To).Scan(&pruned); err != nil {
			return err
		}
		if cs.Complete = pruned == 0; !cs.Complete {
			return nil
		}
		cs.Keys, err = queryAll(ctx, tx, func(r rowScanner) (advisory.PackageKey, error) {
			var k advisory.PackageKey
			return k, r.Scan(&k.Ecosystem, &k.Name)
		}, `SELECT DISTINCT ch.ecosystem, ch.name FROM advisory_changes ch
			JOIN advisory_batches b ON b.batch_id = ch.batch_id
			WHERE b.version > $1 AND b.version <= $2 ORDER BY ch.ecosystem, ch.name`, after, cs.To)
		if err != nil {
			return err
		}
		if load != nil && len(cs.Keys) > 0 {
			return loadByKeys(ctx, tx, cs.Keys, load)
		}
		return nil
	})
	if err != nil {
		return vulndb.ChangeSet{}, fmt.Errorf("read advisory changes: %w", err)
	}
	return cs, nil
}

// AdvisoryDigest returns the id, modified time, hash and keys of one current record.
func (db *DB) AdvisoryDigest(ctx context.Context, id string) (vulndb.RecordDigest, bool, error) {
	d := vulndb.RecordDigest{ID: id}
	found := false
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		var mod int64
		err := tx.QueryRow(ctx, `SELECT r.modified, r.hash FROM advisory_current c
			JOIN advisory_records r ON r.id = c.id AND r.batch_id = c.batch_id WHERE c.id = $1`, id).Scan(&mod, &d.Hash)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found, d.Modified = true, time.UnixMicro(mod).UTC()
		d.Keys, err = queryAll(ctx, tx, func(r rowScanner) (advisory.PackageKey, error) {
			var k advisory.PackageKey
			return k, r.Scan(&k.Ecosystem, &k.Name)
		}, `SELECT p.ecosystem, p.name FROM advisory_current c
			JOIN advisory_packages p ON p.id = c.id AND p.batch_id = c.batch_id WHERE c.id = $1 ORDER BY p.ecosystem, p.name`, id)
		return err
	})
	if err != nil {
		return d, false, fmt.Errorf("read advisory digest %s: %w", id, err)
	}
	return d, found, nil
}

// AdvisoryDigests streams id, modified time, hash and keys of every current record.
func (db *DB) AdvisoryDigests(ctx context.Context, fn func(vulndb.RecordDigest) error) (int64, error) {
	var version int64
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		if version, err = advisoryVersion(ctx, tx); err != nil {
			return err
		}
		// One query: pgx reads one result set at a time on a connection.
		rows, err := tx.Query(ctx, `SELECT c.id, r.modified, r.hash,
				coalesce((SELECT array_agg(p.ecosystem ORDER BY p.ecosystem, p.name) FROM advisory_packages p WHERE p.id = c.id AND p.batch_id = c.batch_id), '{}'),
				coalesce((SELECT array_agg(p.name ORDER BY p.ecosystem, p.name) FROM advisory_packages p WHERE p.id = c.id AND p.batch_id = c.batch_id), '{}')
			FROM advisory_current c JOIN advisory_records r ON r.id = c.id AND r.batch_id = c.batch_id ORDER BY c.id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d vulndb.RecordDigest
			var mod int64
			var ecos, names []string
			if err := rows.Scan(&d.ID, &mod, &d.Hash, &ecos, &names); err != nil {
				return err
			}
			d.Modified = time.UnixMicro(mod).UTC()
			for i := range ecos {
				d.Keys = append(d.Keys, advisory.PackageKey{Ecosystem: ecos[i], Name: names[i]})
			}
			if err := fn(d); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return 0, fmt.Errorf("read advisory digests: %w", err)
	}
	return version, nil
}

// AdvisoryStatus summarises the current advisory database.
func (db *DB) AdvisoryStatus(ctx context.Context) (*vulndb.Status, error) {
	st := &vulndb.Status{Ecosystems: []vulndb.EcosystemStatus{}}
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		var committed *int64
		var stats vulndb.BatchStats
		err := tx.QueryRow(ctx, `SELECT version, committed_at, kind, source, added, changed, withdrawn, deleted, unchanged
			FROM advisory_batches WHERE version = (SELECT max(version) FROM advisory_batches)`).
			Scan(&st.Version, &committed, &st.LastKind, &st.LastSource, &stats.Added, &stats.Changed, &stats.Withdrawn, &stats.Deleted, &stats.Unchanged)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		st.LastStats = &stats
		if committed != nil {
			st.UpdatedAt = time.UnixMilli(*committed).UTC()
		}
		if err := tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE r.withdrawn) FROM advisory_current c
			JOIN advisory_records r ON r.id = c.id AND r.batch_id = c.batch_id`).Scan(&st.Records, &st.Withdrawn); err != nil {
			return err
		}
		st.Ecosystems, err = queryAll(ctx, tx, func(r rowScanner) (vulndb.EcosystemStatus, error) {
			var e vulndb.EcosystemStatus
			var newest int64
			err := r.Scan(&e.Ecosystem, &e.Records, &e.Withdrawn, &newest)
			e.NewestModified = time.UnixMicro(newest).UTC()
			return e, err
		}, `WITH cur AS (
				SELECT DISTINCT split_part(p.ecosystem, ':', 1) AS base, p.id, r.withdrawn, r.modified
				FROM advisory_current c
				JOIN advisory_packages p ON p.id = c.id AND p.batch_id = c.batch_id
				JOIN advisory_records r ON r.id = c.id AND r.batch_id = c.batch_id)
			SELECT base, count(*), count(*) FILTER (WHERE withdrawn), max(modified) FROM cur GROUP BY base ORDER BY base`)
		if err != nil {
			return err
		}
		if st.Ecosystems == nil {
			st.Ecosystems = []vulndb.EcosystemStatus{}
		}
		releases, err := queryStrings(ctx, tx, `SELECT DISTINCT p.ecosystem FROM advisory_current c
			JOIN advisory_packages p ON p.id = c.id AND p.batch_id = c.batch_id
			WHERE strpos(p.ecosystem, ':') > 0 ORDER BY p.ecosystem`)
		if err != nil {
			return err
		}
		for _, eco := range releases {
			base := advisory.BaseEcosystem(eco)
			for i := range st.Ecosystems {
				if st.Ecosystems[i].Ecosystem == base {
					st.Ecosystems[i].Releases = append(st.Ecosystems[i].Releases, eco)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read advisory status: %w", err)
	}
	return st, nil
}

// StageAdvisories starts a batch: it gets a batch id, and stale batches of dead
// processes are collected.
func (db *DB) StageAdvisories(ctx context.Context, info vulndb.BatchInfo) (vulndb.StagedBatch, error) {
	db.collectStaleBatches(ctx)
	var id int64
	err := db.pool.QueryRow(ctx, `INSERT INTO advisory_batches(base_version, kind, source, started_at) VALUES ($1, $2, $3, $4) RETURNING batch_id`,
		info.Base, info.Kind, info.Source, time.Now().UnixMilli()).Scan(&id)
	if err != nil {
		return nil, fmt.Errorf("stage advisory batch: %w", err)
	}
	return &advisoryBatch{db: db, id: id, base: info.Base}, nil
}

type advisoryBatch struct {
	db      *DB
	id      int64
	base    int64
	pending []vulndb.StoredRecord
	bytes   int
	done    bool
}

func (b *advisoryBatch) Put(ctx context.Context, r vulndb.StoredRecord) error {
	if b.done {
		return errors.New("advisory batch already finished")
	}
	b.pending = append(b.pending, r)
	b.bytes += len(r.Raw)
	if len(b.pending) >= flushRecords || b.bytes >= flushBytes {
		return b.flush(ctx)
	}
	return nil
}

func (b *advisoryBatch) flush(ctx context.Context) error {
	if len(b.pending) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	for _, r := range b.pending {
		batch.Queue(`INSERT INTO advisory_records(id, batch_id, modified, withdrawn, hash, raw) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT(id, batch_id) DO UPDATE SET modified = excluded.modified, withdrawn = excluded.withdrawn, hash = excluded.hash, raw = excluded.raw`,
			r.ID, b.id, r.Modified.UnixMicro(), r.Withdrawn, r.Hash, r.Raw)
		batch.Queue(`DELETE FROM advisory_packages WHERE id = $1 AND batch_id = $2`, r.ID, b.id)
		for _, k := range r.Keys {
			batch.Queue(`INSERT INTO advisory_packages(ecosystem, name, id, batch_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
				k.Ecosystem, k.Name, r.ID, b.id)
		}
	}
	err := b.db.plainTx(ctx, func(tx pgx.Tx) error { return tx.SendBatch(ctx, batch).Close() })
	if err != nil {
		return fmt.Errorf("stage advisories: %w", err)
	}
	b.pending, b.bytes = b.pending[:0], 0
	return nil
}

func (b *advisoryBatch) Delete(ctx context.Context, id string) error {
	if _, err := b.db.pool.Exec(ctx, `INSERT INTO advisory_deletions(batch_id, id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, b.id, id); err != nil {
		return fmt.Errorf("stage advisory deletion: %w", err)
	}
	return nil
}

func (b *advisoryBatch) AddChanges(ctx context.Context, keys []advisory.PackageKey) error {
	for chunk := range slices.Chunk(keys, keyChunk) {
		ecos, names := make([]string, len(chunk)), make([]string, len(chunk))
		for i, k := range chunk {
			ecos[i], names[i] = k.Ecosystem, k.Name
		}
		if _, err := b.db.pool.Exec(ctx, `INSERT INTO advisory_changes(batch_id, ecosystem, name)
			SELECT $1, e, n FROM unnest($2::text[], $3::text[]) AS k(e, n) ON CONFLICT DO NOTHING`, b.id, ecos, names); err != nil {
			return fmt.Errorf("stage advisory changes: %w", err)
		}
	}
	return nil
}

// Commit flips advisory_current to the staged records in one transaction. Two nodes
// committing batches staged against the same version conflict: one gets the version, the other
// ErrConflict.
func (b *advisoryBatch) Commit(ctx context.Context, stats vulndb.BatchStats) (int64, error) {
	if b.done {
		return 0, errors.New("advisory batch already finished")
	}
	if err := b.flush(ctx); err != nil {
		return 0, err
	}
	version := b.base + 1
	err := b.db.tx(ctx, func(tx pgx.Tx) error {
		cur, err := advisoryVersion(ctx, tx)
		if err != nil {
			return err
		}
		if cur != b.base {
			return fmt.Errorf("%w (staged against version %d, now %d)", vulndb.ErrConflict, b.base, cur)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO advisory_current(id, batch_id)
			SELECT id, batch_id FROM advisory_records WHERE batch_id = $1
			ON CONFLICT(id) DO UPDATE SET batch_id = excluded.batch_id`, b.id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM advisory_current WHERE id IN
			(SELECT id FROM advisory_deletions WHERE batch_id = $1)`, b.id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE advisory_batches SET version = $1, committed_at = $2,
			added = $3, changed = $4, withdrawn = $5, deleted = $6, unchanged = $7 WHERE batch_id = $8`,
			version, time.Now().UnixMilli(), stats.Added, stats.Changed, stats.Withdrawn, stats.Deleted, stats.Unchanged, b.id)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("commit advisory batch: %w", err)
	}
	b.done = true
	b.db.collectGarbage(ctx, version, b.id)
	return version, nil
}

// Abort removes the batch's staged rows.
func (b *advisoryBatch) Abort(ctx context.Context) error {
	if b.done {
		return nil
	}
	b.done = true
	b.pending = nil
	// The caller's context may be the one that was cancelled: clean up regardless.
	ctx = context.WithoutCancel(ctx)
	if err := b.db.dropBatch(ctx, b.id); err != nil {
		return fmt.Errorf("abort advisory batch: %w", err)
	}
	return nil
}

// dropBatch deletes an uncommitted batch.
func (db *DB) dropBatch(ctx context.Context, id int64) error {
	return db.plainTx(ctx, func(tx pgx.Tx) error {
		var uncommitted bool
		err := tx.QueryRow(ctx, `SELECT version IS NULL FROM advisory_batches WHERE batch_id = $1 FOR UPDATE`, id).Scan(&uncommitted)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && !uncommitted) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM advisory_records WHERE batch_id = $1`,
			`DELETE FROM advisory_packages WHERE batch_id = $1`,
			`DELETE FROM advisory_changes WHERE batch_id = $1`,
			`DELETE FROM advisory_deletions WHERE batch_id = $1`,
			`DELETE FROM advisory_batches WHERE batch_id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return err
			}
		}
		return nil
	})
}

// collectGarbage removes record versions no longer current, the staging rows of the
// committed batch and change sets older than keptChangeSets versions. It is best effort:
// leftovers are collected next time, and every fullSweepEvery versions the whole store is
// swept, which also takes what a crash between a commit and its collection left behind.
func (db *DB) collectGarbage(ctx context.Context, version, batchID int64) {
	ctx = context.WithoutCancel(ctx)
	scope, args := "", []any{}
	if version%fullSweepEvery != 0 {
		// Only the records the batch touched.
		scope = ` AND x.id IN (SELECT id FROM advisory_records WHERE batch_id = $1 UNION SELECT id FROM advisory_deletions WHERE batch_id = $1)`
		args = append(args, batchID)
	}
	for _, table := range []string{"advisory_records", "advisory_packages"} {
		_, _ = db.pool.Exec(ctx, `DELETE FROM `+table+` x USING advisory_batches b
			WHERE b.batch_id = x.batch_id AND b.version IS NOT NULL AND NOT EXISTS
				(SELECT 1 FROM advisory_current c WHERE c.id = x.id AND c.batch_id = x.batch_id)`+scope, args...)
	}
	_, _ = db.pool.Exec(ctx, `DELETE FROM advisory_deletions d USING advisory_batches b
		WHERE b.batch_id = d.batch_id AND b.version IS NOT NULL`)
	db.pruneChanges(ctx, version)
}

// fullSweepEvery is how often (in versions) garbage collection sweeps the whole store.
const fullSweepEvery = 32

// pruneChanges drops change sets older than keptChangeSets versions.
func (db *DB) pruneChanges(ctx context.Context, version int64) {
	if old := version - keptChangeSets; old > 0 {
		_ = db.plainTx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `DELETE FROM advisory_changes ch USING advisory_batches b
				WHERE b.batch_id = ch.batch_id AND b.version <= $1`, old); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE advisory_batches SET changes_kept = false WHERE version <= $1 AND changes_kept`, old)
			return err
		})
	}
}

// collectStaleBatches drops batches that started long ago and never committed: their
// process died mid-import.
func (db *DB) collectStaleBatches(ctx context.Context) {
	ids, err := queryAll(ctx, db.pool, func(r rowScanner) (int64, error) {
		var id int64
		return id, r.Scan(&id)
	}, `SELECT batch_id FROM advisory_batches WHERE version IS NULL AND started_at < $1`, time.Now().Add(-staleBatchAge).UnixMilli())
	if err != nil {
		return
	}
	for _, id := range ids {
		_ = db.dropBatch(ctx, id)
	}
}
