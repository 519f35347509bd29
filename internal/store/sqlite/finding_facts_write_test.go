package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// TestFindingRowsTakeTheirDetailsFacts: the scanner's write sets a finding row's facts and
// fix state from its detail in Go (FindingColumnsOfDetail); they must be what the SQL index
// (indexFinding, reading the stored detail) sets, for every shape of detail, including one Go
// refuses (the SQL indexes it then), written new and rewritten with another detail. The
// per-vulnerability counts, kept by triggers on those columns, must agree with a recount.
func TestFindingRowsTakeTheirDetailsFacts(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	details := []string{
		`{"finding":{"title":"CVE-1 in \"pkg\" <x> & \u00e9","source":"NVD","vendorSeverity":"HIGH","aliases":["GHSA-1", "CVE-1"],"related":["a\u003cb"],
			"vulnerablePackages":[{"name":"a","fixedInVersion":"1.2"},{"name":"b","fixedInVersion":"2"}]}}`,
		`{"finding":{"title":"t","vulnerablePackages":[{"name":"a","fixedInVersion":"1.2"},{"name":"b","fixedInVersion":""}]}}`,
		`{"finding":{"title":"t","vulnerablePackages":[{"name":"a"},{"name":"b","fixedInVersion":null}]}}`,
		`{"finding":{"title":null,"aliases":null}}`,
		`{"finding":{"title":3,"source":"a number as title: Go refuses, the SQL reads it"}}`,
		`{}`,
	}
	repo := "facts"
	dgst := fakeDigest(repo)
	m := store.Manifest{Repository: repo, Digest: dgst, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
	if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	target := store.ScanTarget{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced}
	write := func(rotate int) {
		t.Helper()
		var fs []store.Finding
		for i := range details {
			fs = append(fs, store.Finding{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced, VulnerabilityID: fmt.Sprint("CVE-", i),
				ARN: fmt.Sprint("arn:f/", i), Status: "ACTIVE", Severity: "HIGH", Score: 7.5, Fingerprint: fmt.Sprint("fp", rotate),
				Detail: []byte(details[(i+rotate)%len(details)]), FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now})
		}
		if err := db.ApplyScans(ctx, []store.ScanTarget{target}, func(store.ScanState) (store.ScanUpdate, error) {
			return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: now}, Findings: fs}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	const rowsQuery = `SELECT id, facts, fix_available FROM finding_rows ORDER BY id`
	for rotate := range 3 { // new rows, then rewritten with other details
		write(rotate)
		written := rowsAsText(t, db.write, rowsQuery)
		tx, err := db.write.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range details {
			var id int64
			if err := tx.QueryRowContext(ctx, `SELECT id FROM findings WHERE vulnerability_id = ?`, fmt.Sprint("CVE-", i)).Scan(&id); err != nil {
				t.Fatal(err)
			}
			if err := indexFinding(ctx, tx, id); err != nil {
				t.Fatal(err)
			}
		}
		indexed := rowsAsText(t, tx, rowsQuery)
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(written) != fmt.Sprint(indexed) {
			t.Errorf("round %d: rows as written\n%v\nas the SQL indexes them\n%v", rotate, written, indexed)
		}
		kept := rowsAsText(t, db.write, `SELECT title, vulnerability_id, aliases, n_all, n_fix FROM vulnerability_finding_counts WHERE n_all > 0 ORDER BY 2, 1, 3`)
		recount := rowsAsText(t, db.write, `SELECT title, vulnerability_id, aliases, count(*) AS n_all, sum(fix_available IN ('YES', 'PARTIAL')) AS n_fix
			FROM findings WHERE status = 'ACTIVE' AND suppressed = 0 GROUP BY scan_type, title, vulnerability_id, aliases ORDER BY 2, 1, 3`)
		if fmt.Sprint(kept) != fmt.Sprint(recount) {
			t.Errorf("round %d: counts kept\n%v\nrecounted\n%v", rotate, kept, recount)
		}
	}
}
