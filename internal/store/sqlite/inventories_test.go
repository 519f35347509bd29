package sqlite

import (
	"context"
	"testing"
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
