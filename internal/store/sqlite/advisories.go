package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/vulndb"
)

// The advisory store (vulndb.Store): see migrations/0010_advisories.sql for the layout.

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
	// inChunk bounds the variables of one IN (...) list.
	inChunk = 400
)

// AdvisoryVersion returns the current advisory database version.
func (db *DB) AdvisoryVersion(ctx context.Context) (int64, error) {
	v, err := advisoryVersion(ctx, db.read)
	if err != nil {
		return 0, fmt.Errorf("read advisory version: %w", err)
	}
	return v, nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func advisoryVersion(ctx context.Context, q queryer) (int64, error) {
	var v int64
	err := q.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM advisory_batches").Scan(&v)
	return v, err
}

// readTx runs fn in a read transaction: everything fn reads comes from one snapshot.
func (db *DB) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.read.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	return fn(tx)
}

const currentRecords = `SELECT r.id, r.modified, r.withdrawn, r.hash, r.raw
	FROM advisory_current c JOIN advisory_records r ON r.id = c.id AND r.batch_id = c.batch_id`

func scanRecords(rows *sql.Rows, fn func(vulndb.StoredRecord) error) error {
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
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		if version, err = advisoryVersion(ctx, tx); err != nil {
			return err
		}
		if keys == nil {
			rows, err := tx.QueryContext(ctx, currentRecords)
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
func loadByKeys(ctx context.Context, tx *sql.Tx, keys []advisory.PackageKey, fn func(vulndb.StoredRecord) error) error {
	ids := map[string]bool{}
	for chunk := range slices.Chunk(keys, inChunk) {
		var b strings.Builder
		args := make([]any, 0, 2*len(chunk))
		b.WriteString(`SELECT DISTINCT p.id FROM advisory_packages p
			JOIN advisory_current c ON c.id = p.id AND c.batch_id = p.batch_id
			WHERE (p.ecosystem, p.name) IN (VALUES `)
		for i, k := range chunk {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?)")
			args = append(args, k.Ecosystem, k.Name)
		}
		b.WriteByte(')')
		rows, err := tx.QueryContext(ctx, b.String(), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				_ = rows.Close()
				return err
			}
			ids[id] = true
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	slices.Sort(list)
	for chunk := range slices.Chunk(list, inChunk) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := tx.QueryContext(ctx, currentRecords+" WHERE c.id IN ("+placeholders(len(chunk))+") ORDER BY c.id", args...)
		if err != nil {
			return err
		}
		if err := scanRecords(rows, fn); err != nil {
			return err
		}
	}
	return nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// AdvisoryChanges returns the keys changed after version after, and optionally the
// current records affecting them, from one snapshot.
func (db *DB) AdvisoryChanges(ctx context.Context, after int64, load func(vulndb.StoredRecord) error) (vulndb.ChangeSet, error) {
	cs := vulndb.ChangeSet{From: after}
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		if cs.To, err = advisoryVersion(ctx, tx); err != nil {
			return err
		}
		if cs.To <= after {
			cs.To, cs.Complete = after, true
			return nil
		}
		var pruned int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM advisory_batches
			WHERE version > ? AND version <= ? AND changes_kept = 0`, after, cs.To).Scan(&pruned); err != nil {
			return err
		}
		if cs.Complete = pruned == 0; !cs.Complete {
			return nil
		}
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT ch.ecosystem, ch.name FROM advisory_changes ch
			JOIN advisory_batches b ON b.batch_id = ch.batch_id
			WHERE b.version > ? AND b.version <= ? ORDER BY ch.ecosystem, ch.name`, after, cs.To)
		if err != nil {
			return err
		}
		for rows.Next() {
			var k advisory.PackageKey
			if err := rows.Scan(&k.Ecosystem, &k.Name); err != nil {
				_ = rows.Close()
				return err
			}
			cs.Keys = append(cs.Keys, k)
		}
		if err := rows.Close(); err != nil {
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
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		var mod int64
		err := tx.QueryRowContext(ctx, `SELECT r.modified, r.hash FROM advisory_current c
			JOIN advisory_records r ON r.id = c.id AND r.batch_id = c.batch_id WHERE c.id = ?`, id).Scan(&mod, &d.Hash)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found, d.Modified = true, time.UnixMicro(mod).UTC()
		rows, err := tx.QueryContext(ctx, `SELECT p.ecosystem, p.name FROM advisory_current c
			JOIN advisory_packages p ON p.id = c.id AND p.batch_id = c.batch_id WHERE c.id = ?`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k advisory.PackageKey
			if err := rows.Scan(&k.Ecosystem, &k.Name); err != nil {
				return err
			}
			d.Keys = append(d.Keys, k)
		}
		return rows.Err()
	})
	if err != nil {
		return d, false, fmt.Errorf("read advisory digest %s: %w", id, err)
	}
	return d, found, nil
}

// AdvisoryDigests streams id, modified time, hash and keys of every current record.
func (db *DB) AdvisoryDigests(ctx context.Context, fn func(vulndb.RecordDigest) error) (int64, error) {
	var version int64
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		if version, err = advisoryVersion(ctx, tx); err != nil {
			return err
		}
		recs, err := tx.QueryContext(ctx, `SELECT c.id, r.modified, r.hash FROM advisory_current c
			JOIN advisory_records r ON r.id = c.id AND r.batch_id = c.batch_id ORDER BY c.id`)
		if err != nil {
			return err
		}
		defer recs.Close()
		pkgs, err := tx.QueryContext(ctx, `SELECT p.id, p.ecosystem, p.name FROM advisory_current c
			JOIN advisory_packages p ON p.id = c.id AND p.batch_id = c.batch_id ORDER BY p.id`)
		if err != nil {
			return err
		}
		defer pkgs.Close()
		// Merge-join the two id-ordered streams.
		var pid string
		var pk advisory.PackageKey
		havePkg := pkgs.Next()
		if havePkg {
			if err := pkgs.Scan(&pid, &pk.Ecosystem, &pk.Name); err != nil {
				return err
			}
		}
		for recs.Next() {
			var d vulndb.RecordDigest
			var mod int64
			if err := recs.Scan(&d.ID, &mod, &d.Hash); err != nil {
				return err
			}
			d.Modified = time.UnixMicro(mod).UTC()
			for havePkg && pid <= d.ID {
				if pid == d.ID {
					d.Keys = append(d.Keys, pk)
				}
				if havePkg = pkgs.Next(); havePkg {
					if err := pkgs.Scan(&pid, &pk.Ecosystem, &pk.Name); err != nil {
						return err
					}
				}
			}
			if err := fn(d); err != nil {
				return err
			}
		}
		if err := recs.Err(); err != nil {
			return err
		}
		return pkgs.Err()
	})
	if err != nil {
		return 0, fmt.Errorf("read advisory digests: %w", err)
	}
	return version, nil
}

var _ vulndb.FreshnessReader = (*DB)(nil)

// AdvisoryFreshness is what `lading scan` checks before every scan, without the pass over every
// record AdvisoryStatus makes: whether one current record is live, and the newest modified
// time of the current records affecting a package, read from the top of the index on modified
// (superseded and staged versions above it are skipped).
func (db *DB) AdvisoryFreshness(ctx context.Context) (vulndb.Freshness, error) {
	var f vulndb.Freshness
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		if f.Version, err = advisoryVersion(ctx, tx); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM advisory_current c
			JOIN advisory_records r ON r.id = c.id AND r.batch_id = c.batch_id WHERE r.withdrawn = 0)`).Scan(&f.Live); err != nil {
			return err
		}
		var newest int64
		err = tx.QueryRowContext(ctx, `SELECT r.modified FROM advisory_records r INDEXED BY advisory_records_modified
			WHERE EXISTS (SELECT 1 FROM advisory_current c WHERE c.id = r.id AND c.batch_id = r.batch_id)
			AND EXISTS (SELECT 1 FROM advisory_packages p WHERE p.id = r.id AND p.batch_id = r.batch_id)
			ORDER BY r.modified DESC LIMIT 1`).Scan(&newest)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		f.Newest = time.UnixMicro(newest).UTC()
		return nil
	})
	if err != nil {
		return vulndb.Freshness{}, fmt.Errorf("read advisory freshness: %w", err)
	}
	return f, nil
}

// AdvisoryStatus summarises the current advisory database.
func (db *DB) AdvisoryStatus(ctx context.Context) (*vulndb.Status, error) {
	st := &vulndb.Status{Ecosystems: []vulndb.EcosystemStatus{}}
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		var committed sql.NullInt64
		var stats vulndb.BatchStats
		err := tx.QueryRowContext(ctx, `SELECT version, committed_at, kind, source, added, changed, withdrawn, deleted, unchanged
			FROM advisory_batches WHERE version = (SELECT MAX(version) FROM advisory_batches)`).
			Scan(&st.Version, &committed, &st.LastKind, &st.LastSource, &stats.Added, &stats.Changed, &stats.Withdrawn, &stats.Deleted, &stats.Unchanged)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		st.LastStats = &stats
		if committed.Valid {
			st.UpdatedAt = time.UnixMilli(committed.Int64).UTC()
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(r.withdrawn), 0) FROM advisory_current c
			JOIN advisory_records r ON r.id = c.id AND r.batch_id = c.batch_id`).Scan(&st.Records, &st.Withdrawn); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `WITH cur AS (
				SELECT DISTINCT CASE WHEN instr(p.ecosystem, ':') > 0 THEN substr(p.ecosystem, 1, instr(p.ecosystem, ':') - 1)
					ELSE p.ecosystem END AS base, p.id, r.withdrawn, r.modified
				FROM advisory_current c
				JOIN advisory_packages p ON p.id = c.id AND p.batch_id = c.batch_id
				JOIN advisory_records r ON r.id = c.id AND r.batch_id = c.batch_id)
			SELECT base, COUNT(*), SUM(withdrawn), MAX(modified) FROM cur GROUP BY base ORDER BY base`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var e vulndb.EcosystemStatus
			var newest int64
			if err := rows.Scan(&e.Ecosystem, &e.Records, &e.Withdrawn, &newest); err != nil {
				_ = rows.Close()
				return err
			}
			e.NewestModified = time.UnixMicro(newest).UTC()
			st.Ecosystems = append(st.Ecosystems, e)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, `SELECT DISTINCT p.ecosystem FROM advisory_current c
			JOIN advisory_packages p ON p.id = c.id AND p.batch_id = c.batch_id
			WHERE instr(p.ecosystem, ':') > 0 ORDER BY p.ecosystem`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var eco string
			if err := rows.Scan(&eco); err != nil {
				return err
			}
			base := advisory.BaseEcosystem(eco)
			for i := range st.Ecosystems {
				if st.Ecosystems[i].Ecosystem == base {
					st.Ecosystems[i].Releases = append(st.Ecosystems[i].Releases, eco)
				}
			}
		}
		return rows.Err()
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
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO advisory_batches(base_version, kind, source, started_at) VALUES (?, ?, ?, ?)`,
			info.Base, info.Kind, info.Source, time.Now().UnixMilli())
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
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
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		putRec, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO advisory_records(id, batch_id, modified, withdrawn, hash, raw) VALUES (?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer putRec.Close()
		delPkgs, err := tx.PrepareContext(ctx, `DELETE FROM advisory_packages WHERE id = ? AND batch_id = ?`)
		if err != nil {
			return err
		}
		defer delPkgs.Close()
		putPkg, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO advisory_packages(ecosystem, name, id, batch_id) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer putPkg.Close()
		for _, r := range b.pending {
			if _, err := putRec.ExecContext(ctx, r.ID, b.id, r.Modified.UnixMicro(), r.Withdrawn, r.Hash, r.Raw); err != nil {
				return err
			}
			if _, err := delPkgs.ExecContext(ctx, r.ID, b.id); err != nil {
				return err
			}
			for _, k := range r.Keys {
				if _, err := putPkg.ExecContext(ctx, k.Ecosystem, k.Name, r.ID, b.id); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("stage advisories: %w", err)
	}
	b.pending, b.bytes = b.pending[:0], 0
	return nil
}

func (b *advisoryBatch) Delete(ctx context.Context, id string) error {
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO advisory_deletions(batch_id, id) VALUES (?, ?)`, b.id, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("stage advisory deletion: %w", err)
	}
	return nil
}

func (b *advisoryBatch) AddChanges(ctx context.Context, keys []advisory.PackageKey) error {
	for chunk := range slices.Chunk(keys, 2000) {
		err := b.db.Tx(ctx, func(tx *sql.Tx) error {
			st, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO advisory_changes(batch_id, ecosystem, name) VALUES (?, ?, ?)`)
			if err != nil {
				return err
			}
			defer st.Close()
			for _, k := range chunk {
				if _, err := st.ExecContext(ctx, b.id, k.Ecosystem, k.Name); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("stage advisory changes: %w", err)
		}
	}
	return nil
}

// Commit flips advisory_current to the staged records in one transaction.
func (b *advisoryBatch) Commit(ctx context.Context, stats vulndb.BatchStats) (int64, error) {
	if b.done {
		return 0, errors.New("advisory batch already finished")
	}
	if err := b.flush(ctx); err != nil {
		return 0, err
	}
	version := b.base + 1
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		cur, err := advisoryVersion(ctx, tx)
		if err != nil {
			return err
		}
		if cur != b.base {
			return fmt.Errorf("%w (staged against version %d, now %d)", vulndb.ErrConflict, b.base, cur)
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO advisory_current(id, batch_id)
			SELECT id, batch_id FROM advisory_records WHERE batch_id = ?`, b.id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM advisory_current WHERE id IN
			(SELECT id FROM advisory_deletions WHERE batch_id = ?)`, b.id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE advisory_batches SET version = ?, committed_at = ?,
			added = ?, changed = ?, withdrawn = ?, deleted = ?, unchanged = ? WHERE batch_id = ?`,
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

// dropBatch deletes an uncommitted batch, in short transactions.
func (db *DB) dropBatch(ctx context.Context, id int64) error {
	for _, q := range []string{
		`DELETE FROM advisory_records WHERE rowid IN (SELECT rowid FROM advisory_records WHERE batch_id = ? LIMIT 5000)`,
		`DELETE FROM advisory_packages WHERE rowid IN (SELECT rowid FROM advisory_packages WHERE batch_id = ? LIMIT 20000)`,
		`DELETE FROM advisory_changes WHERE rowid IN (SELECT rowid FROM advisory_changes WHERE batch_id = ? LIMIT 20000)`,
		`DELETE FROM advisory_deletions WHERE rowid IN (SELECT rowid FROM advisory_deletions WHERE batch_id = ? LIMIT 20000)`,
	} {
		if err := db.deleteInChunks(ctx, q, id); err != nil {
			return err
		}
	}
	return db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM advisory_batches WHERE batch_id = ? AND version IS NULL`, id)
		return err
	})
}

func (db *DB) deleteInChunks(ctx context.Context, query string, args ...any) error {
	for {
		var n int64
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, query, args...)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil || n == 0 {
			return err
		}
	}
}

// collectGarbage removes record versions no longer current, the staging rows of the
// committed batch and change sets older than keptChangeSets versions. It is best effort:
// leftovers are collected next time.
//
// After most commits only the records the batch touched are looked at (a full sweep reads
// every stored record, ~0.1 s on a 34k-record database, and holds the write lock meanwhile);
// every fullSweepEvery versions the whole store is swept, which also takes what a crash
// between a commit and its collection left behind.
func (db *DB) collectGarbage(ctx context.Context, version, batchID int64) {
	ctx = context.WithoutCancel(ctx)
	if version%fullSweepEvery != 0 {
		touched := `SELECT id FROM advisory_records WHERE batch_id = ?1 UNION SELECT id FROM advisory_deletions WHERE batch_id = ?1`
		_ = db.deleteInChunks(ctx, `DELETE FROM advisory_records WHERE rowid IN (
			SELECT r.rowid FROM advisory_records r JOIN advisory_batches b ON b.batch_id = r.batch_id
			WHERE r.id IN (`+touched+`) AND b.version IS NOT NULL AND NOT EXISTS
				(SELECT 1 FROM advisory_current c WHERE c.id = r.id AND c.batch_id = r.batch_id) LIMIT 5000)`, batchID)
		_ = db.deleteInChunks(ctx, `DELETE FROM advisory_packages WHERE rowid IN (
			SELECT p.rowid FROM advisory_packages p JOIN advisory_batches b ON b.batch_id = p.batch_id
			WHERE p.id IN (`+touched+`) AND b.version IS NOT NULL AND NOT EXISTS
				(SELECT 1 FROM advisory_current c WHERE c.id = p.id AND c.batch_id = p.batch_id) LIMIT 20000)`, batchID)
		_ = db.deleteInChunks(ctx, `DELETE FROM advisory_deletions WHERE rowid IN (
			SELECT rowid FROM advisory_deletions WHERE batch_id = ? LIMIT 20000)`, batchID)
		db.pruneChanges(ctx, version)
		return
	}
	_ = db.deleteInChunks(ctx, `DELETE FROM advisory_records WHERE rowid IN (
		SELECT r.rowid FROM advisory_records r JOIN advisory_batches b ON b.batch_id = r.batch_id
		WHERE b.version IS NOT NULL AND NOT EXISTS
			(SELECT 1 FROM advisory_current c WHERE c.id = r.id AND c.batch_id = r.batch_id) LIMIT 5000)`)
	_ = db.deleteInChunks(ctx, `DELETE FROM advisory_packages WHERE rowid IN (
		SELECT p.rowid FROM advisory_packages p JOIN advisory_batches b ON b.batch_id = p.batch_id
		WHERE b.version IS NOT NULL AND NOT EXISTS
			(SELECT 1 FROM advisory_current c WHERE c.id = p.id AND c.batch_id = p.batch_id) LIMIT 20000)`)
	_ = db.deleteInChunks(ctx, `DELETE FROM advisory_deletions WHERE rowid IN (
		SELECT d.rowid FROM advisory_deletions d JOIN advisory_batches b ON b.batch_id = d.batch_id
		WHERE b.version IS NOT NULL LIMIT 20000)`)
	db.pruneChanges(ctx, version)
}

// fullSweepEvery is how often (in versions) garbage collection sweeps the whole store.
const fullSweepEvery = 32

// pruneChanges drops change sets older than keptChangeSets versions.
func (db *DB) pruneChanges(ctx context.Context, version int64) {
	if old := version - keptChangeSets; old > 0 {
		_ = db.deleteInChunks(ctx, `DELETE FROM advisory_changes WHERE rowid IN (
			SELECT ch.rowid FROM advisory_changes ch JOIN advisory_batches b ON b.batch_id = ch.batch_id
			WHERE b.version <= ? LIMIT 20000)`, old)
		_ = db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE advisory_batches SET changes_kept = 0 WHERE version <= ? AND changes_kept = 1`, old)
			return err
		})
	}
}

// collectStaleBatches drops batches that started long ago and never committed: their
// process died mid-import.
func (db *DB) collectStaleBatches(ctx context.Context) {
	rows, err := db.read.QueryContext(ctx, `SELECT batch_id FROM advisory_batches WHERE version IS NULL AND started_at < ?`,
		time.Now().Add(-staleBatchAge).UnixMilli())
	if err != nil {
		return
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	_ = rows.Close()
	for _, id := range ids {
		_ = db.dropBatch(ctx, id)
	}
}
