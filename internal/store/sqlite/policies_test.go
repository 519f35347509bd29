package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/lading-registry/lading/internal/store"
)

// TestMigrationKeepsKeysFullAccess writes keys in the schema before 0040: after the migration
// each is named by its id and keeps full access.
func TestMigrationKeepsKeysFullAccess(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	w, err := openPool(path, false)
	if err != nil {
		t.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	if err := migrateTo(ctx, w, 39); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecContext(ctx, `INSERT INTO access_keys(id, secret, description, created_at) VALUES ('LAKOLD1', 's1', 'ci', 1), ('LAKOLD2', 's2', '', 2)`); err != nil {
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

func TestAccessKeyPolicies(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	if err := db.CreateAccessKey(ctx, store.AccessKey{ID: "LAKCI", Secret: "s", Name: "ci", Preset: "AmazonEC2ContainerRegistryReadOnly"}); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateAccessKeyPolicy(ctx, "LAKCI", "", `{"Statement":[]}`); err != nil {
		t.Fatal(err)
	}
	k, err := db.AccessKey(ctx, "LAKCI")
	if err != nil || k.Name != "ci" || k.Preset != "" || k.Policy != `{"Statement":[]}` {
		t.Fatalf("after the update: %+v, %v", k, err)
	}
	if err := db.UpdateAccessKeyPolicy(ctx, "LAKNONE", "", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("updating a missing key: %v", err)
	}
	if err := db.CreateAccessKey(ctx, store.AccessKey{ID: "LAKNAMELESS", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	if k, _ := db.AccessKey(ctx, "LAKNAMELESS"); k.Name != "LAKNAMELESS" {
		t.Fatalf("a key without a name is named %q", k.Name)
	}
}

func TestResourcePolicies(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	if _, err := db.CreateRepository(ctx, store.Repository{Name: "app"}); err != nil {
		t.Fatal(err)
	}
	if reg, repo, err := db.ResourcePolicies(ctx, "app"); err != nil || reg != "" || repo != "" {
		t.Fatalf("none set: %q %q %v", reg, repo, err)
	}
	if _, err := db.RepositoryPolicy(ctx, "app"); !errors.Is(err, store.ErrRepositoryPolicyNotFound) {
		t.Fatalf("no policy: %v", err)
	}
	if _, err := db.RepositoryPolicy(ctx, "missing"); !errors.Is(err, store.ErrRepositoryNotFound) {
		t.Fatalf("no repository: %v", err)
	}
	if err := db.PutRepositoryPolicy(ctx, "missing", "{}"); !errors.Is(err, store.ErrRepositoryNotFound) {
		t.Fatalf("policy of a missing repository: %v", err)
	}
	for _, p := range []string{"repo-1", "repo-2"} {
		if err := db.PutRepositoryPolicy(ctx, "app", p); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutRegistryPolicy(ctx, "reg"); err != nil {
		t.Fatal(err)
	}
	if reg, repo, err := db.ResourcePolicies(ctx, "app"); err != nil || reg != "reg" || repo != "repo-2" {
		t.Fatalf("set: %q %q %v", reg, repo, err)
	}
	if old, err := db.DeleteRegistryPolicy(ctx); err != nil || old != "reg" {
		t.Fatalf("delete registry policy: %q %v", old, err)
	}
	if _, err := db.DeleteRegistryPolicy(ctx); !errors.Is(err, store.ErrRegistryPolicyNotFound) {
		t.Fatalf("delete again: %v", err)
	}
	if _, err := db.DeleteRepository(ctx, "app", true); err != nil {
		t.Fatal(err)
	}
	// The policy went with its repository: a new one of the same name starts without.
	if _, err := db.CreateRepository(ctx, store.Repository{Name: "app"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteRepositoryPolicy(ctx, "app"); !errors.Is(err, store.ErrRepositoryPolicyNotFound) {
		t.Fatalf("the policy outlived its repository: %v", err)
	}
}
