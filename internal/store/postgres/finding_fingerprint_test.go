package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
)

// TestMigrateShortensFingerprints: fingerprints written before 0047 with the whole SHA-256 (64
// lowercase hex digits) keep their first 16; others are kept as written.
func TestMigrateShortensFingerprints(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.New(t).EmptySchema(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := migrate(ctx, pool, 46); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("0123456789abcdef", 4)
	if _, err := pool.Exec(ctx, `INSERT INTO findings(repository, image_digest, scan_type, vulnerability_id, arn, status, severity, fingerprint,
			first_observed_at, last_observed_at, updated_at)
		SELECT 'app', 'sha256:a', 'ENHANCED', v, 'arn:' || v, 'ACTIVE', 'HIGH', fp, 1, 1, 1
		FROM (VALUES ('CVE-1', $1), ('CVE-2', 'fp'), ('CVE-3', upper($1)), ('CVE-4', $1 || '0')) x(v, fp)`, long); err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, pool, 47); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT vulnerability_id || ' ' || fingerprint FROM findings ORDER BY vulnerability_id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"CVE-1 " + long[:16], "CVE-2 fp", "CVE-3 " + strings.ToUpper(long), "CVE-4 " + long + "0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fingerprints %q, want %q", got, want)
	}
}
