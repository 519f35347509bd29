package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// TestApplyScansObservesFindings checks lastObservedAt through the store's reads as updates
// observe findings again: all of an image's ACTIVE findings together (one write of the image's
// time), or only some of them (each row), with findings closed and added between.
func TestApplyScansObservesFindings(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	dgst := fakeDigest("a")
	m := store.Manifest{Repository: "app", Digest: dgst, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
	if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	target := store.ScanTarget{Repository: "app", Digest: dgst, ScanType: policy.ScanTypeEnhanced}
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Hour) }
	finding := func(id, status string, first, last, updated int) store.Finding {
		return store.Finding{Repository: "app", Digest: dgst, ScanType: policy.ScanTypeEnhanced, VulnerabilityID: id, ARN: "arn:" + id,
			Status: status, Severity: "HIGH", Fingerprint: "fp-" + id, Detail: []byte(`{"id":"` + id + `"}`),
			FirstObservedAt: at(first), LastObservedAt: at(last), UpdatedAt: at(updated)}
	}
	// apply writes what update returns from the stored findings, as scans and re-evaluations do.
	apply := func(now int, update func(cur map[string]store.Finding) []store.Finding) {
		t.Helper()
		err := db.ApplyScans(ctx, []store.ScanTarget{target}, func(st store.ScanState) (store.ScanUpdate, error) {
			cur := map[string]store.Finding{}
			for _, f := range st.Findings {
				cur[f.VulnerabilityID] = f
			}
			scan := store.ImageScan{Status: "ACTIVE", UpdatedAt: at(now)}
			return store.ScanUpdate{Scan: &scan, Findings: update(cur)}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	observe := func(f store.Finding, now int) store.Finding {
		f.LastObservedAt = at(now)
		return f
	}
	check := func(want ...store.Finding) {
		t.Helper()
		got, err := db.Findings(ctx, "app", dgst, policy.ScanTypeEnhanced)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d findings, want %d", len(got), len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.VulnerabilityID != w.VulnerabilityID || g.Status != w.Status || !g.FirstObservedAt.Equal(w.FirstObservedAt) ||
				!g.LastObservedAt.Equal(w.LastObservedAt) || !g.UpdatedAt.Equal(w.UpdatedAt) || string(g.Detail) != string(w.Detail) {
				t.Fatalf("finding %d = %s %s first %s last %s updated %s\nwant %s %s first %s last %s updated %s", i,
					g.VulnerabilityID, g.Status, g.FirstObservedAt, g.LastObservedAt, g.UpdatedAt, w.VulnerabilityID, w.Status, w.FirstObservedAt, w.LastObservedAt, w.UpdatedAt)
			}
		}
	}
	rowLast := func(id string) time.Time {
		t.Helper()
		var v int64
		if err := db.Reader().QueryRow("SELECT last_observed_at FROM findings WHERE vulnerability_id = ?", id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return fromMS(v)
	}

	apply(1, func(map[string]store.Finding) []store.Finding {
		return []store.Finding{finding("A", "ACTIVE", 1, 1, 1), finding("B", "ACTIVE", 1, 1, 1), finding("C", "CLOSED", 1, 1, 1)}
	})
	check(finding("A", "ACTIVE", 1, 1, 1), finding("B", "ACTIVE", 1, 1, 1), finding("C", "CLOSED", 1, 1, 1))

	// Every ACTIVE finding observed again: one write for the image; the closed one keeps its time.
	apply(2, func(cur map[string]store.Finding) []store.Finding {
		return []store.Finding{observe(cur["A"], 2), observe(cur["B"], 2)}
	})
	check(finding("A", "ACTIVE", 1, 2, 1), finding("B", "ACTIVE", 1, 2, 1), finding("C", "CLOSED", 1, 1, 1))
	if !rowLast("A").Equal(at(1)) {
		t.Fatalf("finding A's row was rewritten (last_observed_at %s): want the image's time to move instead", rowLast("A"))
	}

	// A observed, B closed (keeping the time it was last observed), D new.
	apply(3, func(cur map[string]store.Finding) []store.Finding {
		b := cur["B"]
		b.Status, b.UpdatedAt = "CLOSED", at(3)
		return []store.Finding{observe(cur["A"], 3), b, finding("D", "ACTIVE", 3, 3, 3)}
	})
	check(finding("A", "ACTIVE", 1, 3, 1), finding("B", "CLOSED", 1, 2, 3), finding("C", "CLOSED", 1, 1, 1), finding("D", "ACTIVE", 3, 3, 3))

	// Only A observed: D, ACTIVE and not observed, keeps its time.
	apply(4, func(cur map[string]store.Finding) []store.Finding { return []store.Finding{observe(cur["A"], 4)} })
	check(finding("A", "ACTIVE", 1, 4, 1), finding("B", "CLOSED", 1, 2, 3), finding("C", "CLOSED", 1, 1, 1), finding("D", "ACTIVE", 3, 3, 3))

	// All observed at a time before the image's last one (a clock stepped back): as written.
	apply(5, func(cur map[string]store.Finding) []store.Finding {
		return []store.Finding{observe(cur["A"], 3), observe(cur["D"], 2)}
	})
	check(finding("A", "ACTIVE", 1, 3, 1), finding("B", "CLOSED", 1, 2, 3), finding("C", "CLOSED", 1, 1, 1), finding("D", "ACTIVE", 3, 2, 3))

	// C reopened: its own time counts again.
	apply(6, func(cur map[string]store.Finding) []store.Finding {
		c := cur["C"]
		c.Status, c.LastObservedAt, c.UpdatedAt = "ACTIVE", at(6), at(6)
		return []store.Finding{observe(cur["A"], 6), c, observe(cur["D"], 6)}
	})
	check(finding("A", "ACTIVE", 1, 6, 1), finding("B", "CLOSED", 1, 2, 3), finding("C", "ACTIVE", 1, 6, 6), finding("D", "ACTIVE", 3, 6, 3))
}

// TestApplyScansManyTargets applies enough targets for their states to be read ahead: each
// update must see its target's state as stored before the transaction (and what earlier
// targets of the same transaction wrote must not leak into it), images gone are skipped.
func TestApplyScansManyTargets(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	const n = 3 * minPrefetch
	var targets []store.ScanTarget
	for i := range n {
		dgst := fakeDigest(fmt.Sprintf("%02x", i))
		repo := fmt.Sprintf("app%d", i%3)
		m := store.Manifest{Repository: repo, Digest: dgst, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
		if i != 7 { // image 7 is gone
			if _, err := db.PutManifest(ctx, m, nil, []string{fmt.Sprintf("v%d", i)}, store.PutOptions{CreateRepository: true}); err != nil {
				t.Fatal(err)
			}
		}
		targets = append(targets, store.ScanTarget{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced})
	}
	if len(targets) < minPrefetch || !store.DistinctTargets(targets) {
		t.Fatal("targets not read ahead: the test would not cover it")
	}
	write := func(round int) map[string]int {
		t.Helper()
		seen := map[string]int{}
		var mu sync.Mutex // the updates of distinct targets run concurrently
		err := db.ApplyScans(ctx, targets, func(st store.ScanState) (store.ScanUpdate, error) {
			mu.Lock()
			seen[st.Target.Digest] = len(st.Findings)
			mu.Unlock()
			if len(st.Manifest.Tags) != 1 || st.Manifest.Digest != st.Target.Digest {
				return store.ScanUpdate{}, fmt.Errorf("state of %s: manifest %+v", st.Target.Digest, st.Manifest)
			}
			if (round == 0) != (st.Scan == nil) {
				return store.ScanUpdate{}, fmt.Errorf("round %d, %s: scan %+v", round, st.Target.Digest, st.Scan)
			}
			if round > 0 {
				prev := fmt.Sprintf("CVE-%d", round-1)
				d, err := st.Details(ctx, []string{prev})
				if err != nil || string(d[prev]) != fmt.Sprintf(`{"round":%d}`, round-1) {
					return store.ScanUpdate{}, fmt.Errorf("round %d, %s: details %q, %v", round, st.Target.Digest, d, err)
				}
			}
			now := time.Unix(int64(1000+round), 0)
			f := store.Finding{Repository: st.Target.Repository, Digest: st.Target.Digest, ScanType: st.Target.ScanType,
				VulnerabilityID: fmt.Sprintf("CVE-%d", round), ARN: "arn", Status: "ACTIVE", Severity: "LOW", Fingerprint: "fp", Detail: fmt.Appendf(nil, `{"round":%d}`, round),
				FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now}
			return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: now}, Findings: []store.Finding{f}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return seen
	}
	for round := range 3 {
		seen := write(round)
		if len(seen) != n-1 {
			t.Fatalf("round %d: %d targets updated, want %d", round, len(seen), n-1)
		}
		for d, got := range seen {
			if got != round {
				t.Fatalf("round %d: %s had %d findings, want %d", round, d, got, round)
			}
		}
	}
}

// TestApplyScansSelectedReadAheadMore checks that with the states read ahead, and the updates
// called there, what More adds to a partial state is what the writer compares the update with:
// a finding the selection left out, fetched with More and written back only observed later, is
// observed, not rewritten (which, without its detail, would be refused).
func TestApplyScansSelectedReadAheadMore(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	const n = 2 * minPrefetch
	t0, later := time.Unix(1000, 0), time.Unix(5000, 0)
	var targets []store.ScanTarget
	for i := range n {
		target := store.ScanTarget{Repository: "app", Digest: fakeDigest(fmt.Sprintf("%02x", i)), ScanType: policy.ScanTypeEnhanced}
		m := store.Manifest{Repository: target.Repository, Digest: target.Digest, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
		if _, err := db.PutManifest(ctx, m, nil, []string{fmt.Sprintf("v%d", i)}, store.PutOptions{CreateRepository: true}); err != nil {
			t.Fatal(err)
		}
		f := store.Finding{Repository: target.Repository, Digest: target.Digest, ScanType: target.ScanType, VulnerabilityID: "CVE-1", ARN: "arn",
			Status: "ACTIVE", Severity: "LOW", Fingerprint: "fp", PackageKeys: []store.PackageKey{{Ecosystem: "npm", Name: "unchanged"}},
			Detail: []byte(`{"finding":1}`), FirstObservedAt: t0, LastObservedAt: t0, UpdatedAt: t0}
		if err := db.ApplyScans(ctx, []store.ScanTarget{target}, func(store.ScanState) (store.ScanUpdate, error) {
			return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: t0}, Findings: []store.Finding{f}}, nil
		}); err != nil {
			t.Fatal(err)
		}
		targets = append(targets, target)
	}
	sel := store.FindingSelection{Keys: func(k store.PackageKey) bool { return k.Name == "changed" }}
	err := db.ApplyScansSelected(ctx, targets, sel, func(st store.ScanState) (store.ScanUpdate, error) {
		if !st.Partial || len(st.Findings) != 0 {
			return store.ScanUpdate{}, fmt.Errorf("%s: partial %v with %d findings, want a partial state without any", st.Target.Digest, st.Partial, len(st.Findings))
		}
		more, err := st.More(ctx, []string{"CVE-1"})
		if err != nil || len(more) != 1 {
			return store.ScanUpdate{}, fmt.Errorf("%s: More gave %d findings, %v", st.Target.Digest, len(more), err)
		}
		f := more[0]
		f.LastObservedAt = later
		return store.ScanUpdate{Findings: []store.Finding{f}, Observed: later}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range targets {
		fs, err := db.Findings(ctx, target.Repository, target.Digest, target.ScanType)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 1 || !fs[0].LastObservedAt.Equal(later) || !fs[0].UpdatedAt.Equal(t0) {
			t.Fatalf("%s: findings %+v, want CVE-1 observed at %v, updated at %v", target.Digest, fs, later, t0)
		}
	}
}

// The statement journal of ApplyScans' transaction is kept in memory (temp_store = MEMORY); the
// write connection gets its default back afterwards, whether the transaction committed or not,
// so that its other statements' sorts still spill to disk.
func TestApplyScansResetsTempStore(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	target := store.ScanTarget{Repository: "app", Digest: fakeDigest("01"), ScanType: policy.ScanTypeEnhanced}
	m := store.Manifest{Repository: target.Repository, Digest: target.Digest, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
	if _, err := db.PutManifest(ctx, m, nil, []string{"v1"}, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	failed := errors.New("update failed")
	for _, tc := range []struct {
		name    string
		update  func(store.ScanState) (store.ScanUpdate, error)
		wantErr error
	}{
		{"committed", func(store.ScanState) (store.ScanUpdate, error) {
			return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: t0}}, nil
		}, nil},
		{"rolled back", func(store.ScanState) (store.ScanUpdate, error) { return store.ScanUpdate{}, failed }, failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := db.ApplyScans(ctx, []store.ScanTarget{target}, tc.update); !errors.Is(err, tc.wantErr) {
				t.Fatalf("ApplyScans: %v, want %v", err, tc.wantErr)
			}
			var mode int
			if err := db.write.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&mode); err != nil {
				t.Fatal(err)
			}
			if mode != 0 {
				t.Errorf("temp_store after ApplyScans = %d, want 0 (default)", mode)
			}
		})
	}
}

// TestApplyScansReadAheadWritesAsAlone checks that targets read ahead, whose writes take what
// the read-ahead goroutines worked out of the details (facts, fix state, the split), leave the
// same rows as the same updates applied one target at a time (worked out by the writer): for
// details the scanner writes, one of another shape (kept whole), one whose facts Go refuses (the
// SQL indexes it), written new, then rewritten with another detail or only observed.
func TestApplyScansReadAheadWritesAsAlone(t *testing.T) {
	ctx := context.Background()
	const n = 2 * minPrefetch
	ahead, alone := openTest(t), openTest(t)
	var targets []store.ScanTarget
	for i := range n {
		target := store.ScanTarget{Repository: fmt.Sprintf("app%d", i%3), Digest: fakeDigest(fmt.Sprintf("%02x", i)), ScanType: policy.ScanTypeEnhanced}
		m := store.Manifest{Repository: target.Repository, Digest: target.Digest, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
		for _, db := range []*DB{ahead, alone} {
			if _, err := db.PutManifest(ctx, m, nil, []string{fmt.Sprintf("v%d", i)}, store.PutOptions{CreateRepository: true}); err != nil {
				t.Fatal(err)
			}
		}
		targets = append(targets, target)
	}
	base := "sha256:base"
	pkgs := []match.VulnerablePackage{
		{Name: "openssl", Version: "3.0.11", FilePath: "var/lib/dpkg/status", Layer: base, CreatedBy: "ADD rootfs", FixedInVersion: "3.0.13"},
		{Name: "app", Version: "1.0", FilePath: "app/go.mod", Layer: "sha256:app", CreatedBy: "COPY app /app"},
	}
	details := func(round, i int) map[string][]byte {
		return map[string][]byte{
			"CVE-1": setDetail(t, "CVE-1", "amd64", pkgs...),
			"CVE-2": setDetail(t, "CVE-2", "amd64", pkgs[(round+i)%2]), // rewritten on every other target
			"WHOLE": fmt.Appendf(nil, `{"finding":{"vulnerablePackages":[{"name":"zlib","version":"%d","sourceLayerHash":"%s"}]}}`, round%2, base),
			"ODD":   fmt.Appendf(nil, `{"finding":{"title":%d,"source":"a number as title: Go refuses, the SQL reads it"}}`, round),
		}
	}
	update := func(round int) func(st store.ScanState) (store.ScanUpdate, error) {
		return func(st store.ScanState) (store.ScanUpdate, error) {
			i := slices.Index(targets, st.Target)
			now := time.Unix(int64(1000+round), 0)
			prev := map[string]store.Finding{}
			for _, f := range st.Findings {
				prev[f.VulnerabilityID] = f
			}
			var fs []store.Finding
			for _, vuln := range []string{"CVE-1", "CVE-2", "WHOLE", "ODD"} {
				d := details(round, i)[vuln]
				f := store.Finding{Repository: st.Target.Repository, Digest: st.Target.Digest, ScanType: st.Target.ScanType, VulnerabilityID: vuln,
					ARN: "arn:" + vuln, Status: "ACTIVE", Severity: "HIGH", Fingerprint: string(d), Detail: d,
					FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now}
				if p, ok := prev[vuln]; ok {
					f.FirstObservedAt, f.UpdatedAt = p.FirstObservedAt, p.UpdatedAt
					if p.Fingerprint != f.Fingerprint {
						f.UpdatedAt = now
					}
				}
				fs = append(fs, f)
			}
			return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: now}, Findings: fs}, nil
		}
	}
	for round := range 3 {
		if err := ahead.ApplyScans(ctx, targets, update(round)); err != nil {
			t.Fatal(err)
		}
		for _, target := range targets {
			if err := alone.ApplyScans(ctx, []store.ScanTarget{target}, update(round)); err != nil {
				t.Fatal(err)
			}
		}
		for _, table := range []string{"finding_rows", "finding_details", "finding_texts", "finding_package_sets", "finding_set_packages",
			"finding_layers", "finding_facts", "image_finding_counts", "vulnerability_finding_counts"} {
			query := "SELECT * FROM " + table + " ORDER BY 1, 2"
			a, b := rowsAsText(t, ahead.read, query), rowsAsText(t, alone.read, query)
			if !slices.Equal(a, b) {
				t.Errorf("round %d, %s: read ahead\n%s\none at a time\n%s", round, table, strings.Join(a, "\n"), strings.Join(b, "\n"))
			}
		}
	}
}
