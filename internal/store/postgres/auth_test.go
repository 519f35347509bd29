package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/postgres"
	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
)

// testReplaceSecrets: the changes whose old value is still stored apply, and the old values
// are gone from the tables' files afterwards (read from the server's data directory: the test
// server runs on this machine, as in CI).
func testReplaceSecrets(t *testing.T, pg *pgtest.Database) {
	ctx := context.Background()
	url := pg.Schema(t)
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// tableBytes is what the files of the two tables hold, their buffers written out first.
	tableBytes := func() []byte {
		t.Helper()
		if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
			t.Fatal(err)
		}
		var dataDir string
		if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&dataDir); err != nil {
			t.Fatal(err)
		}
		var all []byte
		for _, table := range []string{"access_keys", "settings"} {
			var rel string
			if err := conn.QueryRow(ctx, "SELECT pg_relation_filepath($1::regclass)", table).Scan(&rel); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dataDir, rel))
			if err != nil {
				t.Fatalf("the server's table file (this test reads it on the server's machine): %v", err)
			}
			all = append(all, b...)
		}
		return all
	}

	plain := map[string]string{"LAKONE": "plain-secret-one-0123456789", "LAKTWO": "plain-secret-two-0123456789", "auth.token_key": "plain-setting-0123456789"}
	for _, id := range []string{"LAKONE", "LAKTWO"} {
		if err := db.CreateAccessKey(ctx, store.AccessKey{ID: id, Secret: plain[id]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutSetting(ctx, "auth.token_key", plain["auth.token_key"]); err != nil {
		t.Fatal(err)
	}
	before := tableBytes()
	for name, v := range plain {
		if !bytes.Contains(before, []byte(v)) {
			t.Fatalf("%s is not in the table files before the replacement: the test proves nothing", name)
		}
	}
	sealed := func(s string) string { return s + strings.Repeat("x", 100) }
	// A transaction of another session, open when the replacement commits, would keep the old
	// versions in the rewritten files: ReplaceSecrets waits for it (it ends 300 ms in).
	end, ended := pgtest.OlderTransaction(t, url)
	end(300 * time.Millisecond)
	n, err := db.ReplaceSecrets(ctx, []store.SecretChange{
		{AccessKeyID: "LAKONE", Old: plain["LAKONE"], New: sealed("one")},
		{AccessKeyID: "LAKTWO", Old: plain["LAKTWO"], New: sealed("two")},
		{Setting: "auth.token_key", Old: plain["auth.token_key"], New: sealed("setting")},
		{AccessKeyID: "LAKTWO", Old: "stale", New: "lost the race"},
		{AccessKeyID: "LAKNONE", Old: "", New: "no such key"},
		{Setting: "auth.none", Old: "", New: "no such setting"},
	})
	if err != nil || n != 3 {
		t.Fatalf("applied %d changes (%v), want 3", n, err)
	}
	if err := <-ended; err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"LAKONE": sealed("one"), "LAKTWO": sealed("two")} {
		if k, err := db.AccessKey(ctx, id); err != nil || k.Secret != want {
			t.Fatalf("%s: %q %v, want %q", id, k.Secret, err, want)
		}
	}
	if v, err := db.Setting(ctx, "auth.token_key"); err != nil || v != sealed("setting") {
		t.Fatalf("setting: %q %v", v, err)
	}
	if _, err := db.Setting(ctx, "auth.none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a change of a missing setting made it: %v", err)
	}
	after := tableBytes()
	for name, v := range plain {
		if bytes.Contains(after, []byte(v)) {
			t.Errorf("the old value of %s survives in the table files", name)
		}
	}
}
