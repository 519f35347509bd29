package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/ecr"
	"github.com/lading-registry/lading/internal/oci"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/postgres"
	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
	"github.com/lading-registry/lading/internal/store/storetest"
)

// The consumers' interfaces store/postgres satisfies in full so far.
var (
	_ oci.Metadata     = (*postgres.DB)(nil)
	_ ecr.Metadata     = (*postgres.DB)(nil)
	_ ecr.Policies     = (*postgres.DB)(nil)
	_ auth.KeyStore    = (*postgres.DB)(nil)
	_ auth.PolicyStore = (*postgres.DB)(nil)
)

// TestPostgres runs every test of the package in one database, a schema each.
func TestPostgres(t *testing.T) {
	pg := pgtest.New(t)
	open := func(t *testing.T) *postgres.DB {
		t.Helper()
		db, err := postgres.Open(context.Background(), pg.Schema(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) storetest.Store { return open(t) })
	})
	t.Run("MigrationsOnceAcrossNodes", func(t *testing.T) { testMigrationsOnceAcrossNodes(t, pg) })
	t.Run("RefusesNewerSchema", func(t *testing.T) { testRefusesNewerSchema(t, pg) })
	t.Run("ConcurrentPushesToImmutableTag", func(t *testing.T) { testConcurrentImmutableTag(t, open(t)) })
	t.Run("PingFailsWhenClosed", func(t *testing.T) {
		db := open(t)
		if err := db.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		_ = db.Close()
		if err := db.Ping(context.Background()); err == nil {
			t.Fatal("ping of a closed store succeeded")
		}
	})
}

// testMigrationsOnceAcrossNodes: nodes starting together on an empty database apply each
// migration once, and reopening applies nothing.
func testMigrationsOnceAcrossNodes(t *testing.T, pg *pgtest.Database) {
	ctx := context.Background()
	url := pg.Schema(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := postgres.Open(ctx, url)
			if err == nil {
				_ = db.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows, distinct int
	if err := conn.QueryRow(ctx, "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows == 0 || rows != distinct {
		t.Fatalf("schema_migrations holds %d rows of %d versions", rows, distinct)
	}
}

func testRefusesNewerSchema(t *testing.T, pg *pgtest.Database) {
	ctx := context.Background()
	url := pg.Schema(t)
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "INSERT INTO schema_migrations VALUES (9999, 'future', 0)"); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(ctx, url); !errors.Is(err, postgres.ErrNewerSchema) {
		t.Fatalf("got %v, want ErrNewerSchema", err)
	}
}

// testConcurrentImmutableTag: pushes of different manifests racing for one tag of an
// IMMUTABLE repository, as from several nodes: exactly one wins, the others are refused.
func testConcurrentImmutableTag(t *testing.T, db *postgres.DB) {
	ctx := context.Background()
	if _, err := db.CreateRepository(ctx, store.Repository{Name: "imm", TagMutability: store.TagImmutable}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := store.Manifest{Repository: "imm", Digest: "sha256:" + string(rune('a'+i)), MediaType: "application/vnd.oci.image.manifest.v1+json",
				Size: 2, Content: []byte("{}")}
			_, errs[i] = db.PutManifest(ctx, m, nil, []string{"v1"}, store.PutOptions{})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrTagImmutable):
			t.Fatal(err)
		}
	}
	if won != 1 {
		t.Fatalf("%d pushes took the immutable tag, want 1", won)
	}
}
