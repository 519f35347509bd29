package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lading-registry/lading/internal/store"
)

// CreateAccessKey stores a new access key; an existing id is ErrAccessKeyFound.
func (db *DB) CreateAccessKey(ctx context.Context, k store.AccessKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now()
	}
	return db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO access_keys(id, secret, description, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT(id) DO NOTHING`, k.ID, k.Secret, k.Description, ms(k.CreatedAt))
		if err != nil {
			return fmt.Errorf("create access key: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrAccessKeyFound
		}
		return nil
	})
}

// AccessKey returns one access key, or ErrNotFound.
func (db *DB) AccessKey(ctx context.Context, id string) (store.AccessKey, error) {
	var k store.AccessKey
	var created int64
	err := db.read.QueryRowContext(ctx, "SELECT id, secret, description, created_at FROM access_keys WHERE id = ?", id).
		Scan(&k.ID, &k.Secret, &k.Description, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return k, store.ErrNotFound
	}
	k.CreatedAt = fromMS(created)
	return k, err
}

// ListAccessKeys returns every access key, oldest first.
func (db *DB) ListAccessKeys(ctx context.Context) ([]store.AccessKey, error) {
	out, err := queryAll(ctx, db.read, func(r rowScanner) (store.AccessKey, error) {
		var k store.AccessKey
		var created int64
		err := r.Scan(&k.ID, &k.Secret, &k.Description, &created)
		k.CreatedAt = fromMS(created)
		return k, err
	}, "SELECT id, secret, description, created_at FROM access_keys ORDER BY created_at, id")
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
