package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// testApplyScansManyTargets applies one transaction to more distinct targets than a store may
// read ahead at once (PostgreSQL reads 64 states a round trip), one of them writing more findings
// than it queues in one batch (2,000 statements): each update is handed its own target's state
// (manifest, tags sorted and none as nil, scan, findings), a target whose image is gone is
// skipped without shifting the states of those after it, every write (findings, usage) lands,
// and the events of every update (one that writes nothing else too) are written in target
// order. The updates may be called concurrently (store.DistinctTargets), each once.
func testApplyScansManyTargets(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	const n = 150
	gone := map[int]bool{0: true, 63: true, 64: true, 100: true}
	// The target whose update writes many findings, usage records and events, and how many.
	const many, manyFindings, manyUsage, manyEvents = 70, 2100, 450, 600
	noScan := map[int]bool{5: true, 65: true}
	// Tags as pushed; a state hands them sorted, and none as nil.
	tagsOf := func(i int) []string {
		switch i % 10 {
		case 7:
			return []string{fmt.Sprintf("v%d", i), fmt.Sprintf("a%d", i), fmt.Sprintf("build-%d", i)}
		case 9:
			return nil
		}
		return []string{fmt.Sprintf("v%d", i)}
	}
	var targets []store.ScanTarget
	for i := range n {
		target := store.ScanTarget{Repository: fmt.Sprintf("team/app-%d", i%3), Digest: fakeDigest(fmt.Sprintf("%03d", i)), ScanType: policy.ScanTypeEnhanced}
		targets = append(targets, target)
		if _, err := db.PutManifest(ctx, manifest(target.Repository, target.Digest), nil, tagsOf(i),
			store.PutOptions{CreateRepository: true}); err != nil {
			t.Fatal(err)
		}
		if noScan[i] {
			continue
		}
		vuln := fmt.Sprintf("CVE-2026-%04d", i)
		if err := db.ApplyScans(ctx, []store.ScanTarget{target}, func(store.ScanState) (store.ScanUpdate, error) {
			return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", Description: fmt.Sprintf("scan %d", i), UpdatedAt: t0},
				Findings: []store.Finding{{Repository: target.Repository, Digest: target.Digest, ScanType: target.ScanType, VulnerabilityID: vuln,
					ARN: "arn:" + vuln, Status: "ACTIVE", Severity: "HIGH", Fingerprint: "fp", Detail: []byte(`{"v":"` + vuln + `"}`),
					FirstObservedAt: t0, LastObservedAt: t0, UpdatedAt: t0}}}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range gone {
		if _, err := db.DeleteManifest(ctx, targets[i].Repository, targets[i].Digest, true); err != nil {
			t.Fatal(err)
		}
	}
	events, err := db.ReadOutbox(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	after := int64(0)
	if len(events) > 0 {
		after = events[len(events)-1].Seq
	}
	var handed []int
	var handedMu sync.Mutex
	index := make(map[store.ScanTarget]int, n)
	for i, target := range targets {
		index[target] = i
	}
	at := t0.Add(time.Hour)
	err = db.ApplyScans(ctx, targets, func(st store.ScanState) (store.ScanUpdate, error) {
		i, ok := index[st.Target]
		if !ok {
			return store.ScanUpdate{}, fmt.Errorf("a state of target %v, not asked for", st.Target)
		}
		handedMu.Lock()
		handed = append(handed, i)
		handedMu.Unlock()
		if st.Manifest.Digest != st.Target.Digest || st.Manifest.Repository != st.Target.Repository {
			t.Errorf("target %d handed the manifest %s@%s", i, st.Manifest.Repository, st.Manifest.Digest)
		}
		if want := slices.Sorted(slices.Values(tagsOf(i))); !slices.Equal(st.Manifest.Tags, want) || (want == nil) != (st.Manifest.Tags == nil) {
			t.Errorf("target %d handed tags %#v, want %#v", i, st.Manifest.Tags, want)
		}
		event := targetEvent(i, at)
		if noScan[i] {
			if st.Scan != nil || len(st.Findings) != 0 {
				t.Errorf("target %d, never scanned, handed a scan %v and %d findings", i, st.Scan, len(st.Findings))
			}
			return store.ScanUpdate{Events: []store.OutboxEvent{event}}, nil // an event, nothing written
		}
		if st.Scan == nil || st.Scan.Description != fmt.Sprintf("scan %d", i) {
			t.Errorf("target %d handed the scan %+v", i, st.Scan)
			return store.ScanUpdate{}, nil
		}
		if want := []string{fmt.Sprintf("CVE-2026-%04d", i)}; !slices.Equal(store.VulnerabilityIDs(st.Findings), want) {
			t.Errorf("target %d handed findings %v, want %v", i, store.VulnerabilityIDs(st.Findings), want)
		}
		closed := st.Findings[0]
		closed.Status, closed.UpdatedAt, closed.LastObservedAt = "CLOSED", at, at
		written := []store.Finding{closed}
		if i == many {
			// More writes than PostgreSQL queues in one batch: it sends them mid-chunk.
			for j := range manyFindings {
				vuln := fmt.Sprintf("GHSA-%04d-%04d", i, j)
				written = append(written, store.Finding{Repository: st.Target.Repository, Digest: st.Target.Digest, ScanType: st.Target.ScanType,
					VulnerabilityID: vuln, ARN: "arn:" + vuln, Status: "ACTIVE", Severity: "LOW", Fingerprint: "fp", Detail: []byte(`{"v":"` + vuln + `"}`),
					FirstObservedAt: at, LastObservedAt: at, UpdatedAt: at})
			}
		}
		usage := []store.Usage{{Repository: st.Target.Repository, Digest: st.Target.Digest, ScanType: st.Target.ScanType, Kind: store.UsageRescan, At: at}}
		if i == many {
			// More usage records than a store may write a statement.
			for j := range manyUsage - 1 {
				usage = append(usage, store.Usage{Repository: st.Target.Repository, Digest: st.Target.Digest, ScanType: st.Target.ScanType,
					Kind: store.UsageRescan, At: at.Add(time.Duration(j+1) * time.Millisecond)})
			}
		}
		events := []store.OutboxEvent{event}
		if i == many {
			// More events than a store may write a statement.
			for range manyEvents - 1 {
				events = append(events, event)
			}
		}
		return store.ScanUpdate{Findings: written, Observed: at, Events: events, Usage: usage}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for i := range n {
		if !gone[i] {
			want = append(want, i)
		}
	}
	slices.Sort(handed)
	if !slices.Equal(handed, want) {
		t.Errorf("updates called for targets %v, want %v (every target whose image is there, once)", handed, want)
	}
	events, err = db.ReadOutbox(ctx, after, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var wantEvents []int // in target order, the many target's all together
	for _, i := range want {
		wantEvents = append(wantEvents, i)
		if i == many {
			for range manyEvents - 1 {
				wantEvents = append(wantEvents, i)
			}
		}
	}
	if got := eventTargets(t, events); !slices.Equal(got, wantEvents) {
		t.Errorf("events of targets %v, want %v", got, wantEvents)
	}
	usage, err := db.UsageSince(ctx, at)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]int{}
	for _, u := range usage {
		used[u.Digest]++
	}
	for i, target := range targets {
		want := 1
		switch {
		case gone[i] || noScan[i]:
			want = 0
		case i == many:
			want = manyUsage
		}
		if used[target.Digest] != want {
			t.Errorf("target %d: %d usage records, want %d", i, used[target.Digest], want)
		}
	}
	for _, i := range []int{1, 62, 66, 149} {
		fs, err := db.Findings(ctx, targets[i].Repository, targets[i].Digest, targets[i].ScanType)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 1 || fs[0].Status != "CLOSED" || !fs[0].UpdatedAt.Equal(at) {
			t.Errorf("target %d: findings %+v, want its one finding CLOSED at %v", i, fs, at)
		}
	}
	fs, err := db.Findings(ctx, targets[many].Repository, targets[many].Digest, targets[many].ScanType)
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, f := range fs {
		if f.Status == "ACTIVE" {
			active++
		}
	}
	if len(fs) != manyFindings+1 || active != manyFindings {
		t.Errorf("target %d: %d findings, %d ACTIVE; want %d, %d", many, len(fs), active, manyFindings+1, manyFindings)
	}
	// A transaction whose only update writes nothing but an event still writes the event.
	after = events[len(events)-1].Seq
	lone := 5
	if err := db.ApplyScans(ctx, targets[lone:lone+1], func(store.ScanState) (store.ScanUpdate, error) {
		return store.ScanUpdate{Events: []store.OutboxEvent{targetEvent(lone, at)}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if events, err = db.ReadOutbox(ctx, after, 10); err != nil {
		t.Fatal(err)
	}
	if got := eventTargets(t, events); !slices.Equal(got, []int{lone}) {
		t.Errorf("events of targets %v after an update of target %d with an event only, want its event", got, lone)
	}
}

// targetEvent is the event testApplyScansManyTargets' update of target i writes.
func targetEvent(i int, at time.Time) store.OutboxEvent {
	return store.OutboxEvent{DetailType: "Test Event", Source: "test", Time: at, Detail: json.RawMessage(fmt.Sprintf(`{"target":%d}`, i))}
}

// eventTargets returns the targets targetEvent events name, in order.
func eventTargets(t *testing.T, events []store.OutboxEvent) []int {
	t.Helper()
	var out []int
	for _, ev := range events {
		var d struct{ Target int }
		if err := json.Unmarshal(ev.Detail, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d.Target)
	}
	return out
}
