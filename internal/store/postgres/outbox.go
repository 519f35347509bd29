package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/store"
)

// pruneBatch bounds how many events one prune transaction deletes.
const pruneBatch = 1000

// outboxLock is the advisory lock key a transaction holds from its first outbox event to its
// commit: outbox sequence numbers then become visible in the order they were handed out, so a
// reader's cursor never skips an event that commits later below it.
const outboxLock = 0x6c6164696e6701 // "lading" + 1

// AppendOutbox writes events to the outbox in a transaction of its own. Changes that report
// events write them with appendOutboxTx inside their own transaction instead.
func (db *DB) AppendOutbox(ctx context.Context, events ...store.OutboxEvent) error {
	if len(events) == 0 {
		return nil
	}
	return db.tx(ctx, func(tx pgx.Tx) error { return appendOutboxTx(ctx, tx, events) })
}

// appendOutboxTx writes events inside tx, the transaction of the change they report, so that
// the change and its events commit or vanish together. Every event is checked before any is
// written. An event whose ID is already in the outbox is skipped.
func appendOutboxTx(ctx context.Context, tx pgx.Tx, events []store.OutboxEvent) error {
	if len(events) == 0 {
		return nil
	}
	now := time.Now()
	cols := make([][]string, 7) // id, detail type, source, account, region, resources, detail
	times := make([]int64, len(events))
	for i, ev := range events {
		if ev.DetailType == "" || ev.Source == "" {
			return fmt.Errorf("%w: event %d: detail type and source are required", store.ErrBadOutboxEvent, i)
		}
		detail, err := ev.StoredDetail()
		if err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		resources := ev.Resources
		if resources == nil {
			resources = []string{}
		}
		res, err := json.Marshal(resources)
		if err != nil {
			return fmt.Errorf("%w: event %d: resources: %w", store.ErrBadOutboxEvent, i, err)
		}
		if ev.ID == "" {
			ev.ID = uuid.NewString()
		}
		at := ev.Time
		if at.IsZero() {
			at = now
		}
		for c, v := range []string{ev.ID, ev.DetailType, ev.Source, ev.Account, ev.Region, string(res), string(detail)} {
			cols[c] = append(cols[c], v)
		}
		times[i] = at.UnixMilli()
	}
	batch := &pgx.Batch{}
	// Taken in the batch of the inserts, after the change's own work, so the section that every
	// event-writing transaction passes one at a time is only these inserts and the commit.
	batch.Queue("SELECT pg_advisory_xact_lock($1)", int64(outboxLock))
	// Many rows a statement (a re-evaluation writes an event per image), numbered in the order
	// given: the rows are inserted in their ordinality's order, and seq follows.
	for start := 0; start < len(events); start += outboxRowsPerStatement {
		end := min(start+outboxRowsPerStatement, len(events))
		args := []any{}
		for _, c := range cols {
			args = append(args, c[start:end])
		}
		args = append(args, times[start:end], now.UnixMilli())
		batch.Queue(`INSERT INTO outbox(id, detail_type, source, account, region, time, resources, detail, created_at)
			SELECT u.id, u.detail_type, u.source, u.account, u.region, u.at, u.resources, u.detail, $9
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[])
				WITH ORDINALITY AS u(id, detail_type, source, account, region, resources, detail, at, n)
			ORDER BY u.n
			ON CONFLICT(id) DO NOTHING`, args...)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("append outbox: %w", err)
	}
	return nil
}

// outboxRowsPerStatement bounds the events one insert of appendOutboxTx carries.
const outboxRowsPerStatement = 500

// ReadOutbox returns up to limit events with a sequence number above afterSeq, in order.
// Readers keep a cursor (the last seq they handled); appendOutboxTx makes that sound.
func (db *DB) ReadOutbox(ctx context.Context, afterSeq int64, limit int) ([]store.OutboxEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	out, err := queryAll(ctx, db.pool, func(r rowScanner) (store.OutboxEvent, error) {
		var (
			ev                store.OutboxEvent
			at, created       int64
			resources, detail string
		)
		if err := r.Scan(&ev.Seq, &ev.ID, &ev.DetailType, &ev.Source, &ev.Account, &ev.Region, &at, &resources, &detail, &created); err != nil {
			return ev, err
		}
		if err := json.Unmarshal([]byte(resources), &ev.Resources); err != nil {
			return ev, fmt.Errorf("event %d: resources: %w", ev.Seq, err)
		}
		ev.Time, ev.CreatedAt, ev.Detail = fromMS(at), fromMS(created), json.RawMessage(detail)
		return ev, nil
	}, `SELECT seq, id, detail_type, source, account, region, time, resources, detail, created_at
		FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2`, afterSeq, limit)
	if err != nil {
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
	err := db.tx(ctx, func(tx pgx.Tx) error {
		clear(out)
		// Under the outbox lock, no event-writing transaction is between its inserts and its
		// commit.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(outboxLock)); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT webhook, position FROM webhook_cursors")
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
				rows.Close()
				return err
			}
			if slices.Contains(names, name) {
				out[name] = pos
			} else {
				stale = append(stale, name)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM webhook_cursors WHERE webhook = ANY($1)", stale); err != nil {
			return err
		}
		var end int64
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(seq), 0) FROM outbox").Scan(&end); err != nil {
			return err
		}
		now := time.Now().UnixMilli()
		for _, name := range names {
			if _, ok := out[name]; ok {
				continue
			}
			if _, err := tx.Exec(ctx, "INSERT INTO webhook_cursors(webhook, position, created_at, updated_at) VALUES ($1, $2, $3, $4)",
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
	res, err := db.pool.Exec(ctx, "UPDATE webhook_cursors SET position = GREATEST(position, $1), updated_at = $2 WHERE webhook = $3",
		seq, time.Now().UnixMilli(), webhook)
	if err != nil {
		return fmt.Errorf("advance webhook cursor %s: %w", webhook, err)
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("advance webhook cursor %s: %w", webhook, store.ErrNotFound)
	}
	return nil
}

// WebhookCursors returns every webhook's position and the outbox's last sequence number, from
// which a webhook's backlog follows.
func (db *DB) WebhookCursors(ctx context.Context) (positions map[string]int64, end int64, err error) {
	positions = map[string]int64{}
	rows, err := db.pool.Query(ctx, "SELECT webhook, position FROM webhook_cursors")
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
	if err := db.pool.QueryRow(ctx, "SELECT coalesce(max(seq), 0) FROM outbox").Scan(&end); err != nil {
		return nil, 0, fmt.Errorf("read outbox end: %w", err)
	}
	return positions, end, nil
}

// PruneOutbox deletes events written before the given time that every webhook has received,
// and returns how many it deleted. With no webhook at all, every event written before then goes.
func (db *DB) PruneOutbox(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		res, err := db.pool.Exec(ctx, `DELETE FROM outbox WHERE seq IN (
			SELECT seq FROM outbox
			WHERE created_at < $1 AND seq <= coalesce((SELECT min(position) FROM webhook_cursors), 9223372036854775807)
			ORDER BY seq LIMIT $2)`, before.UnixMilli(), pruneBatch)
		if err != nil {
			return total, fmt.Errorf("prune outbox: %w", err)
		}
		total += res.RowsAffected()
		if res.RowsAffected() < pruneBatch {
			return total, nil
		}
	}
}
