package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/lading-registry/lading/internal/store"
)

// This file writes and reads the findings of images (migration 0022_findings.sql), as
// store/sqlite's scanning.go does: the same rules for a finding's lastObservedAt (the image's
// findings_observed_at), details stored in parts, the query columns copied from the detail and
// the suppression rules applied to what is written.

// findingOwnColumns are the columns of a finding read for a known image.
const findingOwnColumns = `vulnerability_id, arn, status, severity, score, fingerprint, package_keys,
	first_observed_at, last_observed_at, updated_at`

// findingActive is the status of a finding that holds (Inspector's ACTIVE).
const findingActive = "ACTIVE"

// errNoDetail refuses a new finding written without its detail.
var errNoDetail = store.ErrNoDetail

// scanFinding reads a row of findingOwnColumns, followed by the detail and the suppression
// when withDetail, of a finding of the image repo@digest.
func scanFinding(row rowScanner, repo, digest, scanType string, withDetail bool) (store.Finding, error) {
	f := store.Finding{Repository: repo, Digest: digest, ScanType: scanType}
	var first, last, updated int64
	var keys *string
	var detail string
	dest := []any{&f.VulnerabilityID, &f.ARN, &f.Status, &f.Severity, &f.Score, &f.Fingerprint, &keys, &first, &last, &updated}
	if withDetail {
		dest = append(dest, &detail, &f.Suppressed)
	}
	if err := row.Scan(dest...); err != nil {
		return f, err
	}
	if withDetail {
		f.Detail = []byte(detail)
	}
	f.PackageKeys = decodePackageKeys(keys)
	f.FirstObservedAt, f.LastObservedAt, f.UpdatedAt = fromMS(first), fromMS(last), fromMS(updated)
	return f, nil
}

// packageKeysColumn is a finding's package keys as the findings table holds them (one
// "ecosystem<TAB>name" per line); NULL when there are none, or when a key holds a tab or a
// newline and could not be read back (the detail then decides).
func packageKeysColumn(keys []store.PackageKey) *string {
	if len(keys) == 0 {
		return nil
	}
	var b strings.Builder
	for i, k := range keys {
		if strings.ContainsAny(k.Ecosystem, "\t\n") || strings.ContainsAny(k.Name, "\t\n") {
			return nil
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k.Ecosystem)
		b.WriteByte('\t')
		b.WriteString(k.Name)
	}
	s := b.String()
	return &s
}

func decodePackageKeys(s *string) []store.PackageKey {
	if s == nil || *s == "" {
		return nil
	}
	out := make([]store.PackageKey, 0, strings.Count(*s, "\n")+1)
	for line := range strings.SplitSeq(*s, "\n") {
		eco, name, ok := strings.Cut(line, "\t")
		if !ok {
			return nil // not written by packageKeysColumn: unknown
		}
		out = append(out, store.PackageKey{Ecosystem: eco, Name: name})
	}
	return out
}

// queryFindings reads the findings of an image, with their details when withDetail. A
// finding's lastObservedAt is, while it is ACTIVE, the later of its own last_observed_at and
// observed, its image's findings_observed_at.
func queryFindings(ctx context.Context, q querier, repo, digest, scanType string, withDetail bool, observed int64) ([]store.Finding, error) {
	return readFindings(ctx, q, repo, digest, scanType, withDetail, observed, findingsQuery(withDetail), repo, digest, scanType)
}

// findingsQuery is the query of queryFindings; its arguments are repository, digest, scan type.
func findingsQuery(withDetail bool) string { return findingsQueryOf(withDetail, "") }

// findingsQueryOf is findingsQuery with cond added to its WHERE clause.
func findingsQueryOf(withDetail bool, cond string) string {
	if withDetail {
		// Readers of details show findings: they need suppression too.
		return "SELECT " + qualified("f.", findingOwnColumns) + `, d.detail, f.suppressed FROM findings f JOIN finding_detail_view d ON d.finding_id = f.id
			WHERE f.repository = $1 AND f.image_digest = $2 AND f.scan_type = $3` + cond + ` ORDER BY f.vulnerability_id`
	}
	return "SELECT " + findingOwnColumns + ` FROM findings WHERE repository = $1 AND image_digest = $2 AND scan_type = $3` + cond + ` ORDER BY vulnerability_id`
}

// queueFindings queues queryFindings' query (without detail) in b.
func queueFindings(b *pgx.Batch, repo, digest, scanType string) {
	b.Queue(findingsQuery(false), repo, digest, scanType)
}

// readFindings runs query (or takes q's next batch result) and reads the findings as
// queryFindings returns them.
func readFindings(ctx context.Context, q querier, repo, digest, scanType string, withDetail bool, observed int64, query string, args ...any) ([]store.Finding, error) {
	return queryAll(ctx, q, func(r rowScanner) (store.Finding, error) {
		f, err := scanFinding(r, repo, digest, scanType, withDetail)
		if err == nil && f.Status == findingActive && observed > ms(f.LastObservedAt) {
			f.LastObservedAt = fromMS(observed)
		}
		return f, err
	}, query, args...)
}

// findingsObserved reads an image's findings_observed_at (0 when it has no scan state).
func findingsObserved(ctx context.Context, q pgx.Tx, repo, digest, scanType string) (int64, error) {
	var observed int64
	err := q.QueryRow(ctx, "SELECT findings_observed_at FROM image_scans WHERE repository = $1 AND image_digest = $2 AND scan_type = $3",
		repo, digest, scanType).Scan(&observed)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return observed, err
}

// Findings returns every finding of a repository image for a scan type, ordered by
// vulnerability id.
func (db *DB) Findings(ctx context.Context, repo, digest, scanType string) ([]store.Finding, error) {
	var out []store.Finding
	// One read transaction: the image's observation time and its findings of one moment.
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		observed, err := findingsObserved(ctx, tx, repo, digest, scanType)
		if err != nil {
			return err
		}
		out, err = queryFindings(ctx, tx, repo, digest, scanType, true, observed)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("findings of %s@%s: %w", repo, digest, err)
	}
	return out, nil
}

// ApplyScans reads the state of each target and writes what update returns for it, all in one
// transaction with the events and usage records the update carries. A target whose image is
// gone, or whose job is gone, is skipped (update is not called). The transaction may run more
// than once (a serialization conflict): update is then called again with what is stored.
func (db *DB) ApplyScans(ctx context.Context, targets []store.ScanTarget, update func(store.ScanState) (store.ScanUpdate, error)) error {
	return db.applyScans(ctx, targets, nil, update)
}

// ApplyScansSelected is ApplyScans handing update partial states: each target's findings that
// sel chooses (store.ScanState.Partial), the others read only when the update asks. It does so
// when the targets are distinct and complete no job (store.DistinctTargets), so that no target is
// read after this transaction wrote its findings; otherwise the states are whole.
func (db *DB) ApplyScansSelected(ctx context.Context, targets []store.ScanTarget, sel store.FindingSelection,
	update func(store.ScanState) (store.ScanUpdate, error)) error {
	return db.applyScans(ctx, targets, &sel, update)
}

// stateReadAhead is how many targets' states applyScans reads in one round trip when the
// targets are distinct: a re-evaluation applies hundreds, each otherwise a round trip of its own.
const stateReadAhead = 64

func (db *DB) applyScans(ctx context.Context, targets []store.ScanTarget, sel *store.FindingSelection, update func(store.ScanState) (store.ScanUpdate, error)) error {
	var events int
	distinct := store.DistinctTargets(targets)
	err := db.tx(ctx, func(tx pgx.Tx) error {
		events = 0
		rules, err := suppressRules(ctx, tx, db.findingCtx)
		if err != nil {
			return err
		}
		var keySets []int32 // the ids of the selection's key lists, for partial states
		if sel != nil && distinct {
			if keySets, err = selectedKeySets(ctx, tx, *sel); err != nil {
				return err
			}
		}
		// Distinct targets are read ahead, several in one batch: no target's write changes what
		// another's read returns. Otherwise (a target twice, or jobs) each is read after the
		// writes before it.
		ahead := 1
		if distinct {
			ahead = stateReadAhead
		}
		absent := map[string]bool{} // vulnerability ids no finding names (see partialState.more)
		refs := newFindingRefs()
		// The events are written once, after every target: the outbox lock they take is then
		// held only for the inserts and the commit (appendOutboxTx), not across the targets.
		// The usage records too, many rows a statement.
		var evs []store.OutboxEvent
		var usage []store.Usage
		for start := 0; start < len(targets); start += ahead {
			chunk := targets[start:min(start+ahead, len(targets))]
			states, err := readScanStates(ctx, tx, chunk, keySets)
			if err != nil {
				return err
			}
			// The chunk's writes go as one batch too: a target's writes change nothing another
			// target's update reads (distinct targets; a chunk of one otherwise).
			w := &writeBatch{b: &pgx.Batch{}, refs: refs}
			// The chunk's updates first, then what their details store worked out side by side
			// (the server waits meanwhile), then their writes queued in order.
			ups := make([]*computedUpdate, len(chunk))
			// Distinct targets' updates run side by side (store.DistinctTargets); what they
			// read of the transaction (More, All, Details) takes its connection in turn.
			var conn sync.Mutex
			locked := func(f func() error) error {
				conn.Lock()
				defer conn.Unlock()
				return f()
			}
			g, gctx := errgroup.WithContext(ctx)
			g.SetLimit(runtime.GOMAXPROCS(0))
			for i, t := range chunk {
				rs := states[i]
				if rs.jobGone || !rs.found {
					continue
				}
				g.Go(func() error {
					if err := gctx.Err(); err != nil {
						return err
					}
					st := rs.state
					st.Details = func(ctx context.Context, ids []string) (out map[string][]byte, err error) {
						err = locked(func() error { out, err = findingDetails(ctx, tx, t, ids); return err })
						return out, err
					}
					ps := &partialState{tx: tx, target: t, observed: rs.observed, findings: st.Findings, partial: st.Partial, absent: absent}
					if st.Partial {
						st.More = func(ctx context.Context, ids []string) (out []store.Finding, err error) {
							err = locked(func() error { out, err = ps.more(ctx, ids); return err })
							return out, err
						}
						st.All = func(ctx context.Context) (out []store.Finding, err error) {
							err = locked(func() error { out, err = ps.all(ctx); return err })
							return out, err
						}
					}
					up, err := update(st)
					if err != nil {
						return err
					}
					ups[i] = &computedUpdate{ps: ps, up: up}
					return nil
				})
			}
			if err := g.Wait(); err != nil {
				return err
			}
			if err := prepareDetails(ctx, ups); err != nil {
				return err
			}
			for i, t := range chunk {
				rs := states[i]
				if rs.jobGone {
					continue
				}
				if c := ups[i]; c != nil {
					p, err := queueScanUpdate(ctx, tx, w.b, w.refs, t, c.ps.findings, c.ps.partial, rs.observed, c.up, c.details)
					if err != nil {
						return err
					}
					w.pending = append(w.pending, p)
					usage = append(usage, c.up.Usage...)
				}
				if t.JobID != 0 {
					w.b.Queue("DELETE FROM scan_jobs WHERE id = $1", t.JobID)
					w.pending = append(w.pending, nil)
				}
				if w.b.Len() >= maxWriteBatch {
					more, err := w.flush(ctx, tx, rules)
					if err != nil {
						return err
					}
					evs = append(evs, more...)
				}
			}
			more, err := w.flush(ctx, tx, rules)
			if err != nil {
				return err
			}
			evs = append(evs, more...)
		}
		events = len(evs)
		if err := insertUsage(ctx, tx, usage); err != nil {
			return err
		}
		return appendOutboxTx(ctx, tx, evs)
	})
	if err == nil && events > 0 {
		db.reportEffects(store.Effects{Events: make([]store.OutboxEvent, events)})
	}
	return err
}

// insertUsage writes usage records in the order given, in one statement.
func insertUsage(ctx context.Context, tx pgx.Tx, usage []store.Usage) error {
	if len(usage) == 0 {
		return nil
	}
	cols := make([][]string, 4)
	at := make([]int64, len(usage))
	for i, u := range usage {
		for c, v := range []string{u.Repository, u.Digest, u.ScanType, u.Kind} {
			cols[c] = append(cols[c], v)
		}
		at[i] = ms(u.At)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO scan_usage(repository, image_digest, scan_type, kind, at)
		SELECT u.r, u.d, u.s, u.k, u.at FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) WITH ORDINALITY AS u(r, d, s, k, at, n)
		ORDER BY u.n`, cols[0], cols[1], cols[2], cols[3], at); err != nil {
		return fmt.Errorf("write usage records: %w", err)
	}
	return nil
}

// maxWriteBatch bounds the statements applyScans queues before it sends them: a re-evaluation
// of a whole image may rewrite hundreds of findings, a statement each.
const maxWriteBatch = 2000

// writeBatch is the writes of targets queued in one batch: pending holds each target's update in
// the order queued (nil for a job's removal).
type writeBatch struct {
	b       *pgx.Batch
	refs    *findingRefs // the transaction's, which sets the batch's dictionary ids
	pending []*pendingUpdate
}

// flush sends the batch, reads its results and finishes each update, returning their events.
// An update that queued no statement is finished too: its events, its findings observed row by
// row.
func (w *writeBatch) flush(ctx context.Context, tx pgx.Tx, rules compiledRules) ([]store.OutboxEvent, error) {
	if len(w.pending) == 0 {
		return nil, nil
	}
	err := func() error {
		if w.b.Len() == 0 {
			return nil
		}
		if err := w.refs.resolve(ctx, tx); err != nil {
			return err
		}
		br := tx.SendBatch(ctx, w.b)
		defer br.Close()
		for _, p := range w.pending {
			if p == nil {
				if _, err := br.Exec(); err != nil {
					return err
				}
				continue
			}
			if err := p.read(br); err != nil {
				return err
			}
		}
		return br.Close()
	}()
	if err != nil {
		return nil, err
	}
	pending := w.pending
	w.b, w.pending = &pgx.Batch{}, nil
	var evs []store.OutboxEvent
	for _, p := range pending {
		if p == nil {
			continue
		}
		more, err := p.finish(ctx, tx, rules)
		if err != nil {
			return nil, err
		}
		evs = append(evs, more...)
	}
	return evs, nil
}

// scanStateRead is what readScanStates read of one target: found is false when the image is
// gone, jobGone true when the target has a job and it is gone.
type scanStateRead struct {
	state    store.ScanState
	observed int64 // the image's findings_observed_at
	found    bool
	jobGone  bool
}

// readScanStates reads what update is handed for each target, all in one batch (one round
// trip): the reads of a target whose image or job is gone are wasted, which is rare.
//
// With keySets (not nil) the states are partial: each holds the findings whose package keys are
// one of those lists, or none.
func readScanStates(ctx context.Context, tx pgx.Tx, targets []store.ScanTarget, keySets []int32) (out []scanStateRead, err error) {
	b := &pgx.Batch{}
	for _, t := range targets {
		if t.JobID != 0 {
			b.Queue("SELECT 1 FROM scan_jobs WHERE id = $1", t.JobID)
		}
		b.Queue(imageStateRead, t.Repository, t.Digest, t.ScanType)
		if keySets != nil {
			b.Queue(selectedFindings, t.Repository, t.Digest, t.ScanType, keySets)
		} else {
			queueFindings(b, t.Repository, t.Digest, t.ScanType)
		}
	}
	br := tx.SendBatch(ctx, b)
	defer func() {
		if cerr := br.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	out = make([]scanStateRead, len(targets))
	for i, t := range targets {
		// Every result queued for t is read, whatever the first ones say: the next target's
		// follow in the batch.
		if out[i], err = readScanState(ctx, br, t, keySets); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// imageStateRead reads in one statement what a target's state holds but its findings: the
// manifest (manifestColumns, of m), its tags (sorted; NULL for none), whether a scan of the type is stored, the image's
// findings_observed_at and the scan (imageScanColumns; zero values when none). A re-evaluation
// reads a state for each of hundreds of images; three statements each cost as much again.
const imageStateRead = `SELECT m.repository, m.digest, m.media_type, m.artifact_type, m.config_media_type, m.config_digest, m.subject,
		m.annotations, m.size, m.image_size, m.pushed_at, m.last_pulled_at,
		(SELECT array_agg(t.tag ORDER BY t.tag) FROM tags t WHERE t.repository = m.repository AND t.digest = m.digest),
		s.scan_type IS NOT NULL, coalesce(s.findings_observed_at, 0),
		coalesce(s.repository, ''), coalesce(s.image_digest, ''), coalesce(s.scan_type, ''), coalesce(s.status, ''),
		coalesce(s.description, ''), coalesce(s.frequency, ''), coalesce(s.inventory_id, 0), coalesce(s.last_scan_started_at, 0),
		coalesce(s.completed_at, 0), coalesce(s.source_updated_at, 0), coalesce(s.updated_at, 0), coalesce(s.image_facts, ''),
		coalesce(s.not_evaluated, ''), coalesce(s.not_evaluated_packages, 0)
	FROM manifests m LEFT JOIN image_scans s ON s.repository = m.repository AND s.image_digest = m.digest AND s.scan_type = $3
	WHERE m.repository = $1 AND m.digest = $2`

// rowFunc is a rowScanner made of a function.
type rowFunc func(dest ...any) error

func (f rowFunc) Scan(dest ...any) error { return f(dest...) }

// readScanState reads the results readScanStates queued for t.
func readScanState(ctx context.Context, br pgx.BatchResults, t store.ScanTarget, keySets []int32) (scanStateRead, error) {
	var r scanStateRead
	jobFound := true
	if t.JobID != 0 {
		var one int
		err := br.QueryRow().Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			jobFound = false
		} else if err != nil {
			return r, err
		}
	}
	var (
		m       store.Manifest
		tags    []string
		scanned bool
	)
	// One row: the manifest's columns, the tags, whether a scan is stored, the image's
	// findings_observed_at and the scan's columns (scanImageScan's, scanned after the others).
	row := br.QueryRow()
	s, err := scanImageScan(rowFunc(func(dest ...any) error {
		var err error
		m, err = scanManifest(row, append([]any{&tags, &scanned, &r.observed}, dest...)...)
		return err
	}))
	r.found = err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return r, err
	}
	if len(tags) > 0 {
		m.Tags = tags
	}
	r.state = store.ScanState{Target: t, Manifest: m}
	if scanned {
		r.state.Scan = &s
	}
	if r.state.Findings, err = readFindings(ctx, batchQuerier{br}, t.Repository, t.Digest, t.ScanType, false, r.observed, ""); err != nil {
		return r, err
	}
	r.state.Partial = keySets != nil
	if !jobFound {
		return scanStateRead{jobGone: true}, nil
	}
	if !r.found {
		return scanStateRead{}, nil
	}
	return r, nil
}

// selectedFindings is findingsQuery (without detail) of the findings whose package keys are one
// of the lists of ids $4, or none: a partial state's (selectedKeySets). It reads finding_rows,
// not the findings view, filtered by the lists' ids before any join: planned for every target
// of a re-evaluation, the view's six-table join cost more to plan than to run.
const selectedFindings = `SELECT v.vulnerability_id, p.prefix || encode(f.arn_key, 'hex'), f.status, f.severity, f.score, f.fingerprint, k.keys,
		f.first_observed_at, f.last_observed_at, f.updated_at
	FROM finding_rows f JOIN finding_vulnerabilities v ON v.id = f.vulnerability JOIN finding_arn_prefixes p ON p.id = f.arn_prefix
		LEFT JOIN finding_key_sets k ON k.id = f.package_keys
	WHERE f.target_id = (SELECT id FROM scan_targets WHERE repository = $1 AND image_digest = $2 AND scan_type = $3)
		AND (f.package_keys IS NULL OR f.package_keys = ANY($4::int4[]))
	ORDER BY v.vulnerability_id`

// selectedKeySets returns the ids of the finding_key_sets lists holding a key sel accepts, or
// that do not decode (their keys are not known: a partial state must hold their findings).
func selectedKeySets(ctx context.Context, tx pgx.Tx, sel store.FindingSelection) ([]int32, error) {
	type keySet struct {
		id   int32
		keys string
	}
	lists, err := queryAll(ctx, tx, func(r rowScanner) (keySet, error) {
		var ks keySet
		return ks, r.Scan(&ks.id, &ks.keys)
	}, "SELECT id, keys FROM finding_key_sets")
	if err != nil {
		return nil, fmt.Errorf("finding key lists: %w", err)
	}
	out := []int32{}
	for _, ks := range lists {
		if sel.Holds(decodePackageKeys(&ks.keys)) {
			out = append(out, ks.id)
		}
	}
	return out, nil
}

// partialState is what ApplyScans compares an update with: the findings of the state handed
// to it, with those More and All read since.
type partialState struct {
	tx       pgx.Tx
	target   store.ScanTarget
	observed int64
	findings []store.Finding
	partial  bool
	// absent are vulnerability ids no finding named when the transaction asked. An answer
	// holds for the rest of it: its targets are distinct, read before it writes them, so a
	// vulnerability it adds later names findings of targets already applied.
	absent map[string]bool
}

// more reads the target's findings of vulnerability ids that the state does not hold, adds
// them to it (in vulnerability id order, as a whole state is) and returns them.
func (ps *partialState) more(ctx context.Context, vulnIDs []string) ([]store.Finding, error) {
	var want []string
	for _, id := range vulnIDs {
		if !ps.absent[id] && !slices.Contains(want, id) && !slices.ContainsFunc(ps.findings, func(f store.Finding) bool { return f.VulnerabilityID == id }) {
			want = append(want, id)
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	t := ps.target
	fs, err := readFindings(ctx, ps.tx, t.Repository, t.Digest, t.ScanType, false, ps.observed,
		findingsQueryOf(false, " AND vulnerability_id = ANY($4)"), t.Repository, t.Digest, t.ScanType, want)
	if err != nil {
		return nil, fmt.Errorf("findings of %s@%s: %w", t.Repository, t.Digest, err)
	}
	for _, id := range want {
		if !slices.ContainsFunc(fs, func(f store.Finding) bool { return f.VulnerabilityID == id }) {
			var one int
			err := ps.tx.QueryRow(ctx, "SELECT 1 FROM finding_vulnerabilities WHERE vulnerability_id = $1", id).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				ps.absent[id] = true
			} else if err != nil {
				return nil, err
			}
		}
	}
	ps.findings = store.WithFindings(ps.findings, fs)
	return fs, nil
}

// all reads every finding of the target into the state, which is then whole.
func (ps *partialState) all(ctx context.Context) ([]store.Finding, error) {
	t := ps.target
	fs, err := queryFindings(ctx, ps.tx, t.Repository, t.Digest, t.ScanType, false, ps.observed)
	if err != nil {
		return nil, fmt.Errorf("findings of %s@%s: %w", t.Repository, t.Digest, err)
	}
	ps.findings, ps.partial = fs, false
	return slices.Clone(fs), nil
}

// batchQuerier reads a batch's next result as querier reads a query's: the query and
// arguments given are those queued.
type batchQuerier struct{ br pgx.BatchResults }

func (q batchQuerier) Query(context.Context, string, ...any) (pgx.Rows, error) { return q.br.Query() }

// findingDetails reads the details of a target's findings by vulnerability id.
func findingDetails(ctx context.Context, tx pgx.Tx, t store.ScanTarget, ids []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(ids))
	rows, err := tx.Query(ctx, `SELECT f.vulnerability_id, d.detail FROM findings f JOIN finding_detail_view d ON d.finding_id = f.id
		WHERE f.repository = $1 AND f.image_digest = $2 AND f.scan_type = $3 AND f.vulnerability_id = ANY($4)`,
		t.Repository, t.Digest, t.ScanType, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, detail string
		if err := rows.Scan(&id, &detail); err != nil {
			return nil, err
		}
		out[id] = []byte(detail)
	}
	return out, rows.Err()
}

// upsertFinding writes a finding whole into the rows of its image ($1, the scan_targets id of
// 0052): a finding is unique by its image and vulnerability ($2), its ARN is kept as a prefix
// ($3) and the key it ends with ($4, splitARN), its package keys ($9) by the id of the list.
// The ids are findingRefs'.
const upsertFinding = `INSERT INTO finding_rows(target_id, vulnerability, arn_prefix, arn_key, status, severity, score, fingerprint,
		package_keys, first_observed_at, last_observed_at, updated_at)
	VALUES ($1::int4, $2::int4, $3::int4, $4, $5, $6, $7, $8, $9::int4, $10, $11, $12)
	ON CONFLICT (target_id, vulnerability) DO UPDATE SET arn_prefix = excluded.arn_prefix, arn_key = excluded.arn_key,
		status = excluded.status, severity = excluded.severity, score = excluded.score, fingerprint = excluded.fingerprint,
		package_keys = excluded.package_keys, first_observed_at = excluded.first_observed_at,
		last_observed_at = excluded.last_observed_at, updated_at = excluded.updated_at
	RETURNING id`

// splitARN splits an ARN as 0052's finding_arn_prefix and finding_arn_key do: an ARN ending
// with a finding key (arnKey) into the rest and the key, another into itself and an empty key.
func splitARN(arn string) (prefix string, key []byte) {
	if k := arnKey(arn); k != nil {
		return arn[:len(arn)-32], k
	}
	return arn, []byte{}
}

// pendingUpdate is a target's update queued in a batch of writes (queueScanUpdate): read takes
// its results from the batch, in the order queued, and finish completes it once the batch is
// closed.
type pendingUpdate struct {
	t        store.ScanTarget
	up       store.ScanUpdate
	cur      []store.Finding
	writes   []findingWrite
	together bool               // the image's findings_observed_at write is queued
	observed map[int64][]string // lastObservedAt times to the vulnerability ids moved to it, row by row
	unseenAt int64              // when not 0, the time the findings a partial state did not hold are observed at
	detailed map[int64]string   // finding ids written with their detail -> vulnerability ids
}

// findingWrite is a finding row queued in a batch.
type findingWrite struct {
	vuln   string
	detail bool // written with its detail
}

// queueScanUpdate queues in b the writes of up for t; cur are the findings stored for t when up
// was computed and imageObserved the image's findings_observed_at then. What cannot wait for
// the batch (materializeObserved) runs at once, on tx. The suppression rules are applied to the
// findings written with their detail when the update finishes.
//
// When partial, cur are those of a partial state: up.Observed observes the others.
//
// details holds, where not nil, the detailRow of each of up.Findings' details (prepareDetails).
func queueScanUpdate(ctx context.Context, tx pgx.Tx, b *pgx.Batch, refs *findingRefs, t store.ScanTarget, cur []store.Finding, partial bool,
	imageObserved int64, up store.ScanUpdate, details []*detailRow) (*pendingUpdate, error) {
	stored := storedFindings(cur, up.Findings)
	hasDetail := make(map[string]bool, len(cur)) // rows whose detail is stored, or written here
	for i := range cur {
		hasDetail[cur[i].VulnerabilityID] = true
	}
	// A finding observed again, and otherwise as stored, only has its lastObservedAt moved:
	// when that is every ACTIVE finding the update does not rewrite, one write of the image's
	// findings_observed_at moves them all. (It leaves findings_observed_at as the image scan
	// below writes it: that write does not set it.)
	if err := materializeObserved(ctx, tx, t, imageObserved, up.Findings); err != nil {
		return nil, err
	}
	// The writes are queued in this order: each finding's row (with its detail, when the update
	// carries one), then the image's scan with the findings' observation time (no statement
	// reads one of these rows after another is written).
	p := &pendingUpdate{t: t, up: up, cur: cur, observed: map[int64][]string{}, detailed: map[int64]string{}}
	minWritten := int64(math.MaxInt64) // earliest lastObservedAt written to an ACTIVE row
	for i, f := range up.Findings {
		if prev := stored[f.VulnerabilityID]; prev != nil && onlyObserved(*prev, f) {
			if at := ms(f.LastObservedAt); at != ms(prev.LastObservedAt) {
				p.observed[at] = append(p.observed[at], f.VulnerabilityID)
			}
			continue
		}
		if f.Detail == nil && !hasDetail[f.VulnerabilityID] {
			return nil, fmt.Errorf("write finding %s of %s@%s: %w", f.VulnerabilityID, t.Repository, t.Digest, errNoDetail)
		}
		hasDetail[f.VulnerabilityID] = true
		prefix, key := splitARN(f.ARN)
		keys := packageKeysColumn(f.PackageKeys)
		// The dictionary ids (0, 1, 2, 8 and the facts) are set by refs before the batch goes.
		args := []any{nil, nil, nil, key, f.Status, f.Severity, f.Score, f.Fingerprint, nil,
			ms(f.FirstObservedAt), ms(f.LastObservedAt), ms(f.UpdatedAt)}
		use := refUse{target: targetKey{t.Repository, t.Digest, t.ScanType}, vuln: f.VulnerabilityID, prefix: prefix, keys: keys}
		if f.Detail == nil {
			use.q = b.Queue(upsertFinding, args...) // the detail stored stays
		} else {
			d := details[i]
			if d == nil {
				var err error
				if d, err = detailArgs(f.Detail); err != nil {
					return nil, err
				}
			}
			use.facts = &d.facts
			use.q = b.Queue(upsertFindingDetailed, append(append(args, d.parts...), nil, d.fixAvailable)...)
		}
		refs.use(use)
		p.writes = append(p.writes, findingWrite{vuln: f.VulnerabilityID, detail: f.Detail != nil})
		if f.Status == findingActive {
			minWritten = min(minWritten, ms(f.LastObservedAt))
		}
	}
	// The findings a partial state did not hold are observed at up.Observed: with the image's
	// time when that moves every other one too, else by an update of their rows.
	if partial && !up.Observed.IsZero() {
		p.unseenAt = ms(up.Observed)
		if _, ok := p.observed[p.unseenAt]; !ok {
			p.observed[p.unseenAt] = nil
		}
	}
	at, together := observedTogether(cur, up.Findings, p.observed)
	p.together = together && at <= minWritten
	switch {
	case up.Scan != nil:
		s := *up.Scan
		s.Repository, s.Digest, s.ScanType = t.Repository, t.Digest, t.ScanType
		if p.together {
			b.Queue(putImageScanObserved, append(imageScanArgs(s), at)...)
		} else {
			b.Queue(putImageScan, imageScanArgs(s)...)
		}
	case p.together:
		b.Queue(`UPDATE image_scans SET findings_observed_at = $1 WHERE repository = $2 AND image_digest = $3 AND scan_type = $4
			AND findings_observed_at <= $1`, at, t.Repository, t.Digest, t.ScanType)
	}
	return p, nil
}

// putImageScanObserved is putImageScan moving the image's findings_observed_at to $16 too, when
// not later already: it returns whether it is $16 now, as the UPDATE of queueScanUpdate says
// by the row it matched. One statement where a re-evaluation would send two an image.
const putImageScanObserved = `INSERT INTO image_scans(` + putImageScanColumns + `, findings_observed_at)
		VALUES (` + putImageScanValues + `, $16)
	ON CONFLICT(repository, image_digest, scan_type) DO UPDATE SET ` + putImageScanSet + `,
		findings_observed_at = CASE WHEN image_scans.findings_observed_at <= excluded.findings_observed_at
			THEN excluded.findings_observed_at ELSE image_scans.findings_observed_at END
	RETURNING findings_observed_at = $16`

// read takes the results of what queueScanUpdate queued, in order.
func (p *pendingUpdate) read(br pgx.BatchResults) error {
	for _, w := range p.writes {
		var id int64
		if err := br.QueryRow().Scan(&id); err != nil {
			return fmt.Errorf("write finding: %w", err)
		}
		if w.detail {
			p.detailed[id] = w.vuln
		}
	}
	moved := false // the image's findings_observed_at moved: every finding observed with it
	switch {
	case p.up.Scan != nil && p.together:
		if err := br.QueryRow().Scan(&moved); err != nil {
			return fmt.Errorf("write image scan: %w", err)
		}
	case p.up.Scan != nil:
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("write image scan: %w", err)
		}
	case p.together:
		tag, err := br.Exec()
		if err != nil {
			return fmt.Errorf("write finding: %w", err)
		}
		moved = tag.RowsAffected() == 1
	}
	if moved {
		p.observed, p.unseenAt = nil, 0
	}
	return nil
}

// finish completes the update once its batch is closed: the findings observed row by row, the
// suppression rules applied to what was written with its detail. It returns the events to
// write (applyScans writes them all once every target is written).
func (p *pendingUpdate) finish(ctx context.Context, tx pgx.Tx, rules compiledRules) ([]store.OutboxEvent, error) {
	t := p.t
	if p.unseenAt != 0 {
		held := store.VulnerabilityIDs(p.cur, p.up.Findings)
		if _, err := tx.Exec(ctx, `UPDATE finding_rows SET last_observed_at = $1
			WHERE target_id = (SELECT id FROM scan_targets WHERE repository = $2 AND image_digest = $3 AND scan_type = $4)
			AND status = 'ACTIVE' AND last_observed_at <> $1
			AND vulnerability NOT IN (SELECT id FROM finding_vulnerabilities WHERE vulnerability_id = ANY($5))`,
			p.unseenAt, t.Repository, t.Digest, t.ScanType, held); err != nil {
			return nil, fmt.Errorf("observe findings: %w", err)
		}
	}
	for at, ids := range p.observed {
		if len(ids) == 0 {
			continue
		}
		if _, err := tx.Exec(ctx, `UPDATE finding_rows SET last_observed_at = $1
			WHERE target_id = (SELECT id FROM scan_targets WHERE repository = $2 AND image_digest = $3 AND scan_type = $4)
			AND vulnerability IN (SELECT id FROM finding_vulnerabilities WHERE vulnerability_id = ANY($5))`,
			at, t.Repository, t.Digest, t.ScanType, ids); err != nil {
			return nil, fmt.Errorf("write finding: %w", err)
		}
	}
	ids := make([]int64, 0, len(p.detailed))
	for id := range p.detailed {
		ids = append(ids, id)
	}
	suppressed, err := applyRulesToWritten(ctx, tx, rules, ids)
	if err != nil {
		return nil, err
	}
	evs := p.up.Events
	if p.up.Announce != nil {
		byVuln := make(map[string]bool, len(suppressed))
		for id := range suppressed {
			byVuln[p.detailed[id]] = true
		}
		written := make([]store.Finding, len(p.up.Findings))
		for i, f := range p.up.Findings {
			f.Suppressed = byVuln[f.VulnerabilityID]
			written[i] = f
		}
		more, err := p.up.Announce(written)
		if err != nil {
			return nil, err
		}
		evs = append(slices.Clip(evs), more...)
	}
	return evs, nil
}

// materializeObserved copies the image's findings_observed_at into its ACTIVE finding rows, and
// clears it, before writes that give an ACTIVE finding an earlier lastObservedAt (a clock
// stepped back): the image's time must not hide theirs.
func materializeObserved(ctx context.Context, tx pgx.Tx, t store.ScanTarget, obs int64, writes []store.Finding) error {
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
	if _, err := tx.Exec(ctx, `UPDATE finding_rows SET last_observed_at = $1
		WHERE target_id = (SELECT id FROM scan_targets WHERE repository = $2 AND image_digest = $3 AND scan_type = $4)
		AND status = 'ACTIVE' AND last_observed_at < $1`, obs, t.Repository, t.Digest, t.ScanType); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, "UPDATE image_scans SET findings_observed_at = 0 WHERE repository = $1 AND image_digest = $2 AND scan_type = $3",
		t.Repository, t.Digest, t.ScanType)
	return err
}

// observedTogether reports whether observed (times to vulnerability ids) moves every stored
// ACTIVE finding, at one time, that writes does not otherwise rewrite, and that time.
func observedTogether(cur, writes []store.Finding, observed map[int64][]string) (int64, bool) {
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

// A finding's detail is stored in three parts: the vulnerability's text (head) and the image's
// facts (tail), each stored once in finding_texts, and its packages, stored once per distinct
// body in finding_package_sets (0043) with their rows. These are the bytes between the parts
// (as store/sqlite's finding_texts.go).
const (
	detailOpen     = `{"finding":{`
	detailPackages = `,"vulnerablePackages":`
	detailImage    = `},"image":`
	detailClose    = `}`
)

// splitDetail splits a finding's detail into the vulnerability's text, the finding's own
// packages and the image's facts, such that finding_detail_view joins them back byte for
// byte; ok is false for a detail of another shape (stored whole).
func splitDetail(detail []byte) (head, packages, tail string, ok bool) {
	if !bytes.HasPrefix(detail, []byte(detailOpen)) || !bytes.HasSuffix(detail, []byte(detailClose)) {
		return "", "", "", false
	}
	k := bytes.Index(detail, []byte(detailPackages))
	j := bytes.Index(detail, []byte(detailImage))
	if k < 0 || j < k+len(detailPackages) || j+len(detailImage) > len(detail)-len(detailClose) {
		return "", "", "", false
	}
	head = string(detail[len(detailOpen):k])
	packages = string(detail[k+len(detailPackages) : j])
	tail = string(detail[j+len(detailImage) : len(detail)-len(detailClose)])
	if detailOpen+head+detailPackages+packages+detailImage+tail+detailClose != string(detail) {
		return "", "", "", false
	}
	return head, packages, tail, true
}

// layerMark stands for a finding's layer text in a packages body: a raw control character,
// which JSON never holds unescaped (as store/sqlite's finding_texts.go).
const layerMark = "\x01"

// layerPattern is the layer a package came from as the scanner writes it (scanning.Detail):
// its digest, and the image history step that made it.
var layerPattern = regexp.MustCompile(`,"sourceLayerHash":"([^"\\]*)"(?:,"createdBy":"(?:[^"\\]|\\.)*")?`)

// layerText finds the first layer text of a packages part, and its digest, exactly as 0043's
// finding_layer does, so the migration, the copy from SQLite and this writer store the same
// bodies.
func layerText(packages string) (layer, digest string, ok bool) {
	m := layerPattern.FindStringSubmatchIndex(packages)
	if m == nil {
		return "", "", false
	}
	return packages[m[0]:m[1]], packages[m[2]:m[3]], true
}

// upsertFindingDetailed is upsertFinding ($1-$12) with the finding's detail ($13-$28,
// detailArgs), in one statement: the vulnerability's text and the image's facts, each stored
// once in finding_texts ($13, $14; NULL for a detail stored whole), the packages part stored once
// per distinct body in finding_package_sets ($15, whole: $16) with its package rows ($17-$24),
// the finding's layer text ($25, its digest $26) once in finding_layers, and what the queries
// read of the detail (the finding_facts id $27, findingRefs', and $28). Written with the row, the
// parts make no second version of it.
const upsertFindingDetailed = `WITH hf AS (SELECT id FROM finding_texts WHERE text = $13 LIMIT 1),
		hw AS (INSERT INTO finding_texts(text) SELECT $13 WHERE $13::text IS NOT NULL AND NOT EXISTS (SELECT 1 FROM hf) RETURNING id),
		tf AS (SELECT id FROM finding_texts WHERE text = $14 LIMIT 1),
		tw AS (INSERT INTO finding_texts(text) SELECT $14 WHERE $14::text IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tf) RETURNING id),
		lf AS (SELECT id FROM finding_layers WHERE text = $25 LIMIT 1),
		lw AS (INSERT INTO finding_layers(text, digest) SELECT $25, $26 WHERE $25::text IS NOT NULL AND NOT EXISTS (SELECT 1 FROM lf) RETURNING id),
		sf AS (SELECT id FROM finding_package_sets WHERE body = $15 AND whole = $16 LIMIT 1),
		sw AS (INSERT INTO finding_package_sets(whole, body) SELECT $16, $15 WHERE NOT EXISTS (SELECT 1 FROM sf) RETURNING id),
		pw AS (INSERT INTO finding_set_packages(set_id, seq, name, version, release, arch, file_path, source_layer_hash, reachability, epoch)
			SELECT sw.id, u.seq - 1, u.name, u.version, u.release, u.arch, u.file_path, u.source_layer_hash, u.reachability, u.epoch
			FROM sw, unnest($17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[], $23::text[], $24::bigint[])
				WITH ORDINALITY AS u(name, version, release, arch, file_path, source_layer_hash, reachability, epoch, seq))
	INSERT INTO finding_rows(target_id, vulnerability, arn_prefix, arn_key, status, severity, score, fingerprint,
		package_keys, first_observed_at, last_observed_at, updated_at, head_id, tail_id, set_id, layer_id, facts, fix_available)
	VALUES ($1::int4, $2::int4, $3::int4, $4, $5, $6, $7, $8, $9::int4, $10, $11, $12, (SELECT id FROM hf UNION ALL SELECT id FROM hw),
		(SELECT id FROM tf UNION ALL SELECT id FROM tw), (SELECT id FROM sf UNION ALL SELECT id FROM sw), (SELECT id FROM lf UNION ALL SELECT id FROM lw),
		$27::int4, $28)
	ON CONFLICT (target_id, vulnerability) DO UPDATE SET arn_prefix = excluded.arn_prefix, arn_key = excluded.arn_key,
		status = excluded.status, severity = excluded.severity, score = excluded.score, fingerprint = excluded.fingerprint,
		package_keys = excluded.package_keys, first_observed_at = excluded.first_observed_at,
		last_observed_at = excluded.last_observed_at, updated_at = excluded.updated_at, head_id = excluded.head_id,
		tail_id = excluded.tail_id, set_id = excluded.set_id, layer_id = excluded.layer_id, facts = excluded.facts,
		fix_available = excluded.fix_available
	RETURNING id`

// detailRow is what upsertFindingDetailed stores of a finding's detail: its shared parts and
// its packages' rows ($13-$26), the facts the queries read of it (by the id of their
// finding_facts row, $27) and whether a fix is available ($28).
type detailRow struct {
	parts        []any
	facts        factsKey
	fixAvailable string
}

// storedFindings maps the vulnerability ids of cur to their findings, which a write only
// observes when onlyObserved says so; nil when writes name a vulnerability twice (every write
// is then made, in order).
func storedFindings(cur, writes []store.Finding) map[string]*store.Finding {
	seen := make(map[string]bool, len(writes))
	for _, f := range writes {
		if seen[f.VulnerabilityID] {
			return nil
		}
		seen[f.VulnerabilityID] = true
	}
	stored := make(map[string]*store.Finding, len(cur))
	for i := range cur {
		stored[cur[i].VulnerabilityID] = &cur[i]
	}
	return stored
}

// computedUpdate is a target's update in applyScans, with the partial state it was computed on
// and its details' rows.
type computedUpdate struct {
	ps      *partialState
	up      store.ScanUpdate
	details []*detailRow // per finding of up; nil where it carries no detail
}

// prepareDetails works out the detailRow of every detail the updates write, on as many
// goroutines as there are processors: parsing the details is most of the Go work of a
// re-evaluation's writes. An update left nil is skipped; a detail that does not parse is left
// to queueScanUpdate, which says so for the finding.
func prepareDetails(ctx context.Context, ups []*computedUpdate) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, c := range ups {
		if c == nil {
			continue
		}
		c.details = make([]*detailRow, len(c.up.Findings))
		g.Go(func() error {
			stored := storedFindings(c.ps.findings, c.up.Findings)
			for i, f := range c.up.Findings {
				if err := ctx.Err(); err != nil {
					return err
				}
				if prev := stored[f.VulnerabilityID]; f.Detail == nil || prev != nil && onlyObserved(*prev, f) {
					continue
				}
				if d, err := detailArgs(f.Detail); err == nil {
					c.details[i] = d
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// detailArgs works out the detailRow of a finding's detail.
func detailArgs(detail []byte) (*detailRow, error) {
	ix, err := indexDetail(detail)
	if err != nil {
		return nil, fmt.Errorf("index finding detail: %w", err)
	}
	aliases, err := json.Marshal(ix.aliases)
	if err != nil {
		return nil, fmt.Errorf("index finding detail: %w", err)
	}
	related, err := json.Marshal(ix.related)
	if err != nil {
		return nil, fmt.Errorf("index finding detail: %w", err)
	}
	// A set's package rows are read from its body alone, so findings with one body can share
	// them: a split detail's packages part must be the vulnerablePackages value the rows were
	// read from (it is, but for a detail of an odd shape, which is stored whole).
	head, packages, tail, ok := splitDetail(detail)
	var headArg, tailArg, layerArg, digestArg *string
	body, whole := string(detail), true
	if ok && packages == string(ix.rawPackages) {
		headArg, tailArg, body, whole = &head, &tail, packages, false
		if layer, digest, ok := layerText(packages); ok {
			layerArg, digestArg, body = &layer, &digest, strings.ReplaceAll(packages, layer, layerMark)
		}
	}
	cols := make([][]string, 6)
	layers := make([]*string, len(ix.packages))
	epochs := make([]int64, len(ix.packages))
	for i, p := range ix.packages {
		for c, v := range []string{p.name, p.version, p.release, p.arch, p.filePath, p.reachability} {
			cols[c] = append(cols[c], v)
		}
		// The finding's layer (NULL) where the package's element held the layer text,
		// as 0043's finding_layer_marked decides.
		if layerArg == nil || p.sourceLayerHash != *digestArg || !bytes.Contains(p.raw, []byte(*layerArg)) {
			layers[i] = &p.sourceLayerHash
		}
		epochs[i] = p.epoch
	}
	return &detailRow{
		parts:        []any{headArg, tailArg, body, whole, cols[0], cols[1], cols[2], cols[3], cols[4], layers, cols[5], epochs, layerArg, digestArg},
		facts:        factsKey{ix.title, ix.source, ix.vendorSeverity, string(aliases), string(related)},
		fixAvailable: ix.fixAvailable,
	}, nil
}

// What the finding queries read of a finding's detail is copied into its row and its set's
// package rows when the detail is written (as store/sqlite's indexFindingColumns and
// indexFindingPackages do in SQL). The JSON paths are those of scanning.Detail. The detail is
// read here, in Go, not with PostgreSQL's JSON functions: those refuse a whole document holding
// an escaped NUL (\u0000) anywhere, and advisory text is not ours to vouch for. A text column
// cannot hold a NUL either: copied values lose theirs.

// findingIndex is what the queries read of a detail.
type findingIndex struct {
	title, source, vendorSeverity, fixAvailable string
	aliases, related                            []string
	packages                                    []packageIndex
	rawPackages                                 json.RawMessage // finding.vulnerablePackages as written
}

type packageIndex struct {
	name, version, release, arch, filePath, sourceLayerHash, reachability string
	epoch                                                                 int64
	raw                                                                   json.RawMessage // the package's element as written
}

// jsonText is a JSON value as SQLite's json_extract gives it to a text column: a string's
// value, "" for null or nothing, the JSON text of anything else.
func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return strings.ReplaceAll(string(raw), "\x00", "")
	}
	return strings.ReplaceAll(s, "\x00", "")
}

// jsonObject is a JSON object's members; none when raw is not an object.
func jsonObject(raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if len(raw) > 0 && raw[0] == '{' {
		_ = json.Unmarshal(raw, &m) // not an object: no members, as json_extract finds none
	}
	return m
}

// jsonArray is a JSON array's elements; none when raw is not an array.
func jsonArray(raw json.RawMessage) []json.RawMessage {
	var a []json.RawMessage
	if len(raw) > 0 && raw[0] == '[' {
		_ = json.Unmarshal(raw, &a) // not an array: no elements
	}
	return a
}

// indexDetail reads what the queries need of a detail; a detail that is not JSON is refused,
// as SQLite's json_extract refuses it.
func indexDetail(detail []byte) (findingIndex, error) {
	var top json.RawMessage
	if err := json.Unmarshal(detail, &top); err != nil {
		return findingIndex{}, fmt.Errorf("finding detail: %w", err)
	}
	f := jsonObject(jsonObject(top)["finding"])
	ix := findingIndex{title: jsonText(f["title"]), source: jsonText(f["source"]), vendorSeverity: jsonText(f["vendorSeverity"]),
		aliases: []string{}, related: []string{}}
	for _, a := range jsonArray(f["aliases"]) {
		ix.aliases = append(ix.aliases, jsonText(a))
	}
	for _, r := range jsonArray(f["related"]) {
		ix.related = append(ix.related, jsonText(r))
	}
	fixed := 0
	ix.rawPackages = f["vulnerablePackages"]
	for _, raw := range jsonArray(ix.rawPackages) {
		p := jsonObject(raw)
		var epoch float64
		_ = json.Unmarshal(p["epoch"], &epoch) // absent or not a number: 0
		ix.packages = append(ix.packages, packageIndex{name: jsonText(p["name"]), version: jsonText(p["version"]), release: jsonText(p["release"]),
			arch: jsonText(p["arch"]), filePath: jsonText(p["filePath"]), sourceLayerHash: jsonText(p["sourceLayerHash"]),
			reachability: jsonText(p["reachability"]), epoch: int64(epoch), raw: raw})
		if jsonText(p["fixedInVersion"]) != "" {
			fixed++
		}
	}
	switch {
	case fixed == 0:
		ix.fixAvailable = "NO"
	case fixed == len(ix.packages):
		ix.fixAvailable = "YES"
	default:
		ix.fixAvailable = "PARTIAL"
	}
	return ix, nil
}

// UsageSince returns the scans performed since t.
func (db *DB) UsageSince(ctx context.Context, t time.Time) ([]store.Usage, error) {
	return queryAll(ctx, db.pool, func(r rowScanner) (store.Usage, error) {
		var u store.Usage
		var at int64
		err := r.Scan(&u.Repository, &u.Digest, &u.ScanType, &u.Kind, &at)
		u.At = fromMS(at)
		return u, err
	}, "SELECT repository, image_digest, scan_type, kind, at FROM scan_usage WHERE at >= $1 ORDER BY at, id", t.UnixMilli())
}

// BlockingFindings returns what blocks a pull of the image (pullgate.Store): its ACTIVE,
// unsuppressed findings of at least minRank observed by observedBy, most severe first.
func (db *DB) BlockingFindings(ctx context.Context, repo, digest, scanType string, minRank int, observedBy time.Time) ([]string, error) {
	ids, err := queryStrings(ctx, db.pool, `SELECT vulnerability_id FROM findings
		WHERE repository = $1 AND image_digest = $2 AND scan_type = $3 AND status = 'ACTIVE' AND NOT suppressed
			AND `+severityRank("severity")+` >= $4 AND first_observed_at <= $5
		ORDER BY `+severityRank("severity")+` DESC, vulnerability_id`, repo, digest, scanType, minRank, ms(observedBy))
	if err != nil {
		return nil, fmt.Errorf("blocking findings: %w", err)
	}
	return ids, nil
}

// severityRank orders severities in SQL, most severe highest (pullgate.Rank).
func severityRank(col string) string {
	return `(CASE ` + col + ` WHEN 'CRITICAL' THEN 5 WHEN 'HIGH' THEN 4 WHEN 'MEDIUM' THEN 3 WHEN 'LOW' THEN 2
	WHEN 'INFORMATIONAL' THEN 1 ELSE 0 END)`
}

// qualified prefixes each of a list of columns with a table alias.
func qualified(alias, columns string) string {
	parts := strings.Split(columns, ",")
	for i, p := range parts {
		parts[i] = alias + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}
