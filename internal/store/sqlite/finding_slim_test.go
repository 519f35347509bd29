package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
)

// TestMigrationShortensFingerprints: findings written before 0052 with the whole SHA-256 (as
// bytes, and as hex text) read back with its first 16 hex digits; other fingerprints as written.
func TestMigrationShortensFingerprints(t *testing.T) {
	ctx := context.Background()
	w, reopen := storeAt(t, 51)
	long := strings.Repeat("0123456789abcdef", 4)
	if _, err := w.ExecContext(ctx, `INSERT INTO findings(id, repository, image_digest, scan_type, vulnerability_id, arn, status, severity,
			fingerprint, first_observed_at, last_observed_at, updated_at) VALUES
			(1, 'a', 'sha256:1', 'ENHANCED', 'CVE-1', 'arn:1', 'ACTIVE', 'LOW', ?1, 1, 1, 1),
			(2, 'a', 'sha256:1', 'ENHANCED', 'CVE-2', 'arn:2', 'ACTIVE', 'LOW', 'fp', 1, 1, 1),
			(3, 'a', 'sha256:1', 'ENHANCED', 'CVE-3', 'arn:3', 'ACTIVE', 'LOW', upper(?1), 1, 1, 1)`, long); err != nil {
		t.Fatal(err)
	}
	// A whole fingerprint kept as text (written before 0048's conversion).
	if _, err := w.ExecContext(ctx, `INSERT INTO findings(id, repository, image_digest, scan_type, vulnerability_id, arn, status, severity,
			fingerprint, first_observed_at, last_observed_at, updated_at) VALUES (4, 'a', 'sha256:1', 'ENHANCED', 'CVE-4', 'arn:4', 'ACTIVE', 'LOW', 'x', 1, 1, 1);
		UPDATE finding_rows SET fingerprint = ? WHERE id = 4`, long); err != nil {
		t.Fatal(err)
	}
	db := reopen()
	got, err := queryAll(ctx, db.read, func(r rowScanner) (string, error) {
		var id int
		var fp string
		err := r.Scan(&id, &fp)
		return fmt.Sprint(id, " ", fp), err
	}, `SELECT id, fingerprint FROM findings ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1 " + long[:16], "2 fp", "3 " + strings.ToUpper(long), "4 " + long[:16]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fingerprints %q, want %q", got, want)
	}
	var bytes int
	if err := db.read.QueryRowContext(ctx, `SELECT sum(length(fingerprint)) FROM finding_rows WHERE id IN (1, 4)`).Scan(&bytes); err != nil || bytes != 16 {
		t.Fatalf("stored %d bytes (%v), want 8 each", bytes, err)
	}
}

// TestMigrationSharesPackageKeys: package keys written before 0053 read back the same after it
// stores each distinct list once; writes through the view after it, and gc, keep that so.
func TestMigrationSharesPackageKeys(t *testing.T) {
	ctx := context.Background()
	w, reopen := storeAt(t, 52)
	if _, err := w.ExecContext(ctx, `INSERT INTO findings(id, repository, image_digest, scan_type, vulnerability_id, arn, status, severity,
			fingerprint, package_keys, first_observed_at, last_observed_at, updated_at) VALUES
			(1, 'a', 'sha256:1', 'ENHANCED', 'CVE-1', 'arn:1', 'ACTIVE', 'LOW', 'fp', 'npm'||char(9)||'a', 1, 1, 1),
			(2, 'b', 'sha256:2', 'ENHANCED', 'CVE-1', 'arn:2', 'ACTIVE', 'LOW', 'fp', 'npm'||char(9)||'a', 1, 1, 1),
			(3, 'b', 'sha256:2', 'ENHANCED', 'CVE-2', 'arn:3', 'ACTIVE', 'LOW', 'fp', NULL, 1, 1, 1),
			(4, 'b', 'sha256:2', 'ENHANCED', 'CVE-3', 'arn:4', 'ACTIVE', 'LOW', 'fp', 'npm'||char(9)||'a'||char(10)||'pypi'||char(9)||'b', 1, 1, 1),
			(5, 'b', 'sha256:2', 'ENHANCED', 'CVE-4', 'arn:5', 'ACTIVE', 'LOW', 'fp', '12', 1, 1, 1)`); err != nil {
		t.Fatal(err)
	}
	read := func(db *DB) string {
		t.Helper()
		got, err := queryAll(ctx, db.read, func(r rowScanner) (string, error) {
			var id int
			var keys sql.NullString
			err := r.Scan(&id, &keys)
			return fmt.Sprintf("%d %q %v", id, keys.String, keys.Valid), err
		}, `SELECT id, package_keys FROM findings ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(got, "; ")
	}
	sets := func(db *DB) int {
		t.Helper()
		var n int
		if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM finding_key_sets`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const want = `1 "npm\ta" true; 2 "npm\ta" true; 3 "" false; 4 "npm\ta\npypi\tb" true; 5 "12" true`
	db := reopen()
	if got := read(db); got != want {
		t.Fatalf("after the migration:\n%s\nwant\n%s", got, want)
	}
	if n := sets(db); n != 3 {
		t.Fatalf("%d key sets, want 3", n)
	}
	// Through the view's triggers: a new list, and a finding moved to an existing one.
	for _, q := range []string{
		`INSERT INTO findings(id, repository, image_digest, scan_type, vulnerability_id, arn, status, severity, fingerprint, package_keys,
			first_observed_at, last_observed_at, updated_at) VALUES (6, 'c', 'sha256:3', 'ENHANCED', 'CVE-9', 'arn:6', 'ACTIVE', 'LOW', 'fp', 'go'||char(9)||'x', 1, 1, 1)`,
		`UPDATE findings SET package_keys = 'npm'||char(9)||'a' WHERE id = 4`,
	} {
		if _, err := db.write.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	const want2 = `1 "npm\ta" true; 2 "npm\ta" true; 3 "" false; 4 "npm\ta" true; 5 "12" true; 6 "go\tx" true`
	if got := read(db); got != want2 {
		t.Fatalf("after writes:\n%s\nwant\n%s", got, want2)
	}
	if _, err := db.PruneFindingPackageSets(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got, n := read(db), sets(db); got != want2 || n != 3 {
		t.Fatalf("after gc: %d key sets (want 3: npm a, 12, go x), %s", n, got)
	}
}

// TestFindingsByARNUsesIndex: FindingsByARN finds rows through finding_rows_arn, the index of
// the ARN keys' first bytes (0053), not by reading every finding.
func TestFindingsByARNUsesIndex(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir()+"/meta.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	args := []any{"ENHANCED", []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8}, "arn:a", "arn:b"}
	plan, err := queryAll(ctx, db.read, func(r rowScanner) (string, error) {
		var id, parent, unused int
		var detail string
		err := r.Scan(&id, &parent, &unused, &detail)
		return detail, err
	}, "EXPLAIN QUERY PLAN "+findingsByARNQuery(2), args...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(plan, "\n"), "finding_rows_arn") {
		t.Fatalf("plan does not use finding_rows_arn:\n%s", strings.Join(plan, "\n"))
	}
}

// TestMigrationCodesStatusAndSeverity: statuses and severities written before 0053 read back the
// same after it codes them, the counts its triggers keep are unchanged by the migration, and
// writes after it (through the view and the scanner's statements) count as before.
func TestMigrationCodesStatusAndSeverity(t *testing.T) {
	ctx := context.Background()
	w, reopen := storeAt(t, 52)
	var values []string
	for i, sv := range []struct{ status, severity string }{
		{"ACTIVE", "CRITICAL"}, {"ACTIVE", "HIGH"}, {"ACTIVE", "MEDIUM"}, {"ACTIVE", "LOW"}, {"ACTIVE", "INFORMATIONAL"},
		{"ACTIVE", "UNDEFINED"}, {"ACTIVE", "UNTRIAGED"}, {"CLOSED", "HIGH"}, {"SOMETHING", "LOW"}, {"ACTIVE", "\x01"},
	} {
		values = append(values, fmt.Sprintf("(%d, 'a', 'sha256:%d', 'ENHANCED', 'CVE-%d', 'arn:%d', '%s', '%s', 'fp', 1, 1, %d)",
			i+1, i%3, i, i, sv.status, sv.severity, 86400000*(i+1)))
	}
	if _, err := w.ExecContext(ctx, `INSERT INTO findings(id, repository, image_digest, scan_type, vulnerability_id, arn, status, severity,
			fingerprint, first_observed_at, last_observed_at, updated_at) VALUES `+strings.Join(values, ", ")); err != nil {
		t.Fatal(err)
	}
	const (
		findingsQ = `SELECT id || ' ' || status || ' ' || severity FROM findings ORDER BY id`
		countsQ   = `SELECT 'image ' || image_digest || ':' || n_all || n_critical || n_high || n_medium || n_low || n_informational || n_undefined
			FROM image_finding_counts UNION ALL SELECT 'vuln ' || vulnerability_id || ':' || n_all || n_critical || n_high || n_medium
			FROM vulnerability_finding_counts UNION ALL SELECT 'day ' || day || ':' || opened || closed FROM finding_days ORDER BY 1`
	)
	str := func(r rowScanner) (string, error) {
		var s string
		return s, r.Scan(&s)
	}
	var before [2][]string
	for i, q := range []string{findingsQ, countsQ} {
		got, err := queryAll(ctx, w, str, q)
		if err != nil {
			t.Fatal(err)
		}
		before[i] = got
	}
	db := reopen()
	for i, q := range []string{findingsQ, countsQ} {
		got, err := queryAll(ctx, db.read, str, q)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(before[i]) {
			t.Fatalf("%s after the migration:\n%q\nwant\n%q", q, got, before[i])
		}
	}
	var coded int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM finding_rows WHERE typeof(status) = 'blob' AND typeof(severity) = 'blob'`).Scan(&coded); err != nil || coded != 7 {
		t.Fatalf("%d rows coded (%v), want 7", coded, err)
	}
	// Closing a finding, reopening another, changing a severity, deleting one: the counts follow
	// as a store written from scratch keeps them.
	for _, q := range []string{
		`UPDATE findings SET status = 'CLOSED', updated_at = 86400000 * 20 WHERE id = 1`,
		`UPDATE findings SET status = 'ACTIVE' WHERE id = 8`,
		`UPDATE findings SET severity = 'LOW' WHERE id = 2`,
		`DELETE FROM findings WHERE id = 3`,
	} {
		if _, err := db.write.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	after, err := queryAll(ctx, db.read, str, countsQ)
	if err != nil {
		t.Fatal(err)
	}
	fresh, reopenFresh := storeAt(t, 52)
	if _, err := fresh.ExecContext(ctx, `INSERT INTO findings(id, repository, image_digest, scan_type, vulnerability_id, arn, status, severity,
			fingerprint, first_observed_at, last_observed_at, updated_at) VALUES `+strings.Join(values, ", ")); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE findings SET status = 'CLOSED', updated_at = 86400000 * 20 WHERE id = 1`,
		`UPDATE findings SET status = 'ACTIVE' WHERE id = 8`,
		`UPDATE findings SET severity = 'LOW' WHERE id = 2`,
		`DELETE FROM findings WHERE id = 3`,
	} {
		if _, err := fresh.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	want, err := queryAll(ctx, reopenFresh().read, str, countsQ)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(after) != fmt.Sprint(want) {
		t.Fatalf("counts after writes:\n%q\nwant (written before 0053)\n%q", after, want)
	}
}
