package postgres

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
)

// findingColumns are the columns findings had as a table (0022 to 0051), which the view of 0052
// keeps.
const findingColumns = `id, repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score, fingerprint,
	package_keys, first_observed_at, last_observed_at, updated_at, title, source, vendor_severity, fix_available, aliases, related,
	suppressed, head_id, tail_id, set_id, layer_id`

// TestMigrateToFindingRows: 0052 moves the findings into finding_rows and its dictionaries, and
// the findings view reads every column back as the table held it, for ARNs, package keys and
// facts of every shape; the counts stay; ids go on past the old table's; writes through the view
// keep working and keep the counts.
func TestMigrateToFindingRows(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.New(t).EmptySchema(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := migrate(ctx, pool, 51); err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("0123456789abcdef", 2)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`INSERT INTO findings(repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score, fingerprint, package_keys,
			first_observed_at, last_observed_at, updated_at, title, source, vendor_severity, fix_available, aliases, related, suppressed,
			head_id, tail_id, set_id, layer_id)
		VALUES
		('app', 'sha256:a', 'ENHANCED', 'CVE-1', 'arn:aws:inspector2:r:1:finding/' || $1, 'ACTIVE', 'HIGH', 7.5, 'fp1', E'npm\tleft-pad',
			1, 2, 3, 'one', 'NVD', 'HIGH', 'YES', '["GHSA-1"]', '[]', false, 1, 2, 3, 4),
		('app', 'sha256:a', 'ENHANCED', 'CVE-2', 'arn:other', 'ACTIVE', 'CRITICAL', 9.8, 'fp2', NULL,
			1, 2, 3, 'two', 'NVD', '', 'NO', '[]', '["x"]', true, NULL, NULL, NULL, NULL),
		('app', 'sha256:a', 'BASIC', 'CVE-1', 'arn:aws:inspector2:r:1:finding/' || upper($1), 'CLOSED', 'LOW', 0, 'fp3', '',
			1, 2, 3, 'one', 'NVD', 'HIGH', 'PARTIAL', '["GHSA-1"]', '[]', false, 5, 6, 7, NULL),
		('web', 'sha256:b', 'ENHANCED', 'CVE-1', 'arn:aws:inspector2:r:1:finding/' || reverse($1), 'ACTIVE', 'HIGH', 7.5, 'fp4',
			E'npm\tleft-pad', 4, 5, 6, 'one', 'NVD', 'HIGH', 'YES', '["GHSA-1"]', '[]', false, 1, 2, 3, 4),
		('web', 'sha256:b', 'ENHANCED', 'CVE-3', 'short', 'ACTIVE', 'MEDIUM', 5, 'fp5', E'npm\tleft-pad', 4, 5, 6, DEFAULT, DEFAULT,
			DEFAULT, DEFAULT, DEFAULT, DEFAULT, DEFAULT, NULL, NULL, NULL, NULL),
		('web', 'sha256:b', 'ENHANCED', 'CVE-9', 'arn:gone', 'ACTIVE', 'LOW', 1, 'fp9', NULL, 4, 5, 6, 'gone', '', '', 'NO', '[]', '[]',
			false, NULL, NULL, NULL, NULL)`, key)
	// The highest id is deleted: the migration must not hand it out again.
	var gone int64
	if err := pool.QueryRow(ctx, "DELETE FROM findings WHERE vulnerability_id = 'CVE-9' RETURNING id").Scan(&gone); err != nil {
		t.Fatal(err)
	}
	snapshot := func(query string) []string {
		t.Helper()
		rows, err := pool.Query(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	findingsQuery := "SELECT (" + findingColumns + ")::text FROM findings ORDER BY id"
	countsQuery := "SELECT c::text FROM image_finding_counts c ORDER BY repository, image_digest, scan_type"
	before, beforeCounts := snapshot(findingsQuery), snapshot(countsQuery)
	if len(before) != 5 || len(beforeCounts) != 2 {
		t.Fatalf("set up %d findings and %d count rows, want 5 and 2", len(before), len(beforeCounts))
	}

	if err := migrate(ctx, pool, math.MaxInt); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(findingsQuery); !slices.Equal(after, before) {
		t.Errorf("findings after the migration:\n%s\nwant\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
	if after := snapshot(countsQuery); !slices.Equal(after, beforeCounts) {
		t.Errorf("counts after the migration %q, want %q", after, beforeCounts)
	}
	for table, want := range map[string]int{"scan_targets": 3, "finding_vulnerabilities": 3, "finding_key_sets": 2, "finding_facts": 3,
		"finding_arn_prefixes": 4} {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s holds %d rows, want %d", table, n, want)
		}
	}
	// Only the ARN ending with 32 lowercase hex digits keeps them as its key.
	if got := snapshot("SELECT encode(arn_key, 'hex') FROM finding_rows ORDER BY id"); !slices.Equal(got,
		[]string{key, "", "", reverse(key), ""}) {
		t.Errorf("ARN keys %q", got)
	}

	// Writes through the view: a new finding takes the defaults and an id past every old one; an
	// update changes facts, image and suppression; a delete removes the row; the counts follow.
	var id int64
	if err := pool.QueryRow(ctx, `INSERT INTO findings(repository, image_digest, scan_type, vulnerability_id, arn, status, severity,
			fingerprint, first_observed_at, last_observed_at, updated_at) VALUES ('new', 'sha256:c', 'ENHANCED', 'CVE-4', 'arn:new', 'ACTIVE',
			'HIGH', 'fp6', 7, 7, 7) RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id <= gone {
		t.Errorf("new finding has id %d, not past %d (deleted before the migration)", id, gone)
	}
	exec(`UPDATE findings SET title = 'changed', aliases = '["CVE-X"]', repository = 'moved', suppressed = true
		WHERE vulnerability_id = 'CVE-1' AND repository = 'web'`)
	exec(`UPDATE findings SET suppressed = false WHERE vulnerability_id = 'CVE-2'`)
	exec(`DELETE FROM findings WHERE vulnerability_id = 'CVE-3'`)
	got := snapshot(`SELECT concat_ws(' ', repository, vulnerability_id, title, aliases, suppressed, fix_available, score) FROM findings
		ORDER BY id`)
	want := []string{"app CVE-1 one [\"GHSA-1\"] f YES 7.5", "app CVE-2 two [] f NO 9.8", "app CVE-1 one [\"GHSA-1\"] f PARTIAL 0",
		"moved CVE-1 changed [\"CVE-X\"] t YES 7.5", "new CVE-4  [] f NO 0"}
	if !slices.Equal(got, want) {
		t.Errorf("findings after writes through the view:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Facts whose texts would run together the same way are two fact sets.
	exec(`INSERT INTO findings(repository, image_digest, scan_type, vulnerability_id, arn, status, severity, fingerprint, first_observed_at,
			last_observed_at, updated_at, title, source) VALUES
		('new', 'sha256:c', 'ENHANCED', 'CVE-5', 'arn:5', 'CLOSED', 'LOW', 'fp', 1, 1, 1, E'a\x01b', 'c'),
		('new', 'sha256:c', 'ENHANCED', 'CVE-6', 'arn:6', 'CLOSED', 'LOW', 'fp', 1, 1, 1, 'a', E'b\x01c'),
		('new', 'sha256:c', 'ENHANCED', 'CVE-7', 'arn:7', 'CLOSED', 'LOW', 'fp', 1, 1, 1, '1:a', 'c')`)
	if got := snapshot(`SELECT vulnerability_id || ' ' || title || '|' || source FROM findings
		WHERE vulnerability_id IN ('CVE-5', 'CVE-6', 'CVE-7') ORDER BY 1`); !slices.Equal(got,
		[]string{"CVE-5 a\x01b|c", "CVE-6 a|b\x01c", "CVE-7 1:a|c"}) {
		t.Errorf("facts read back as %q", got)
	}
	exec(`DELETE FROM findings WHERE vulnerability_id IN ('CVE-5', 'CVE-6', 'CVE-7')`)
	// The counts of every image as counted afresh from the findings.
	recount := snapshot(`SELECT concat_ws(' ', repository, image_digest, scan_type, count(*)) FROM findings
		WHERE status = 'ACTIVE' AND NOT suppressed GROUP BY repository, image_digest, scan_type ORDER BY 1`)
	kept := snapshot(`SELECT concat_ws(' ', repository, image_digest, scan_type, n_all) FROM image_finding_counts ORDER BY 1`)
	if !slices.Equal(kept, recount) || len(kept) != 2 {
		t.Errorf("counts kept %q, counted %q", kept, recount)
	}
}

func reverse(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}
