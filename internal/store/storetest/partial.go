package storetest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// KeyedFinding is a finding of target naming package keys, observed and updated at t, with a
// detail of its own: for tests of partial states, here and in a store's own.
func KeyedFinding(target store.ScanTarget, vuln, status string, t time.Time, keys ...store.PackageKey) store.Finding {
	return store.Finding{Repository: target.Repository, Digest: target.Digest, ScanType: target.ScanType, VulnerabilityID: vuln,
		ARN: "arn:" + target.Repository + ":" + vuln, Status: status, Severity: "HIGH", Fingerprint: "fp-" + vuln, PackageKeys: keys,
		Detail: []byte(`{"v":"` + vuln + `"}`), FirstObservedAt: t, LastObservedAt: t, UpdatedAt: t}
}

// testApplyScansSelected checks the partial states ApplyScansSelected hands an
// update: the findings whose package keys the selection accepts or are unknown, More and All
// for the others, and Observed moving the lastObservedAt of the ACTIVE findings it did not
// hold, by the image's observation time or, when a write keeps an earlier time, row by row.
func testApplyScansSelected(t *testing.T, open Opener) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	k1, k2 := store.PackageKey{Ecosystem: "npm", Name: "a"}, store.PackageKey{Ecosystem: "npm", Name: "b"}
	finding := func(target store.ScanTarget, vuln, status string, keys ...store.PackageKey) store.Finding {
		return KeyedFinding(target, vuln, status, t0, keys...)
	}
	for _, tt := range []struct {
		name        string
		touchedLast time.Time // the lastObservedAt the update writes for the touched finding
	}{
		{"observed by the image's time", t0.Add(2 * time.Hour)},
		{"a touched finding keeps an earlier time", t0.Add(time.Minute)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := open(t)
			target := store.ScanTarget{Repository: "app", Digest: fakeDigest("app"), ScanType: policy.ScanTypeEnhanced}
			if _, err := db.PutManifest(ctx, manifest(target.Repository, target.Digest), nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
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
				if !st.Partial || !slices.Equal(store.VulnerabilityIDs(st.Findings), []string{"V-A", "V-C", "V-E"}) {
					t.Errorf("partial %v, findings %v: want the selected V-A, V-E and V-C of unknown keys", st.Partial, store.VulnerabilityIDs(st.Findings))
				}
				more, err := st.More(ctx, []string{"V-B", "V-A", "V-Z"})
				if err != nil {
					return store.ScanUpdate{}, err
				}
				if !slices.Equal(store.VulnerabilityIDs(more), []string{"V-B"}) {
					t.Errorf("More gave %v, want the one not held, V-B", store.VulnerabilityIDs(more))
				}
				whole, err := st.All(ctx)
				if err != nil {
					return store.ScanUpdate{}, err
				}
				if !slices.Equal(store.VulnerabilityIDs(whole), []string{"V-A", "V-B", "V-C", "V-D", "V-E"}) {
					t.Errorf("All gave %v", store.VulnerabilityIDs(whole))
				}
				// The whole state read, the update goes on as over a partial one the store
				// holds whole now: Observed is for an update that did not read them all.
				return store.ScanUpdate{}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// A selection of a key no finding names (a new advisory for a package no finding
			// holds yet): the partial state is the findings of unknown keys alone.
			k3 := store.PackageKey{Ecosystem: "npm", Name: "c"}
			none := store.FindingSelection{Keys: func(k store.PackageKey) bool { return k == k3 }}
			err = db.ApplyScansSelected(ctx, []store.ScanTarget{target}, none, func(st store.ScanState) (store.ScanUpdate, error) {
				if !st.Partial || !slices.Equal(store.VulnerabilityIDs(st.Findings), []string{"V-C"}) {
					t.Errorf("selecting a key no finding names: partial %v, findings %v; want V-C, of unknown keys, alone", st.Partial, store.VulnerabilityIDs(st.Findings))
				}
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
		})
	}
}

// testApplyScansSelectedNoneHeld checks the partial state of a selection that no stored
// finding's keys meet (a new advisory for a package no finding holds yet): empty while every
// finding has keys, the findings of unknown keys once one has none; More still reads the others.
func testApplyScansSelectedNoneHeld(t *testing.T, open Opener) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	db := open(t)
	k1, unheld := store.PackageKey{Ecosystem: "npm", Name: "a"}, store.PackageKey{Ecosystem: "npm", Name: "new"}
	var targets []store.ScanTarget
	for _, repo := range []string{"app", "other"} {
		target := store.ScanTarget{Repository: repo, Digest: fakeDigest(repo), ScanType: policy.ScanTypeEnhanced}
		if _, err := db.PutManifest(ctx, manifest(target.Repository, target.Digest), nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
			t.Fatal(err)
		}
		targets = append(targets, target)
	}
	write := func(target store.ScanTarget, vuln string, keys ...store.PackageKey) {
		t.Helper()
		f := KeyedFinding(target, vuln, "ACTIVE", t0, keys...)
		if err := db.ApplyScans(ctx, []store.ScanTarget{target}, func(st store.ScanState) (store.ScanUpdate, error) {
			return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: t0}, Findings: append(st.Findings, f)}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	write(targets[0], "V-A", k1)
	write(targets[1], "V-B", k1)
	sel := store.FindingSelection{Keys: func(k store.PackageKey) bool { return k == unheld }}
	states := func() map[string][]string {
		t.Helper()
		got := map[string][]string{}
		var mu sync.Mutex // updates of distinct targets may run at once
		if err := db.ApplyScansSelected(ctx, targets, sel, func(st store.ScanState) (store.ScanUpdate, error) {
			if !st.Partial {
				t.Errorf("%s: the state is whole, want partial", st.Target.Repository)
			}
			mu.Lock()
			got[st.Target.Repository] = store.VulnerabilityIDs(st.Findings)
			mu.Unlock()
			if st.Target == targets[0] {
				more, err := st.More(ctx, []string{"V-A"})
				if err != nil {
					return store.ScanUpdate{}, err
				}
				if !slices.Equal(store.VulnerabilityIDs(more), []string{"V-A"}) {
					t.Errorf("More gave %v, want V-A", store.VulnerabilityIDs(more))
				}
			}
			return store.ScanUpdate{}, nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := states(); len(got["app"]) != 0 || len(got["other"]) != 0 {
		t.Errorf("every finding has keys, none selected: partial states %v, want empty", got)
	}
	write(targets[1], "V-C") // no keys: of unknown keys, in every selection
	if got := states(); len(got["app"]) != 0 || !slices.Equal(got["other"], []string{"V-C"}) {
		t.Errorf("one finding of unknown keys: partial states %v, want V-C alone in other's", got)
	}
}

// testApplyScansRewritesScanState checks what ApplyScans writes of a scan state over a stored
// one: every column when the outcome changes, and when it does not (a re-evaluation's write:
// same status, description, frequency, inventory and scan times) the times, the image facts
// (kept when written empty) and what was not evaluated, replaced.
func testApplyScansRewritesScanState(t *testing.T, open Opener) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	db := open(t)
	target := store.ScanTarget{Repository: "app", Digest: fakeDigest("app"), ScanType: policy.ScanTypeEnhanced}
	if _, err := db.PutManifest(ctx, manifest(target.Repository, target.Digest), nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	first := store.ImageScan{Repository: target.Repository, Digest: target.Digest, ScanType: target.ScanType, Status: "ACTIVE",
		Description: "COMPLETE", Frequency: "CONTINUOUS_SCAN", LastScanStartedAt: t0, CompletedAt: t0, SourceUpdatedAt: t0, UpdatedAt: t0,
		ImageFacts: []byte(`{"architecture":"amd64"}`), NotEvaluated: []byte(`[{"name":"a"}]`), NotEvaluatedPackages: 1}
	sameFacts := first
	sameFacts.SourceUpdatedAt, sameFacts.UpdatedAt = t0.Add(time.Hour), t0.Add(2*time.Hour)
	sameFacts.ImageFacts, sameFacts.NotEvaluated, sameFacts.NotEvaluatedPackages = nil, nil, 0
	newFacts := sameFacts
	newFacts.UpdatedAt = t0.Add(3 * time.Hour)
	newFacts.ImageFacts, newFacts.NotEvaluated, newFacts.NotEvaluatedPackages = []byte(`{"architecture":"arm64"}`), []byte(`[{"name":"b"},{"name":"c"}]`), 2
	closed := newFacts
	closed.Status, closed.Description, closed.UpdatedAt = "INACTIVE", "PENDING", t0.Add(4*time.Hour)
	for _, step := range []struct {
		name        string
		write, want store.ImageScan
	}{
		{"first", first, first},
		{"same outcome, facts written empty", sameFacts, func() store.ImageScan { s := sameFacts; s.ImageFacts = first.ImageFacts; return s }()},
		{"same outcome, new facts", newFacts, newFacts},
		{"another outcome", closed, closed},
	} {
		w := step.write
		if err := db.ApplyScans(ctx, []store.ScanTarget{target}, func(store.ScanState) (store.ScanUpdate, error) {
			return store.ScanUpdate{Scan: &w}, nil
		}); err != nil {
			t.Fatal(err)
		}
		got, err := db.ImageScan(ctx, target.Repository, target.Digest, target.ScanType)
		if err != nil {
			t.Fatal(err)
		}
		want := step.want
		if got.Status != want.Status || got.Description != want.Description || got.Frequency != want.Frequency ||
			!got.LastScanStartedAt.Equal(want.LastScanStartedAt) || !got.CompletedAt.Equal(want.CompletedAt) ||
			!got.SourceUpdatedAt.Equal(want.SourceUpdatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) ||
			string(got.ImageFacts) != string(want.ImageFacts) || string(got.NotEvaluated) != string(want.NotEvaluated) ||
			got.NotEvaluatedPackages != want.NotEvaluatedPackages {
			t.Errorf("%s: stored\n%+v\nwant\n%+v", step.name, got, want)
		}
	}
}
