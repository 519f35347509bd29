package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// TestFindingARNsStoredSplit checks that an ARN reads back as written whatever its shape, both
// when the scanner writes it (SplitFindingARN) and when a statement writes through the findings
// view (the SQL split of 0045), that both split it alike, and that FindingsByARN finds it.
func TestFindingARNsStoredSplit(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	const prefix = "arn:aws:inspector2:us-east-1:123456789012:finding/"
	tests := []struct {
		name, arn string
		keyLen    int // bytes of arn_key
	}{
		{"made by FindingARN", prefix + "0123456789abcdef0123456789abcdef", 16},
		{"upper-case hex", prefix + "0123456789ABCDEF0123456789ABCDEF", 0},
		{"not hex", prefix + "0123456789abcdef0123456789abcdeg", 0},
		{"short", "arn:x", 0},
		{"exactly 32 hex", "0123456789abcdef0123456789abcdef", 0},
		{"empty", "", 0},
		{"another account", "arn:aws:inspector2:eu-west-1:999999999999:finding/ffffffffffffffffffffffffffffffff", 16},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, via := range []string{"scanner", "view"} {
				repo := fmt.Sprintf("repo-%d-%s", i, via)
				writeFindingVia(t, db, via, store.Finding{Repository: repo, Digest: fakeDigest(repo), ScanType: policy.ScanTypeEnhanced,
					VulnerabilityID: "CVE-" + tt.name, ARN: tt.arn, Status: "ACTIVE", Severity: "HIGH", Fingerprint: "fp",
					Detail: []byte(`{"n":1}`), FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now})
				var arn string
				var key []byte
				if err := db.read.QueryRowContext(ctx, `SELECT f.arn, r.arn_key FROM findings f JOIN finding_rows r ON r.id = f.id
					WHERE f.repository = ?`, repo).Scan(&arn, &key); err != nil {
					t.Fatal(err)
				}
				if arn != tt.arn {
					t.Errorf("%s: ARN %q read back as %q", via, tt.arn, arn)
				}
				if len(key) != tt.keyLen {
					t.Errorf("%s: ARN %q stored with a key of %d bytes, want %d", via, tt.arn, len(key), tt.keyLen)
				}
				p, k := SplitFindingARN(tt.arn)
				if p+strings.ToLower(fmt.Sprintf("%x", k)) != tt.arn || !bytes.Equal(k, key) {
					t.Errorf("SplitFindingARN(%q) = %q, %x; the store holds key %x", tt.arn, p, k, key)
				}
			}
		})
	}
	// FindingsByARN finds them by ARN, whatever the split (those the scanner wrote: the others
	// have no detail to list).
	var arns []string
	for _, tt := range tests {
		arns = append(arns, tt.arn)
	}
	got, err := db.FindingsByARN(ctx, arns)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int{}
	for _, l := range got {
		found[l.Finding.ARN]++
	}
	for _, arn := range arns {
		if found[arn] != 1 {
			t.Errorf("FindingsByARN found ARN %q %d times, want once", arn, found[arn])
		}
	}
	if len(got) != len(arns) {
		t.Errorf("FindingsByARN found %d findings, want %d", len(got), len(arns))
	}
}

// TestFindingsPlannedByImage checks that, once the planner has statistics (sqlite.Open and
// Optimize gather them), a page of findings in the default order (repository, digest, scan type,
// vulnerability id; QueryFindings) walks the scan targets in order and each target's findings
// by its key, instead of reading and sorting every finding row; and that a query by image uses
// the target's key.
func TestFindingsPlannedByImage(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		for i := range 300 {
			for j := range 20 {
				if _, err := tx.ExecContext(ctx, `INSERT INTO findings(repository, image_digest, scan_type, vulnerability_id, arn,
					status, severity, fingerprint, first_observed_at, last_observed_at, updated_at) VALUES (?, ?, 'ENHANCED', ?, ?, 'ACTIVE', 'HIGH', 'fp', 1, 1, 1)`,
					fmt.Sprintf("repo-%03d", i%30), fakeDigest(fmt.Sprint(i)), fmt.Sprintf("CVE-%d", (i*7+j*13)%400), fmt.Sprintf("arn:%d:%d", i, j)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Optimize(ctx); err != nil {
		t.Fatal(err)
	}
	plan := func(query string) string {
		rows, err := db.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, detail)
		}
		return strings.Join(lines, "\n")
	}
	for _, tt := range []struct{ name, query, want, not string }{
		{"default order, first page",
			`SELECT f.id FROM findings f JOIN manifests m ON m.repository = f.repository AND m.digest = f.image_digest WHERE f.scan_type = 'ENHANCED'
			ORDER BY f.repository, f.image_digest, f.scan_type, f.vulnerability_id LIMIT 25`,
			"SEARCH f USING PRIMARY KEY (target_id=?)", "SCAN f"},
		{"one image",
			`SELECT f.vulnerability_id FROM findings f WHERE f.repository = 'repo-001' AND f.image_digest = 'x' AND f.scan_type = 'ENHANCED'`,
			"SEARCH f USING PRIMARY KEY (target_id=?)", "SCAN f"},
	} {
		got := plan(tt.query)
		if !strings.Contains(got, tt.want) || strings.Contains(got, tt.not) {
			t.Errorf("%s: plan\n%s\nwant %q and no %q", tt.name, got, tt.want, tt.not)
		}
	}
}

// TestVulnerabilityPagesWalkTargets checks that a listing of one vulnerability held by most
// images, which walks the scan targets in order (walkTargets), pages through the same findings
// in the same order as the listing that reads the vulnerability's index.
func TestVulnerabilityPagesWalkTargets(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var want []string // repository@digest of the images holding CVE-common, in listing order
	for i := range 120 {
		repo := fmt.Sprintf("repo-%02d", (i*37)%40) // targets written out of order
		dgst := fakeDigest(fmt.Sprint(i))
		m := store.Manifest{Repository: repo, Digest: dgst, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
		if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
			t.Fatal(err)
		}
		var fs []store.Finding
		for j := range 5 {
			id := fmt.Sprintf("CVE-%d", (i+j)%50)
			if j == 0 {
				if i%10 == 3 {
					continue // not every image holds it
				}
				id = "CVE-common"
				want = append(want, repo+"@"+dgst)
			}
			fs = append(fs, store.Finding{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced, VulnerabilityID: id,
				ARN: fmt.Sprintf("arn:%d:%d", i, j), Status: "ACTIVE", Severity: "HIGH", Fingerprint: "fp", Detail: []byte(`{"n":1}`),
				FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now})
		}
		err := db.ApplyScans(ctx, []store.ScanTarget{{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced}},
			func(store.ScanState) (store.ScanUpdate, error) {
				return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: now}, Findings: fs}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(want)
	list := func(limit int) []string {
		q := findings.Query{Limit: limit, Criteria: findings.Criteria{Strings: map[findings.Field][]findings.StringFilter{
			findings.VulnerabilityID: {{Comparison: findings.Equals, Value: "CVE-common"}}}}}
		var got []string
		for range 200 {
			page, err := db.QueryFindings(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range page {
				got = append(got, l.Finding.Repository+"@"+l.Finding.Digest)
			}
			if len(page) < limit {
				return got
			}
			q.After = &page[len(page)-1].Cursor
		}
		t.Fatal("listing does not end")
		return nil
	}
	before := list(7) // no statistics yet: through the index
	if err := db.Optimize(ctx); err != nil {
		t.Fatal(err)
	}
	walk, _, err := db.walkTargets(ctx, findings.Query{Limit: 7, Criteria: findings.Criteria{Strings: map[findings.Field][]findings.StringFilter{
		findings.VulnerabilityID: {{Comparison: findings.Equals, Value: "CVE-common"}}}}})
	if err != nil || !walk {
		t.Fatalf("walkTargets = %v, %v; want a walk for a vulnerability in most images", walk, err)
	}
	after := list(7)
	if !slices.Equal(before, want) {
		t.Errorf("through the index:\n%v\nwant\n%v", before, want)
	}
	if !slices.Equal(after, want) {
		t.Errorf("walking the targets:\n%v\nwant\n%v", after, want)
	}
}

// TestFingerprintsStoredAsBytes checks that a fingerprint reads back as written, stored as 32
// bytes when it is a SHA-256 in lowercase hex and as written otherwise, through the scanner's
// writer and through the findings view alike.
func TestFingerprintsStoredAsBytes(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	sha := strings.Repeat("0123456789abcdef", 4)
	for i, tt := range []struct {
		fp     string
		stored string // SQLite's type of the stored value
	}{
		{sha, "blob"},
		{strings.ToUpper(sha), "text"},
		{sha[:63] + "g", "text"},
		{sha[:62], "text"},
		{"fp", "text"},
	} {
		for _, via := range []string{"scanner", "view"} {
			repo := fmt.Sprintf("fp-%d-%s", i, via)
			writeFindingVia(t, db, via, store.Finding{Repository: repo, Digest: fakeDigest(repo), ScanType: policy.ScanTypeEnhanced,
				VulnerabilityID: "CVE-1", ARN: "arn:" + repo, Status: "ACTIVE", Severity: "HIGH", Fingerprint: tt.fp, Detail: []byte(`{}`),
				FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now})
			var fp, typ string
			if err := db.read.QueryRowContext(ctx, `SELECT f.fingerprint, typeof(r.fingerprint) FROM findings f JOIN finding_rows r ON r.id = f.id
				WHERE f.repository = ?`, repo).Scan(&fp, &typ); err != nil {
				t.Fatal(err)
			}
			if fp != tt.fp || typ != tt.stored {
				t.Errorf("%s: fingerprint %q read back as %q, stored as %s (want %s)", via, tt.fp, fp, typ, tt.stored)
			}
		}
	}
}

// writeFindingVia writes f, the one finding of an image made here for it, either through the
// scanner's writer ("scanner": ApplyScans, with its detail) or through the findings view
// ("view": an INSERT of the row's columns, as an older Lading or a copy from another store
// writes them, without a detail).
func writeFindingVia(t *testing.T, db *DB, via string, f store.Finding) {
	t.Helper()
	ctx := context.Background()
	m := store.Manifest{Repository: f.Repository, Digest: f.Digest, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2,
		Content: []byte("{}")}
	if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	switch via {
	case "scanner":
		err := db.ApplyScans(ctx, []store.ScanTarget{{Repository: f.Repository, Digest: f.Digest, ScanType: f.ScanType}},
			func(store.ScanState) (store.ScanUpdate, error) {
				return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: f.UpdatedAt}, Findings: []store.Finding{f}}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
	case "view":
		if _, err := db.write.ExecContext(ctx, `INSERT INTO findings(repository, image_digest, scan_type, vulnerability_id, arn,
			status, severity, score, fingerprint, first_observed_at, last_observed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			f.Repository, f.Digest, f.ScanType, f.VulnerabilityID, f.ARN, f.Status, f.Severity, f.Score, f.Fingerprint,
			f.FirstObservedAt.UnixMilli(), f.LastObservedAt.UnixMilli(), f.UpdatedAt.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("no way %q to write a finding", via)
	}
}
