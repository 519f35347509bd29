package metamigrate_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/lading-registry/lading/internal/store/metamigrate"
	"github.com/lading-registry/lading/internal/store/postgres"
	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

func stores(t *testing.T, pg *pgtest.Database) (*sqlite.DB, *postgres.DB) {
	t.Helper()
	ctx := context.Background()
	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lite.Close() })
	p, err := postgres.Open(ctx, pg.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return lite, p
}

// TestSchemasKnown fails when a migration of either engine adds a table or a column the copy
// does not account for.
func TestSchemasKnown(t *testing.T) {
	lite, p := stores(t, pgtest.New(t))
	ctx := context.Background()
	a, err := metamigrate.SQLiteColumns(ctx, lite.Reader())
	if err != nil {
		t.Fatal(err)
	}
	b, err := metamigrate.PostgresColumns(ctx, p.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if err := metamigrate.CheckSchemas(a, b); err != nil {
		t.Fatal(err)
	}
	// And it does notice one.
	a["findings"] = append(a["findings"], "new_column")
	b["new_table"] = []string{"x"}
	if err := metamigrate.CheckSchemas(a, b); err == nil {
		t.Fatal("CheckSchemas accepted an unknown column and table")
	}
}

// TestCopyResumeVerify copies rows of several kinds (booleans, JSON, bytes, identities, a
// derived column and a trigger-built table), then copies again as a resumed run would: no
// duplicates, still verified; a target holding another registry's rows is refused.
func TestCopyResumeVerify(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	lite, p := stores(t, db)
	stmts := []string{
		`INSERT INTO repositories(name, created_at, scan_on_push) VALUES ('app', 1, 1)`,
		`INSERT INTO manifests(repository, digest, media_type, size, content, pushed_at) VALUES ('app', 'sha256:aa', 'application/vnd.oci.image.manifest.v1+json', 3, x'7b7d0a', 2)`,
		`INSERT INTO tags(repository, tag, digest, updated_at) VALUES ('app', 'v1', 'sha256:aa', 3)`,
		`INSERT INTO settings(key, value) VALUES ('scanning', '{"scanType":"ENHANCED"}')`,
		`INSERT INTO image_scans(repository, image_digest, scan_type, status, updated_at, image_facts) VALUES ('app', 'sha256:aa', 'ENHANCED', 'COMPLETE', 4, '{"architecture":"arm64"}')`,
		`INSERT INTO findings(repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score, fingerprint, first_observed_at, last_observed_at, updated_at, aliases, suppressed)
			VALUES ('app', 'sha256:aa', 'ENHANCED', 'CVE-1', 'arn:f/1', 'ACTIVE', 'HIGH', 7.5, 'fp', 5, 5, 5, '["GHSA-x", "b"]', 0)`,
		`INSERT INTO findings(repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score, fingerprint, first_observed_at, last_observed_at, updated_at, suppressed)
			VALUES ('app', 'sha256:aa', 'ENHANCED', 'CVE-2', 'arn:f/2', 'ACTIVE', 'LOW', 2, 'fp', 5, 5, 5, 1)`,
		`INSERT INTO finding_texts(text) VALUES ('"title":"x"')`,
		`INSERT INTO finding_details(finding_id, head_id, tail_id, detail) VALUES (1, 1, 1, '[]')`,
	}
	for _, s := range stmts {
		if err := lite.Tx(ctx, func(tx *sql.Tx) error { _, err := tx.ExecContext(ctx, s); return err }); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	reps, err := metamigrate.Copy(ctx, lite, p.Pool(), metamigrate.Options{Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]metamigrate.TableReport{}
	for _, r := range reps {
		got[r.Table] = r
	}
	if r := got["findings"]; r.Copied != 2 || !r.Verified {
		t.Fatalf("findings: %+v", r)
	}
	if r := got["image_finding_counts"]; r.Target != 1 || !r.Verified {
		t.Fatalf("image_finding_counts (the suppressed finding not counted): %+v", r)
	}
	var arch string
	if err := p.Pool().QueryRow(ctx, "SELECT architecture FROM image_scans").Scan(&arch); err != nil || arch != "arm64" {
		t.Fatalf("architecture %q, %v", arch, err)
	}
	// A rerun (as after an interruption) copies nothing twice.
	reps, err = metamigrate.Copy(ctx, lite, p.Pool(), metamigrate.Options{Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if r.Copied != 0 {
			t.Errorf("rerun copied %d rows of %s", r.Copied, r.Table)
		}
	}
	// The next finding PostgreSQL makes gets a new id.
	var id int64
	if err := p.Pool().QueryRow(ctx, `INSERT INTO findings(repository, image_digest, scan_type, vulnerability_id, arn, status, severity, fingerprint, first_observed_at, last_observed_at, updated_at)
		VALUES ('app', 'sha256:aa', 'ENHANCED', 'CVE-3', 'arn:f/3', 'ACTIVE', 'LOW', 'fp', 5, 5, 5) RETURNING id`).Scan(&id); err != nil || id != 3 {
		t.Fatalf("new finding id %d, %v", id, err)
	}
	// Another registry into the same target: refused.
	other, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "other.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := metamigrate.Copy(ctx, other, p.Pool(), metamigrate.Options{}); !errors.Is(err, metamigrate.ErrOtherRegistry) {
		t.Fatalf("copy of another registry: %v", err)
	}
}
