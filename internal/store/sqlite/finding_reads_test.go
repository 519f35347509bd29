package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// TestTargetFindingRowsMatchView checks that queryTargetFindings, which ApplyScans reads a
// target's findings with, gives what the findings view gives (queryFindingsObserved), field
// for field and in the same order, for findings of every stored shape: written by the scanner
// and through the view, ARNs with and without a key, fingerprints as bytes and as text, every
// status and severity code and texts that are none, scores in tenths and not, package keys
// present, absent and unreadable, and an image observation time that moves lastObservedAt.
func TestTargetFindingRowsMatchView(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	sha := strings.Repeat("0123456789abcdef", 4)
	keys := []store.PackageKey{{Ecosystem: "Debian:12", Name: "openssl"}, {Ecosystem: "npm", Name: "lodash"}}
	shapes := []struct {
		arn, status, severity, fingerprint string
		score                              float64
		keys                               []store.PackageKey
	}{
		{"arn:aws:inspector2:us-east-1:123456789012:finding/0123456789abcdef0123456789abcdef", "ACTIVE", "CRITICAL", sha[:16], 9.8, keys},
		{"arn:aws:inspector2:us-east-1:123456789012:finding/0123456789ABCDEF0123456789ABCDEF", "CLOSED", "HIGH", sha, 7.25, nil},
		{"arn:short", "ACTIVE", "MEDIUM", strings.ToUpper(sha[:16]), 0.1 + 0.2, keys[:1]},
		{"", "SUPPRESSED", "LOW", "fp", 0, []store.PackageKey{{Ecosystem: "a\tb", Name: "c"}}},
		{"arn:x", "ACTIVE", "INFORMATIONAL", sha[:62], 5, keys},
		{"arn:y", "ACTIVE", "UNDEFINED", "", 10, nil},
		{"arn:z", "CLOSED", "weird", sha[:15] + "g", 3.3, keys[1:]},
	}
	var targets []store.ScanTarget
	for i, via := range []string{"scanner", "view"} {
		repo := fmt.Sprintf("repo-%s", via)
		target := store.ScanTarget{Repository: repo, Digest: fakeDigest(repo), ScanType: policy.ScanTypeEnhanced}
		targets = append(targets, target)
		for j, s := range shapes {
			at := now.Add(time.Duration(i*10+j) * time.Minute)
			writeFindingVia(t, db, via, store.Finding{Repository: repo, Digest: target.Digest, ScanType: target.ScanType,
				VulnerabilityID: fmt.Sprintf("CVE-2026-%04d", 100-j), ARN: s.arn, Status: s.status, Severity: s.severity, Score: s.score,
				Fingerprint: s.fingerprint, PackageKeys: s.keys, Detail: []byte(`{}`), FirstObservedAt: at.Add(-time.Hour),
				LastObservedAt: at, UpdatedAt: at.Add(-time.Minute)})
		}
	}
	// Values of no code the writers make (an older or foreign writer's): a one-byte status that
	// is no code, a score and a fingerprint as other types.
	if _, err := db.write.ExecContext(ctx, `UPDATE finding_rows SET status = X'07', score = '8.5', fingerprint = 12345
		WHERE vulnerability = (SELECT id FROM finding_vulnerabilities WHERE vulnerability_id = 'CVE-2026-0098')`); err != nil {
		t.Fatal(err)
	}
	for _, observed := range []int64{0, now.Add(5 * time.Minute).UnixMilli(), now.Add(time.Hour).UnixMilli()} {
		names := newFindingNames()
		for _, target := range targets {
			want, err := queryFindingsObserved(ctx, txlessReader{db}, target.Repository, target.Digest, target.ScanType, false, observed)
			if err != nil {
				t.Fatal(err)
			}
			got, err := queryTargetFindings(ctx, txlessReader{db}, names, target, observed, targetFindingRows)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) != len(shapes) {
				t.Fatalf("%s: the view gives %d findings, want %d", target.Repository, len(want), len(shapes))
			}
			if !reflect.DeepEqual(got, want) {
				for i := range max(len(got), len(want)) {
					if i >= len(got) || i >= len(want) || !reflect.DeepEqual(got[i], want[i]) {
						t.Errorf("%s, observed %d: finding %d\n got %+v\nwant %+v", target.Repository, observed, i, at(got, i), at(want, i))
					}
				}
			}
		}
	}
}

func at(fs []store.Finding, i int) any {
	if i < len(fs) {
		return fs[i]
	}
	return "(none)"
}

// txlessReader reads on the store's read pool as a stateReader.
type txlessReader struct{ db *DB }

func (r txlessReader) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return r.db.read.QueryContext(ctx, query, args...)
}

func (r txlessReader) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	return r.db.read.QueryRowContext(ctx, query, args...)
}
