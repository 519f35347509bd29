package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/lading-registry/lading/internal/store"
)

// Findings are stored in finding_rows, naming their scan target, vulnerability id, ARN prefix
// and vulnerability facts by integer ids (0045_findings_compact.sql); `findings` is a view
// joining the strings back. Readers use the view; the scanner writes finding_rows directly.

// arnKeyHex is how many hex digits end an ARN scanning.FindingARN makes (16 bytes).
const arnKeyHex = 32

// arnIndexBytes is how many of an ARN key's first bytes finding_rows_arn indexes (0053; an
// empty key indexes as an empty blob); FindingsByARN compares the whole ARN after.
const arnIndexBytes = 4

// SplitFindingARN splits an ARN as finding_rows stores it: a prefix shared by many findings and
// the last 32 hex digits as 16 bytes; an ARN not ending in 32 lowercase hex digits is all
// prefix (key empty). The migration and the view's INSTEAD OF triggers split the same way.
// Exported for loaders that fill a store directly (benchmarks).
func SplitFindingARN(arn string) (prefix string, key []byte) {
	if len(arn) <= arnKeyHex {
		return arn, []byte{}
	}
	key, ok := lowerHexBytes(arn[len(arn)-arnKeyHex:])
	if !ok {
		return arn, []byte{}
	}
	return arn[:len(arn)-arnKeyHex], key
}

// lowerHexBytes decodes s when it is lowercase hex, the only form whose bytes give it back
// (the views write lower(hex(...))).
func lowerHexBytes(s string) ([]byte, bool) {
	if strings.ToLower(s) != s {
		return nil, false
	}
	b, err := hex.DecodeString(s)
	return b, err == nil
}

// FingerprintColumn is a finding's fingerprint as finding_rows keeps it (0048, 0052): as bytes
// when it is lowercase hex of 8 bytes (scanning's) or 32 (scanning's before 0052), else the
// string as it is. The findings view gives the hex back. Exported for loaders that fill a store
// directly.
func FingerprintColumn(fp string) any {
	if len(fp) != 16 && len(fp) != 64 {
		return fp
	}
	if b, ok := lowerHexBytes(fp); ok {
		return b
	}
	return fp
}

// StatusColumn is a finding's status as finding_rows keeps it (0053): a one-byte code
// (X'01' ACTIVE, X'02' CLOSED) where the findings view gives the string back, else the string.
// Exported for loaders that fill a store directly.
func StatusColumn(status string) any {
	switch status {
	case "ACTIVE":
		return []byte{1}
	case "CLOSED":
		return []byte{2}
	}
	return status
}

// SeverityColumn is a finding's severity as finding_rows keeps it (0053): a one-byte code
// (X'01' CRITICAL to X'05' INFORMATIONAL, X'06' UNDEFINED), else the string. Exported for
// loaders that fill a store directly.
func SeverityColumn(severity string) any {
	for i, s := range [...]string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"} {
		if severity == s {
			return []byte{byte(i + 1)}
		}
	}
	return severity
}

// ScoreColumn is a finding's score as finding_rows keeps it (0055): the integer number of
// tenths when that gives the score back exactly (the findings view divides it by 10.0), else
// the score as it is (a real, 8 bytes). Exported for loaders that fill a store directly.
func ScoreColumn(score float64) any {
	t := math.Round(score * 10)
	if math.Abs(t) < 1e15 && t/10 == score {
		return int64(t)
	}
	return score
}

// FixAvailableColumn is a finding's fix_available as finding_rows keeps it (0055): 0 NO, 1 YES,
// 2 PARTIAL, else the string. Exported for loaders that fill a store directly.
func FixAvailableColumn(fix string) any {
	switch fix {
	case "NO":
		return int64(0)
	case "YES":
		return int64(1)
	case "PARTIAL":
		return int64(2)
	}
	return fix
}

// Statements of the dictionaries: each looks an id up by its strings, or writes them.
const (
	selectScanTarget           = `SELECT id FROM scan_targets WHERE repository = ? AND image_digest = ? AND scan_type = ?`
	insertScanTarget           = `INSERT INTO scan_targets(repository, image_digest, scan_type) VALUES (?, ?, ?) RETURNING id`
	selectFindingVulnerability = `SELECT id FROM finding_vulnerabilities WHERE vulnerability_id = ?`
	insertFindingVulnerability = `INSERT INTO finding_vulnerabilities(vulnerability_id) VALUES (?) RETURNING id`
	selectARNPrefix            = `SELECT id FROM finding_arn_prefixes WHERE prefix = ?`
	insertARNPrefix            = `INSERT INTO finding_arn_prefixes(prefix) VALUES (?) RETURNING id`
	selectKeySet               = `SELECT id FROM finding_key_sets WHERE keys = ?`
	insertKeySet               = `INSERT INTO finding_key_sets(keys) VALUES (?) RETURNING id`
	selectFacts                = `SELECT id FROM finding_facts WHERE title = ? AND source = ? AND vendor_severity = ? AND aliases = ? AND related = ?`
	insertFacts                = `INSERT INTO finding_facts(title, source, vendor_severity, aliases, related) VALUES (?, ?, ?, ?, ?) RETURNING id`
	selectBlankFacts           = `SELECT id FROM finding_facts WHERE title = '' AND source = '' AND vendor_severity = '' AND aliases = '[]' AND related = '[]'`
	insertBlankFacts           = `INSERT INTO finding_facts(title, source, vendor_severity, aliases, related) VALUES ('', '', '', '[]', '[]') RETURNING id`
)

// dictionaryID returns the id the select statement finds for args, writing it with insert when
// there is none.
func dictionaryID(ctx context.Context, q rowQuerier, sel, insert string, args ...any) (int64, error) {
	var id int64
	err := q.queryRow(ctx, sel, args...).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = q.queryRow(ctx, insert, args...).Scan(&id)
	}
	return id, err
}

// findingIDs holds the dictionary ids one write of a target's findings uses, looked up once.
type findingIDs struct {
	*findingDicts
	target   store.ScanTarget
	targetID int64 // 0 until looked up
}

// findingDicts are the dictionary ids looked up in one transaction, shared by the targets it
// writes: a re-evaluation writes the same vulnerability, ARN prefix, key list and facts into
// a thousand images. The transaction holds the write lock and no dictionary row is deleted
// within it, so an id looked up stays right until it ends (a retried transaction starts with
// new ones).
type findingDicts struct {
	q        rowQuerier
	blank    int64
	vulns    map[string]int64
	prefixes map[string]int64
	keySets  map[string]int64 // finding_key_sets (0053) by keys
	facts    map[FindingFacts]int64
	details  *detailIDs
}

func newFindingDicts(q rowQuerier) *findingDicts {
	return &findingDicts{q: q, vulns: map[string]int64{}, prefixes: map[string]int64{}, keySets: map[string]int64{}, facts: map[FindingFacts]int64{},
		details: newDetailIDs()}
}

// forTarget returns the ids of a write of t's findings; id is t's scan_targets row when already
// read, 0 to look it up (and write it) with the first finding.
func (d *findingDicts) forTarget(t store.ScanTarget, id int64) *findingIDs {
	return &findingIDs{findingDicts: d, target: t, targetID: id}
}

// detailColumns are what a finding row takes from its detail (FindingColumnsOfDetail).
type detailColumns struct {
	facts FindingFacts
	fix   string
}

// targetRow returns the target's id, writing the target when new.
func (ids *findingIDs) targetRow(ctx context.Context) (int64, error) {
	if ids.targetID == 0 {
		id, err := dictionaryID(ctx, ids.q, selectScanTarget, insertScanTarget, ids.target.Repository, ids.target.Digest, ids.target.ScanType)
		if err != nil {
			return 0, fmt.Errorf("scan target: %w", err)
		}
		ids.targetID = id
	}
	return ids.targetID, nil
}

// upsert writes finding f of the target and returns its id. With cols (f's detail read in Go)
// the row takes the detail's facts and fix state in the same write; without, they stay as
// they were (a new row starts with blank facts, which indexFinding then sets from the stored
// detail).
func (ids *findingIDs) upsert(ctx context.Context, f store.Finding, cols *detailColumns) (int64, error) {
	target, err := ids.targetRow(ctx)
	if err != nil {
		return 0, err
	}
	vuln, ok := ids.vulns[f.VulnerabilityID]
	if !ok {
		if vuln, err = dictionaryID(ctx, ids.q, selectFindingVulnerability, insertFindingVulnerability, f.VulnerabilityID); err != nil {
			return 0, fmt.Errorf("vulnerability id: %w", err)
		}
		ids.vulns[f.VulnerabilityID] = vuln
	}
	prefix, key := SplitFindingARN(f.ARN)
	prefixID, ok := ids.prefixes[prefix]
	if !ok {
		if prefixID, err = dictionaryID(ctx, ids.q, selectARNPrefix, insertARNPrefix, prefix); err != nil {
			return 0, fmt.Errorf("ARN prefix: %w", err)
		}
		ids.prefixes[prefix] = prefixID
	}
	if ids.blank == 0 {
		if ids.blank, err = dictionaryID(ctx, ids.q, selectBlankFacts, insertBlankFacts); err != nil {
			return 0, fmt.Errorf("finding facts: %w", err)
		}
	}
	keys, err := ids.keySet(ctx, PackageKeysColumn(f.PackageKeys))
	if err != nil {
		return 0, fmt.Errorf("package keys: %w", err)
	}
	var factsID, fix any // NULL: as they were
	if cols != nil {
		id, ok := ids.facts[cols.facts]
		if !ok {
			x := cols.facts
			if id, err = dictionaryID(ctx, ids.q, selectFacts, insertFacts, x.Title, x.Source, x.VendorSeverity, x.Aliases, x.Related); err != nil {
				return 0, fmt.Errorf("finding facts: %w", err)
			}
			ids.facts[cols.facts] = id
		}
		factsID, fix = id, FixAvailableColumn(cols.fix)
	}
	var id int64
	first := ms(f.FirstObservedAt)
	err = ids.q.queryRow(ctx, upsertFindingRow, target, vuln, prefixID, key, StatusColumn(f.Status), SeverityColumn(f.Severity), ScoreColumn(f.Score),
		FingerprintColumn(f.Fingerprint), keys, first, ms(f.LastObservedAt)-first, ms(f.UpdatedAt)-first, ids.blank, factsID, fix).Scan(&id)
	return id, err
}

// keySet returns the id of the finding_key_sets row of keys (a PackageKeysColumn), writing it
// when new; NULL for NULL.
func (ids *findingIDs) keySet(ctx context.Context, keys sql.NullString) (sql.NullInt64, error) {
	if !keys.Valid {
		return sql.NullInt64{}, nil
	}
	id, ok := ids.keySets[keys.String]
	if !ok {
		var err error
		if id, err = dictionaryID(ctx, ids.q, selectKeySet, insertKeySet, keys.String); err != nil {
			return sql.NullInt64{}, err
		}
		ids.keySets[keys.String] = id
	}
	return sql.NullInt64{Int64: id, Valid: true}, nil
}

// upsertFindingRow writes a finding whole, with its facts and fix_available when given (?14,
// ?15; NULL: a new row's are blank facts ?13 and 0, NO, an existing row's stay). A new row's id
// is one past the largest (as the rowid table of findings before 0045 numbered them). The last
// observation and update are given as milliseconds after the first (0055).
const upsertFindingRow = `INSERT INTO finding_rows(target_id, vulnerability, id, arn_prefix, arn_key, status, severity, score,
		fingerprint, package_keys, first_observed_at, last_observed_after, updated_after, facts, fix_available, suppressed)
	VALUES (?1, ?2, coalesce((SELECT max(id) FROM finding_rows) + 1, 1), ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, coalesce(?14, ?13), coalesce(?15, 0), 0)
	ON CONFLICT(target_id, vulnerability) DO UPDATE SET arn_prefix = excluded.arn_prefix, arn_key = excluded.arn_key,
		status = excluded.status, severity = excluded.severity, score = excluded.score, fingerprint = excluded.fingerprint,
		package_keys = excluded.package_keys, first_observed_at = excluded.first_observed_at,
		last_observed_after = excluded.last_observed_after, updated_after = excluded.updated_after,
		facts = coalesce(?14, facts), fix_available = coalesce(?15, fix_available)
	RETURNING id`

// targetIDQuery is a subquery of the id of the scan target (repository, digest, scan type) given
// as three parameters; NULL (no row matches) when it has no findings.
const targetIDQuery = `(SELECT id FROM scan_targets WHERE repository = ? AND image_digest = ? AND scan_type = ?)`
