package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/suppression"
)

// rowsAsText reads every row of query, each value with its Go type (int64, float64, string,
// []byte, nil), so that a value read back as another type, or a float one bit off, differs.
func rowsAsText(t *testing.T, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string) []string {
	t.Helper()
	rows, err := q.QueryContext(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i, v := range vals {
			if f, ok := v.(float64); ok {
				v = fmt.Sprintf("%v(%x)", f, math.Float64bits(f))
			}
			fmt.Fprintf(&b, "%s=%T:%v ", cols[i], v, v)
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

const day = 86400000

// codesFindings are findings written through the view before 0055: scores of tenths and not,
// fix_available of each kind, times equal and apart, CLOSED findings over several days.
var codesFindings = func() string {
	var values []string
	for i, c := range []struct {
		status, fix string
		score       string
		first       int64
		last, upd   int64 // after first
	}{
		{"ACTIVE", "'YES'", "9.8", 3 * day, 0, 0},
		{"ACTIVE", "'NO'", "0", 3*day + 5, 0, 7},
		{"ACTIVE", "'PARTIAL'", "10", 1, 2 * day, day},
		{"CLOSED", "'YES'", "5.55", 2*day + 3, 4 * day, 3*day + 1},
		{"CLOSED", "'NO'", "7.25", 4 * day, 0, 0},
		{"ACTIVE", "'MAYBE'", "1e300", 5 * day, 1, 0},
		{"ACTIVE", "NULL", "-2.5", 5 * day, 0, day},
		{"CLOSED", "'PARTIAL'", "0.1", 6 * day, day, 2 * day},
		{"ACTIVE", "''", "3", 1700000000000, 123456, 0},
		{"ACTIVE", "'YES'", "123456789.1", 1700000000000, 0, -5},
	} {
		fix := c.fix
		if fix == "NULL" {
			fix = "coalesce(NULL, 'NO')"
		}
		values = append(values, fmt.Sprintf("(%d, 'r%d', 'sha256:%d', 'ENHANCED', 'CVE-%d', 'arn:%d', '%s', 'HIGH', %s, 'fp', %d, %d, %d, %s, 'T%d', '[\"A\"]')",
			i+1, i%2, i%3, i%4, i, c.status, c.score, c.first, c.first+c.last, c.first+c.upd, fix, i%3))
	}
	return `INSERT INTO findings(id, repository, image_digest, scan_type, vulnerability_id, arn, status, severity, score, fingerprint,
		first_observed_at, last_observed_at, updated_at, fix_available, title, aliases) VALUES ` + strings.Join(values, ", ")
}()

// codesCountsQ reads the counts the triggers keep from finding_rows.
const codesCountsQ = `SELECT 'image', repository, image_digest, n_all, n_critical, n_high, n_medium, n_low, n_informational, n_undefined
		FROM image_finding_counts
	UNION ALL SELECT 'vuln', vulnerability_id, title, n_all, n_critical, n_high, n_medium, n_fix, aliases, scan_type FROM vulnerability_finding_counts
	UNION ALL SELECT 'day', scan_type, day, opened, closed, 0, 0, 0, 0, 0 FROM finding_days ORDER BY 1, 2, 3, 4`

// codesWrites change findings through the view and finding_rows' own columns after the
// migration: each moves a count (closing, reopening, a fix, a day closed, a deletion).
var codesWrites = []string{
	`UPDATE findings SET status = 'CLOSED', updated_at = 9 * 86400000 WHERE id = 1`,
	`UPDATE findings SET status = 'ACTIVE' WHERE id = 4`,
	`UPDATE findings SET fix_available = 'NO' WHERE id = 3`,
	`UPDATE findings SET fix_available = 'YES', score = 7.25 WHERE id = 2`,
	`UPDATE findings SET updated_at = 20 * 86400000 WHERE id = 8`,
	`UPDATE findings SET first_observed_at = 1 WHERE id = 5`,
	`DELETE FROM findings WHERE id = 6`,
}

// TestMigrationCodesScoresTimesAndFix: findings written before 0055 read back through the view
// exactly as before (values and types) after it codes scores, times and fix_available; the
// counts its triggers keep are unchanged by it; and writes after it count as in a store that
// never had it done (0055 applied to an empty store, the same writes after).
func TestMigrationCodesScoresTimesAndFix(t *testing.T) {
	ctx := context.Background()
	w, reopen := storeAt(t, 53)
	if _, err := w.ExecContext(ctx, codesFindings); err != nil {
		t.Fatal(err)
	}
	const findingsQ = `SELECT * FROM findings ORDER BY id`
	beforeRows, beforeCounts := rowsAsText(t, w, findingsQ), rowsAsText(t, w, codesCountsQ)
	db := reopen()
	if got := rowsAsText(t, db.read, findingsQ); strings.Join(got, "\n") != strings.Join(beforeRows, "\n") {
		t.Fatalf("findings after the migration:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(beforeRows, "\n"))
	}
	if got := rowsAsText(t, db.read, codesCountsQ); strings.Join(got, "\n") != strings.Join(beforeCounts, "\n") {
		t.Fatalf("counts after the migration:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(beforeCounts, "\n"))
	}
	// Stored compactly: tenths as integers, times equal to the first as 0, fixes as codes.
	stored := rowsAsText(t, db.read, `SELECT id, score, last_observed_after, updated_after, fix_available FROM finding_rows ORDER BY id`)
	want := []string{
		"id=int64:1 score=int64:98 last_observed_after=int64:0 updated_after=int64:0 fix_available=int64:1 ",
		"id=int64:2 score=int64:0 last_observed_after=int64:0 updated_after=int64:7 fix_available=int64:0 ",
		"id=int64:3 score=int64:100 last_observed_after=int64:172800000 updated_after=int64:86400000 fix_available=int64:2 ",
		"id=int64:4 score=string:5.55(4016333333333333) last_observed_after=int64:345600000 updated_after=int64:259200001 fix_available=int64:1 ",
	}
	for i, w := range want {
		if i >= len(stored) || stored[i] != w {
			t.Fatalf("stored rows:\n%s\nwant to begin with\n%s", strings.Join(stored, "\n"), strings.Join(want, "\n"))
		}
	}
	types := rowsAsText(t, db.read, `SELECT group_concat(typeof(score), ',') FROM (SELECT score FROM finding_rows ORDER BY id)`)
	if want := "group_concat(typeof(score), ',')=string:integer,integer,integer,real,real,real,integer,integer,integer,integer "; types[0] != want {
		t.Fatalf("score types %s, want %s", types[0], want)
	}
	for _, q := range codesWrites {
		if _, err := db.write.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// The scanner's own statements on finding_rows: a finding observed later, and suppression.
	if _, err := db.write.ExecContext(ctx, `UPDATE finding_rows SET last_observed_after = ?1 - first_observed_at WHERE id = 7`, 11*day); err != nil {
		t.Fatal(err)
	}
	after := rowsAsText(t, db.read, codesCountsQ)
	afterRows := rowsAsText(t, db.read, findingsQ)

	fdb, err := Open(ctx, t.TempDir()+"/fresh.db")
	if err != nil {
		t.Fatal(err)
	}
	defer fdb.Close()
	for _, q := range append([]string{codesFindings}, codesWrites...) {
		if _, err := fdb.write.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := fdb.write.ExecContext(ctx, `UPDATE findings SET last_observed_at = ? WHERE id = 7`, 11*day); err != nil {
		t.Fatal(err)
	}
	if want := rowsAsText(t, fdb.read, codesCountsQ); strings.Join(after, "\n") != strings.Join(want, "\n") {
		t.Fatalf("counts after writes:\n%s\nwant (0055 before the findings)\n%s", strings.Join(after, "\n"), strings.Join(want, "\n"))
	}
	if want := rowsAsText(t, fdb.read, findingsQ); strings.Join(afterRows, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings after writes:\n%s\nwant (0055 before the findings)\n%s", strings.Join(afterRows, "\n"), strings.Join(want, "\n"))
	}
	// The counts are what the findings say (recounted from the view).
	recount := func(q *sql.DB) []string {
		return rowsAsText(t, q, `SELECT 'day' AS k, scan_type AS a, day AS b, sum(opened) AS c, sum(closed) AS d FROM (
			SELECT scan_type, first_observed_at / 86400000 AS day, 1 AS opened, 0 AS closed FROM findings
			UNION ALL SELECT scan_type, updated_at / 86400000, 0, 1 FROM findings WHERE status = 'CLOSED') GROUP BY 2, 3
			UNION ALL SELECT 'fix', vulnerability_id, title, count(*), sum(fix_available IN ('YES', 'PARTIAL')) FROM findings
			WHERE status = 'ACTIVE' AND suppressed = 0 GROUP BY 2, 3 ORDER BY 1, 2, 3`)
	}
	kept := rowsAsText(t, db.read, `SELECT 'day' AS k, scan_type AS a, day AS b, opened AS c, closed AS d FROM finding_days WHERE opened > 0 OR closed > 0
		UNION ALL SELECT 'fix', vulnerability_id, title, n_all, n_fix FROM vulnerability_finding_counts WHERE n_all > 0 ORDER BY 1, 2, 3`)
	if got := recount(db.read); strings.Join(kept, "\n") != strings.Join(got, "\n") {
		t.Fatalf("kept counts:\n%s\nrecounted from the findings:\n%s", strings.Join(kept, "\n"), strings.Join(got, "\n"))
	}
}

// TestScoreColumnRoundTrip: a score reads back exactly (every bit) whether the scanner wrote it
// (ScoreColumn) or a statement through the view (0055's SQL), and both store it alike: an
// integer of tenths when that is exact, else the real.
func TestScoreColumnRoundTrip(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	scores := []struct {
		score  float64
		tenths bool
	}{
		{9.8, true}, {0, true}, {10, true}, {5.55, false}, {7.25, false}, {0.1, true}, {0.3, true}, {7.5, true},
		{-2.5, true}, {123456789.1, true}, {1e300, false}, {math.MaxFloat64, false}, {math.SmallestNonzeroFloat64, false},
		{1.0 / 3, false}, {func() float64 { a := 0.1; return a + 0.2 }(), false}, // 0.30000000000000004
	}
	for i, sc := range scores {
		if _, isInt := ScoreColumn(sc.score).(int64); isInt != sc.tenths {
			t.Errorf("ScoreColumn(%v) = %v, want tenths %v", sc.score, ScoreColumn(sc.score), sc.tenths)
		}
		for _, via := range []string{"scanner", "view"} {
			repo := fmt.Sprintf("repo-%d-%s", i, via)
			dgst := fakeDigest(repo)
			writeFindingVia(t, db, via, store.Finding{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced,
				VulnerabilityID: "CVE-1", ARN: "arn:" + repo, Status: "ACTIVE", Severity: "HIGH", Score: sc.score, Fingerprint: "fp",
				Detail: []byte(`{"n":1}`), FirstObservedAt: now, LastObservedAt: now.Add(time.Hour), UpdatedAt: now})
			var got float64
			var typ string
			if err := db.read.QueryRowContext(ctx, `SELECT f.score, typeof(r.score) FROM findings f JOIN finding_rows r ON r.id = f.id
				WHERE f.repository = ?`, repo).Scan(&got, &typ); err != nil {
				t.Fatal(err)
			}
			if math.Float64bits(got) != math.Float64bits(sc.score) {
				t.Errorf("%s: score %v (%x) read back as %v (%x)", via, sc.score, math.Float64bits(sc.score), got, math.Float64bits(got))
			}
			if want := map[bool]string{true: "integer", false: "real"}[sc.tenths]; typ != want {
				t.Errorf("%s: score %v stored as %s, want %s", via, sc.score, typ, want)
			}
			// And through the store's readers (which read the findings with a detail).
			if via == "view" {
				continue
			}
			fs, err := db.Findings(ctx, repo, dgst, policy.ScanTypeEnhanced)
			if err != nil {
				t.Fatal(err)
			}
			if len(fs) != 1 || math.Float64bits(fs[0].Score) != math.Float64bits(sc.score) ||
				!fs[0].LastObservedAt.Equal(now.Add(time.Hour)) || !fs[0].UpdatedAt.Equal(now) || !fs[0].FirstObservedAt.Equal(now) {
				t.Errorf("%s: Findings gave %+v", via, fs)
			}
		}
	}
}

// TestFixAvailableCoded: fix_available reads back as written through the view (a code for NO,
// YES and PARTIAL, any other string as it is, a number as the text the old TEXT column made of
// it), and FixAvailableColumn codes alike.
func TestFixAvailableCoded(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	for i, c := range []struct {
		write    any
		read     string
		code     any
		typeName string
	}{
		{"NO", "NO", int64(0), "integer"}, {"YES", "YES", int64(1), "integer"}, {"PARTIAL", "PARTIAL", int64(2), "integer"},
		{"MAYBE", "MAYBE", "MAYBE", "text"}, {"", "", "", "text"}, {"1", "1", "1", "text"}, {int64(1), "1", nil, "text"},
	} {
		if s, ok := c.write.(string); ok {
			if got := FixAvailableColumn(s); got != c.code {
				t.Errorf("FixAvailableColumn(%q) = %#v, want %#v", s, got, c.code)
			}
		}
		if _, err := db.write.ExecContext(ctx, `INSERT INTO findings(id, repository, image_digest, scan_type, vulnerability_id, arn,
			status, severity, fingerprint, first_observed_at, last_observed_at, updated_at, fix_available)
			VALUES (?, 'r', 'sha256:1', 'ENHANCED', ?, 'arn', 'ACTIVE', 'LOW', 'fp', 1, 1, 1, ?)`, i+1, fmt.Sprint("CVE-", i), c.write); err != nil {
			t.Fatal(err)
		}
		var got, typ string
		if err := db.read.QueryRowContext(ctx, `SELECT f.fix_available, typeof(r.fix_available) FROM findings f JOIN finding_rows r ON r.id = f.id
			WHERE f.id = ?`, i+1).Scan(&got, &typ); err != nil {
			t.Fatal(err)
		}
		if got != c.read || typ != c.typeName {
			t.Errorf("fix_available %#v read back as %q stored as %s, want %q as %s", c.write, got, typ, c.read, c.typeName)
		}
	}
}

// TestSuppressionMovesUpdatedAt: a suppression rule moves the updatedAt of the ACTIVE findings it
// changes to the time of the change (never back), and of no other, now that finding_rows keeps
// it as milliseconds after firstObservedAt (0055): firstObservedAt stays.
func TestSuppressionMovesUpdatedAt(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	db.SetFindingContext(FindingContext{Account: testOrigin.Account, Region: testOrigin.Region})
	first := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	repo, dgst := "prod/app", fakeDigest("1")
	m := store.Manifest{Repository: repo, Digest: dgst, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
	if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	finding := func(id, status string) store.Finding {
		return store.Finding{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced, VulnerabilityID: id, ARN: "arn:" + id,
			Status: status, Severity: "HIGH", Score: 7.5, Fingerprint: "fp", Detail: []byte(`{"n":1}`),
			FirstObservedAt: first, LastObservedAt: first.Add(time.Hour), UpdatedAt: first.Add(time.Hour)}
	}
	if err := db.ApplyScans(ctx, []store.ScanTarget{{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced}},
		func(store.ScanState) (store.ScanUpdate, error) {
			return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: first},
				Findings: []store.Finding{finding("CVE-A", "ACTIVE"), finding("CVE-B", "CLOSED")}}, nil
		}); err != nil {
		t.Fatal(err)
	}
	check := func(when string, wantA time.Time) {
		t.Helper()
		fs, err := db.Findings(ctx, repo, dgst, policy.ScanTypeEnhanced)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]time.Time{"CVE-A": wantA, "CVE-B": first.Add(time.Hour)}
		if len(fs) != 2 {
			t.Fatalf("%s: %d findings", when, len(fs))
		}
		for _, f := range fs {
			if !f.UpdatedAt.Equal(want[f.VulnerabilityID]) || !f.FirstObservedAt.Equal(first) || !f.LastObservedAt.Equal(first.Add(time.Hour)) {
				t.Errorf("%s: %s first %s last %s updated %s, want updated %s", when, f.VulnerabilityID, f.FirstObservedAt, f.LastObservedAt,
					f.UpdatedAt, want[f.VulnerabilityID])
			}
		}
	}
	rule := suppression.Rule{ARN: "arn:aws:inspector2:us-east-1:123456789012:owner/123456789012/filter/a", Name: "all", Action: suppression.Suppress,
		Criteria: findings.Criteria{Strings: map[findings.Field][]findings.StringFilter{
			findings.VulnerabilityID: {{Comparison: findings.Prefix, Value: "CVE-"}},
		}}, Owner: testOrigin.Account, CreatedAt: first, UpdatedAt: first}
	db.SetClock(func() time.Time { return first.Add(3 * time.Hour) })
	if err := db.CreateFilter(ctx, rule, nil); err != nil {
		t.Fatal(err)
	}
	check("suppressed", first.Add(3*time.Hour))
	db.SetClock(func() time.Time { return first.Add(2 * time.Hour) }) // a clock stepped back
	if _, err := db.DeleteFilter(ctx, rule.ARN, nil); err != nil {
		t.Fatal(err)
	}
	check("unsuppressed", first.Add(3*time.Hour))
}
