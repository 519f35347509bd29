package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/ecr"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/oci"
	"github.com/lading-registry/lading/internal/pullgate"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/postgres"
	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
	"github.com/lading-registry/lading/internal/store/storetest"
	"github.com/lading-registry/lading/internal/suppression"
	"github.com/lading-registry/lading/internal/vulndb"
)

// The consumers' interfaces store/postgres satisfies in full so far.
var (
	_ events.Store           = (*postgres.DB)(nil)
	_ scanning.JobStore      = (*postgres.DB)(nil)
	_ oci.Metadata           = (*postgres.DB)(nil)
	_ ecr.Metadata           = (*postgres.DB)(nil)
	_ ecr.Policies           = (*postgres.DB)(nil)
	_ auth.KeyStore          = (*postgres.DB)(nil)
	_ auth.PolicyStore       = (*postgres.DB)(nil)
	_ vulndb.Store           = (*postgres.DB)(nil)
	_ findings.CoverageStore = (*postgres.DB)(nil)
	_ scanning.ExpiryStore   = (*postgres.DB)(nil)
	_ scanning.Store         = (*postgres.DB)(nil)
	_ findings.Store         = (*postgres.DB)(nil)
	_ pullgate.Store         = (*postgres.DB)(nil)
	_ suppression.Store      = (*postgres.DB)(nil)
	_ auth.SecretStore       = (*postgres.DB)(nil)
	_ scanning.ResultStore   = (*postgres.DB)(nil)
	_ findings.TrendStore    = (*postgres.DB)(nil)
)

// TestPostgres runs every test of the package in one database, a schema each.
func TestPostgres(t *testing.T) {
	pg := pgtest.New(t)
	open := func(t *testing.T) *postgres.DB {
		t.Helper()
		db, err := postgres.Open(context.Background(), pg.Schema(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) storetest.Store { return open(t) })
	})
	t.Run("MigrationsOnceAcrossNodes", func(t *testing.T) { testMigrationsOnceAcrossNodes(t, pg) })
	t.Run("RefusesNewerSchema", func(t *testing.T) { testRefusesNewerSchema(t, pg) })
	t.Run("ConcurrentPushesToImmutableTag", func(t *testing.T) { testConcurrentImmutableTag(t, open(t)) })
	t.Run("ConcurrentClaimsTakeEachJobOnce", func(t *testing.T) { testConcurrentClaims(t, open(t)) })
	t.Run("OutboxReaderMissesNoConcurrentEvent", func(t *testing.T) { testOutboxReaderMissesNothing(t, open(t)) })
	t.Run("EffectsReadingTheStoreUnderLoad", func(t *testing.T) { testEffectsUnderLoad(t, pg) })
	t.Run("AdvisoryGarbageCollected", func(t *testing.T) { testAdvisoryGarbage(t, pg) })
	t.Run("AdvisoryCommitsRacing", func(t *testing.T) { testAdvisoryCommitsRacing(t, open(t)) })
	t.Run("FindingStorage", func(t *testing.T) { testFindingStorage(t, pg) })
	t.Run("FindingPackageSets", func(t *testing.T) { testFindingPackageSets(t, pg) })
	t.Run("ReplaceSecrets", func(t *testing.T) { testReplaceSecrets(t, pg) })
	t.Run("ConcurrentApplyScans", func(t *testing.T) { testConcurrentApplyScans(t, pg) })
	t.Run("PingFailsWhenClosed", func(t *testing.T) {
		db := open(t)
		if err := db.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		_ = db.Close()
		if err := db.Ping(context.Background()); err == nil {
			t.Fatal("ping of a closed store succeeded")
		}
	})
}

// testMigrationsOnceAcrossNodes: nodes starting together on an empty database apply each
// migration once, and reopening applies nothing.
func testMigrationsOnceAcrossNodes(t *testing.T, pg *pgtest.Database) {
	ctx := context.Background()
	url := pg.EmptySchema(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := postgres.Open(ctx, url)
			if err == nil {
				_ = db.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows, distinct int
	if err := conn.QueryRow(ctx, "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows == 0 || rows != distinct {
		t.Fatalf("schema_migrations holds %d rows of %d versions", rows, distinct)
	}
}

func testRefusesNewerSchema(t *testing.T, pg *pgtest.Database) {
	ctx := context.Background()
	url := pg.EmptySchema(t)
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "INSERT INTO schema_migrations VALUES (9999, 'future', 0)"); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(ctx, url); !errors.Is(err, postgres.ErrNewerSchema) {
		t.Fatalf("got %v, want ErrNewerSchema", err)
	}
}

// testConcurrentImmutableTag: pushes of different manifests racing for one tag of an
// IMMUTABLE repository, as from several nodes: exactly one wins, the others are refused.
func testConcurrentImmutableTag(t *testing.T, db *postgres.DB) {
	ctx := context.Background()
	if _, err := db.CreateRepository(ctx, store.Repository{Name: "imm", TagMutability: store.TagImmutable}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := store.Manifest{Repository: "imm", Digest: "sha256:" + string(rune('a'+i)), MediaType: "application/vnd.oci.image.manifest.v1+json",
				Size: 2, Content: []byte("{}")}
			_, errs[i] = db.PutManifest(ctx, m, nil, []string{"v1"}, store.PutOptions{})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrTagImmutable):
			t.Fatal(err)
		}
	}
	if won != 1 {
		t.Fatalf("%d pushes took the immutable tag, want 1", won)
	}
}

// testConcurrentClaims: workers of several nodes claiming at once take every job exactly once.
func testConcurrentClaims(t *testing.T, db *postgres.DB) {
	ctx := context.Background()
	const jobs, workers = 40, 8
	var queued []store.ScanJob
	for i := range jobs {
		queued = append(queued, store.ScanJob{Repository: "app", Digest: fmt.Sprintf("sha256:%064d", i), ScanType: "BASIC", Trigger: store.TriggerPush})
	}
	if err := db.EnqueueScans(ctx, queued...); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var mu sync.Mutex
	claimed := map[int64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("node-%d", w)
			for {
				j, ok, err := db.ClaimScanJob(ctx, owner, now, time.Minute)
				if err != nil {
					errs <- err
					return
				}
				if !ok {
					return
				}
				mu.Lock()
				if prev, dup := claimed[j.ID]; dup {
					mu.Unlock()
					errs <- fmt.Errorf("job %d claimed by %s and %s", j.ID, prev, owner)
					return
				}
				claimed[j.ID] = owner
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(claimed) != jobs {
		t.Fatalf("%d jobs claimed, want %d", len(claimed), jobs)
	}
}

// testOutboxReaderMissesNothing: a reader following the outbox with a cursor, as the event
// dispatcher does, while many transactions append at once, sees every event: a sequence number
// is never committed behind one the reader has passed.
func testOutboxReaderMissesNothing(t *testing.T, db *postgres.DB) {
	ctx := context.Background()
	const writers, perWriter = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				ev := store.OutboxEvent{DetailType: "test", Source: "lading", Detail: json.RawMessage(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))}
				if err := db.AppendOutbox(ctx, ev); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	seen := map[string]bool{}
	var cursor int64
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		evs, err := db.ReadOutbox(ctx, cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Seq <= cursor {
				t.Fatalf("seq %d after cursor %d", e.Seq, cursor)
			}
			cursor = e.Seq
			seen[string(e.Detail)] = true
		}
		if finished && len(evs) == 0 {
			break
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != writers*perWriter {
		t.Fatalf("the reader saw %d events of %d", len(seen), writers*perWriter)
	}
}

// testEffectsUnderLoad: many pushes at once, each with an effects function that reads through
// the store (as scanning's reads the scanning configuration), on a small pool: none waits
// forever for a connection its own kind holds.
func testEffectsUnderLoad(t *testing.T, pg *pgtest.Database) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, pg.Schema(t)+"&pool_max_conns=4")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetEffects(func(ctx context.Context, c store.Change) (store.Effects, error) {
		if _, err := db.ScanningPolicy(ctx); err != nil {
			return store.Effects{}, err
		}
		return store.Effects{Events: []store.OutboxEvent{{DetailType: "test", Source: "lading", Detail: json.RawMessage(`{}`)}}}, nil
	}, nil)
	const pushes = 32
	var wg sync.WaitGroup
	errs := make([]error, pushes)
	for i := range pushes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := store.Manifest{Repository: "app", Digest: fmt.Sprintf("sha256:%064d", i), MediaType: "application/vnd.oci.image.manifest.v1+json",
				Size: 2, Content: []byte("{}")}
			_, errs[i] = db.PutManifest(ctx, m, nil, []string{fmt.Sprint("t", i)}, store.PutOptions{CreateRepository: true})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if evs, err := db.ReadOutbox(ctx, 0, 100); err != nil || len(evs) != pushes {
		t.Fatalf("%d events, %v; want %d", len(evs), err, pushes)
	}
}

func advisoryRecord(id, name string, n int) vulndb.StoredRecord {
	return vulndb.StoredRecord{ID: id, Modified: time.Date(2024, 1, n, 0, 0, 0, 0, time.UTC), Hash: fmt.Sprint(id, n),
		Keys: []advisory.PackageKey{{Ecosystem: "npm", Name: name}}, Raw: fmt.Appendf(nil, `{"id":%q}`, id)}
}

// testAdvisoryGarbage: superseded and deleted record versions, and the staging rows of an
// aborted batch, are collected.
func testAdvisoryGarbage(t *testing.T, pg *pgtest.Database) {
	ctx := context.Background()
	url := pg.Schema(t)
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.CommitAdvisories(t, db, []vulndb.StoredRecord{advisoryRecord("A", "a", 1), advisoryRecord("B", "b", 1)}, nil)
	storetest.CommitAdvisories(t, db, []vulndb.StoredRecord{advisoryRecord("A", "a2", 2)}, []string{"B"})
	aborted, err := db.StageAdvisories(ctx, vulndb.BatchInfo{Base: 2, Kind: "update"})
	if err != nil {
		t.Fatal(err)
	}
	if err := aborted.Put(ctx, advisoryRecord("C", "c", 3)); err != nil {
		t.Fatal(err)
	}
	if err := aborted.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for table, want := range map[string]int{"advisory_records": 1, "advisory_packages": 1, "advisory_deletions": 0, "advisory_batches": 2} {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s holds %d rows, want %d", table, n, want)
		}
	}
}

// testAdvisoryCommitsRacing: nodes committing batches staged against the same version: one
// makes the next version, the others get ErrConflict.
func testAdvisoryCommitsRacing(t *testing.T, db *postgres.DB) {
	ctx := context.Background()
	const nodes = 4
	batches := make([]vulndb.StagedBatch, nodes)
	for i := range batches {
		b, err := db.StageAdvisories(ctx, vulndb.BatchInfo{Base: 0, Kind: "update"})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Put(ctx, advisoryRecord(fmt.Sprint("R", i), "r", 1)); err != nil {
			t.Fatal(err)
		}
		batches[i] = b
	}
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	for i, b := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = b.Commit(ctx, vulndb.BatchStats{Added: 1})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, vulndb.ErrConflict):
			t.Fatal(err)
		}
	}
	if v, err := db.AdvisoryVersion(ctx); won != 1 || err != nil || v != 1 {
		t.Fatalf("%d commits won, version %d, %v; want 1 and version 1", won, v, err)
	}
}

// openWithConn opens the store on a schema of its own, with a direct connection to the same
// schema for tests that read its tables, and count, which runs a query answering one integer.
// Both close when the test ends.
func openWithConn(t *testing.T, pg *pgtest.Database) (*postgres.DB, *pgx.Conn, func(query string) int) {
	t.Helper()
	ctx := context.Background()
	url := pg.Schema(t)
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	count := func(query string) int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	return db, conn, count
}
