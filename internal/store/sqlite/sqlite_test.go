package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
)

func TestOpenMigratesAndReopens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Reader().QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	migs, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if n != len(migs) || n == 0 {
		t.Fatalf("applied %d migrations, want %d", n, len(migs))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	_ = db.Close()
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.ExecContext(ctx, "INSERT INTO schema_migrations VALUES (9999, 'future', 0)"); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	_, err = Open(ctx, path)
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("got %v, want ErrNewerSchema", err)
	}
}

// OpenReader reads a current database through one query_only connection with the page cache
// asked for, migrates a new or older one as Open does, and refuses a newer one.
func TestOpenReader(t *testing.T) {
	ctx := context.Background()
	opts := ReaderOptions{CacheKiB: 256}
	schemaVersions := func(t *testing.T, db *DB) int {
		t.Helper()
		var n int
		if err := db.Reader().QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	migs, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("current", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "meta.db")
		db, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		_ = db.Close()
		db, err = OpenReader(ctx, path, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if db.write != db.read {
			t.Fatal("a current database got a write pool of its own")
		}
		if got := db.read.Stats().MaxOpenConnections; got != 1 {
			t.Fatalf("max open connections %d, want 1", got)
		}
		var cache int
		if err := db.read.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil {
			t.Fatal(err)
		}
		if cache != -256 {
			t.Fatalf("cache_size %d, want -256 (KiB)", cache)
		}
		if _, err := db.write.ExecContext(ctx, "INSERT INTO schema_migrations VALUES (9999, 'x', 0)"); err == nil {
			t.Fatal("a write through the reader succeeded")
		}
		if n := schemaVersions(t, db); n != len(migs) {
			t.Fatalf("%d migrations applied, want %d", n, len(migs))
		}
	})

	t.Run("new file is migrated", func(t *testing.T) {
		db, err := OpenReader(ctx, filepath.Join(t.TempDir(), "meta.db"), opts)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if db.write == db.read {
			t.Fatal("a new database was not opened with Open")
		}
		if n := schemaVersions(t, db); n != len(migs) {
			t.Fatalf("%d migrations applied, want %d", n, len(migs))
		}
	})

	t.Run("older schema is migrated", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "meta.db")
		w, err := openPool(path, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := migrateTo(ctx, w, migs[len(migs)-2].Version); err != nil {
			t.Fatal(err)
		}
		_ = w.Close()
		db, err := OpenReader(ctx, path, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if n := schemaVersions(t, db); n != len(migs) {
			t.Fatalf("%d migrations applied, want %d", n, len(migs))
		}
	})

	t.Run("newer schema is refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "meta.db")
		db, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.write.ExecContext(ctx, "INSERT INTO schema_migrations VALUES (9999, 'future', 0)"); err != nil {
			t.Fatal(err)
		}
		_ = db.Close()
		if _, err := OpenReader(ctx, path, opts); !errors.Is(err, ErrNewerSchema) {
			t.Fatalf("got %v, want ErrNewerSchema", err)
		}
	})
}

// storeAt makes a store migrated up to version, for a migration test to write rows as that
// schema had them through w (one connection); reopen closes w and opens the store with Open,
// which applies the later migrations (closed at the test's end).
func storeAt(t *testing.T, version int) (w *sql.DB, reopen func() *DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "meta.db")
	w, err := openPool(path, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	if err := migrateTo(context.Background(), w, version); err != nil {
		t.Fatal(err)
	}
	return w, func() *DB {
		t.Helper()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
}
