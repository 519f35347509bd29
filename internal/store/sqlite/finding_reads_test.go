package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"slices"
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
			got, err := queryTargetFindings(ctx, txlessReader{db}, names, target, observed, "")
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

// TestApplyScansSelectedPartialStates checks the partial states ApplyScansSelected hands an
// update: the findings whose package keys the selection accepts or are unknown, More and All
// for the others, and Observed moving the lastObservedAt of the ACTIVE findings it did not
// hold, by the image's observation time or, when a write keeps an earlier time, row by row.
func TestApplyScansSelectedPartialStates(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	k1, k2 := store.PackageKey{Ecosystem: "npm", Name: "a"}, store.PackageKey{Ecosystem: "npm", Name: "b"}
	finding := func(target store.ScanTarget, vuln, status string, keys ...store.PackageKey) store.Finding {
		return store.Finding{Repository: target.Repository, Digest: target.Digest, ScanType: target.ScanType, VulnerabilityID: vuln,
			ARN: "arn:" + target.Repository + ":" + vuln, Status: status, Severity: "HIGH", Fingerprint: "fp-" + vuln, PackageKeys: keys,
			Detail: []byte(`{"v":"` + vuln + `"}`), FirstObservedAt: t0, LastObservedAt: t0, UpdatedAt: t0}
	}
	for _, tt := range []struct {
		name        string
		touchedLast time.Time // the lastObservedAt the update writes for the touched finding
	}{
		{"observed by the image's time", t0.Add(2 * time.Hour)},
		{"a touched finding keeps an earlier time", t0.Add(time.Minute)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t)
			target := store.ScanTarget{Repository: "app", Digest: fakeDigest("app"), ScanType: policy.ScanTypeEnhanced}
			if _, err := db.PutManifest(ctx, store.Manifest{Repository: target.Repository, Digest: target.Digest,
				MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
				t.Fatal(err)
			}
			all := []store.Finding{finding(target, "V-A", "ACTIVE", k1), finding(target, "V-B", "ACTIVE", k2), finding(target, "V-C", "ACTIVE"),
				finding(target, "V-D", "CLOSED", k2), finding(target, "V-E", "ACTIVE", k2, k1)}
			if err := db.ApplyScans(ctx, []store.ScanTarget{target}, func(store.ScanState) (store.ScanUpdate, error) {
				return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: t0}, Findings: all}, nil
			}); err != nil {
				t.Fatal(err)
			}
			observed := t0.Add(2 * time.Hour)
			sel := store.FindingSelection{Keys: func(k store.PackageKey) bool { return k == k1 }}
			err := db.ApplyScansSelected(ctx, []store.ScanTarget{target}, sel, func(st store.ScanState) (store.ScanUpdate, error) {
				if !st.Partial || !slices.Equal(vulnIDs(st.Findings), []string{"V-A", "V-C", "V-E"}) {
					t.Errorf("partial %v, findings %v: want the selected V-A, V-E and V-C of unknown keys", st.Partial, vulnIDs(st.Findings))
				}
				more, err := st.More(ctx, []string{"V-B", "V-A", "V-Z"})
				if err != nil {
					return store.ScanUpdate{}, err
				}
				if !slices.Equal(vulnIDs(more), []string{"V-B"}) {
					t.Errorf("More gave %v, want the one not held, V-B", vulnIDs(more))
				}
				whole, err := st.All(ctx)
				if err != nil {
					return store.ScanUpdate{}, err
				}
				if !slices.Equal(vulnIDs(whole), []string{"V-A", "V-B", "V-C", "V-D", "V-E"}) {
					t.Errorf("All gave %v", vulnIDs(whole))
				}
				// The whole state read, the update goes on as over a partial one the store
				// holds whole now: Observed is for an update that did not read them all.
				return store.ScanUpdate{}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// V-A is touched (rewritten), V-C and V-E observed as the partial state held them;
			// V-B is not held and must be observed by Observed; V-D is CLOSED.
			err = db.ApplyScansSelected(ctx, []store.ScanTarget{target}, sel, func(st store.ScanState) (store.ScanUpdate, error) {
				a := finding(target, "V-A", "ACTIVE", k1)
				a.Fingerprint, a.Detail, a.LastObservedAt, a.UpdatedAt = "fp-new", []byte(`{"v":"new"}`), tt.touchedLast, tt.touchedLast
				c, e := finding(target, "V-C", "ACTIVE"), finding(target, "V-E", "ACTIVE", k2, k1)
				c.Detail, c.LastObservedAt, e.Detail, e.LastObservedAt = nil, observed, nil, observed
				return store.ScanUpdate{Findings: []store.Finding{a, c, e}, Observed: observed}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			fs, err := db.Findings(ctx, target.Repository, target.Digest, target.ScanType)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]time.Time{"V-A": tt.touchedLast, "V-B": observed, "V-C": observed, "V-D": t0, "V-E": observed}
			if len(fs) != len(want) {
				t.Fatalf("%d findings, want %d", len(fs), len(want))
			}
			for _, f := range fs {
				if !f.LastObservedAt.Equal(want[f.VulnerabilityID]) {
					t.Errorf("%s: lastObservedAt %v, want %v", f.VulnerabilityID, f.LastObservedAt, want[f.VulnerabilityID])
				}
			}
			// Which way they were observed: by the image's time unless a write kept an earlier one.
			var imageObserved int64
			if err := db.read.QueryRowContext(ctx, "SELECT findings_observed_at FROM image_scans WHERE repository = ?", target.Repository).Scan(&imageObserved); err != nil {
				t.Fatal(err)
			}
			if byImage := imageObserved == observed.UnixMilli(); byImage != !tt.touchedLast.Before(observed) {
				t.Errorf("findings_observed_at %d: observed by the image's time %v, want %v", imageObserved, byImage, !byImage)
			}
		})
	}
}

func vulnIDs(fs []store.Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.VulnerabilityID
	}
	return out
}
