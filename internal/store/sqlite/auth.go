package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

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
	return db.Tx(ctx, func(tx *sql.Tx) error {
		var one int
		switch err := tx.QueryRowContext(ctx, "SELECT 1 FROM access_keys WHERE name = ? AND id <> ?", k.Name, k.ID).Scan(&one); {
		case err == nil:
			return store.ErrAccessKeyNameTaken
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("create access key: %w", err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO access_keys(id, secret, description, created_at, name, preset, policy) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO NOTHING`, k.ID, k.Secret, k.Description, ms(k.CreatedAt), k.Name, k.Preset, k.Policy)
		if err != nil {
			return fmt.Errorf("create access key: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrAccessKeyFound
		}
		return nil
	})
}

// UpdateAccessKeyPolicy replaces an access key's policy (a preset's name, or a document with
// preset empty), or returns ErrNotFound. Requests authenticated afterwards, by any process,
// are decided under the new policy.
func (db *DB) UpdateAccessKeyPolicy(ctx context.Context, id, preset, policy string) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE access_keys SET preset = ?, policy = ? WHERE id = ?", preset, policy, id)
		if err != nil {
			return fmt.Errorf("update access key policy: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
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
	k, err := scanAccessKey(db.read.QueryRowContext(ctx, "SELECT "+accessKeyColumns+" FROM access_keys WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return k, store.ErrNotFound
	}
	return k, err
}

// ListAccessKeys returns every access key, oldest first.
func (db *DB) ListAccessKeys(ctx context.Context) ([]store.AccessKey, error) {
	out, err := queryAll(ctx, db.read, scanAccessKey, "SELECT "+accessKeyColumns+" FROM access_keys ORDER BY created_at, id")
	if err != nil {
		return nil, fmt.Errorf("list access keys: %w", err)
	}
	return out, nil
}

// DeleteAccessKey removes an access key, or returns ErrNotFound.
func (db *DB) DeleteAccessKey(ctx context.Context, id string) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM access_keys WHERE id = ?", id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
}

// Setting returns a registry-wide value, or ErrNotFound.
func (db *DB) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := db.read.QueryRowContext(ctx, "SELECT value FROM settings WHERE key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", store.ErrNotFound
	}
	return v, err
}

// PutSetting stores a registry-wide value.
func (db *DB) PutSetting(ctx context.Context, key, value string) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
		return err
	})
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
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING", key, v); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, "SELECT value FROM settings WHERE key = ?", key).Scan(&v)
	})
	return v, err
}

// ReplaceSecrets applies changes, each only if the stored value still is its Old (a change that
// lost a race to another process is skipped), in one transaction, and returns how many applied.
// The replaced bytes must not survive in the file: SQLite otherwise leaves a rewritten row's old
// cell in the page's free space, so the transaction runs with secure_delete, and a checkpoint
// then moves the rewritten pages over the old ones in lading.db and empties lading.db-wal. A
// checkpoint that a reader in another process holds up is left to SQLite's next one.
func (db *DB) ReplaceSecrets(ctx context.Context, changes []store.SecretChange) (int, error) {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("replace secrets: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA secure_delete = ON"); err != nil {
		return 0, fmt.Errorf("replace secrets: %w", err)
	}
	// The single write connection is shared: give it back as it was.
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA secure_delete = OFF") }()
	n := 0
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("replace secrets: begin: %w", err)
	}
	for _, c := range changes {
		var res sql.Result
		if c.AccessKeyID != "" {
			res, err = tx.ExecContext(ctx, "UPDATE access_keys SET secret = ? WHERE id = ? AND secret = ?", c.New, c.AccessKeyID, c.Old)
		} else {
			res, err = tx.ExecContext(ctx, "UPDATE settings SET value = ? WHERE key = ? AND value = ?", c.New, c.Setting, c.Old)
		}
		if err != nil {
			_ = tx.Rollback()
			return 0, fmt.Errorf("replace secrets: %w", err)
		}
		if k, _ := res.RowsAffected(); k > 0 {
			n++
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("replace secrets: commit: %w", err)
	}
	var busy, logPages, checkpointed int
	if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &checkpointed); err != nil {
		return n, fmt.Errorf("replace secrets: checkpoint: %w", err)
	}
	return n, nil
}
