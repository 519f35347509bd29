package postgres

import (
	"context"
	"math"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
)

// TestMigrateFindingPackageSets: findings written under 0042 (details split and whole, findings
// sharing a packages part but for the first package's layer, a second package in the same
// layer with another history step, their package rows) read the same details and package rows
// after 0043 moves them into sets, each distinct body stored once with its rows once.
func TestMigrateFindingPackageSets(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.New(t).EmptySchema(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := migrate(ctx, pool, 42); err != nil {
		t.Fatal(err)
	}
	const shared = `[{"name":"openssl","version":"3.0.1","sourceLayerHash":"sha256:l1"},{"name":"libssl","version":"3.0.1","epoch":1}]`
	const sharedL9 = `[{"name":"openssl","version":"3.0.1","sourceLayerHash":"sha256:l9"},{"name":"libssl","version":"3.0.1","epoch":1}]`
	const steps = `[{"name":"a","sourceLayerHash":"sha256:l1","createdBy":"x \"q\""},{"name":"b","sourceLayerHash":"sha256:l1","createdBy":"y"}]`
	const stepsL7 = `[{"name":"a","sourceLayerHash":"sha256:l7","createdBy":"x \"q\""},{"name":"b","sourceLayerHash":"sha256:l1","createdBy":"y"}]`
	for _, s := range []string{
		`INSERT INTO findings(repository, image_digest, scan_type, vulnerability_id, arn, status, severity, fingerprint, first_observed_at, last_observed_at, updated_at)
			SELECT 'app', d, 'ENHANCED', v, d || v, 'ACTIVE', 'HIGH', 'fp', 1, 1, 1
			FROM (VALUES ('sha256:a', 'CVE-1'), ('sha256:b', 'CVE-1'), ('sha256:b', 'CVE-2'), ('sha256:c', 'CVE-3'),
				('sha256:d', 'CVE-1'), ('sha256:e', 'CVE-5'), ('sha256:f', 'CVE-5')) x(d, v)`,
		`INSERT INTO finding_texts(text) VALUES ('"vulnerabilityId":"CVE-1"'), ('{"architecture":"amd64"}'), ('"vulnerabilityId":"CVE-2"')`,
		// Findings 1 and 2 share their packages part, 3 has one of its own, 4 is stored whole.
		`INSERT INTO finding_details(finding_id, head_id, tail_id, detail) VALUES (1, 1, 2, '` + shared + `'), (2, 1, 2, '` + shared + `'),
			(3, 3, 2, '[{"name":"zlib","version":"1"}]'), (4, NULL, NULL, '{"finding":{"vulnerablePackages":[{"name":"odd"}]} }'),
			(5, 1, 2, '` + sharedL9 + `'), (6, 3, 2, '` + steps + `'), (7, 3, 2, '` + stepsL7 + `')`,
		`INSERT INTO finding_packages(finding_id, seq, name, version, epoch, release, arch, file_path, source_layer_hash) VALUES
			(1, 0, 'openssl', '3.0.1', 0, '', '', '', 'sha256:l1'), (1, 1, 'libssl', '3.0.1', 1, '', '', '', ''),
			(2, 0, 'openssl', '3.0.1', 0, '', '', '', 'sha256:l1'), (2, 1, 'libssl', '3.0.1', 1, '', '', '', ''),
			(3, 0, 'zlib', '1', 0, '', '', '', ''), (4, 0, 'odd', '', 0, '', '', '', ''),
			(5, 0, 'openssl', '3.0.1', 0, '', '', '', 'sha256:l9'), (5, 1, 'libssl', '3.0.1', 1, '', '', '', ''),
			(6, 0, 'a', '', 0, '', '', '', 'sha256:l1'), (6, 1, 'b', '', 0, '', '', '', 'sha256:l1'),
			(7, 0, 'a', '', 0, '', '', '', 'sha256:l7'), (7, 1, 'b', '', 0, '', '', '', 'sha256:l1')`,
	} {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	read := func(q string) []string {
		t.Helper()
		rows, err := pool.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	const details = `SELECT finding_id || ' ' || detail FROM finding_detail_view ORDER BY finding_id`
	const packages = `SELECT concat_ws(' ', finding_id, seq, name, version, epoch, release, arch, file_path, source_layer_hash, reachability)
		FROM finding_packages ORDER BY finding_id, seq`
	const parts = `SELECT concat_ws(' ', finding_id, head_id, tail_id, detail) FROM finding_details ORDER BY finding_id`
	before := map[string][]string{"details": read(details), "packages": read(packages), "parts": read(parts)}
	if len(before["details"]) != 7 || len(before["packages"]) != 12 {
		t.Fatalf("before: %q", before)
	}
	if err := migrate(ctx, pool, math.MaxInt); err != nil {
		t.Fatal(err)
	}
	after := map[string][]string{"details": read(details), "packages": read(packages), "parts": read(parts)}
	for k := range before {
		if len(before[k]) != len(after[k]) {
			t.Fatalf("%s: before %q, after %q", k, before[k], after[k])
		}
		for i := range before[k] {
			if before[k][i] != after[k][i] {
				t.Errorf("%s row %d: before %q, after %q", k, i, before[k][i], after[k][i])
			}
		}
	}
	var sets, rows, layers int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM finding_package_sets), (SELECT count(*) FROM finding_set_packages),
		(SELECT count(*) FROM finding_layers)`).Scan(&sets, &rows, &layers); err != nil {
		t.Fatal(err)
	}
	if sets != 4 || rows != 6 || layers != 4 {
		t.Errorf("%d sets with %d package rows, %d layer texts; want 4 with 6 (findings 1, 2 and 5 share one, 6 and 7 one), 4", sets, rows, layers)
	}
}
