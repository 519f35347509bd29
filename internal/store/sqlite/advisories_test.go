package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/vulndb"
)

func openTemp(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func record(id, eco, name string, n int) vulndb.StoredRecord {
	return vulndb.StoredRecord{
		ID: id, Modified: time.Date(2024, 1, n, 0, 0, 0, 123000, time.UTC), Hash: fmt.Sprintf("%s-%d", id, n),
		Keys: []advisory.PackageKey{{Ecosystem: eco, Name: name}},
		Raw:  fmt.Appendf(nil, `{"id":%q,"n":%d}`, id, n),
	}
}

// commit applies one batch of puts and deletions.
func commit(t *testing.T, db *DB, puts []vulndb.StoredRecord, dels []string) int64 {
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

func count(t *testing.T, db *DB, table string) int {
	t.Helper()
	var n int
	if err := db.read.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func loadIDs(t *testing.T, db *DB, keys []advisory.PackageKey) ([]string, int64) {
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

func TestAdvisoryBatchesVersionsAndGarbage(t *testing.T) {
	db := openTemp(t)
	if v := commit(t, db, []vulndb.StoredRecord{record("A", "npm", "a", 1), record("B", "npm", "b", 1)}, nil); v != 1 {
		t.Fatalf("version %d", v)
	}
	if v := commit(t, db, []vulndb.StoredRecord{record("A", "npm", "a2", 2)}, []string{"B"}); v != 2 {
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
	// Superseded and deleted record versions are collected.
	if n := count(t, db, "advisory_records"); n != 1 {
		t.Errorf("%d record rows, want 1", n)
	}
	if n := count(t, db, "advisory_packages"); n != 1 {
		t.Errorf("%d package rows, want 1", n)
	}
	var digests []vulndb.RecordDigest
	if _, err := db.AdvisoryDigests(context.Background(), func(d vulndb.RecordDigest) error {
		digests = append(digests, d)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(digests) != 1 || digests[0].Hash != "A-2" || !slices.Equal(digests[0].Keys, []advisory.PackageKey{{Ecosystem: "npm", Name: "a2"}}) {
		t.Errorf("digests %+v", digests)
	}
	cs, err := db.AdvisoryChanges(context.Background(), 1, nil)
	if err != nil || !cs.Complete || cs.To != 2 || !slices.Equal(cs.Keys, []advisory.PackageKey{{Ecosystem: "npm", Name: "a2"}}) {
		t.Errorf("changes after 1: %+v %v", cs, err)
	}
	st, err := db.AdvisoryStatus(context.Background())
	if err != nil || st.Version != 2 || st.Records != 1 || st.LastStats.Deleted != 1 || len(st.Ecosystems) != 1 || st.Ecosystems[0].Ecosystem != "npm" {
		t.Errorf("status %+v %v", st, err)
	}
}

func TestAdvisoryBatchConflictAndAbort(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	a, err := db.StageAdvisories(ctx, vulndb.BatchInfo{Base: 0, Kind: "update"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, record("X", "Go", "x", 1)); err != nil {
		t.Fatal(err)
	}
	if v := commit(t, db, []vulndb.StoredRecord{record("Y", "Go", "y", 1)}, nil); v != 1 {
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
	if n := count(t, db, "advisory_records"); n != 1 {
		t.Errorf("%d record rows after abort, want 1", n)
	}
	if v, _ := db.AdvisoryVersion(ctx); v != 1 {
		t.Errorf("version %d", v)
	}
}

func TestAdvisoryChangeSetsArePruned(t *testing.T) {
	db := openTemp(t)
	for i := 1; i <= keptChangeSets+6; i++ {
		commit(t, db, []vulndb.StoredRecord{record("R", "PyPI", fmt.Sprintf("p%d", i), i%28+1)}, nil)
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

// TestAdvisoryFreshnessMatchesStatus: the cheap freshness query `lading scan` makes answers
// what the full status says, whatever the database holds.
func TestAdvisoryFreshnessMatchesStatus(t *testing.T) {
	withdrawn := func(r vulndb.StoredRecord) vulndb.StoredRecord { r.Withdrawn = true; return r }
	noPackages := func(r vulndb.StoredRecord) vulndb.StoredRecord { r.Keys = nil; return r }
	type step struct {
		puts []vulndb.StoredRecord
		dels []string
	}
	for _, tc := range []struct {
		name  string
		steps []step
		// staged is put in a batch that never commits.
		staged     []vulndb.StoredRecord
		wantLive   bool
		wantNewest int // day of January 2024; 0: none
	}{
		{name: "empty"},
		{name: "one record", steps: []step{{puts: []vulndb.StoredRecord{record("A", "npm", "a", 3)}}}, wantLive: true, wantNewest: 3},
		{name: "newest of several ecosystems", steps: []step{{puts: []vulndb.StoredRecord{
			record("A", "npm", "a", 3), record("B", "Debian:12", "b", 9), record("C", "Go", "c", 5)}}}, wantLive: true, wantNewest: 9},
		{name: "only withdrawn", steps: []step{{puts: []vulndb.StoredRecord{withdrawn(record("A", "npm", "a", 3))}}}, wantNewest: 3},
		{name: "withdrawn newest counts", steps: []step{{puts: []vulndb.StoredRecord{
			record("A", "npm", "a", 3), withdrawn(record("B", "npm", "b", 7))}}}, wantLive: true, wantNewest: 7},
		{name: "a record without packages does not count as newest", steps: []step{{puts: []vulndb.StoredRecord{
			record("A", "npm", "a", 3), noPackages(record("B", "npm", "b", 8))}}}, wantLive: true, wantNewest: 3},
		{name: "superseded by an older modified", steps: []step{
			{puts: []vulndb.StoredRecord{record("A", "npm", "a", 9), record("B", "npm", "b", 2)}},
			{puts: []vulndb.StoredRecord{record("A", "npm", "a", 4)}}}, wantLive: true, wantNewest: 4},
		{name: "newest deleted", steps: []step{
			{puts: []vulndb.StoredRecord{record("A", "npm", "a", 9), record("B", "npm", "b", 2)}},
			{dels: []string{"A"}}}, wantLive: true, wantNewest: 2},
		{name: "staged records are invisible", steps: []step{{puts: []vulndb.StoredRecord{record("A", "npm", "a", 2)}}},
			staged: []vulndb.StoredRecord{record("S", "npm", "s", 20)}, wantLive: true, wantNewest: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := openTemp(t)
			for _, s := range tc.steps {
				commit(t, db, s.puts, s.dels)
			}
			if len(tc.staged) > 0 {
				b, err := db.StageAdvisories(ctx, vulndb.BatchInfo{Kind: "update"})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range tc.staged {
					if err := b.Put(ctx, r); err != nil {
						t.Fatal(err)
					}
				}
				// Put buffers: flush the staged rows to the table by adding changes.
				if err := b.(*advisoryBatch).flush(ctx); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = b.Abort(ctx) })
			}
			got, err := db.AdvisoryFreshness(ctx)
			if err != nil {
				t.Fatal(err)
			}
			st, err := db.AdvisoryStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := st.Freshness(); got != want {
				t.Errorf("freshness %+v, status says %+v", got, want)
			}
			var want time.Time
			if tc.wantNewest > 0 {
				want = time.Date(2024, 1, tc.wantNewest, 0, 0, 0, 123000, time.UTC)
			}
			if got.Live != tc.wantLive || !got.Newest.Equal(want) || got.Version != int64(len(tc.steps)) {
				t.Errorf("freshness %+v, want live %v, newest %v, version %d", got, tc.wantLive, want, len(tc.steps))
			}
		})
	}
}
