package postgres

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
)

// TestMigrateToInventoryPartKeys upgrades a store holding a part (0045) to part keys (0046):
// the part's keys are unknown, so it may hold any key, until an inventory linking it again
// gives them; the inventory written before keeps its own index rows.
func TestMigrateToInventoryPartKeys(t *testing.T) {
	ctx := context.Background()
	url := pgtest.New(t).EmptySchema(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := migrate(ctx, pool, 45); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("base"))
	for _, st := range []struct {
		q    string
		args []any
	}{
		{`INSERT INTO image_inventories(image_digest, mode, fingerprint, os, package_count, inventory, created_at) VALUES ('sha256:old', 'ENHANCED', 'fp', '', 1, 'head', 1000)`, nil},
		{`INSERT INTO package_keys(ecosystem, name) VALUES ('npm', 'lodash')`, nil},
		{`INSERT INTO inventory_packages(key_id, inventory_id) SELECT k.id, i.id FROM package_keys k, image_inventories i`, nil},
		{`INSERT INTO inventory_parts(hash, data) VALUES ($1, 'base')`, []any{sum[:]}},
		{`INSERT INTO inventory_part_links(inventory_id, part_id) SELECT i.id, p.id FROM image_inventories i, inventory_parts p`, nil},
	} {
		if _, err := pool.Exec(ctx, st.q, st.args...); err != nil {
			t.Fatalf("%s: %v", st.q, err)
		}
	}
	db, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lodash, react := store.PackageKey{Ecosystem: "npm", Name: "lodash"}, store.PackageKey{Ecosystem: "npm", Name: "react"}
	holding := func(k store.PackageKey) int {
		t.Helper()
		hs, err := db.InventoryPartsHolding(ctx, []store.PackageKey{k})
		if err != nil {
			t.Fatal(err)
		}
		return len(hs)
	}
	if n := holding(react); n != 1 {
		t.Fatalf("before its keys are known, %d parts may hold react, want the part", n)
	}
	part := store.InventoryPart{Hash: sum[:], Data: []byte("base"), Keys: []store.PackageKey{lodash}}
	if _, err := db.PutImageInventory(ctx, "sha256:new", "ENHANCED", "fp", "", []store.PackageKey{lodash}, 1, []byte("head"), []store.InventoryPart{part}); err != nil {
		t.Fatal(err)
	}
	if a, b := holding(lodash), holding(react); a != 1 || b != 0 {
		t.Fatalf("with its keys: %d parts hold lodash, %d react; want 1, 0", a, b)
	}
	var rows int
	if err := db.pool.QueryRow(ctx, "SELECT count(*) FROM inventory_packages").Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("%d inventory_packages rows (%v): want the old inventory's one, none for the new", rows, err)
	}
}
