package sqlite

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/lading-registry/lading/internal/store/storetest"
)

// TestMigrationToInventoryFingerprint writes inventories under the integer schema version
// (before 0025): the cached layer inventories go, the image inventories stay.
func TestMigrationToInventoryFingerprint(t *testing.T) {
	ctx := context.Background()
	w, reopen := storeAt(t, 24)
	dgst := fakeDigest("b")
	if _, err := w.ExecContext(ctx, `INSERT INTO layer_inventories(layer_digest, mode, schema_version, inventory, created_at)
		VALUES (?, 'ENHANCED', 1, 'old', 1000)`, dgst); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecContext(ctx, `INSERT INTO image_inventories(id, image_digest, mode, schema_version, os, package_count, inventory, created_at)
		VALUES (7, ?, 'ENHANCED', 1, 'Debian:12', 0, 'image', 1000)`, dgst); err != nil {
		t.Fatal(err)
	}
	db := reopen()
	var layers int
	if err := db.Reader().QueryRowContext(ctx, "SELECT count(*) FROM layer_inventories").Scan(&layers); err != nil || layers != 0 {
		t.Errorf("%d layer inventories left (%v)", layers, err)
	}
	var fingerprint string
	if err := db.Reader().QueryRowContext(ctx, "SELECT fingerprint FROM image_inventories WHERE id = 7").Scan(&fingerprint); err != nil || fingerprint != "" {
		t.Errorf("image inventory: fingerprint %q, %v", fingerprint, err)
	}
	if got, err := db.ImageInventory(ctx, 7); err != nil || string(got) != "image" {
		t.Errorf("image inventory: %q, %v", got, err)
	}
}

// TestMigrationToInventoryPartKeys upgrades a store holding a part (0050) to part keys (0051):
// the part's keys are unknown, so it may hold any key, until an inventory linking it again
// gives them; the inventory written before keeps its own index rows.
func TestMigrationToInventoryPartKeys(t *testing.T) {
	ctx := context.Background()
	w, reopen := storeAt(t, 50)
	sum := sha256.Sum256([]byte("base"))
	for _, q := range []string{
		`INSERT INTO image_inventories(id, image_digest, mode, fingerprint, os, package_count, inventory, created_at) VALUES (1, 'sha256:old', 'ENHANCED', 'fp', '', 1, 'head', 1000)`,
		`INSERT INTO package_keys(id, ecosystem, name) VALUES (1, 'npm', 'lodash')`,
		`INSERT INTO inventory_packages(key_id, inventory_id) VALUES (1, 1)`,
		`INSERT INTO inventory_parts(id, hash, data) VALUES (1, x'` + hex.EncodeToString(sum[:]) + `', 'base')`,
		`INSERT INTO inventory_part_links(inventory_id, part_id) VALUES (1, 1)`,
	} {
		if _, err := w.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db := reopen()
	storetest.CheckUpgradedPartKeys(t, db, sum[:], func() (int, error) {
		var rows int
		err := db.Reader().QueryRowContext(ctx, "SELECT count(*) FROM inventory_packages").Scan(&rows)
		return rows, err
	})
}
