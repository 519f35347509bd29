package sqlite

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/storetest"
)

// TestSelectionMemoSeesOtherWrites: a re-evaluation's later batch reuses what its first worked
// out of the selection while nothing else wrote, and only then: a scan that wrote, between the
// batches, a finding naming a changed key for a target still to come must be in that target's
// partial state, whether it was written through this store or another on the same file.
func TestSelectionMemoSeesOtherWrites(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	old, changed := store.PackageKey{Ecosystem: "npm", Name: "old"}, store.PackageKey{Ecosystem: "npm", Name: "changed"}
	for _, tt := range []struct {
		name    string
		between func(t *testing.T, db *DB) *DB // the store the scan between the batches writes through; nil: none
	}{
		{"nothing written between the batches", nil},
		{"a write of this store", func(t *testing.T, db *DB) *DB { return db }},
		{"a write of another store on the file", func(t *testing.T, db *DB) *DB {
			other, err := Open(context.Background(), db.Path())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = other.Close() })
			return other
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db := openTest(t)
			var targets []store.ScanTarget
			for _, repo := range []string{"first", "second"} {
				target := store.ScanTarget{Repository: repo, Digest: fakeDigest(repo), ScanType: policy.ScanTypeEnhanced}
				m := store.Manifest{Repository: repo, Digest: target.Digest, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
				if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
					t.Fatal(err)
				}
				targets = append(targets, target)
			}
			finding := func(target store.ScanTarget, vuln string, keys ...store.PackageKey) store.Finding {
				return storetest.KeyedFinding(target, vuln, "ACTIVE", t0, keys...)
			}
			scan := func(db *DB, target store.ScanTarget, f store.Finding) {
				t.Helper()
				if err := db.ApplyScans(ctx, []store.ScanTarget{target}, func(st store.ScanState) (store.ScanUpdate, error) {
					return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: t0}, Findings: append(st.Findings, f)}, nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			for _, target := range targets {
				scan(db, target, finding(target, "V-OLD", old))
			}
			sel := store.FindingSelection{Keys: func(k store.PackageKey) bool { return k == changed }, Memo: &store.SelectionMemo{}}
			// The first batch: no finding names the changed key; it writes one for its target.
			if err := db.ApplyScansSelected(ctx, targets[:1], sel, func(st store.ScanState) (store.ScanUpdate, error) {
				if len(st.Findings) != 0 {
					t.Errorf("first batch: partial state %v, want empty", store.VulnerabilityIDs(st.Findings))
				}
				return store.ScanUpdate{Findings: []store.Finding{finding(st.Target, "V-NEW", changed)}, Observed: t0}, nil
			}); err != nil {
				t.Fatal(err)
			}
			// A scan of the second image between the batches finds the changed key too.
			if tt.between != nil {
				scan(tt.between(t, db), targets[1], finding(targets[1], "V-SCANNED", changed))
			}
			want := []string{"V-SCANNED"}
			if tt.between == nil {
				want = nil
			}
			if err := db.ApplyScansSelected(ctx, targets[1:], sel, func(st store.ScanState) (store.ScanUpdate, error) {
				if got := store.VulnerabilityIDs(st.Findings); !slices.Equal(got, want) {
					t.Errorf("second batch: partial state %v, want %v", got, want)
				}
				return store.ScanUpdate{}, nil
			}); err != nil {
				t.Fatal(err)
			}
			// Nothing written between the batches, the second reuses the first's selection
			// (nothing to read: the list its findings made is of targets it applied).
			m, ok := sel.Memo.Load().(keySetsMemo)
			if reused := ok && m.keySets == selectsNothing; reused != (tt.between == nil) {
				t.Errorf("the second batch reused the first's selection: %v (memo %+v)", reused, m)
			}
		})
	}
}
