package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/vulndb"
)

// keptChangeSets is how many versions keep their change sets in both engines.
const keptChangeSets = 64

func record(id, eco, name string, n int) vulndb.StoredRecord {
	return vulndb.StoredRecord{
		ID: id, Modified: time.Date(2024, 1, n, 0, 0, 0, 123000, time.UTC), Hash: fmt.Sprintf("%s-%d", id, n),
		Keys: []advisory.PackageKey{{Ecosystem: eco, Name: name}},
		Raw:  fmt.Appendf(nil, `{"id":%q,"n":%d}`, id, n),
	}
}

// CommitAdvisories applies one batch of puts and deletions and returns its version; engines'
// own tests use it too.
func CommitAdvisories(t *testing.T, db vulndb.Store, puts []vulndb.StoredRecord, dels []string) int64 {
	t.Helper()
	ctx := context.Background()
	base, err := db.AdvisoryVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.StageAdvisories(ctx, vulndb.BatchInfo{Base: base, Kind: "import", Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var keys []advisory.PackageKey
	for _, r := range puts {
		if err := b.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, r.Keys...)
	}
	for _, id := range dels {
		if err := b.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.AddChanges(ctx, keys); err != nil {
		t.Fatal(err)
	}
	v, err := b.Commit(ctx, vulndb.BatchStats{Added: len(puts), Deleted: len(dels)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func loadIDs(t *testing.T, db vulndb.Store, keys []advisory.PackageKey) ([]string, int64) {
	t.Helper()
	var ids []string
	v, err := db.LoadAdvisories(context.Background(), keys, func(r vulndb.StoredRecord) error {
		ids = append(ids, r.ID)
		if r.Modified.Nanosecond() != 123000 {
			t.Errorf("%s: modified %v lost its microseconds", r.ID, r.Modified)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids, v
}

func testAdvisoryBatchesAndVersions(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	if v, err := db.AdvisoryVersion(ctx); err != nil || v != 0 {
		t.Fatalf("empty database at version %d, %v", v, err)
	}
	if v := CommitAdvisories(t, db, []vulndb.StoredRecord{record("A", "npm", "a", 1), record("B", "npm", "b", 1)}, nil); v != 1 {
		t.Fatalf("version %d", v)
	}
	if v := CommitAdvisories(t, db, []vulndb.StoredRecord{record("A", "npm", "a2", 2)}, []string{"B"}); v != 2 {
		t.Fatalf("version %d", v)
	}
	if ids, v := loadIDs(t, db, nil); !slices.Equal(ids, []string{"A"}) || v != 2 {
		t.Errorf("current records %v at %d", ids, v)
	}
	if ids, _ := loadIDs(t, db, []advisory.PackageKey{{Ecosystem: "npm", Name: "a"}}); len(ids) != 0 {
		t.Errorf("old key still finds %v", ids)
	}
	if ids, _ := loadIDs(t, db, []advisory.PackageKey{{Ecosystem: "npm", Name: "a2"}, {Ecosystem: "npm", Name: "zz"}}); !slices.Equal(ids, []string{"A"}) {
		t.Errorf("by key: %v", ids)
	}
	var digests []vulndb.RecordDigest
	if _, err := db.AdvisoryDigests(ctx, func(d vulndb.RecordDigest) error {
		digests = append(digests, d)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(digests) != 1 || digests[0].Hash != "A-2" || !slices.Equal(digests[0].Keys, []advisory.PackageKey{{Ecosystem: "npm", Name: "a2"}}) {
		t.Errorf("digests %+v", digests)
	}
	d, ok, err := db.AdvisoryDigest(ctx, "A")
	if err != nil || !ok || d.Hash != "A-2" || d.Modified.Nanosecond() != 123000 || !slices.Equal(d.Keys, digests[0].Keys) {
		t.Errorf("AdvisoryDigest(A) = %+v, %v, %v", d, ok, err)
	}
	if _, ok, err := db.AdvisoryDigest(ctx, "B"); err != nil || ok {
		t.Errorf("AdvisoryDigest of a deleted record: %v, %v", ok, err)
	}
	cs, err := db.AdvisoryChanges(ctx, 1, nil)
	if err != nil || !cs.Complete || cs.To != 2 || !slices.Equal(cs.Keys, []advisory.PackageKey{{Ecosystem: "npm", Name: "a2"}}) {
		t.Errorf("changes after 1: %+v %v", cs, err)
	}
	var loaded []string
	cs, err = db.AdvisoryChanges(ctx, 0, func(r vulndb.StoredRecord) error {
		loaded = append(loaded, r.ID)
		return nil
	})
	if err != nil || !cs.Complete || len(cs.Keys) != 3 || !slices.Equal(loaded, []string{"A"}) {
		t.Errorf("changes after 0: %+v, loaded %v, %v", cs, loaded, err)
	}
	if cs, err := db.AdvisoryChanges(ctx, 2, nil); err != nil || !cs.Complete || cs.To != 2 || len(cs.Keys) != 0 {
		t.Errorf("changes after the current version: %+v %v", cs, err)
	}
}

func testAdvisoryBatchConflictAndAbort(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	a, err := db.StageAdvisories(ctx, vulndb.BatchInfo{Base: 0, Kind: "update"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, record("X", "Go", "x", 1)); err != nil {
		t.Fatal(err)
	}
	if v := CommitAdvisories(t, db, []vulndb.StoredRecord{record("Y", "Go", "y", 1)}, nil); v != 1 {
		t.Fatalf("version %d", v)
	}
	// Staged rows are invisible.
	if ids, _ := loadIDs(t, db, nil); !slices.Equal(ids, []string{"Y"}) {
		t.Errorf("visible: %v", ids)
	}
	if _, err := a.Commit(ctx, vulndb.BatchStats{}); !errors.Is(err, vulndb.ErrConflict) {
		t.Fatalf("commit of a stale batch: %v", err)
	}
	if err := a.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if ids, v := loadIDs(t, db, nil); !slices.Equal(ids, []string{"Y"}) || v != 1 {
		t.Errorf("after abort: %v at %d", ids, v)
	}
	// A batch staged against the current version still commits.
	if v := CommitAdvisories(t, db, []vulndb.StoredRecord{record("X", "Go", "x", 2)}, nil); v != 2 {
		t.Fatalf("version %d", v)
	}
}

func testAdvisoryChangeSetsArePruned(t *testing.T, open Opener) {
	db := open(t)
	for i := 1; i <= keptChangeSets+6; i++ {
		CommitAdvisories(t, db, []vulndb.StoredRecord{record("R", "PyPI", fmt.Sprintf("p%d", i), i%28+1)}, nil)
	}
	cs, err := db.AdvisoryChanges(context.Background(), 2, nil)
	if err != nil || cs.Complete {
		t.Errorf("changes after 2 should be incomplete: %+v %v", cs, err)
	}
	cs, err = db.AdvisoryChanges(context.Background(), keptChangeSets+4, nil)
	if err != nil || !cs.Complete || len(cs.Keys) != 2 {
		t.Errorf("recent changes: %+v %v", cs, err)
	}
}

func testAdvisoryStatus(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	st, err := db.AdvisoryStatus(ctx)
	if err != nil || st.Version != 0 || st.Records != 0 || st.LastStats != nil || st.Ecosystems == nil || len(st.Ecosystems) != 0 {
		t.Fatalf("empty status %+v, %v", st, err)
	}
	withdrawn := record("W", "Debian:12", "openssl", 3)
	withdrawn.Withdrawn = true
	both := record("D", "Debian:11", "zlib", 2)
	both.Keys = append(both.Keys, advisory.PackageKey{Ecosystem: "Debian:12", Name: "zlib"})
	CommitAdvisories(t, db, []vulndb.StoredRecord{record("A", "npm", "a", 1), withdrawn, both}, nil)
	st, err = db.AdvisoryStatus(ctx)
	if err != nil || st.Version != 1 || st.Records != 3 || st.Withdrawn != 1 || st.LastKind != "import" || st.LastSource != "test" ||
		st.LastStats == nil || st.LastStats.Added != 3 || st.UpdatedAt.IsZero() {
		t.Fatalf("status %+v, %v", st, err)
	}
	if len(st.Ecosystems) != 2 {
		t.Fatalf("ecosystems %+v", st.Ecosystems)
	}
	deb, npm := st.Ecosystems[0], st.Ecosystems[1]
	if deb.Ecosystem != "Debian" || deb.Records != 2 || deb.Withdrawn != 1 || !slices.Equal(deb.Releases, []string{"Debian:11", "Debian:12"}) ||
		!deb.NewestModified.Equal(withdrawn.Modified) {
		t.Errorf("Debian: %+v", deb)
	}
	if npm.Ecosystem != "npm" || npm.Records != 1 || npm.Withdrawn != 0 || len(npm.Releases) != 0 {
		t.Errorf("npm: %+v", npm)
	}
}
