package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lading-registry/lading/internal/store"
)

// ErrBadOutboxEvent means an event cannot be written to the outbox as given.
var ErrBadOutboxEvent = store.ErrBadOutboxEvent

// pruneBatch bounds how long one prune transaction holds the single writer.
const pruneBatch = 1000

// AppendOutbox writes events to the outbox in a transaction of its own. Changes that report
// events write them with appendOutboxTx inside their own transaction instead.
func (db *DB) AppendOutbox(ctx context.Context, events ...store.OutboxEvent) error {
	if len(events) == 0 {
		return nil
	}
	return db.Tx(ctx, func(tx *sql.Tx) error { return appendOutboxTx(ctx, tx, events) })
}

// appendOutboxTx writes events inside tx, the transaction of the change they report, so that
// the change and its events commit or vanish together. Every event is checked before any is
// written. An event whose ID is already in the outbox is skipped.
func appendOutboxTx(ctx context.Context, tx *sql.Tx, events []store.OutboxEvent) error {
	q := &txStatements{tx: tx, stmts: map[string]*sql.Stmt{}}
	defer q.close()
	return appendOutbox(ctx, q, events)
}

// appendOutbox is appendOutboxTx through a transaction's prepared statements: a re-evaluation
// writes one event for each of thousands of images, and preparing the insert for each cost
// about as much as running it.
func appendOutbox(ctx context.Context, q *txStatements, events []store.OutboxEvent) error {
	rows, err := outboxRows(events, time.Now())
	if err != nil {
		return err
	}
	return insertOutboxRows(ctx, q, rows)
}

// outboxRow is an event as the outbox keeps it.
type outboxRow struct {
	id, detailType, source, account, region string
	at                                      int64
	resources, detail                       string
	created                                 int64
}

// outboxRows checks events, all of them before any is written, and makes their rows, written at
// now. An event without an ID is given one.
func outboxRows(events []store.OutboxEvent, now time.Time) ([]outboxRow, error) {
	rows := make([]outboxRow, 0, len(events))
	for i, ev := range events {
		if ev.DetailType == "" || ev.Source == "" {
			return nil, fmt.Errorf("%w: event %d: detail type and source are required", ErrBadOutboxEvent, i)
		}
		detail, err := ev.StoredDetail()
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		resources := ev.Resources
		if resources == nil {
			resources = []string{}
		}
		res, err := json.Marshal(resources)
		if err != nil {
			return nil, fmt.Errorf("%w: event %d: resources: %w", ErrBadOutboxEvent, i, err)
		}
		if ev.ID == "" {
			ev.ID = uuid.NewString()
		}
		at := ev.Time
		if at.IsZero() {
			at = now
		}
		rows = append(rows, outboxRow{ev.ID, ev.DetailType, ev.Source, ev.Account, ev.Region, at.UnixMilli(), string(res), detail, now.UnixMilli()})
	}
	return rows, nil
}

// outboxRowsAStatement is how many events one INSERT writes (nine parameters each).
const outboxRowsAStatement = 100

// insertOutboxRows writes rows in order, many a statement; an id already there is skipped.
func insertOutboxRows(ctx context.Context, q *txStatements, rows []outboxRow) error {
	for chunk := range chunks(rows, outboxRowsAStatement) {
		args := make([]any, 0, 9*len(chunk))
		for _, r := range chunk {
			args = append(args, r.id, r.detailType, r.source, r.account, r.region, r.at, r.resources, r.detail, r.created)
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO outbox(id, detail_type, source, account, region, time, resources, detail, created_at)
			VALUES `+rowPlaceholders(len(chunk), 9)+` ON CONFLICT(id) DO NOTHING`, args...); err != nil {
			return fmt.Errorf("append outbox events %s to %s: %w", chunk[0].id, chunk[len(chunk)-1].id, err)
		}
	}
	return nil
}

// rowPlaceholders are the placeholders of n rows of k values: (?, ?), (?, ?).
func rowPlaceholders(n, k int) string {
	row := "(" + placeholders(k) + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

// ReadOutbox returns up to limit events with a sequence number above afterSeq, in order.
// Readers keep a cursor (the last seq they handled), which is sound because SQLite has one
// writer at a time: sequence numbers become visible in commit order, so no event can appear
// later below a cursor. (A PostgreSQL outbox must take care of this itself: sequence values
// there are handed out before commit, and commit in any order.)
func (db *DB) ReadOutbox(ctx context.Context, afterSeq int64, limit int) ([]store.OutboxEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.read.QueryContext(ctx, `SELECT seq, id, detail_type, source, account, region, time, resources, detail, created_at
		FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?`, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var out []store.OutboxEvent
	for rows.Next() {
		var (
			ev                store.OutboxEvent
			at, created       int64
			resources, detail string
		)
		if err := rows.Scan(&ev.Seq, &ev.ID, &ev.DetailType, &ev.Source, &ev.Account, &ev.Region, &at, &resources, &detail, &created); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		if err := json.Unmarshal([]byte(resources), &ev.Resources); err != nil {
			return nil, fmt.Errorf("read outbox event %d: resources: %w", ev.Seq, err)
		}
		ev.Time = fromMS(at)
		ev.CreatedAt = fromMS(created)
		ev.Detail = json.RawMessage(detail)
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// InitWebhookCursors makes the set of webhooks with a delivery cursor exactly names and
// returns each one's position. A webhook seen for the first time starts at the end of the
// outbox: it receives what happens from now on, not the history. A webhook no longer named
// is forgotten, so that it holds back no pruning; named again later, it starts afresh.
func (db *DB) InitWebhookCursors(ctx context.Context, names []string) (map[string]int64, error) {
	out := make(map[string]int64, len(names))
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		clear(out)
		rows, err := tx.QueryContext(ctx, "SELECT webhook, position FROM webhook_cursors")
		if err != nil {
			return err
		}
		var stale []string
		for rows.Next() {
			var (
				name string
				pos  int64
			)
			if err := rows.Scan(&name, &pos); err != nil {
				_ = rows.Close()
				return err
			}
			if slices.Contains(names, name) {
				out[name] = pos
			} else {
				stale = append(stale, name)
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, name := range stale {
			if _, err := tx.ExecContext(ctx, "DELETE FROM webhook_cursors WHERE webhook = ?", name); err != nil {
				return err
			}
		}
		var end int64
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM outbox").Scan(&end); err != nil {
			return err
		}
		now := time.Now().UnixMilli()
		for _, name := range names {
			if _, ok := out[name]; ok {
				continue
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO webhook_cursors(webhook, position, created_at, updated_at) VALUES (?, ?, ?, ?)",
				name, end, now, now); err != nil {
				return err
			}
			out[name] = end
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("init webhook cursors: %w", err)
	}
	return out, nil
}

// AdvanceWebhookCursor records that the webhook has received every event up to seq. A cursor
// never moves back. A webhook without a cursor is store.ErrNotFound.
func (db *DB) AdvanceWebhookCursor(ctx context.Context, webhook string, seq int64) error {
	var res sql.Result
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = tx.ExecContext(ctx, "UPDATE webhook_cursors SET position = MAX(position, ?), updated_at = ? WHERE webhook = ?",
			seq, time.Now().UnixMilli(), webhook)
		return err
	})
	if err != nil {
		return fmt.Errorf("advance webhook cursor %s: %w", webhook, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("advance webhook cursor %s: %w", webhook, store.ErrNotFound)
	}
	return nil
}

// WebhookCursors returns every webhook's position and the outbox's last sequence number, from
// which a webhook's backlog follows.
func (db *DB) WebhookCursors(ctx context.Context) (positions map[string]int64, end int64, err error) {
	positions = map[string]int64{}
	rows, err := db.read.QueryContext(ctx, "SELECT webhook, position FROM webhook_cursors")
	if err != nil {
		return nil, 0, fmt.Errorf("read webhook cursors: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			name string
			pos  int64
		)
		if err := rows.Scan(&name, &pos); err != nil {
			return nil, 0, fmt.Errorf("read webhook cursors: %w", err)
		}
		positions[name] = pos
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read webhook cursors: %w", err)
	}
	if err := db.read.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM outbox").Scan(&end); err != nil {
		return nil, 0, fmt.Errorf("read outbox end: %w", err)
	}
	return positions, end, nil
}

// PruneOutbox deletes events written before the given time that every webhook has received,
// and returns how many it deleted. With no webhook at all, every event written before then goes.
func (db *DB) PruneOutbox(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq IN (
				SELECT seq FROM outbox
				WHERE created_at < ? AND seq <= COALESCE((SELECT MIN(position) FROM webhook_cursors), 9223372036854775807)
				ORDER BY seq LIMIT ?)`, before.UnixMilli(), pruneBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("prune outbox: %w", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}
