package sqlite

import (
	"context"
	"errors"
	"testing"

	"github.com/lading-registry/lading/internal/store"
)

// TestMigrationKeepsKeysFullAccess writes keys in the schema before 0040: after the migration
// each is named by its id and keeps full access.
func TestMigrationKeepsKeysFullAccess(t *testing.T) {
	ctx := context.Background()
	w, reopen := storeAt(t, 39)
	if _, err := w.ExecContext(ctx, `INSERT INTO access_keys(id, secret, description, created_at) VALUES ('LAKOLD1', 's1', 'ci', 1), ('LAKOLD2', 's2', '', 2)`); err != nil {
		t.Fatal(err)
	}
	db := reopen()
	keys, err := db.ListAccessKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("%d keys", len(keys))
	}
	for _, k := range keys {
		if k.Name != k.ID || k.Preset != "AdministratorAccess" || k.Policy != "" {
			t.Errorf("migrated key %+v", k)
		}
	}
	if err := db.CreateAccessKey(ctx, store.AccessKey{ID: "LAKNEW", Secret: "s", Name: "LAKOLD1"}); !errors.Is(err, store.ErrAccessKeyNameTaken) {
		t.Fatalf("a second key named LAKOLD1: %v", err)
	}
}
