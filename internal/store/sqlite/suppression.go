package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/suppression"
)

// This file keeps the suppression rules (0029_suppression.sql) and applies them: the rules'
// criteria are compiled by the finding queries' compiler (findings_query.go), so a rule matches
// exactly the findings ListFindings would list for the same criteria.

// FindingContext is what criteria compare with beyond a finding's own columns (the engines
// share it).
type FindingContext = store.FindingContext

// SetFindingContext sets what suppression rules are evaluated with when findings are written
// and rules change. Call it before use (rules on the account, the resource id or
// exploitAvailable match nothing without it).
func (db *DB) SetFindingContext(fc FindingContext) { db.findingCtx = fc }

const ruleColumns = "arn, name, action, description, reason, criteria, tags, owner, created_at, updated_at"

func scanRule(r rowScanner) (suppression.Rule, error) {
	var rule suppression.Rule
	var action, criteria, tags string
	var created, updated int64
	if err := r.Scan(&rule.ARN, &rule.Name, &action, &rule.Description, &rule.Reason, &criteria, &tags, &rule.Owner, &created, &updated); err != nil {
		return rule, err
	}
	rule.Action = suppression.Action(action)
	if err := json.Unmarshal([]byte(criteria), &rule.Criteria); err != nil {
		return rule, fmt.Errorf("suppression rule %s: criteria do not decode: %w", rule.ARN, err)
	}
	if err := json.Unmarshal([]byte(tags), &rule.Tags); err != nil {
		return rule, fmt.Errorf("suppression rule %s: tags do not decode: %w", rule.ARN, err)
	}
	rule.CreatedAt, rule.UpdatedAt = fromMS(created), fromMS(updated)
	return rule, nil
}

func ruleArgs(r suppression.Rule) ([]any, error) {
	criteria, err := json.Marshal(r.Criteria)
	if err != nil {
		return nil, err
	}
	tags := r.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	tagJSON, err := json.Marshal(tags)
	if err != nil {
		return nil, err
	}
	return []any{r.ARN, r.Name, string(r.Action), r.Description, r.Reason, string(criteria), string(tagJSON), r.Owner, ms(r.CreatedAt), ms(r.UpdatedAt)}, nil
}

// nameTaken reports whether another rule than arn has this name.
func nameTaken(ctx context.Context, tx *sql.Tx, name, arn string) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, "SELECT 1 FROM suppression_rules WHERE name = ? AND arn != ?", name, arn).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// CreateFilter stores a rule and applies the rules again.
func (db *DB) CreateFilter(ctx context.Context, r suppression.Rule, announce suppression.Announce) error {
	args, err := ruleArgs(r)
	if err != nil {
		return err
	}
	return db.ruleTx(ctx, announce, func(tx *sql.Tx) error {
		if taken, err := nameTaken(ctx, tx, r.Name, r.ARN); err != nil {
			return err
		} else if taken {
			return suppression.ErrNameTaken
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO suppression_rules("+ruleColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", args...)
		return err
	})
}

func getRule(ctx context.Context, tx *sql.Tx, arn string) (suppression.Rule, error) {
	r, err := scanRule(tx.QueryRowContext(ctx, "SELECT "+ruleColumns+" FROM suppression_rules WHERE arn = ?", arn))
	if errors.Is(err, sql.ErrNoRows) {
		return r, suppression.ErrNotFound
	}
	return r, err
}

// UpdateFilter changes a rule and applies the rules again.
func (db *DB) UpdateFilter(ctx context.Context, arn string, change func(*suppression.Rule) error, announce suppression.Announce) (suppression.Rule, error) {
	var out suppression.Rule
	err := db.ruleTx(ctx, announce, func(tx *sql.Tx) error {
		r, err := getRule(ctx, tx, arn)
		if err != nil {
			return err
		}
		if err := change(&r); err != nil {
			return err
		}
		if taken, err := nameTaken(ctx, tx, r.Name, r.ARN); err != nil {
			return err
		} else if taken {
			return suppression.ErrNameTaken
		}
		args, err := ruleArgs(r)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE suppression_rules SET arn = ?, name = ?, action = ?, description = ?, reason = ?, criteria = ?,
			tags = ?, owner = ?, created_at = ?, updated_at = ? WHERE arn = ?`, append(args, arn)...); err != nil {
			return err
		}
		out = r
		return nil
	})
	return out, err
}

// DeleteFilter removes a rule and applies the rules left.
func (db *DB) DeleteFilter(ctx context.Context, arn string, announce suppression.Announce) (suppression.Rule, error) {
	var out suppression.Rule
	err := db.ruleTx(ctx, announce, func(tx *sql.Tx) error {
		r, err := getRule(ctx, tx, arn)
		if err != nil {
			return err
		}
		out = r
		_, err = tx.ExecContext(ctx, "DELETE FROM suppression_rules WHERE arn = ?", arn)
		return err
	})
	return out, err
}

// ListFilters returns rules in the order they were made.
func (db *DB) ListFilters(ctx context.Context, q suppression.ListQuery) ([]suppression.Rule, error) {
	where := []string{"1"}
	var args []any
	if q.ARNs != nil {
		where = append(where, "arn IN (SELECT value FROM json_each(?))")
		b, err := json.Marshal(q.ARNs)
		if err != nil {
			return nil, err
		}
		args = append(args, string(b))
	}
	if q.Action != "" {
		where = append(where, "action = ?")
		args = append(args, string(q.Action))
	}
	if q.After != nil {
		where = append(where, "(created_at, arn) > (?, ?)")
		args = append(args, ms(q.After.CreatedAt), q.After.ARN)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = -1
	}
	rules, err := queryAll(ctx, db.read, scanRule, "SELECT "+ruleColumns+" FROM suppression_rules WHERE "+strings.Join(where, " AND ")+
		" ORDER BY created_at, arn LIMIT ?", append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list suppression rules: %w", err)
	}
	return rules, nil
}

// ruleTx runs a change of the rules and, in its transaction, applies the rules to every
// finding: findings whose suppression changes are updated (updatedAt moves) and announced.
func (db *DB) ruleTx(ctx context.Context, announce suppression.Announce, change func(tx *sql.Tx) error) error {
	var events []store.OutboxEvent
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		events = nil
		if err := change(tx); err != nil {
			return err
		}
		rules, err := suppressRules(ctx, tx, db.findingCtx)
		if err != nil {
			return err
		}
		want := map[int64]bool{}
		if rules.cond != "" {
			ids, err := queryAll(ctx, tx, scanID, `SELECT f.id FROM findings f JOIN manifests m ON m.repository = f.repository AND m.digest = f.image_digest
				LEFT JOIN image_scans s ON s.repository = f.repository AND s.image_digest = f.image_digest AND s.scan_type = f.scan_type
				WHERE f.scan_type = ? AND `+rules.cond, append([]any{policy.ScanTypeEnhanced}, rules.args...)...)
			if err != nil {
				return fmt.Errorf("apply suppression rules: %w", err)
			}
			for _, id := range ids {
				want[id] = true
			}
		}
		have, err := queryAll(ctx, tx, scanID, "SELECT id FROM findings WHERE suppressed = 1")
		if err != nil {
			return err
		}
		var set, clear []int64
		for _, id := range have {
			if !want[id] {
				clear = append(clear, id)
			}
			delete(want, id)
		}
		for id := range want {
			set = append(set, id)
		}
		now := ms(db.now())
		var changed []int64
		for _, u := range []struct {
			ids []int64
			to  int
		}{{set, 1}, {clear, 0}} {
			for chunk := range chunks(u.ids, 500) {
				// X'01': ACTIVE as finding_rows codes it (0053); updated_after is the update's
				// milliseconds after first_observed_at (0055).
				ids, err := queryAll(ctx, tx, scanID, `UPDATE finding_rows SET suppressed = ?,
					updated_after = CASE WHEN status = X'01' THEN max(updated_after, ? - first_observed_at) ELSE updated_after END
					WHERE id IN (`+placeholders(len(chunk))+`) RETURNING CASE WHEN status = X'01' THEN id ELSE 0 END`,
					append([]any{u.to, now}, toAny(chunk)...)...)
				if err != nil {
					return fmt.Errorf("apply suppression rules: %w", err)
				}
				for _, id := range ids {
					if id != 0 {
						changed = append(changed, id)
					}
				}
			}
		}
		if len(changed) == 0 || announce == nil {
			return nil
		}
		listed, err := loadListed(ctx, tx, changed)
		if err != nil {
			return err
		}
		ls := make([]findings.Listed, 0, len(changed))
		for _, id := range changed {
			if l, ok := listed[id]; ok {
				ls = append(ls, l)
			}
		}
		if events, err = announce(ls); err != nil {
			return err
		}
		return appendOutboxTx(ctx, tx, events)
	})
	if err == nil && len(events) > 0 {
		db.reportEffects(store.Effects{Events: events})
	}
	return err
}

func scanID(r rowScanner) (int64, error) {
	var id int64
	return id, r.Scan(&id)
}

// compiledRules is the condition (over findings f, manifests m and image_scans s) a finding
// meets when a SUPPRESS rule matches it; "" when there is no SUPPRESS rule.
type compiledRules struct {
	cond string
	args []any
}

// suppressRules compiles the SUPPRESS rules.
func suppressRules(ctx context.Context, q querier, fc FindingContext) (compiledRules, error) {
	rules, err := queryAll(ctx, q, scanRule, "SELECT "+ruleColumns+" FROM suppression_rules WHERE action = ? ORDER BY id", string(suppression.Suppress))
	if err != nil {
		return compiledRules{}, fmt.Errorf("read suppression rules: %w", err)
	}
	if len(rules) == 0 {
		return compiledRules{}, nil
	}
	exploited, err := json.Marshal(fc.Exploited)
	if err != nil {
		return compiledRules{}, err
	}
	if fc.Exploited == nil {
		exploited = []byte("[]")
	}
	var alts []string
	var args []any
	for _, r := range rules {
		b := &queryBuilder{q: findings.Query{Criteria: r.Criteria, Account: fc.Account, Region: fc.Region}, exploited: string(exploited), rule: true}
		b.compile()
		if len(b.where) == 0 {
			alts = append(alts, "1")
			continue
		}
		alts = append(alts, "("+strings.Join(b.where, " AND ")+")")
		args = append(args, b.args...)
	}
	return compiledRules{cond: "(" + strings.Join(alts, " OR ") + ")", args: args}, nil
}

// applyRulesToWritten sets the suppression of findings just written with their detail (ids),
// and returns those now suppressed.
func applyRulesToWritten(ctx context.Context, q *txStatements, rules compiledRules, ids []int64) (map[int64]bool, error) {
	out := map[int64]bool{}
	if rules.cond == "" || len(ids) == 0 {
		return out, nil // no SUPPRESS rule: every finding's flag is already clear
	}
	for chunk := range chunks(ids, 200) {
		matched, err := queryAll(ctx, q, scanID, `SELECT f.id FROM findings f JOIN manifests m ON m.repository = f.repository AND m.digest = f.image_digest
			LEFT JOIN image_scans s ON s.repository = f.repository AND s.image_digest = f.image_digest AND s.scan_type = f.scan_type
			WHERE f.scan_type = ? AND f.id IN (`+placeholders(len(chunk))+`) AND `+rules.cond,
			append(append([]any{policy.ScanTypeEnhanced}, toAny(chunk)...), rules.args...)...)
		if err != nil {
			return nil, fmt.Errorf("apply suppression rules: %w", err)
		}
		for _, id := range matched {
			out[id] = true
		}
		if err := q.exec(ctx, `UPDATE finding_rows SET suppressed = (id IN (SELECT value FROM json_each(?))) WHERE id IN (`+placeholders(len(chunk))+`)`,
			append([]any{jsonInts(matched)}, toAny(chunk)...)...); err != nil {
			return nil, fmt.Errorf("apply suppression rules: %w", err)
		}
	}
	return out, nil
}
