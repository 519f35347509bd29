package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/lading-registry/lading/internal/store"
)

// targetFindingRows reads a target's findings from finding_rows itself, resolving the
// dictionary ids in Go through names: what queryFindingsObserved reads through the findings
// view, column for column (TestTargetFindingRowsMatchView), without the view's four joins per
// row. ApplyScans reads the findings of every target it applies (a re-evaluation: a thousand
// images of some seventy findings each), where those joins were most of the read.
const targetFindingRows = `SELECT ` + targetFindingColumns + ` FROM finding_rows WHERE target_id = ` + targetIDQuery

// noKeyFindingRows reads, as targetFindingRows does, a target's findings that name no package
// keys, through the index of those alone (0056) rather than reading every finding of the target.
const noKeyFindingRows = `SELECT ` + targetFindingColumns + ` FROM finding_rows INDEXED BY finding_rows_no_keys
	WHERE target_id = ` + targetIDQuery + ` AND package_keys IS NULL`

// anyNoKeyFinding tells whether any finding names no package keys, from the index of those.
const anyNoKeyFinding = `SELECT EXISTS (SELECT 1 FROM finding_rows INDEXED BY finding_rows_no_keys WHERE package_keys IS NULL)`

// selectsNothing is, in place of a JSON array of finding_key_sets ids, a selection no stored
// finding meets (none names a selected list, none names no keys): partial states are empty.
const selectsNothing = "nothing"

const targetFindingColumns = `vulnerability, arn_prefix, arn_key, status, severity, score, fingerprint, package_keys,
	first_observed_at, last_observed_after, updated_after`

// findingNames caches the strings of the dictionary ids finding rows name. An id's row is
// never rewritten, so a cached string stays right for as long as the id exists; it is safe
// for concurrent use (ApplyScans' prefetching readers share one).
type findingNames struct {
	mu       sync.Mutex
	vulns    map[int64]string
	vulnIDs  map[string]int64 // the other way, 0 for none (see more)
	prefixes map[int64]string
	keySets  map[string][]store.PackageKey // by the package_keys column's text; shared, never modified
	texts    map[string]int64              // finding_texts ids by text, 0 for none stored (see textIDs)
}

func newFindingNames() *findingNames {
	return &findingNames{vulns: map[int64]string{}, vulnIDs: map[string]int64{}, prefixes: map[int64]string{}, keySets: map[string][]store.PackageKey{},
		texts: map[string]int64{}}
}

// textIDs returns the finding_texts ids of texts, 0 for a text not stored, read through q
// (a read connection) and kept for the rest of the transaction. A text row is never deleted
// nor rewritten, and what this transaction adds it finds itself: an id read here stays right
// in it. Read ahead, this spares the single writer a lookup for each image's texts.
func (n *findingNames) textIDs(ctx context.Context, q stateReader, texts [3]string) ([3]int64, error) {
	var ids [3]int64
	for i, text := range texts {
		if text == "" {
			continue // no such part (a detail without a layer)
		}
		n.mu.Lock()
		id, ok := n.texts[text]
		n.mu.Unlock()
		if !ok {
			// Read without the lock held: it may wait for a connection (see queryTargetFindings).
			err := q.queryRow(ctx, selectFindingText, text).Scan(&id)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return ids, fmt.Errorf("finding text: %w", err)
			}
			n.mu.Lock()
			n.texts[text] = id
			n.mu.Unlock()
		}
		ids[i] = id
	}
	return ids, nil
}

// name returns the string of id in a dictionary, reading it with query on a miss.
func (n *findingNames) name(ctx context.Context, q stateReader, cache map[int64]string, query string, id int64) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s, ok := cache[id]; ok {
		return s, nil
	}
	var s string
	if err := q.queryRow(ctx, query, id).Scan(&s); err != nil {
		return "", fmt.Errorf("finding dictionary id %d: %w", id, err)
	}
	cache[id] = s
	return s, nil
}

// keys returns the package keys of a package_keys column (a finding_key_sets id as text), nil
// for NULL or an id naming no list, as the view's subquery gives NULL.
func (n *findingNames) keys(ctx context.Context, q stateReader, col sql.NullString) ([]store.PackageKey, error) {
	if !col.Valid {
		return nil, nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if ks, ok := n.keySets[col.String]; ok {
		return ks, nil
	}
	var keys sql.NullString
	err := q.queryRow(ctx, "SELECT keys FROM finding_key_sets WHERE id = ?", col.String).Scan(&keys)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("finding package keys %s: %w", col.String, err)
	}
	ks := decodePackageKeys(keys)
	n.keySets[col.String] = ks
	return ks, nil
}

// Conditions on targetFindingRows, each taking a JSON array: the rows naming one of these
// finding_key_sets ids or none (a partial state, selectedKeySets), the rows of these
// finding_vulnerabilities ids.
const (
	selectedFindingRows = ` AND (package_keys IS NULL OR package_keys IN (SELECT value FROM json_each(?)))`
	vulnerabilityRows   = ` AND vulnerability IN (SELECT value FROM json_each(?))`
)

// queryTargetFindings reads the findings of target t as queryFindingsObserved does without
// details (ordered by vulnerability id, an ACTIVE finding's lastObservedAt at least observed),
// those that query chooses: targetFindingRows, with a condition (selectedFindingRows or
// vulnerabilityRows) or without (all), or noKeyFindingRows.
func queryTargetFindings(ctx context.Context, q stateReader, names *findingNames, t store.ScanTarget, observed int64, query string, args ...any) ([]store.Finding, error) {
	rows, err := q.QueryContext(ctx, query, append([]any{t.Repository, t.Digest, t.ScanType}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type row struct {
		vuln, prefix              int64
		arnKey                    []byte
		status, severity, score   any
		fingerprint               any
		keys                      sql.NullString
		first, lastAfter, upAfter int64
	}
	// The rows are read whole before their names are looked up: a lookup may wait for the
	// names' lock, held by a reader that waits for a connection, and must hold none then.
	var raw []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.vuln, &r.prefix, &r.arnKey, &r.status, &r.severity, &r.score, &r.fingerprint, &r.keys,
			&r.first, &r.lastAfter, &r.upAfter); err != nil {
			return nil, err
		}
		raw = append(raw, r)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	out := make([]store.Finding, len(raw))
	for i, r := range raw {
		f := store.Finding{Repository: t.Repository, Digest: t.Digest, ScanType: t.ScanType}
		if f.VulnerabilityID, err = names.name(ctx, q, names.vulns, "SELECT vulnerability_id FROM finding_vulnerabilities WHERE id = ?", r.vuln); err != nil {
			return nil, err
		}
		prefix, err := names.name(ctx, q, names.prefixes, "SELECT prefix FROM finding_arn_prefixes WHERE id = ?", r.prefix)
		if err != nil {
			return nil, err
		}
		f.ARN = prefix + hex.EncodeToString(r.arnKey)
		if f.Status, err = codedText(r.status, statusOfCode); err != nil {
			return nil, fmt.Errorf("finding %s status: %w", f.VulnerabilityID, err)
		}
		if f.Severity, err = codedText(r.severity, severityOfCode); err != nil {
			return nil, fmt.Errorf("finding %s severity: %w", f.VulnerabilityID, err)
		}
		if f.Score, err = scoreOfColumn(r.score); err != nil {
			return nil, fmt.Errorf("finding %s score: %w", f.VulnerabilityID, err)
		}
		if f.Fingerprint, err = fingerprintOfColumn(r.fingerprint); err != nil {
			return nil, fmt.Errorf("finding %s fingerprint: %w", f.VulnerabilityID, err)
		}
		if f.PackageKeys, err = names.keys(ctx, q, r.keys); err != nil {
			return nil, err
		}
		f.FirstObservedAt, f.LastObservedAt, f.UpdatedAt = fromMS(r.first), fromMS(r.first+r.lastAfter), fromMS(r.first+r.upAfter)
		if f.Status == findingActive && observed > r.first+r.lastAfter {
			f.LastObservedAt = fromMS(observed)
		}
		out[i] = f
	}
	slices.SortFunc(out, func(a, b store.Finding) int { return strings.Compare(a.VulnerabilityID, b.VulnerabilityID) })
	return out, nil
}

// statusOfCode and severityOfCode name the one-byte codes of finding_rows' status and severity
// (0053) as the findings view does; "" for a byte that is no code.
func statusOfCode(b byte) string {
	switch b {
	case 1:
		return "ACTIVE"
	case 2:
		return "CLOSED"
	}
	return ""
}

func severityOfCode(b byte) string {
	switch b {
	case 1:
		return "CRITICAL"
	case 2:
		return "HIGH"
	case 3:
		return "MEDIUM"
	case 4:
		return "LOW"
	case 5:
		return "INFORMATIONAL"
	case 6:
		return "UNDEFINED"
	}
	return ""
}

// codedText decodes a status or severity column: a one-byte code is named by name, any other
// value is the text itself (the view's CASE ... ELSE).
func codedText(v any, name func(byte) string) (string, error) {
	switch v := v.(type) {
	case []byte:
		if len(v) == 1 && name(v[0]) != "" {
			return name(v[0]), nil
		}
		return string(v), nil
	case string:
		return v, nil
	}
	return "", fmt.Errorf("unexpected %T", v)
}

// scoreOfColumn decodes a score column: an integer is tenths (ScoreColumn), a real the score.
func scoreOfColumn(v any) (float64, error) {
	switch v := v.(type) {
	case int64:
		return float64(v) / 10.0, nil
	case float64:
		return v, nil
	case string:
		// Neither ScoreColumn's integer nor a real: read as database/sql reads text into a float64.
		return strconv.ParseFloat(v, 64)
	case []byte:
		return strconv.ParseFloat(string(v), 64)
	}
	return 0, fmt.Errorf("unexpected %T", v)
}

// fingerprintOfColumn decodes a fingerprint column: bytes are shown as lowercase hex, text as it is.
func fingerprintOfColumn(v any) (string, error) {
	switch v := v.(type) {
	case []byte:
		return hex.EncodeToString(v), nil
	case string:
		return v, nil
	}
	return "", fmt.Errorf("unexpected %T", v)
}

// selectedKeySets returns, as a JSON array of strings (package_keys holds the id as text), the
// ids of the finding_key_sets lists holding a key sel accepts, or a list that does not decode
// (its keys are not known: a partial state must hold its findings).
func selectedKeySets(ctx context.Context, q querier, sel store.FindingSelection) (string, error) {
	rows, err := q.QueryContext(ctx, "SELECT id, keys FROM finding_key_sets")
	if err != nil {
		return "", fmt.Errorf("finding key lists: %w", err)
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id int64
		var keys sql.NullString
		if err := rows.Scan(&id, &keys); err != nil {
			return "", fmt.Errorf("finding key lists: %w", err)
		}
		if sel.Holds(decodePackageKeys(keys)) {
			ids = append(ids, strconv.FormatInt(id, 10))
		}
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("finding key lists: %w", err)
	}
	raw, err := json.Marshal(ids)
	return string(raw), err
}

// vulnerabilityRow returns the finding_vulnerabilities id of a vulnerability id, 0 when there is
// none. An answer is kept for the rest of the transaction, none included: a partial state's
// targets are distinct, read before this transaction writes them, so a vulnerability the
// transaction adds later names findings of targets it already applied, never of those to come.
func (n *findingNames) vulnerabilityRow(ctx context.Context, q stateReader, vulnID string) (int64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if id, ok := n.vulnIDs[vulnID]; ok {
		return id, nil
	}
	var id int64
	err := q.queryRow(ctx, "SELECT id FROM finding_vulnerabilities WHERE vulnerability_id = ?", vulnID).Scan(&id)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("finding vulnerability %s: %w", vulnID, err)
	}
	n.vulnIDs[vulnID] = id
	return id, nil
}

// more reads the target's findings of vulnerability ids that the partial state does not hold,
// adds them to it (in vulnerability id order, as a whole state is) and returns them. A new
// advisory's vulnerability is in no finding yet: no query.
func (st *scanState) more(ctx context.Context, q stateReader, names *findingNames, vulnIDs []string) ([]store.Finding, error) {
	var want []int64
	for _, id := range vulnIDs {
		if slices.ContainsFunc(st.Findings, func(f store.Finding) bool { return f.VulnerabilityID == id }) {
			continue
		}
		row, err := names.vulnerabilityRow(ctx, q, id)
		if err != nil {
			return nil, err
		}
		if row != 0 && !slices.Contains(want, row) {
			want = append(want, row)
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	raw, err := json.Marshal(want)
	if err != nil {
		return nil, err
	}
	fs, err := queryTargetFindings(ctx, q, names, st.Target, st.observed, targetFindingRows+vulnerabilityRows, string(raw))
	if err != nil {
		return nil, fmt.Errorf("findings of %s@%s: %w", st.Target.Repository, st.Target.Digest, err)
	}
	st.Findings = store.WithFindings(st.Findings, fs)
	return fs, nil
}

// all reads every finding of the target into the state, which is then whole.
func (st *scanState) all(ctx context.Context, q stateReader, names *findingNames) ([]store.Finding, error) {
	fs, err := queryTargetFindings(ctx, q, names, st.Target, st.observed, targetFindingRows)
	if err != nil {
		return nil, fmt.Errorf("findings of %s@%s: %w", st.Target.Repository, st.Target.Digest, err)
	}
	st.Findings, st.Partial = fs, false
	return slices.Clone(fs), nil
}
