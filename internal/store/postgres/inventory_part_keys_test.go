package postgres

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
	"github.com/lading-registry/lading/internal/store/storetest"
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
	storetest.CheckUpgradedPartKeys(t, db, sum[:], func() (int, error) {
		var rows int
		err := db.pool.QueryRow(ctx, "SELECT count(*) FROM inventory_packages").Scan(&rows)
		return rows, err
	})
}
