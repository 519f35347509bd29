package sqlite

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/store"
)

// fileBytes is the database file and its WAL as they are on disk.
func fileBytes(t *testing.T, db *DB) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{db.Path(), db.Path() + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func TestReplaceSecrets(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	plain := map[string]string{"LAKONE": "plain-secret-one-0123456789", "LAKTWO": "plain-secret-two-0123456789"}
	if err := db.CreateAccessKey(ctx, store.AccessKey{ID: "LAKONE", Secret: plain["LAKONE"]}); err != nil {
		t.Fatal(err)
	}
	// One secret in the database file, the other only in the WAL.
	if _, err := db.write.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAccessKey(ctx, store.AccessKey{ID: "LAKTWO", Secret: plain["LAKTWO"]}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutSetting(ctx, "auth.token_key", "plain-setting-0123456789"); err != nil {
		t.Fatal(err)
	}
	plain["auth.token_key"] = "plain-setting-0123456789"
	before := fileBytes(t, db)
	for name, v := range plain {
		if !bytes.Contains(before, []byte(v)) {
			t.Fatalf("%s is not in the files before the replacement: the test proves nothing", name)
		}
	}

	// New values longer than the old, as ciphertexts are: a shorter one would be written over
	// the old cell and hide it from this test.
	sealed := func(s string) string { return s + strings.Repeat("x", 100) }
	n, err := db.ReplaceSecrets(ctx, []store.SecretChange{
		{AccessKeyID: "LAKONE", Old: plain["LAKONE"], New: sealed("one")},
		{AccessKeyID: "LAKTWO", Old: plain["LAKTWO"], New: sealed("two")},
		{Setting: "auth.token_key", Old: plain["auth.token_key"], New: sealed("setting")},
		{AccessKeyID: "LAKTWO", Old: "stale", New: "lost the race"},
		{AccessKeyID: "LAKNONE", Old: "", New: "no such key"},
		{Setting: "auth.none", Old: "", New: "no such setting"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("applied %d changes, want 3", n)
	}
	for id, want := range map[string]string{"LAKONE": sealed("one"), "LAKTWO": sealed("two")} {
		k, err := db.AccessKey(ctx, id)
		if err != nil || k.Secret != want {
			t.Fatalf("%s: %q %v, want %q", id, k.Secret, err, want)
		}
	}
	if v, err := db.Setting(ctx, "auth.token_key"); err != nil || v != sealed("setting") {
		t.Fatalf("setting: %q %v", v, err)
	}
	if _, err := db.Setting(ctx, "auth.none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a change of a missing setting made it: %v", err)
	}
	after := fileBytes(t, db)
	for name, v := range plain {
		if bytes.Contains(after, []byte(v)) {
			t.Errorf("the old value of %s survives in the database files", name)
		}
	}
}
