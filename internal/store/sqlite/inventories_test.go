package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/lading-registry/lading/internal/store"
)

// TestLayerInventoryFingerprint: a cached layer inventory is found only under the fingerprint
// it was stored with, and storing it under another replaces it.
func TestLayerInventoryFingerprint(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	dgst := fakeDigest("a")
	if err := db.PutLayerInventory(ctx, dgst, "ENHANCED", "fp-1", []byte("one")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mode, fingerprint string
		want              string // "" for ErrNotFound
	}{
		{"ENHANCED", "fp-1", "one"},
		{"ENHANCED", "fp-2", ""},
		{"BASIC", "fp-1", ""},
	}
	for _, tt := range tests {
		got, err := db.LayerInventory(ctx, dgst, tt.mode, tt.fingerprint)
		if tt.want == "" && !errors.Is(err, store.ErrNotFound) || tt.want != "" && (err != nil || string(got) != tt.want) {
			t.Errorf("LayerInventory(%s, %s) = %q, %v; want %q", tt.mode, tt.fingerprint, got, err, tt.want)
		}
	}
	if err := db.PutLayerInventory(ctx, dgst, "ENHANCED", "fp-2", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.LayerInventory(ctx, dgst, "ENHANCED", "fp-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the old fingerprint still finds the replaced inventory: %v", err)
	}
	if got, err := db.LayerInventory(ctx, dgst, "ENHANCED", "fp-2"); err != nil || string(got) != "two" {
		t.Errorf("got %q, %v", got, err)
	}
}

// TestMigrationToInventoryFingerprint writes inventories under the integer schema version
// (before 0025): the cached layer inventories go, the image inventories stay.
func TestMigrationToInventoryFingerprint(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	w, err := openPool(path, false)
	if err != nil {
		t.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	if err := migrateTo(ctx, w, 24); err != nil {
		t.Fatal(err)
	}
	dgst := fakeDigest("b")
	if _, err := w.ExecContext(ctx, `INSERT INTO layer_inventories(layer_digest, mode, schema_version, inventory, created_at)
		VALUES (?, 'ENHANCED', 1, 'old', 1000)`, dgst); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecContext(ctx, `INSERT INTO image_inventories(id, image_digest, mode, schema_version, os, package_count, inventory, created_at)
		VALUES (7, ?, 'ENHANCED', 1, 'Debian:12', 0, 'image', 1000)`, dgst); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
