package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lading-registry/lading/internal/store"
)

// EnqueueScans queues scan jobs (one per image and scan type at a time).
func (db *DB) EnqueueScans(ctx context.Context, jobs ...store.ScanJob) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		for _, j := range jobs {
			if err := enqueueScanTx(ctx, tx, j); err != nil {
				return err
			}
		}
		return nil
	})
}

// ClaimScanJob takes the oldest queued job, or a running one whose lease ran out (its worker
// died), and leases it to owner until now+lease.
func (db *DB) ClaimScanJob(ctx context.Context, owner string, now time.Time, lease time.Duration) (store.ScanJob, bool, error) {
	var j store.ScanJob
	found := false
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var created int64
		err := tx.QueryRowContext(ctx, `SELECT id, repository, image_digest, scan_type, trigger, attempts, created_at FROM scan_jobs
			WHERE state = 'queued' OR (state = 'running' AND lease_until < ?) ORDER BY id LIMIT 1`, now.UnixMilli()).
			Scan(&j.ID, &j.Repository, &j.Digest, &j.ScanType, &j.Trigger, &j.Attempts, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		j.Attempts++
		j.CreatedAt = fromMS(created)
		found = true
		_, err = tx.ExecContext(ctx, `UPDATE scan_jobs SET state = 'running', attempts = ?, lease_owner = ?, lease_until = ? WHERE id = ?`,
			j.Attempts, owner, now.Add(lease).UnixMilli(), j.ID)
		return err
	})
	return j, found, err
}

// ReleaseScanJob puts a claimed job back in the queue (after a failure worth retrying).
func (db *DB) ReleaseScanJob(ctx context.Context, id int64) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE scan_jobs SET state = 'queued', lease_owner = '', lease_until = 0 WHERE id = ?`, id)
		return err
	})
}

// ExtendScanLease keeps a running job leased to owner until t (a heartbeat).
func (db *DB) ExtendScanLease(ctx context.Context, id int64, owner string, t time.Time) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE scan_jobs SET lease_until = ? WHERE id = ? AND lease_owner = ?", t.UnixMilli(), id, owner)
		return err
	})
}

// RunningScanJobs lists the jobs currently leased, with their owners.
func (db *DB) RunningScanJobs(ctx context.Context) ([]store.ScanJob, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT id, repository, image_digest, scan_type, trigger, attempts, lease_owner FROM scan_jobs WHERE state = 'running'")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.ScanJob
	for rows.Next() {
		var j store.ScanJob
		if err := rows.Scan(&j.ID, &j.Repository, &j.Digest, &j.ScanType, &j.Trigger, &j.Attempts, &j.LeaseOwner); err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// PendingScanJobs counts queued and running jobs.
func (db *DB) PendingScanJobs(ctx context.Context) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, "SELECT count(*) FROM scan_jobs").Scan(&n)
	return n, err
}

// ImageScan returns the scan state of a repository image, or ErrNotFound.
func (db *DB) ImageScan(ctx context.Context, repo, digest, scanType string) (store.ImageScan, error) {
	s, err := scanImageScan(db.read.QueryRowContext(ctx, "SELECT "+imageScanColumns+" FROM image_scans WHERE repository = ? AND image_digest = ? AND scan_type = ?",
		repo, digest, scanType))
	if errors.Is(err, sql.ErrNoRows) {
		return s, store.ErrNotFound
	}
	return s, err
}

const imageScanColumns = `repository, image_digest, scan_type, status, description, frequency, coalesce(inventory_id, 0),
	last_scan_started_at, completed_at, source_updated_at, updated_at, image_facts, not_evaluated, not_evaluated_packages`

func scanImageScan(row interface{ Scan(...any) error }, extra ...any) (store.ImageScan, error) {
	var s store.ImageScan
	var started, completed, source, updated int64
	var facts, notEvaluated string
	err := row.Scan(append([]any{&s.Repository, &s.Digest, &s.ScanType, &s.Status, &s.Description, &s.Frequency, &s.InventoryID,
		&started, &completed, &source, &updated, &facts, &notEvaluated, &s.NotEvaluatedPackages}, extra...)...)
	s.LastScanStartedAt, s.CompletedAt, s.SourceUpdatedAt, s.UpdatedAt = fromMS(started), fromMS(completed), fromMS(source), fromMS(updated)
	if facts != "" {
		s.ImageFacts = []byte(facts)
	}
	if notEvaluated != "" {
		s.NotEvaluated = []byte(notEvaluated)
	}
	return s, err
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// PutImageScan records a scan state outside a scan job (e.g. a manual scan being accepted).
func (db *DB) PutImageScan(ctx context.Context, s store.ImageScan) error {
	return db.Tx(ctx, func(tx *sql.Tx) error { return putImageScanTx(ctx, tx, s) })
}

func putImageScanTx(ctx context.Context, tx execer, s store.ImageScan) error {
	var inv any
	if s.InventoryID != 0 {
		inv = s.InventoryID
	}
	if s.UpdatedAt.IsZero() {
		s.UpdatedAt = time.Now()
	}
	// Image facts written empty are kept: only a write of findings sets them.
	_, err := tx.ExecContext(ctx, `INSERT INTO image_scans(repository, image_digest, scan_type, status, description, frequency, inventory_id,
			last_scan_started_at, completed_at, source_updated_at, updated_at, image_facts, not_evaluated, not_evaluated_packages)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(repository, image_digest, scan_type) DO UPDATE SET status = excluded.status, description = excluded.description,
			frequency = excluded.frequency, inventory_id = excluded.inventory_id, last_scan_started_at = excluded.last_scan_started_at,
			completed_at = excluded.completed_at, source_updated_at = excluded.source_updated_at, updated_at = excluded.updated_at,
			image_facts = CASE WHEN excluded.image_facts = '' THEN image_scans.image_facts ELSE excluded.image_facts END,
			not_evaluated = excluded.not_evaluated, not_evaluated_packages = excluded.not_evaluated_packages`,
		s.Repository, s.Digest, s.ScanType, s.Status, s.Description, s.Frequency, inv,
		ms(s.LastScanStartedAt), ms(s.CompletedAt), ms(s.SourceUpdatedAt), ms(s.UpdatedAt), string(s.ImageFacts), string(s.NotEvaluated), s.NotEvaluatedPackages)
	return err
}

// sameScanOutcome tells whether scan s, written over the stored prev, leaves the columns that
// the coverage indexes and triggers read (status, description, inventory) and the scan's
// times and frequency as they are: what a re-evaluation writes of each of thousands of images.
func sameScanOutcome(prev, s store.ImageScan) bool {
	return prev.Status == s.Status && prev.Description == s.Description && prev.Frequency == s.Frequency &&
		prev.InventoryID == s.InventoryID && ms(prev.LastScanStartedAt) == ms(s.LastScanStartedAt) && ms(prev.CompletedAt) == ms(s.CompletedAt)
}

// touchImageScanTx writes scan s over a stored scan of the same outcome (sameScanOutcome): only
// the columns that change, so that SQLite leaves the indexes of the others (image_scans_coverage,
// image_scans_inventory) and the coverage trigger alone rather than rewrite them unchanged.
func touchImageScanTx(ctx context.Context, tx execer, s store.ImageScan) error {
	if s.UpdatedAt.IsZero() {
		s.UpdatedAt = time.Now()
	}
	_, err := tx.ExecContext(ctx, `UPDATE image_scans SET source_updated_at = ?1, updated_at = ?2,
			image_facts = CASE WHEN ?3 = '' THEN image_facts ELSE ?3 END, not_evaluated = ?4, not_evaluated_packages = ?5
		WHERE repository = ?6 AND image_digest = ?7 AND scan_type = ?8`,
		ms(s.SourceUpdatedAt), ms(s.UpdatedAt), string(s.ImageFacts), string(s.NotEvaluated), s.NotEvaluatedPackages, s.Repository, s.Digest, s.ScanType)
	return err
}

// ImageScans returns the scan states of a repository's images for the given digests.
func (db *DB) ImageScans(ctx context.Context, repo string, digests []string) (map[string][]store.ImageScan, error) {
	out := map[string][]store.ImageScan{}
	for chunk := range chunks(digests, 500) {
		rows, err := db.read.QueryContext(ctx, "SELECT "+imageScanColumns+" FROM image_scans WHERE repository = ? AND image_digest IN ("+placeholders(len(chunk))+")",
			append([]any{repo}, toAny(chunk)...)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			s, err := scanImageScan(rows)
			if err != nil {
				_ = rows.Close()
				return nil, err
			}
			out[s.Digest] = append(out[s.Digest], s)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RepositoryFindingCounts returns, for each repository with ACTIVE findings of scanType, how
// many there are of each severity (ACTIVE and not suppressed) over its images, from
// repository_finding_counts (0039): a row a repository. Severities with none are left out.
func (db *DB) RepositoryFindingCounts(ctx context.Context, scanType string) (map[string]map[string]int, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT repository, n_critical, n_high, n_medium, n_low, n_informational, n_undefined
		FROM repository_finding_counts WHERE scan_type = ? AND n_all > 0`, scanType)
	if err != nil {
		return nil, fmt.Errorf("repository finding counts: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]int{}
	for rows.Next() {
		var repo string
		var n [6]int
		if err := rows.Scan(&repo, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5]); err != nil {
			return nil, err
		}
		out[repo] = store.CountsBySeverity(n)
	}
	return out, rows.Err()
}

// ActiveFindingCounts returns, for each of a repository's digests with ACTIVE findings of
// scanType, how many there are of each severity (ACTIVE and not suppressed, as Inspector shows
// them), from image_finding_counts (0033_finding_counts.sql): a row an image, not a row a
// finding. Severities with none are left out; digests with none are absent.
func (db *DB) ActiveFindingCounts(ctx context.Context, repo string, digests []string, scanType string) (map[string]map[string]int, error) {
	out := map[string]map[string]int{}
	for chunk := range chunks(digests, 500) {
		rows, err := db.read.QueryContext(ctx, `SELECT image_digest, n_critical, n_high, n_medium, n_low, n_informational, n_undefined
			FROM image_finding_counts WHERE repository = ? AND scan_type = ? AND n_all > 0 AND image_digest IN (`+placeholders(len(chunk))+")",
			append([]any{repo, scanType}, toAny(chunk)...)...)
		if err != nil {
			return nil, fmt.Errorf("active finding counts of %s: %w", repo, err)
		}
		for rows.Next() {
			var dgst string
			var n [6]int
			if err := rows.Scan(&dgst, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5]); err != nil {
				_ = rows.Close()
				return nil, err
			}
			out[dgst] = store.CountsBySeverity(n)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// findingOwnColumns are the columns of a finding read for a known image (the key's first
// three left out: the reader knows them).
const findingOwnColumns = `vulnerability_id, arn, status, severity, score, fingerprint, package_keys,
	first_observed_at, last_observed_at, updated_at`

// scanFinding reads a row of findingOwnColumns, followed by the detail and the suppression
// when withDetail, of a finding of the image repo@digest.
func scanFinding(row interface{ Scan(...any) error }, repo, digest, scanType string, withDetail bool) (store.Finding, error) {
	f := store.Finding{Repository: repo, Digest: digest, ScanType: scanType}
	var first, last, updated int64
	var keys sql.NullString
	var detail sql.RawBytes
	dest := []any{&f.VulnerabilityID, &f.ARN, &f.Status, &f.Severity, &f.Score, &f.Fingerprint, &keys, &first, &last, &updated}
	if withDetail {
		dest = append(dest, &detail, &f.Suppressed)
	}
	if err := row.Scan(dest...); err != nil {
		return f, err
	}
	if withDetail {
		f.Detail = bytes.Clone(detail)
	}
	f.PackageKeys = decodePackageKeys(keys)
	f.FirstObservedAt, f.LastObservedAt, f.UpdatedAt = fromMS(first), fromMS(last), fromMS(updated)
	return f, nil
}

// PackageKeysColumn is a finding's package keys as the findings table holds them (one
// "ecosystem<TAB>name" per line); NULL when there are none, or when a key holds a tab or a
// newline and could not be read back (the detail then decides). Exported for loaders that
// fill a store directly (benchmarks).
func PackageKeysColumn(keys []store.PackageKey) sql.NullString {
	if len(keys) == 0 {
		return sql.NullString{}
	}
	var b strings.Builder
	for i, k := range keys {
		if strings.ContainsAny(k.Ecosystem, "\t\n") || strings.ContainsAny(k.Name, "\t\n") {
			return sql.NullString{}
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k.Ecosystem)
		b.WriteByte('\t')
		b.WriteString(k.Name)
	}
	return sql.NullString{String: b.String(), Valid: true}
}

func decodePackageKeys(s sql.NullString) []store.PackageKey {
	if !s.Valid || s.String == "" {
		return nil
	}
	out := make([]store.PackageKey, 0, strings.Count(s.String, "\n")+1)
	for line := range strings.SplitSeq(s.String, "\n") {
		eco, name, ok := strings.Cut(line, "\t")
		if !ok {
			return nil // not written by PackageKeysColumn: unknown
		}
		out = append(out, store.PackageKey{Ecosystem: eco, Name: name})
	}
	return out
}

// queryFindings reads the findings of an image. A finding's lastObservedAt is, while it is
// ACTIVE, the later of its own last_observed_at and its image's findings_observed_at
// (0021_findings_observed.sql); any query reading lastObservedAt must apply the same rule.
//
// Details are read too when withDetail.
func queryFindings(ctx context.Context, q stateReader, repo, digest, scanType string, withDetail bool) ([]store.Finding, error) {
	var observed int64
	err := q.queryRow(ctx, "SELECT findings_observed_at FROM image_scans WHERE repository = ? AND image_digest = ? AND scan_type = ?",
		repo, digest, scanType).Scan(&observed)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	return queryFindingsObserved(ctx, q, repo, digest, scanType, withDetail, observed)
}

// queryFindingsObserved is queryFindings for an image whose findings_observed_at is known.
func queryFindingsObserved(ctx context.Context, q stateReader, repo, digest, scanType string, withDetail bool, observed int64) ([]store.Finding, error) {
	query := "SELECT " + findingOwnColumns + ` FROM findings WHERE repository = ? AND image_digest = ? AND scan_type = ? ORDER BY vulnerability_id`
	if withDetail {
		// Readers of details show findings: they need suppression too.
		query = "SELECT " + qualified("f.", findingOwnColumns) + `, d.detail, f.suppressed FROM findings f JOIN finding_detail_view d ON d.finding_id = f.id
			WHERE f.repository = ? AND f.image_digest = ? AND f.scan_type = ? ORDER BY f.vulnerability_id`
	}
	rows, err := q.QueryContext(ctx, query, repo, digest, scanType)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Finding
	for rows.Next() {
		f, err := scanFinding(rows, repo, digest, scanType, withDetail)
		if err != nil {
			return nil, err
		}
		if f.Status == findingActive && observed > ms(f.LastObservedAt) {
			f.LastObservedAt = fromMS(observed)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// Findings returns every finding of a repository image for a scan type, ordered by id.
func (db *DB) Findings(ctx context.Context, repo, digest, scanType string) ([]store.Finding, error) {
	var out []store.Finding
	// One read transaction: the image's observation time and its findings of one moment.
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = queryFindings(ctx, txReader{tx}, repo, digest, scanType, true)
		return err
	})
	return out, err
}

// txReader makes a transaction a stateReader.
type txReader struct{ *sql.Tx }

func (r txReader) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	return r.QueryRowContext(ctx, query, args...)
}

// ApplyScans reads the state of each target and writes what update returns for it, all in one
// transaction with the events and usage records the update carries. A target whose image is
// gone, or whose job is gone, is skipped (update is not called). For distinct targets
// (store.DistinctTargets) the updates are called on other goroutines, several at once, while
// the transaction writes the targets before them.
func (db *DB) ApplyScans(ctx context.Context, targets []store.ScanTarget, update func(store.ScanState) (store.ScanUpdate, error)) error {
	return db.applyScans(ctx, targets, nil, update)
}

// ApplyScansSelected is ApplyScans handing update partial states: each target's findings that
// sel chooses (store.ScanState.Partial), the others read only when the update asks. It does so
// when the targets are distinct and complete no job (store.DistinctTargets), so that
// no target is read after this transaction wrote its findings; otherwise the states are whole.
func (db *DB) ApplyScansSelected(ctx context.Context, targets []store.ScanTarget, sel store.FindingSelection,
	update func(store.ScanState) (store.ScanUpdate, error)) error {
	return db.applyScans(ctx, targets, &sel, update)
}

func (db *DB) applyScans(ctx context.Context, targets []store.ScanTarget, sel *store.FindingSelection, update func(store.ScanState) (store.ScanUpdate, error)) error {
	var events int
	err := db.txJournalInMemory(ctx, func(tx *sql.Tx) error {
		// Counted with the write lock held: a transaction that begins after this one sees it.
		findingTx := db.findingTxs.Add(1)
		events = 0
		// A re-evaluation applies thousands of targets: prepare each statement once.
		q := &txStatements{tx: tx, stmts: map[string]*sql.Stmt{}}
		defer q.close()
		rules, err := suppressRules(ctx, q, db.findingCtx)
		if err != nil {
			return err
		}
		dicts := newFindingDicts(q)
		names := newFindingNames()
		pending := &pendingWrites{}
		// Partial states only when no target is read after this transaction wrote its findings
		// (distinct targets): only such writes could name a key list selectedKeySets did not see.
		var keySets string // the selection's finding_key_sets ids, a JSON array, or selectsNothing
		distinct := store.DistinctTargets(targets)
		if sel != nil && distinct {
			if keySets, err = db.keySetsOf(ctx, q, *sel, findingTx); err != nil {
				return err
			}
		}
		// Distinct targets are read ahead on the read connections while the transaction
		// writes, and their updates computed there: it holds the only write lock, so what a
		// read connection sees of a target not yet written is what the transaction would read.
		var pre *statePrefetch
		if len(targets) >= minPrefetch && distinct {
			pre = db.prefetchStates(ctx, names, targets, keySets, update)
			defer pre.stop()
		}
		for i, t := range targets {
			if t.JobID != 0 {
				var one int
				err := q.queryRow(ctx, "SELECT 1 FROM scan_jobs WHERE id = ?", t.JobID).Scan(&one)
				if errors.Is(err, sql.ErrNoRows) {
					continue
				}
				if err != nil {
					return err
				}
			}
			var st *scanState
			var up store.ScanUpdate
			var found bool
			var err error
			if pre != nil {
				st, found, up, err = pre.get(ctx, i)
			} else {
				st, found, up, err = stateAndUpdate(ctx, q, names, t, keySets, false, update)
			}
			if err != nil {
				return err
			}
			if !found {
				if t.JobID != 0 {
					if err := q.exec(ctx, "DELETE FROM scan_jobs WHERE id = ?", t.JobID); err != nil {
						return err
					}
				}
				continue
			}
			// The findings the update was compared with: a partial state's, with what More or
			// All added to them.
			n, err := writeScanUpdate(ctx, tx, q, dicts, pending, t, st, up, rules)
			if err != nil {
				return err
			}
			events += n
			if t.JobID != 0 {
				if err := q.exec(ctx, "DELETE FROM scan_jobs WHERE id = ?", t.JobID); err != nil {
					return err
				}
			}
		}
		return pending.write(ctx, q)
	})
	if err == nil && events > 0 {
		db.reportEffects(store.Effects{Events: make([]store.OutboxEvent, events)})
	}
	return err
}

// keySetsOf returns what selects the findings of sel's partial states: the JSON array of the
// finding_key_sets ids it holds (selectedKeySets), or selectsNothing. It runs in the write
// transaction (q) that reads the states.
//
// With sel.Memo, a re-evaluation's later batches reuse what its first worked out, as long as
// no other transaction wrote findings since (findingTx, this transaction's number among those
// of ApplyScans, the only writer of findings, follows the memo's) and no other process wrote
// (PRAGMA data_version): the lists the batches wrote since name only findings of the targets
// they applied, never of those still to come (distinct targets). Otherwise the first batch's
// new findings make a list holding the changed key, and every later image had all its
// findings read to find none naming it.
func (db *DB) keySetsOf(ctx context.Context, q *txStatements, sel store.FindingSelection, findingTx int64) (string, error) {
	type memo = keySetsMemo
	var dataVersion int64
	if err := q.queryRow(ctx, "PRAGMA data_version").Scan(&dataVersion); err != nil {
		return "", fmt.Errorf("data version: %w", err)
	}
	if sel.Memo != nil {
		if m, ok := sel.Memo.Load().(memo); ok && m.findingTx == findingTx-1 && m.dataVersion == dataVersion {
			sel.Memo.Store(memo{keySets: m.keySets, findingTx: findingTx, dataVersion: dataVersion})
			return m.keySets, nil
		}
	}
	keySets, err := selectedKeySets(ctx, q, sel)
	if err != nil {
		return "", err
	}
	if keySets == "[]" {
		// No key list holds a changed key: the partial states are the findings naming no
		// keys, normally none in the whole store, and then not read at all.
		var some bool
		if err := q.queryRow(ctx, anyNoKeyFinding).Scan(&some); err != nil {
			return "", fmt.Errorf("findings without keys: %w", err)
		}
		if !some {
			keySets = selectsNothing
		}
	}
	if sel.Memo != nil {
		sel.Memo.Store(memo{keySets: keySets, findingTx: findingTx, dataVersion: dataVersion})
	}
	return keySets, nil
}

// keySetsMemo is what keySetsOf keeps in a store.SelectionMemo.
type keySetsMemo struct {
	keySets     string
	findingTx   int64 // of the transaction that worked it out, or last reused it
	dataVersion int64
}

// stateReader runs the queries of readScanState.
type stateReader interface {
	querier
	queryRow(ctx context.Context, query string, args ...any) rowScanner
}

// scanState is what update is handed for a target, with the image's findings_observed_at.
type scanState struct {
	store.ScanState
	observed int64
	targetID int64 // its scan_targets row, 0 when it has none (written with its first finding)
	// prepared is, for each finding of the update, what its write takes from its detail,
	// worked out where the state was read ahead; nil when not.
	prepared []preparedDetail
}

// preparedDetail is what a finding's write takes from its detail, which takes no lock to work
// out: read-ahead goroutines do it, on all cores, rather than the one writer.
type preparedDetail struct {
	done  bool // false: a finding the write will not rewrite, or none worked out
	cols  *detailColumns
	parts DetailParts
	// texts are the finding_texts ids of the parts' texts (DetailParts.texts), when looked up
	// (textsRead), 0 for one not stored before the transaction: the write looks up none of
	// them and writes only those.
	texts     [3]int64
	textsRead bool
	err       error // of the split, which the write reports
}

// prepareDetails works out what writeScanUpdate takes from the details of the findings of up
// it will rewrite (st's findings being those it compares with).
func prepareDetails(ctx context.Context, q stateReader, names *findingNames, st *scanState, up store.ScanUpdate) []preparedDetail {
	stored := make(map[string]*store.Finding, len(st.Findings))
	for i := range st.Findings {
		stored[st.Findings[i].VulnerabilityID] = &st.Findings[i]
	}
	prepared := make([]preparedDetail, len(up.Findings))
	for i, f := range up.Findings {
		if prev := stored[f.VulnerabilityID]; f.Detail == nil || prev != nil && onlyObserved(*prev, f) {
			continue
		}
		prepared[i] = prepareDetail(ctx, q, f.Detail)
		if p := &prepared[i]; p.err == nil && p.parts.Whole == "" {
			ids, err := names.textIDs(ctx, q, p.parts.texts())
			if err != nil {
				p.err = err
				continue
			}
			p.texts, p.textsRead = ids, true
		}
	}
	return prepared
}

// prepareDetail works out what a finding's write takes from its detail: the facts and fix
// state read in Go (nil for a detail of a shape FindingColumnsOfDetail refuses, which the SQL
// indexes instead: indexFinding), and the split.
func prepareDetail(ctx context.Context, q stateReader, detail []byte) preparedDetail {
	p := preparedDetail{done: true}
	if facts, fix, err := FindingColumnsOfDetail(detail); err == nil {
		p.cols = &detailColumns{facts: facts, fix: fix}
	}
	p.parts, p.err = splitDetail(ctx, q, detail)
	return p
}

// manifestTagsTarget reads an image's manifest with its tags (sorted, a JSON array) and its
// scan_targets id (NULL when it has none; read here, on the read connections when read ahead,
// rather than by the writer): one query, not three, for each of the thousands of images a
// re-evaluation reads.
const manifestTagsTarget = "SELECT " + manifestColumns + `,
		(SELECT json_group_array(tag ORDER BY tag) FROM tags WHERE tags.repository = ?1 AND tags.digest = ?2),
		(SELECT id FROM scan_targets WHERE scan_targets.repository = ?1 AND image_digest = ?2 AND scan_type = ?3)
	FROM manifests WHERE repository = ?1 AND digest = ?2`

// readScanState reads what update is handed for t; found is false when the image is gone.
//
// With keySets (a JSON array of finding_key_sets ids, selectedKeySets) the state is partial: it
// holds the findings naming one of those lists or none; with selectsNothing it holds none.
func readScanState(ctx context.Context, q stateReader, names *findingNames, t store.ScanTarget, keySets string) (st scanState, found bool, err error) {
	var tags string
	var targetID sql.NullInt64
	m, err := scanManifest(q.queryRow(ctx, manifestTagsTarget, t.Repository, t.Digest, t.ScanType), &tags, &targetID)
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	if tags != "[]" {
		if err := json.Unmarshal([]byte(tags), &m.Tags); err != nil {
			return st, false, fmt.Errorf("tags of %s@%s: %w", t.Repository, t.Digest, err)
		}
	}
	st = scanState{ScanState: store.ScanState{Target: t, Manifest: m}, targetID: targetID.Int64}
	s, err := scanImageScan(q.queryRow(ctx, "SELECT "+imageScanColumns+", findings_observed_at FROM image_scans WHERE repository = ? AND image_digest = ? AND scan_type = ?",
		t.Repository, t.Digest, t.ScanType), &st.observed)
	switch {
	case err == nil:
		st.Scan = &s
	case !errors.Is(err, sql.ErrNoRows):
		return st, false, err
	}
	switch keySets {
	case "":
		st.Findings, err = queryTargetFindings(ctx, q, names, t, st.observed, targetFindingRows)
	case selectsNothing:
		st.Partial = true
	case "[]":
		// No key list names a changed key (a new advisory for a package no finding holds):
		// the partial state is the findings naming no keys, which an index of their own holds.
		st.Partial = true
		st.Findings, err = queryTargetFindings(ctx, q, names, t, st.observed, noKeyFindingRows)
	default:
		st.Partial = true
		st.Findings, err = queryTargetFindings(ctx, q, names, t, st.observed, targetFindingRows+selectedFindingRows, keySets)
	}
	if err != nil {
		return st, false, err
	}
	return st, true, nil
}

// stateAndUpdate reads the state of t through q and, when its image is there, calls update with
// it; the state's Details, More and All read through q too. The state returned holds what More
// and All added to it and, with prepare (read ahead of the writer), what the write takes from
// the update's details.
func stateAndUpdate(ctx context.Context, q stateReader, names *findingNames, t store.ScanTarget, keySets string, prepare bool,
	update func(store.ScanState) (store.ScanUpdate, error)) (*scanState, bool, store.ScanUpdate, error) {
	st, found, err := readScanState(ctx, q, names, t, keySets)
	if err != nil || !found {
		return nil, found, store.ScanUpdate{}, err
	}
	s := &st
	s.Details = func(ctx context.Context, ids []string) (map[string][]byte, error) {
		return findingDetails(ctx, q, t, ids)
	}
	if s.Partial {
		s.More = func(ctx context.Context, ids []string) ([]store.Finding, error) {
			return s.more(ctx, q, names, ids)
		}
		s.All = func(ctx context.Context) ([]store.Finding, error) {
			return s.all(ctx, q, names)
		}
	}
	up, err := update(s.ScanState)
	if err == nil && prepare {
		s.prepared = prepareDetails(ctx, q, names, s, up)
	}
	return s, true, up, err
}

// prefetchWindow bounds how many target states are read ahead of the writer; fewer targets
// than minPrefetch, or targets that are not distinct (store.DistinctTargets), are read in the
// transaction.
const (
	prefetchWindow = 64
	minPrefetch    = 16
)

// statePrefetch reads target states ahead of the writer, in order, on all cores, and calls
// the update of each: the writer then only writes. The updates of different targets run
// concurrently, each reading through the read connections what it reads of its own target
// (Details, More, All).
type statePrefetch struct {
	done   []chan struct{}
	states []prefetchedState
	slots  chan struct{} // one per state read but not yet taken
	cancel context.CancelFunc
	wg     sync.WaitGroup
	q      *poolStatements
}

type prefetchedState struct {
	st    *scanState
	found bool
	up    store.ScanUpdate
	err   error
}

func (db *DB) prefetchStates(ctx context.Context, names *findingNames, targets []store.ScanTarget, keySets string,
	update func(store.ScanState) (store.ScanUpdate, error)) *statePrefetch {
	ctx, cancel := context.WithCancel(ctx)
	p := &statePrefetch{done: make([]chan struct{}, len(targets)), states: make([]prefetchedState, len(targets)),
		slots: make(chan struct{}, prefetchWindow), cancel: cancel, q: &poolStatements{db: db.read, stmts: map[string]*sql.Stmt{}}}
	for i := range p.done {
		p.done[i] = make(chan struct{})
	}
	next := make(chan int)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(next)
		for i := range targets {
			select {
			case p.slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range max(1, runtime.GOMAXPROCS(0)) {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for i := range next {
				st, found, up, err := stateAndUpdate(ctx, p.q, names, targets[i], keySets, true, update)
				p.states[i] = prefetchedState{st, found, up, err}
				close(p.done[i])
			}
		}()
	}
	return p
}

// get waits for the state of target i and its update.
func (p *statePrefetch) get(ctx context.Context, i int) (*scanState, bool, store.ScanUpdate, error) {
	select {
	case <-p.done[i]:
	case <-ctx.Done():
		return nil, false, store.ScanUpdate{}, ctx.Err()
	}
	<-p.slots
	r := p.states[i]
	p.states[i] = prefetchedState{}
	return r.st, r.found, r.up, r.err
}

func (p *statePrefetch) stop() {
	p.cancel()
	p.wg.Wait()
	p.q.close()
}

// poolStatements prepares each statement once on a connection pool, for concurrent use.
type poolStatements struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func (q *poolStatements) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if st := q.stmts[query]; st != nil {
		return st, nil
	}
	st, err := q.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	q.stmts[query] = st
	return st, nil
}

// QueryContext makes poolStatements a querier.
func (q *poolStatements) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := q.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (q *poolStatements) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	st, err := q.prepare(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

func (q *poolStatements) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, st := range q.stmts {
		_ = st.Close()
	}
}

// txStatements prepares each statement of a transaction once.
type txStatements struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (q *txStatements) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	if st := q.stmts[query]; st != nil {
		return st, nil
	}
	st, err := q.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	q.stmts[query] = st
	return st, nil
}

// QueryContext makes txStatements a querier.
func (q *txStatements) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := q.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (q *txStatements) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	st, err := q.prepare(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

func (q *txStatements) exec(ctx context.Context, query string, args ...any) error {
	_, err := q.ExecContext(ctx, query, args...)
	return err
}

// ExecContext makes txStatements an execer.
func (q *txStatements) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := q.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (q *txStatements) close() {
	for _, st := range q.stmts {
		_ = st.Close()
	}
}

// errRow is a row whose query could not be prepared.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// findingDetails reads the details of a target's findings by vulnerability id.
func findingDetails(ctx context.Context, q querier, t store.ScanTarget, ids []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(ids))
	for chunk := range chunks(ids, 200) {
		rows, err := q.QueryContext(ctx, `SELECT f.vulnerability_id, d.detail FROM findings f JOIN finding_detail_view d ON d.finding_id = f.id
			WHERE f.repository = ? AND f.image_digest = ? AND f.scan_type = ? AND f.vulnerability_id IN (`+placeholders(len(chunk))+`)`,
			append([]any{t.Repository, t.Digest, t.ScanType}, toAny(chunk)...)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			var detail []byte
			if err := rows.Scan(&id, &detail); err != nil {
				_ = rows.Close()
				return nil, err
			}
			out[id] = detail
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// writeScanUpdate writes up for t; st is the state up was computed from: its findings are those
// stored for t then (those of a partial state when partial: up.Observed then observes the
// others), with the image's findings_observed_at and the target's row id (0: none) as read
// with them. The suppression rules are applied to the findings written with their detail. It
// returns how many events it wrote.
func writeScanUpdate(ctx context.Context, tx *sql.Tx, q *txStatements, dicts *findingDicts, pending *pendingWrites, t store.ScanTarget, st *scanState,
	up store.ScanUpdate, rules compiledRules) (int, error) {
	cur, partial, imageObserved := st.Findings, st.Partial, st.observed
	if up.Scan != nil {
		s := *up.Scan
		s.Repository, s.Digest, s.ScanType = t.Repository, t.Digest, t.ScanType
		write := putImageScanTx
		if st.Scan != nil && sameScanOutcome(*st.Scan, s) {
			write = touchImageScanTx
		}
		if err := write(ctx, q, s); err != nil {
			return 0, err
		}
	}
	stored := make(map[string]*store.Finding, len(cur))
	hasDetail := make(map[string]bool, len(cur)) // rows whose detail is stored, or written here
	for i := range cur {
		stored[cur[i].VulnerabilityID] = &cur[i]
		hasDetail[cur[i].VulnerabilityID] = true
	}
	seen := make(map[string]bool, len(up.Findings))
	for _, f := range up.Findings {
		if seen[f.VulnerabilityID] {
			stored = nil // written twice: keep the order of the writes
			break
		}
		seen[f.VulnerabilityID] = true
	}
	// A finding observed again, and otherwise as stored, only has its lastObservedAt moved.
	// When that is every ACTIVE finding the update does not rewrite, one write of the image's
	// findings_observed_at moves them all; otherwise one UPDATE per time moves each row.
	if err := materializeObserved(ctx, q, t, imageObserved, up.Findings); err != nil {
		return 0, err
	}
	rowIDs := dicts.forTarget(t, st.targetID)
	textIDs := dicts.details
	observed := map[int64][]any{}
	detailed := map[int64]string{}     // finding ids written with their detail -> vulnerability ids
	minWritten := int64(math.MaxInt64) // earliest lastObservedAt written to an ACTIVE row
	for i, f := range up.Findings {
		if prev := stored[f.VulnerabilityID]; prev != nil && onlyObserved(*prev, f) {
			if at := ms(f.LastObservedAt); at != ms(prev.LastObservedAt) {
				observed[at] = append(observed[at], f.VulnerabilityID)
			}
			continue
		}
		if f.Detail == nil && !hasDetail[f.VulnerabilityID] {
			return 0, fmt.Errorf("write finding %s of %s@%s: %w", f.VulnerabilityID, t.Repository, t.Digest, errNoDetail)
		}
		hasDetail[f.VulnerabilityID] = true
		// The row takes its detail's facts and fix state in its own write, read in Go; a
		// detail of a shape FindingColumnsOfDetail refuses is indexed by the SQL instead,
		// which reads it as it always has.
		var pre preparedDetail
		if i < len(st.prepared) {
			pre = st.prepared[i]
		}
		if f.Detail != nil && !pre.done {
			pre = prepareDetail(ctx, q, f.Detail)
		}
		cols := pre.cols
		id, err := rowIDs.upsert(ctx, f, cols)
		if err != nil {
			return 0, fmt.Errorf("write finding: %w", err)
		}
		if f.Detail != nil {
			detailed[id] = f.VulnerabilityID
			if pre.err != nil {
				return 0, fmt.Errorf("write finding detail: %w", pre.err)
			}
			if pre.textsRead {
				textIDs.known(pre.parts, pre.texts)
			}
			if err := putDetailParts(ctx, q, textIDs, id, pre.parts); err != nil {
				return 0, fmt.Errorf("write finding detail: %w", err)
			}
			if cols == nil {
				if err := indexFinding(ctx, q, id); err != nil {
					return 0, fmt.Errorf("index finding detail: %w", err)
				}
			}
		}
		if f.Status == findingActive {
			minWritten = min(minWritten, ms(f.LastObservedAt))
		}
	}
	// The findings a partial state did not hold are observed at up.Observed: with the image's
	// time when that moves every other one too, else by an update of their rows.
	unseenAt := int64(0)
	if partial && !up.Observed.IsZero() {
		unseenAt = ms(up.Observed)
		if _, ok := observed[unseenAt]; !ok {
			observed[unseenAt] = nil
		}
	}
	if at, ok := observedTogether(cur, up.Findings, observed); ok && at <= minWritten {
		res, err := q.ExecContext(ctx, `UPDATE image_scans SET findings_observed_at = ? WHERE repository = ? AND image_digest = ? AND scan_type = ?
			AND findings_observed_at <= ?`, at, t.Repository, t.Digest, t.ScanType, at)
		if err != nil {
			return 0, fmt.Errorf("write finding: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			observed, unseenAt = nil, 0
		}
	}
	if unseenAt != 0 {
		held := store.VulnerabilityIDs(cur, up.Findings)
		raw, err := json.Marshal(held)
		if err != nil {
			return 0, err
		}
		// X'01': ACTIVE (0053); the last observation as milliseconds after the first (0055).
		if err := q.exec(ctx, `UPDATE finding_rows SET last_observed_after = ?1 - first_observed_at WHERE target_id = (SELECT id FROM scan_targets
			WHERE repository = ?2 AND image_digest = ?3 AND scan_type = ?4) AND status = X'01' AND first_observed_at + last_observed_after != ?1
			AND vulnerability NOT IN (SELECT id FROM finding_vulnerabilities WHERE vulnerability_id IN (SELECT value FROM json_each(?5)))`,
			unseenAt, t.Repository, t.Digest, t.ScanType, string(raw)); err != nil {
			return 0, fmt.Errorf("observe findings: %w", err)
		}
	}
	for at, ids := range observed {
		for chunk := range chunks(ids, 200) {
			if _, err := tx.ExecContext(ctx, `UPDATE finding_rows SET last_observed_after = ? - first_observed_at WHERE target_id = `+targetIDQuery+`
				AND vulnerability IN (SELECT id FROM finding_vulnerabilities WHERE vulnerability_id IN (`+placeholders(len(chunk))+`))`,
				append([]any{at, t.Repository, t.Digest, t.ScanType}, chunk...)...); err != nil {
				return 0, fmt.Errorf("write finding: %w", err)
			}
		}
	}
	pending.usage = append(pending.usage, up.Usage...)
	ids := make([]int64, 0, len(detailed))
	for id := range detailed {
		ids = append(ids, id)
	}
	suppressed, err := applyRulesToWritten(ctx, q, rules, ids)
	if err != nil {
		return 0, err
	}
	evs := up.Events
	if up.Announce != nil {
		byVuln := make(map[string]bool, len(suppressed))
		for id := range suppressed {
			byVuln[detailed[id]] = true
		}
		written := make([]store.Finding, len(up.Findings))
		for i, f := range up.Findings {
			f.Suppressed = byVuln[f.VulnerabilityID]
			written[i] = f
		}
		more, err := up.Announce(written)
		if err != nil {
			return 0, err
		}
		evs = append(slices.Clip(evs), more...)
	}
	if len(evs) == 0 {
		return 0, nil
	}
	rows, err := outboxRows(evs, time.Now())
	if err != nil {
		return 0, err
	}
	pending.outbox = append(pending.outbox, rows...)
	return len(evs), nil
}

// pendingWrites are the rows a transaction over many targets writes at its end, many a
// statement, rather than one statement each for thousands of images: its events (in target
// order) and usage records, which none of its other statements read.
type pendingWrites struct {
	outbox []outboxRow
	usage  []store.Usage
}

// usageRowsAStatement is how many usage records one INSERT writes (five parameters each).
const usageRowsAStatement = 200

func (p *pendingWrites) write(ctx context.Context, q *txStatements) error {
	if err := insertOutboxRows(ctx, q, p.outbox); err != nil {
		return err
	}
	for chunk := range chunks(p.usage, usageRowsAStatement) {
		args := make([]any, 0, 5*len(chunk))
		for _, u := range chunk {
			args = append(args, u.Repository, u.Digest, u.ScanType, u.Kind, ms(u.At))
		}
		if err := q.exec(ctx, "INSERT INTO scan_usage(repository, image_digest, scan_type, kind, at) VALUES "+rowPlaceholders(len(chunk), 5), args...); err != nil {
			return fmt.Errorf("record scan usage: %w", err)
		}
	}
	return nil
}

// materializeObserved copies the image's findings_observed_at into its ACTIVE finding rows, and
// clears it, before writes that give an ACTIVE finding an earlier lastObservedAt (a clock
// stepped back): the image's time must not hide theirs.
func materializeObserved(ctx context.Context, q *txStatements, t store.ScanTarget, obs int64, writes []store.Finding) error {
	if obs == 0 {
		return nil
	}
	earlier := false
	for _, f := range writes {
		earlier = earlier || f.Status == findingActive && ms(f.LastObservedAt) < obs
	}
	if !earlier {
		return nil
	}
	// X'01': ACTIVE as finding_rows codes it (0053); the last observation is kept as the
	// milliseconds after the first (0055).
	if err := q.exec(ctx, `UPDATE finding_rows SET last_observed_after = ?1 - first_observed_at WHERE target_id = (SELECT id FROM scan_targets
		WHERE repository = ?2 AND image_digest = ?3 AND scan_type = ?4) AND status = X'01' AND first_observed_at + last_observed_after < ?1`,
		obs, t.Repository, t.Digest, t.ScanType); err != nil {
		return err
	}
	return q.exec(ctx, "UPDATE image_scans SET findings_observed_at = 0 WHERE repository = ? AND image_digest = ? AND scan_type = ?",
		t.Repository, t.Digest, t.ScanType)
}

// findingActive is the status of a finding that holds (Inspector's ACTIVE).
const findingActive = "ACTIVE"

// observedTogether reports whether observed (times to vulnerability ids) moves every stored
// ACTIVE finding, at one time, that writes does not otherwise rewrite, and that time.
func observedTogether(cur, writes []store.Finding, observed map[int64][]any) (int64, bool) {
	if len(observed) != 1 {
		return 0, false
	}
	var at int64
	for t := range observed {
		at = t
	}
	written := make(map[string]bool, len(writes))
	for _, f := range writes {
		written[f.VulnerabilityID] = true
	}
	for _, f := range cur {
		if f.Status == findingActive && !written[f.VulnerabilityID] {
			return 0, false // an ACTIVE finding the update does not observe
		}
	}
	return at, true
}

// errNoDetail refuses a new finding written without its detail.
var errNoDetail = store.ErrNoDetail

// onlyObserved reports whether writing f over the stored prev changes no column but
// last_observed_at (times compared as stored, in milliseconds). A detail not loaded (nil) or
// written nil (kept) counts as unchanged.
func onlyObserved(prev, f store.Finding) bool {
	return prev.Repository == f.Repository && prev.Digest == f.Digest && prev.ScanType == f.ScanType && prev.ARN == f.ARN &&
		prev.Status == f.Status && prev.Severity == f.Severity && prev.Score == f.Score && prev.Fingerprint == f.Fingerprint &&
		slices.Equal(prev.PackageKeys, f.PackageKeys) &&
		ms(prev.FirstObservedAt) == ms(f.FirstObservedAt) && ms(prev.UpdatedAt) == ms(f.UpdatedAt) &&
		(prev.Detail == nil || f.Detail == nil || bytes.Equal(prev.Detail, f.Detail))
}

// LayerInventory returns a layer inventory cached under fingerprint, or ErrNotFound.
func (db *DB) LayerInventory(ctx context.Context, layerDigest, mode, fingerprint string) ([]byte, error) {
	var b []byte
	err := db.read.QueryRowContext(ctx, "SELECT inventory FROM layer_inventories WHERE layer_digest = ? AND mode = ? AND fingerprint = ?",
		layerDigest, mode, fingerprint).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return b, err
}

// PutLayerInventory caches a layer inventory under the fingerprint of the extractors that
// read it, replacing one cached under another.
func (db *DB) PutLayerInventory(ctx context.Context, layerDigest, mode, fingerprint string, inventory []byte) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO layer_inventories(layer_digest, mode, fingerprint, inventory, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT(layer_digest, mode) DO UPDATE SET fingerprint = excluded.fingerprint, inventory = excluded.inventory,
				created_at = excluded.created_at`, layerDigest, mode, fingerprint, inventory, time.Now().UnixMilli())
		return err
	})
}

// PutImageInventory stores an image's merged inventory (its header, and its parts, kept once
// however many inventories hold them) and indexes its package keys, returning its id: the keys
// of its parts through the parts (inventory_key_postings, once per part), any other key in
// inventory_packages. An existing inventory for the digest and mode is replaced, and the parts
// only it held deleted.
func (db *DB) PutImageInventory(ctx context.Context, digest, mode, fingerprint string, os string, keys []store.PackageKey, packages int, inventory []byte, parts []store.InventoryPart) (int64, error) {
	var id int64
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO image_inventories(image_digest, mode, fingerprint, os, package_count, inventory, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(image_digest, mode) DO UPDATE SET fingerprint = excluded.fingerprint, os = excluded.os,
				package_count = excluded.package_count, inventory = excluded.inventory, created_at = excluded.created_at RETURNING id`,
			digest, mode, fingerprint, os, packages, inventory, time.Now().UnixMilli()).Scan(&id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM inventory_packages WHERE inventory_id = ?", id); err != nil {
			return err
		}
		old, err := unlinkPartsTx(ctx, tx, []int64{id})
		if err != nil {
			return err
		}
		getKey, err := tx.PrepareContext(ctx, upsertPackageKey)
		if err != nil {
			return err
		}
		defer getKey.Close()
		if err := linkPartsTx(ctx, tx, getKey, id, parts); err != nil {
			return err
		}
		if _, err := dropOrphanPartsTx(ctx, tx, old); err != nil {
			return err
		}
		return indexKeysTx(ctx, tx, getKey, id, store.KeysOutsideParts(keys, parts))
	})
	return id, err
}

const upsertPackageKey = `INSERT INTO package_keys(ecosystem, name) VALUES (?, ?)
	ON CONFLICT(ecosystem, name) DO UPDATE SET name = excluded.name RETURNING id`

// linkPartsTx stores the parts an inventory does not share with one stored before, with their
// keys, and links the inventory to all of them.
func linkPartsTx(ctx context.Context, tx *sql.Tx, getKey *sql.Stmt, inventoryID int64, parts []store.InventoryPart) error {
	if len(parts) == 0 {
		return nil
	}
	// Looked up, then inserted only when new: an upsert would rewrite the row, and a shared
	// part (a base image's packages) is the largest. A part stored before 0051 has no keys
	// yet: they are filled in now.
	get, err := tx.PrepareContext(ctx, "SELECT id, key_ids IS NULL FROM inventory_parts WHERE hash = ?")
	if err != nil {
		return err
	}
	defer get.Close()
	put, err := tx.PrepareContext(ctx, "INSERT INTO inventory_parts(hash, data, key_ids) VALUES (?, ?, ?) RETURNING id")
	if err != nil {
		return err
	}
	defer put.Close()
	setKeys, err := tx.PrepareContext(ctx, "UPDATE inventory_parts SET key_ids = ? WHERE id = ?")
	if err != nil {
		return err
	}
	defer setKeys.Close()
	link, err := tx.PrepareContext(ctx, "INSERT INTO inventory_part_links(inventory_id, part_id) VALUES (?, ?) ON CONFLICT DO NOTHING")
	if err != nil {
		return err
	}
	defer link.Close()
	keyIDs := func(p store.InventoryPart) ([]int64, error) {
		ids := make([]int64, 0, len(p.Keys))
		for _, k := range p.Keys {
			var id int64
			if err := getKey.QueryRowContext(ctx, k.Ecosystem, k.Name).Scan(&id); err != nil {
				return nil, fmt.Errorf("package key: %w", err)
			}
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return slices.Compact(ids), nil
	}
	// The keys of the parts stored or keyed now, added to each posting row once at the end.
	index := map[posting][]int64{}
	for _, p := range parts {
		var partID int64
		var unkeyed bool
		err := get.QueryRowContext(ctx, p.Hash).Scan(&partID, &unkeyed)
		var ids []int64
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if ids, err = keyIDs(p); err != nil {
				return err
			}
			if err := put.QueryRowContext(ctx, p.Hash, p.Data, store.EncodeKeyIDs(ids)).Scan(&partID); err != nil {
				return fmt.Errorf("store inventory part: %w", err)
			}
		case err != nil:
			return fmt.Errorf("inventory part: %w", err)
		case unkeyed:
			if ids, err = keyIDs(p); err != nil {
				return err
			}
			if _, err := setKeys.ExecContext(ctx, store.EncodeKeyIDs(ids), partID); err != nil {
				return fmt.Errorf("inventory part keys: %w", err)
			}
		}
		for _, k := range ids {
			at := posting{key: k, chunk: store.PartChunk(partID)}
			index[at] = append(index[at], partID)
		}
		if _, err := link.ExecContext(ctx, inventoryID, partID); err != nil {
			return fmt.Errorf("link inventory part: %w", err)
		}
	}
	if err := editPostingsTx(ctx, tx, index, false); err != nil {
		return fmt.Errorf("index inventory part keys: %w", err)
	}
	return nil
}

// posting names a row of inventory_key_postings (0054): a package key's parts in one chunk.
type posting struct{ key, chunk int64 }

// editPostingsTx adds part ids to the key postings (or removes them, deleting a row left
// empty), reading, changing and rewriting each row once. A part id to remove that a row lacks
// is no error: the row is as wanted.
func editPostingsTx(ctx context.Context, tx *sql.Tx, edits map[posting][]int64, remove bool) error {
	if len(edits) == 0 {
		return nil
	}
	get, err := tx.PrepareContext(ctx, "SELECT part_ids FROM inventory_key_postings WHERE key_id = ? AND chunk = ?")
	if err != nil {
		return err
	}
	defer get.Close()
	put, err := tx.PrepareContext(ctx, `INSERT INTO inventory_key_postings(key_id, chunk, part_ids) VALUES (?, ?, ?)
		ON CONFLICT(key_id, chunk) DO UPDATE SET part_ids = excluded.part_ids`)
	if err != nil {
		return err
	}
	defer put.Close()
	del, err := tx.PrepareContext(ctx, "DELETE FROM inventory_key_postings WHERE key_id = ? AND chunk = ?")
	if err != nil {
		return err
	}
	defer del.Close()
	// In key order, as the rows are: neighbouring rows share B-tree pages.
	at := slices.SortedFunc(maps.Keys(edits), func(a, b posting) int {
		return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.chunk, b.chunk))
	})
	var ids []int64
	for _, p := range at {
		var blob []byte
		ids = ids[:0]
		switch err := get.QueryRowContext(ctx, p.key, p.chunk).Scan(&blob); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			if ids, err = store.DecodePartIDs(ids, p.chunk, blob); err != nil {
				return fmt.Errorf("package key %d: %w", p.key, err)
			}
		}
		n := len(ids)
		if remove {
			ids = slices.DeleteFunc(ids, func(id int64) bool { return slices.Contains(edits[p], id) })
		} else {
			ids = append(ids, edits[p]...)
			slices.Sort(ids)
			ids = slices.Compact(ids)
		}
		switch {
		case len(ids) == n && (remove || blob != nil):
			// Nothing removed, or nothing new: the row stays as it is.
		case len(ids) == 0:
			if _, err := del.ExecContext(ctx, p.key, p.chunk); err != nil {
				return err
			}
		default:
			if _, err := put.ExecContext(ctx, p.key, p.chunk, store.EncodePartIDs(p.chunk, ids)); err != nil {
				return err
			}
		}
	}
	return nil
}

// unlinkPartsTx removes the links of inventories to their parts, returning the parts they
// linked.
func unlinkPartsTx(ctx context.Context, tx *sql.Tx, inventoryIDs []int64) ([]int64, error) {
	var parts []int64
	for chunk := range chunks(inventoryIDs, 200) {
		got, err := queryAll(ctx, tx, func(r rowScanner) (int64, error) {
			var id int64
			return id, r.Scan(&id)
		}, "DELETE FROM inventory_part_links WHERE inventory_id IN ("+placeholders(len(chunk))+") RETURNING part_id", toAny(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("unlink inventory parts: %w", err)
		}
		parts = append(parts, got...)
	}
	slices.Sort(parts)
	return slices.Compact(parts), nil
}

// dropOrphanPartsTx deletes those of parts no inventory links any more, with their key rows,
// returning their bytes.
func dropOrphanPartsTx(ctx context.Context, tx *sql.Tx, parts []int64) (int64, error) {
	type gone struct {
		id, size int64
		keys     []byte
	}
	var total int64
	unindex := map[posting][]int64{}
	for chunk := range chunks(parts, 200) {
		rows, err := queryAll(ctx, tx, func(r rowScanner) (gone, error) {
			var g gone
			return g, r.Scan(&g.id, &g.size, &g.keys)
		}, `DELETE FROM inventory_parts WHERE id IN (`+placeholders(len(chunk))+`)
			AND NOT EXISTS (SELECT 1 FROM inventory_part_links l WHERE l.part_id = inventory_parts.id) RETURNING id, length(data), key_ids`, toAny(chunk)...)
		if err != nil {
			return 0, fmt.Errorf("delete unlinked inventory parts: %w", err)
		}
		for _, g := range rows {
			total += g.size
			ids, err := store.DecodeKeyIDs(g.keys)
			if err != nil {
				return 0, fmt.Errorf("inventory part %d: %w", g.id, err)
			}
			for _, k := range ids {
				at := posting{key: k, chunk: store.PartChunk(g.id)}
				unindex[at] = append(unindex[at], g.id)
			}
		}
	}
	if err := editPostingsTx(ctx, tx, unindex, true); err != nil {
		return 0, fmt.Errorf("delete inventory part keys: %w", err)
	}
	return total, nil
}

func indexKeysTx(ctx context.Context, tx *sql.Tx, getKey *sql.Stmt, inventoryID int64, keys []store.PackageKey) error {
	if len(keys) == 0 {
		return nil
	}
	link, err := tx.PrepareContext(ctx, "INSERT INTO inventory_packages(key_id, inventory_id) VALUES (?, ?) ON CONFLICT DO NOTHING")
	if err != nil {
		return err
	}
	defer link.Close()
	for _, k := range keys {
		var keyID int64
		if err := getKey.QueryRowContext(ctx, k.Ecosystem, k.Name).Scan(&keyID); err != nil {
			return err
		}
		if _, err := link.ExecContext(ctx, keyID, inventoryID); err != nil {
			return err
		}
	}
	return nil
}

// ImageInventory returns a stored image inventory by id.
func (db *DB) ImageInventory(ctx context.Context, id int64) ([]byte, error) {
	var b []byte
	err := db.read.QueryRowContext(ctx, "SELECT inventory FROM image_inventories WHERE id = ?", id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return b, err
}

// InventoryParts returns the stored inventory parts of these hashes, in their order.
func (db *DB) InventoryParts(ctx context.Context, hashes [][]byte) ([][]byte, error) {
	byHash := make(map[string][]byte, len(hashes))
	for chunk := range chunks(hashes, 200) {
		rows, err := db.read.QueryContext(ctx, "SELECT hash, data FROM inventory_parts WHERE hash IN ("+placeholders(len(chunk))+")", toAny(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("inventory parts: %w", err)
		}
		for rows.Next() {
			var h, d []byte
			if err := rows.Scan(&h, &d); err != nil {
				rows.Close()
				return nil, fmt.Errorf("inventory parts: %w", err)
			}
			byHash[string(h)] = d
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("inventory parts: %w", err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("inventory parts: %w", err)
		}
	}
	return store.PartsInOrder(hashes, byHash)
}

// InventoriesHolding returns the repository images, scanned with scanType, whose inventory
// holds any of keys: the candidates for re-evaluation when those packages' advisories change.
// An inventory holds a key through one of its parts (inventory_key_postings) or, written before
// 0051, its own index rows (inventory_packages).
func (db *DB) InventoriesHolding(ctx context.Context, scanType string, keys []store.PackageKey) ([]store.InventoryRef, error) {
	if keys == nil {
		return inventoryRefs(ctx, db.read, "s.inventory_id IS NOT NULL AND s.scan_type = ?", scanType)
	}
	var out []store.InventoryRef
	// One snapshot: the parts found through the postings are those the links name.
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		keyIDs, err := packageKeyIDs(ctx, tx, keys)
		if err != nil || len(keyIDs) == 0 {
			return err
		}
		parts, err := partsWithKeys(ctx, tx, keyIDs)
		if err != nil {
			return err
		}
		out, err = inventoryRefs(ctx, tx, `s.inventory_id IN (SELECT inventory_id FROM inventory_packages WHERE key_id IN (SELECT value FROM json_each(?))
				UNION SELECT inventory_id FROM inventory_part_links WHERE part_id IN (SELECT value FROM json_each(?)))
			AND s.scan_type = ?`, jsonInts(keyIDs), jsonInts(parts), scanType)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("inventories holding packages: %w", err)
	}
	return out, nil
}

// packageKeyIDs returns the ids of the package_keys rows of keys (keyCond), sorted.
func packageKeyIDs(ctx context.Context, q querier, keys []store.PackageKey) ([]int64, error) {
	var ids []int64
	for chunk := range chunks(keys, 200) {
		cond, args := keyCond(chunk)
		got, err := queryAll(ctx, q, func(r rowScanner) (int64, error) {
			var id int64
			return id, r.Scan(&id)
		}, "SELECT id FROM package_keys WHERE "+cond, args...)
		if err != nil {
			return nil, fmt.Errorf("package keys: %w", err)
		}
		ids = append(ids, got...)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// partsWithKeys returns the ids of the inventory parts whose keys hold one of keyIDs, sorted,
// from their posting lists; a list that does not decode is an error, not a part less.
func partsWithKeys(ctx context.Context, q querier, keyIDs []int64) ([]int64, error) {
	rows, err := q.QueryContext(ctx, "SELECT key_id, chunk, part_ids FROM inventory_key_postings WHERE key_id IN (SELECT value FROM json_each(?))",
		jsonInts(keyIDs))
	if err != nil {
		return nil, fmt.Errorf("inventory key postings: %w", err)
	}
	defer rows.Close()
	var parts []int64
	for rows.Next() {
		var key, chunk int64
		var blob []byte
		if err := rows.Scan(&key, &chunk, &blob); err != nil {
			return nil, fmt.Errorf("inventory key postings: %w", err)
		}
		if parts, err = store.DecodePartIDs(parts, chunk, blob); err != nil {
			return nil, fmt.Errorf("package key %d: %w", key, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inventory key postings: %w", err)
	}
	slices.Sort(parts)
	return slices.Compact(parts), nil
}

// jsonInts is ids as a JSON array, for json_each: one parameter however many ids.
func jsonInts(ids []int64) string {
	b := make([]byte, 0, len(ids)*8+2)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}

// keyCond selects the package_keys rows of keys.
func keyCond(keys []store.PackageKey) (string, []any) {
	var cond []string
	var args []any
	for _, k := range keys {
		if strings.Contains(k.Ecosystem, ":") {
			cond = append(cond, "(ecosystem = ? AND name = ?)")
			args = append(args, k.Ecosystem, k.Name)
			continue
		}
		// A key of a bare ecosystem ("Debian") also names the package in each of its
		// releases ("Debian:12"), as its advisories apply to them all.
		cond = append(cond, "(name = ? AND (ecosystem = ? OR (ecosystem >= ? AND ecosystem < ?)))")
		args = append(args, k.Name, k.Ecosystem, k.Ecosystem+":", k.Ecosystem+";")
	}
	return strings.Join(cond, " OR "), args
}

// InventoryPartsHolding returns the hashes of the stored inventory parts that may hold any of
// keys: those whose keys hold one, and those stored before 0051, whose keys are unknown.
func (db *DB) InventoryPartsHolding(ctx context.Context, keys []store.PackageKey) ([][]byte, error) {
	scan := func(r rowScanner) ([]byte, error) {
		var h []byte
		return h, r.Scan(&h)
	}
	var out [][]byte
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		if out, err = queryAll(ctx, tx, scan, "SELECT hash FROM inventory_parts WHERE key_ids IS NULL"); err != nil {
			return err
		}
		keyIDs, err := packageKeyIDs(ctx, tx, keys)
		if err != nil || len(keyIDs) == 0 {
			return err
		}
		parts, err := partsWithKeys(ctx, tx, keyIDs)
		if err != nil || len(parts) == 0 {
			return err
		}
		got, err := queryAll(ctx, tx, scan, "SELECT hash FROM inventory_parts WHERE id IN (SELECT value FROM json_each(?))", jsonInts(parts))
		out = append(out, got...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("inventory parts holding packages: %w", err)
	}
	return out, nil
}

func inventoryRefs(ctx context.Context, q querier, where string, args ...any) ([]store.InventoryRef, error) {
	return queryAll(ctx, q, func(row rowScanner) (store.InventoryRef, error) {
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

// UsageSince returns the scans performed since t.
func (db *DB) UsageSince(ctx context.Context, t time.Time) ([]store.Usage, error) {
	return queryAll(ctx, db.read, func(r rowScanner) (store.Usage, error) {
		var u store.Usage
		var at int64
		err := r.Scan(&u.Repository, &u.Digest, &u.ScanType, &u.Kind, &at)
		u.At = fromMS(at)
		return u, err
	}, "SELECT repository, image_digest, scan_type, kind, at FROM scan_usage WHERE at >= ? ORDER BY at", t.UnixMilli())
}

// RecentImages lists the manifests of every repository pushed or pulled since t, for
// bringing existing images into continuous coverage.
func (db *DB) RecentImages(ctx context.Context, since time.Time) ([]store.Manifest, error) {
	return queryAll(ctx, db.read, func(r rowScanner) (store.Manifest, error) { return scanManifest(r) }, "SELECT "+manifestColumns+" FROM manifests WHERE pushed_at >= ? OR last_pulled_at >= ? ORDER BY repository, digest",
		since.UnixMilli(), since.UnixMilli())
}

func toAny[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// chunks yields xs in pieces of at most n, to keep SQL parameter lists bounded.
func chunks[T any](xs []T, n int) func(func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(xs) > 0 {
			k := min(n, len(xs))
			if !yield(xs[:k]) {
				return
			}
			xs = xs[k:]
		}
	}
}

// qualified prefixes each column of a comma-separated list with a table alias.
func qualified(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}
