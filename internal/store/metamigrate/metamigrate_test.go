package metamigrate_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/metamigrate"
	"github.com/lading-registry/lading/internal/store/postgres"
	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

func stores(t testing.TB, pg *pgtest.Database) (*sqlite.DB, *postgres.DB) {
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
	// Neither run wrote to the source.
	var marks int
	if err := lite.Reader().QueryRow("SELECT count(*) FROM settings WHERE key = 'lading.migrated_from'").Scan(&marks); err != nil || marks != 0 {
		t.Fatalf("the source got %d marks (%v)", marks, err)
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

// exec runs statements on the SQLite store, failing t on the first error.
func exec(t testing.TB, lite *sqlite.DB, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	for _, s := range stmts {
		if err := lite.Tx(ctx, func(tx *sql.Tx) error { _, err := tx.ExecContext(ctx, s); return err }); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func pgCount(t *testing.T, p *postgres.DB, table string) int {
	t.Helper()
	var n int
	if err := p.Pool().QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestInterruptedCopyResumes stops a copy in the middle of a table, after some of its batches
// were committed (by an error from the batch hook, and by the context cancelled there), then
// runs it again: the rerun goes on after the last committed batch, the table is complete
// without duplicates and --verify passes. The source is not written by either run.
func TestInterruptedCopyResumes(t *testing.T) {
	db := pgtest.New(t)
	errStop := errors.New("stopped")
	for _, tc := range []struct {
		name string
		stop func(cancel context.CancelFunc) error // what the hook does to interrupt
		want error
	}{
		{"HookError", func(context.CancelFunc) error { return errStop }, errStop},
		{"ContextCancelled", func(cancel context.CancelFunc) error { cancel(); return nil }, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lite, p := stores(t, db)
			stmts := []string{
				`INSERT INTO repositories(name, created_at) VALUES ('app', 1)`,
				`INSERT INTO image_scans(repository, image_digest, scan_type, status, updated_at, image_facts) VALUES ('app', 'sha256:aa', 'ENHANCED', 'COMPLETE', 4, '{}')`,
				// What an older Lading left in a source it migrated: its own mark, not copied.
				`INSERT INTO settings(key, value) VALUES ('lading.migrated_from', '0123abcd')`,
				`INSERT INTO settings(key, value) VALUES ('scanning', '{"scanType":"ENHANCED"}')`,
			}
			for i := range 7 {
				stmts = append(stmts, fmt.Sprintf(`INSERT INTO findings(repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score, fingerprint, first_observed_at, last_observed_at, updated_at, suppressed)
					VALUES ('app', 'sha256:aa', 'ENHANCED', 'CVE-%d', 'arn:f/%d', 'ACTIVE', 'HIGH', 7.5, 'fp', 5, 5, 5, 0)`, i, i))
			}
			exec(t, lite, stmts...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			batches := map[string]int{}
			_, err := metamigrate.Copy(ctx, lite, p.Pool(), metamigrate.Options{BatchRows: 2, AfterBatch: func(table string, n int64) error {
				batches[table]++
				if table == "findings" && batches[table] == 2 {
					return tc.stop(cancel)
				}
				return nil
			}})
			if !errors.Is(err, tc.want) {
				t.Fatalf("interrupted copy: %v, want %v", err, tc.want)
			}
			if n := pgCount(t, p, "findings"); n != 4 {
				t.Fatalf("%d findings in the target after two committed batches of 2", n)
			}
			if n := pgCount(t, p, "finding_packages"); n != 0 {
				t.Fatalf("a table after findings has %d rows", n)
			}

			batches = map[string]int{}
			reps, err := metamigrate.Copy(context.Background(), lite, p.Pool(), metamigrate.Options{BatchRows: 2, Verify: true,
				AfterBatch: func(table string, n int64) error { batches[table]++; return nil }})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]metamigrate.TableReport{}
			for _, r := range reps {
				got[r.Table] = r
			}
			// Two batches (2 rows, then 1), not the four a pass over the whole table takes.
			if r := got["findings"]; r.Source != 7 || r.Copied != 3 || r.Target != 7 || !r.Verified || batches["findings"] != 2 {
				t.Fatalf("findings after the rerun: %+v in %d batches", r, batches["findings"])
			}
			if batches["repositories"] != 0 || got["repositories"].Copied != 0 {
				t.Errorf("the rerun copied the finished table repositories again (%d batches)", batches["repositories"])
			}
			if r := got["image_finding_counts"]; !r.Verified || r.Target != 1 {
				t.Errorf("image_finding_counts: %+v", r)
			}
			var high int
			if err := p.Pool().QueryRow(context.Background(), "SELECT n_high FROM image_finding_counts").Scan(&high); err != nil || high != 7 {
				t.Errorf("n_high %d (%v): findings counted twice or missed", high, err)
			}
			// The source keeps its old mark and has no new one; the target has its own.
			var v string
			if err := lite.Reader().QueryRow("SELECT value FROM settings WHERE key = 'lading.migrated_from'").Scan(&v); err != nil || v != "0123abcd" {
				t.Errorf("the source's settings were written: %q, %v", v, err)
			}
			if r := got["settings"]; r.Source != 1 || r.Target != 1 || !r.Verified {
				t.Errorf("settings: %+v", r)
			}
			if err := p.Pool().QueryRow(context.Background(), "SELECT value FROM settings WHERE key = 'lading.migrated_from'").Scan(&v); err != nil || !strings.HasPrefix(v, "sqlite-migrations:") {
				t.Errorf("the target's mark: %q, %v", v, err)
			}
		})
	}
}

// TestResumeAfterSourceChanged: rows the source gained between an interrupted run and the
// rerun, keyed below where the rerun resumes, are copied too.
func TestResumeAfterSourceChanged(t *testing.T) {
	lite, p := stores(t, pgtest.New(t))
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		exec(t, lite, fmt.Sprintf(`INSERT INTO repositories(name, created_at) VALUES ('%s', 1)`, name))
	}
	stop := errors.New("stop")
	_, err := metamigrate.Copy(context.Background(), lite, p.Pool(), metamigrate.Options{BatchRows: 2, AfterBatch: func(table string, _ int64) error {
		if table == "repositories" {
			return stop
		}
		return nil
	}})
	if !errors.Is(err, stop) || pgCount(t, p, "repositories") != 2 {
		t.Fatalf("interrupted copy: %v, %d repositories", err, pgCount(t, p, "repositories"))
	}
	exec(t, lite, `INSERT INTO repositories(name, created_at) VALUES ('aa', 2)`) // before "b", the target's last
	reps, err := metamigrate.Copy(context.Background(), lite, p.Pool(), metamigrate.Options{BatchRows: 2, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if r.Table == "repositories" && (r.Copied != 4 || r.Target != 6 || !r.Verified) {
			t.Fatalf("repositories: %+v", r)
		}
	}
}

// TestCopyLeavesCountsCompact: copying an image's findings runs PostgreSQL's counting trigger
// once per finding, rewriting the image's one count row each time; the copy must not leave
// those dead versions behind (the table is one page for one image, not one per ~80 findings).
func TestCopyLeavesCountsCompact(t *testing.T) {
	ctx := context.Background()
	lite, p := stores(t, pgtest.New(t))
	exec(t, lite,
		`INSERT INTO repositories(name, created_at) VALUES ('app', 1)`,
		`INSERT INTO image_scans(repository, image_digest, scan_type, status, updated_at, image_facts) VALUES ('app', 'sha256:aa', 'ENHANCED', 'COMPLETE', 4, '{}')`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
			INSERT INTO findings(repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score, fingerprint, first_observed_at, last_observed_at, updated_at, suppressed)
			SELECT 'app', 'sha256:aa', 'ENHANCED', 'CVE-' || i, 'arn:f/' || i, 'ACTIVE', 'HIGH', 7.5, 'fp', 5, 5, 5, 0 FROM n`,
		`INSERT INTO finding_texts(text) VALUES ('"title":"x"')`,
		`INSERT INTO finding_details(finding_id, head_id, tail_id, detail) SELECT id, 1, 1, '"d"' FROM findings`,
	)
	// A transaction of another session, open from before the copy until 300 ms after its
	// findings are copied, would keep the dead versions through the rewrite: the copy waits
	// for it to end.
	end, ended := pgtest.OlderTransaction(t, p.Pool().Config().ConnConfig.ConnString())
	progress := func(r metamigrate.TableReport) {
		if r.Table == "findings" {
			end(300 * time.Millisecond)
		}
	}
	if _, err := metamigrate.Copy(ctx, lite, p.Pool(), metamigrate.Options{Verify: true, Progress: progress}); err != nil {
		t.Fatal(err)
	}
	if err := <-ended; err != nil {
		t.Fatal(err)
	}
	var n, size int64
	if err := p.Pool().QueryRow(ctx, "SELECT (SELECT n_all FROM image_finding_counts), pg_relation_size('image_finding_counts')").Scan(&n, &size); err != nil {
		t.Fatal(err)
	}
	if n != 2000 {
		t.Errorf("image_finding_counts.n_all = %d, want 2000", n)
	}
	if size > 8192 {
		t.Errorf("image_finding_counts takes %d bytes for one row after the copy: the trigger's dead row versions were left", size)
	}
}

// TestCopyFindingPackageSets: details and package rows copied from SQLite's views into
// PostgreSQL's (0043) store a packages part shared by two findings (but for their layer) once,
// with its rows once;
// a copy interrupted within finding_packages resumes (the view then shows the rows of a later
// finding sharing a set already written) and verifies; the details read back whole.
func TestCopyFindingPackageSets(t *testing.T) {
	ctx := context.Background()
	lite, p := stores(t, pgtest.New(t))
	// Findings 1 and 2 hold the same packages, the first in a layer of each image's own.
	shared := func(layer string) string {
		return `[{"name":"openssl","version":"3.0.1","sourceLayerHash":"` + layer + `","createdBy":"RUN x"},{"name":"libssl","version":"3.0.1"}]`
	}
	stmts := []string{
		`INSERT INTO repositories(name, created_at) VALUES ('app', 1)`,
		`INSERT INTO image_scans(repository, image_digest, scan_type, status, updated_at, image_facts) VALUES ('app', 'sha256:aa', 'ENHANCED', 'COMPLETE', 4, '{}')`,
		`INSERT INTO finding_texts(text) VALUES ('"vulnerabilityId":"CVE-1"'), ('{}')`,
	}
	for i := 1; i <= 3; i++ {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO findings(repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score, fingerprint, first_observed_at, last_observed_at, updated_at, suppressed)
			VALUES ('app', 'sha256:aa', 'ENHANCED', 'CVE-%d', 'arn:f/%d', 'ACTIVE', 'HIGH', 7.5, 'fp', 5, 5, 5, 0)`, i, i))
	}
	stmts = append(stmts,
		`INSERT INTO finding_details(finding_id, head_id, tail_id, detail) VALUES (1, 1, 2, '`+shared("sha256:l1")+`'), (2, 1, 2, '`+shared("sha256:l2")+`'),
			(3, NULL, NULL, '{"finding":{"vulnerablePackages":[{"name":"odd"}]} }')`,
		`INSERT INTO finding_packages(finding_id, seq, name, version, epoch, release, arch, file_path, source_layer_hash) VALUES
			(1, 0, 'openssl', '3.0.1', 0, '', '', '', 'sha256:l1'), (1, 1, 'libssl', '3.0.1', 0, '', '', '', ''),
			(2, 0, 'openssl', '3.0.1', 0, '', '', '', 'sha256:l2'), (2, 1, 'libssl', '3.0.1', 0, '', '', '', ''),
			(3, 0, 'odd', '', 0, '', '', '', '')`,
	)
	exec(t, lite, stmts...)
	stop := errors.New("stop")
	batches := 0
	_, err := metamigrate.Copy(ctx, lite, p.Pool(), metamigrate.Options{BatchRows: 1, AfterBatch: func(table string, _ int64) error {
		if table == "finding_packages" {
			if batches++; batches == 2 {
				return stop
			}
		}
		return nil
	}})
	if !errors.Is(err, stop) {
		t.Fatalf("interrupted copy: %v", err)
	}
	reps, err := metamigrate.Copy(ctx, lite, p.Pool(), metamigrate.Options{BatchRows: 1, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if (r.Table == "finding_details" || r.Table == "finding_packages") && !r.Verified {
			t.Errorf("%s: %+v", r.Table, r)
		}
	}
	if n := pgCount(t, p, "finding_package_sets"); n != 2 {
		t.Errorf("%d package sets, want 2 (findings 1 and 2 share one)", n)
	}
	if n := pgCount(t, p, "finding_set_packages"); n != 3 {
		t.Errorf("%d package rows stored, want 3", n)
	}
	if n := pgCount(t, p, "finding_packages"); n != 5 {
		t.Errorf("%d package rows read, want 5", n)
	}
	var layer string
	if err := p.Pool().QueryRow(ctx, "SELECT source_layer_hash FROM finding_packages WHERE finding_id = 2 AND seq = 0").Scan(&layer); err != nil || layer != "sha256:l2" {
		t.Errorf("finding 2's package in layer %q, %v", layer, err)
	}
	var d string
	if err := p.Pool().QueryRow(ctx, "SELECT detail FROM finding_detail_view WHERE finding_id = 2").Scan(&d); err != nil ||
		d != `{"finding":{"vulnerabilityId":"CVE-1","vulnerablePackages":`+shared("sha256:l2")+`},"image":{}}` {
		t.Errorf("finding 2's detail %q, %v", d, err)
	}
}

// TestCopyInventoryPartKeys: the package key ids SQLite keeps per inventory part (uvarint
// deltas, 0051) arrive as PostgreSQL's int4[] (0046), verified, and find the parts there; a
// part stored before, whose keys are unknown (NULL), stays so.
func TestCopyInventoryPartKeys(t *testing.T) {
	ctx := context.Background()
	lite, p := stores(t, pgtest.New(t))
	keys := []store.PackageKey{{Ecosystem: "Debian:12", Name: "openssl"}, {Ecosystem: "npm", Name: "lodash"}}
	part := func(s string, keys ...store.PackageKey) store.InventoryPart {
		sum := sha256.Sum256([]byte(s))
		return store.InventoryPart{Hash: sum[:], Data: []byte(s), Keys: keys}
	}
	keyed, keyless := part("keyed", keys...), part("keyless")
	// Key ids far apart, so that the deltas take more than a byte.
	exec(t, lite, `INSERT INTO package_keys(id, ecosystem, name) VALUES (5, 'npm', 'left-pad'), (100000, 'npm', 'lodash')`)
	if _, err := lite.PutImageInventory(ctx, "sha256:aa", "ENHANCED", "fp", "", keys, 2, []byte("head"), []store.InventoryPart{keyed, keyless}); err != nil {
		t.Fatal(err)
	}
	exec(t, lite, `INSERT INTO inventory_parts(hash, data) VALUES (x'00', 'old')`)
	if _, err := metamigrate.Copy(ctx, lite, p.Pool(), metamigrate.Options{Verify: true}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		data string
		want string
	}{
		{"keyed", "{100000,100001}"}, // lodash, then openssl, new after the ids written above
		{"keyless", "{}"},
		{"old", "<nil>"},
	} {
		var ids *string
		if err := p.Pool().QueryRow(ctx, "SELECT key_ids::text FROM inventory_parts WHERE data = $1", []byte(tt.data)).Scan(&ids); err != nil {
			t.Fatal(err)
		}
		got := "<nil>"
		if ids != nil {
			got = *ids
		}
		if got != tt.want {
			t.Errorf("part %s: key_ids %s, want %s", tt.data, got, tt.want)
		}
	}
	hashes, err := p.InventoryPartsHolding(ctx, []store.PackageKey{{Ecosystem: "npm", Name: "lodash"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hashes {
		got = append(got, fmt.Sprintf("%x", h))
	}
	slices.Sort(got)
	if want := []string{"00", fmt.Sprintf("%x", keyed.Hash)}; !slices.Equal(got, want) {
		t.Fatalf("parts holding lodash on PostgreSQL: %v, want %v (the old part, whose keys are unknown, and the keyed one)", got, want)
	}
}
