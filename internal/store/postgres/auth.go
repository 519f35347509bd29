package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lading-registry/lading/internal/store"
)

// CreateAccessKey stores a new access key; an existing id is ErrAccessKeyFound, an existing
// name ErrAccessKeyNameTaken. A key without a name is named by its id.
func (db *DB) CreateAccessKey(ctx context.Context, k store.AccessKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now()
	}
	if k.Name == "" {
		k.Name = k.ID
	}
	return db.tx(ctx, func(tx pgx.Tx) error {
		var one int
		switch err := tx.QueryRow(ctx, "SELECT 1 FROM access_keys WHERE name = $1 AND id <> $2", k.Name, k.ID).Scan(&one); {
		case err == nil:
			return store.ErrAccessKeyNameTaken
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("create access key: %w", err)
		}
		res, err := tx.Exec(ctx, `INSERT INTO access_keys(id, secret, description, created_at, name, preset, policy) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT(id) DO NOTHING`, k.ID, k.Secret, k.Description, ms(k.CreatedAt), k.Name, k.Preset, k.Policy)
		if err != nil {
			return fmt.Errorf("create access key: %w", err)
		}
		if res.RowsAffected() == 0 {
			return store.ErrAccessKeyFound
		}
		return nil
	})
}

// UpdateAccessKeyPolicy replaces an access key's policy (a preset's name, or a document with
// preset empty), or returns ErrNotFound. Requests authenticated afterwards, by any node, are
// decided under the new policy.
func (db *DB) UpdateAccessKeyPolicy(ctx context.Context, id, preset, policy string) error {
	res, err := db.pool.Exec(ctx, "UPDATE access_keys SET preset = $1, policy = $2 WHERE id = $3", preset, policy, id)
	if err != nil {
		return fmt.Errorf("update access key policy: %w", err)
	}
	if res.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

const accessKeyColumns = "id, secret, description, created_at, name, preset, policy"

func scanAccessKey(r rowScanner) (store.AccessKey, error) {
	var k store.AccessKey
	var created int64
	err := r.Scan(&k.ID, &k.Secret, &k.Description, &created, &k.Name, &k.Preset, &k.Policy)
	k.CreatedAt = fromMS(created)
	return k, err
}

// AccessKey returns one access key, or ErrNotFound.
func (db *DB) AccessKey(ctx context.Context, id string) (store.AccessKey, error) {
	k, err := scanAccessKey(db.pool.QueryRow(ctx, "SELECT "+accessKeyColumns+" FROM access_keys WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return k, store.ErrNotFound
	}
	return k, err
}

// ListAccessKeys returns every access key, oldest first.
func (db *DB) ListAccessKeys(ctx context.Context) ([]store.AccessKey, error) {
	out, err := queryAll(ctx, db.pool, scanAccessKey, "SELECT "+accessKeyColumns+" FROM access_keys ORDER BY created_at, id")
	if err != nil {
		return nil, fmt.Errorf("list access keys: %w", err)
	}
	return out, nil
}

// DeleteAccessKey removes an access key, or returns ErrNotFound.
func (db *DB) DeleteAccessKey(ctx context.Context, id string) error {
	res, err := db.pool.Exec(ctx, "DELETE FROM access_keys WHERE id = $1", id)
	if err != nil {
		return fmt.Errorf("delete access key: %w", err)
	}
	if res.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// Setting returns a registry-wide value, or ErrNotFound.
func (db *DB) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := db.pool.QueryRow(ctx, "SELECT value FROM settings WHERE key = $1", key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", store.ErrNotFound
	}
	return v, err
}

// PutSetting stores a registry-wide value.
func (db *DB) PutSetting(ctx context.Context, key, value string) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO settings(key, value) VALUES ($1, $2) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}

// SettingOrInit returns the value of key, storing init() first when it has none. Concurrent
// callers (several nodes starting at once) all get the one stored value.
func (db *DB) SettingOrInit(ctx context.Context, key string, init func() (string, error)) (string, error) {
	if v, err := db.Setting(ctx, key); err == nil || !errors.Is(err, store.ErrNotFound) {
		return v, err
	}
	v, err := init()
	if err != nil {
		return "", err
	}
	// One statement: the insert that loses the race returns no row, and the value read
	// afterwards is the winner's, committed before the conflict was reported.
	var stored string
	err = db.pool.QueryRow(ctx, `INSERT INTO settings(key, value) VALUES ($1, $2) ON CONFLICT(key) DO NOTHING RETURNING value`, key, v).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return db.Setting(ctx, key)
	}
	return stored, err
}

// ReplaceSecrets applies changes, each only if the stored value still is its Old (a change that
// lost a race to another node is skipped), in one transaction, and returns how many applied.
// PostgreSQL keeps a rewritten row's old version in the table's file until it is vacuumed, and
// a plain VACUUM may leave its bytes in the page's free space, so the two small tables are
// rewritten (VACUUM FULL) once a change applied: the old values leave the database's table
// files. The write-ahead log keeps them until its segments are recycled, and backups and
// replicas keep what they copied: an operator rotating secrets accounts for those as for any
// PostgreSQL data.
func (db *DB) ReplaceSecrets(ctx context.Context, changes []store.SecretChange) (int, error) {
	var n int
	var xid string // the replacing transaction's id
	err := db.tx(ctx, func(tx pgx.Tx) error {
		n = 0
		if err := tx.QueryRow(ctx, "SELECT pg_current_xact_id()::xid::text").Scan(&xid); err != nil {
			return err
		}
		for _, c := range changes {
			query, args := "UPDATE settings SET value = $1 WHERE key = $2 AND value = $3", []any{c.New, c.Setting, c.Old}
			if c.AccessKeyID != "" {
				query, args = "UPDATE access_keys SET secret = $1 WHERE id = $2 AND secret = $3", []any{c.New, c.AccessKeyID, c.Old}
			}
			tag, err := tx.Exec(ctx, query, args...)
			if err != nil {
				return err
			}
			if tag.RowsAffected() > 0 {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("replace secrets: %w", err)
	}
	if n > 0 {
		// The rewrite keeps an old version any open transaction may still see, and PostgreSQL
		// counts open transactions of every database on the server: wait, a bounded while,
		// until none began before the change committed.
		if err := waitForOlderTransactions(ctx, db.pool, xid, secretsRewriteWait); err != nil {
			return n, fmt.Errorf("replace secrets: %w", err)
		}
		// VACUUM runs outside a transaction, so in the simple protocol.
		if _, err := db.pool.Exec(ctx, "VACUUM FULL access_keys, settings", pgx.QueryExecModeSimpleProtocol); err != nil {
			return n, fmt.Errorf("replace secrets: rewrite the tables: %w", err)
		}
	}
	return n, nil
}

// secretsRewriteWait bounds how long ReplaceSecrets waits for transactions older than its change
// before rewriting the tables: a server whose other clients keep a transaction open longer
// still gets the rewrite, which then leaves the old versions it must (a later rewrite, such as
// the next replacement or VACUUM FULL, removes them).
const secretsRewriteWait = 10 * time.Second

// WaitForOlderTransactions waits, at most wait, until no other client session on the server
// holds a transaction or snapshot that began before now: a VACUUM FULL after it can remove the
// row versions that the writes before it left, which PostgreSQL keeps while any transaction of
// any database on the server might still see them.
func WaitForOlderTransactions(ctx context.Context, pool *pgxpool.Pool, wait time.Duration) error {
	var xid string
	if err := pool.QueryRow(ctx, "SELECT pg_current_xact_id()::xid::text").Scan(&xid); err != nil {
		return fmt.Errorf("wait for older transactions: %w", err)
	}
	return waitForOlderTransactions(ctx, pool, xid, wait)
}

// waitForOlderTransactions waits until no other client session on the server holds a
// transaction or snapshot that began before transaction xid ended, or until wait has passed.
func waitForOlderTransactions(ctx context.Context, pool *pgxpool.Pool, xid string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		var older bool
		err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid()
			AND backend_type = 'client backend'
			AND (age(backend_xmin) >= age($1::xid) OR age(backend_xid) >= age($1::xid)))`, xid).Scan(&older)
		if err != nil || !older || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
