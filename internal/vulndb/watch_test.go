package vulndb_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/vulndb"
)

// TestHelperImport is not a test: run as a child process, it imports paths into a
// database, standing in for `lading db import` run beside a server.
func TestHelperImport(t *testing.T) {
	dbPath := os.Getenv("LADING_VULNDB_HELPER_DB")
	if dbPath == "" {
		return // only meaningful as the child process of TestWatcherSeesImportOfAnotherProcess
	}
	st := openStore(t, dbPath)
	db := vulndb.New(st, vulndb.Options{Logger: quietLogger()})
	if _, err := db.Import(context.Background(), strings.Split(os.Getenv("LADING_VULNDB_HELPER_PATHS"), "|")...); err != nil {
		t.Fatal(err)
	}
}

func importInChild(t *testing.T, dbPath string, paths ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperImport$", "-test.count=1")
	cmd.Env = append(os.Environ(), "LADING_VULNDB_HELPER_DB="+dbPath, "LADING_VULNDB_HELPER_PATHS="+strings.Join(paths, "|"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("import in a child process: %v\n%s", err, out)
	}
}

func TestWatcherSeesImportOfAnotherProcess(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "meta.db")
	st := openStore(t, dbPath)
	w := vulndb.NewWatcher(st, vulndb.WatcherOptions{PollInterval: 20 * time.Millisecond, Logger: quietLogger()})
	sub := w.Subscribe()
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()

	next := func() vulndb.Change {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		ch, err := sub.Next(wctx)
		if err != nil {
			t.Fatalf("no change seen: %v", err)
		}
		return ch
	}

	select {
	case <-w.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("watcher never ready on an empty database")
	}
	importInChild(t, dbPath, testfiles.Path(t, "osv-mini", "Debian"))
	ch := next()
	if ch.To != 1 || !ch.Full {
		t.Errorf("first change: %+v", ch)
	}
	vs, _ := w.Index().Affecting("Debian:12", "openssl", "3.0.11-1~deb12u1")
	if got := ids(vs); !slices.Equal(got, []string{"CVE-2023-5363"}) {
		t.Errorf("after the first import: %v", got)
	}

	// A second import changes one package: the index is rebuilt for just that key.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "DSA-9999-1.json"), []byte(`{"id":"DSA-9999-1","modified":"2026-01-01T00:00:00Z","upstream":["CVE-2026-0001"],
		"affected":[{"package":{"ecosystem":"Debian:12","name":"curl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"7.88.1-10+deb12u9"}]}]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	before := w.Index()
	importInChild(t, dbPath, dir)
	ch = next()
	if ch.From != 1 || ch.To != 2 || ch.Full || !slices.Equal(ch.Keys, []advisory.PackageKey{advisory.MakeKey("Debian:12", "curl")}) {
		t.Errorf("second change: %+v", ch)
	}
	vs, _ = w.Index().Affecting("Debian:12", "curl", "7.88.1-10+deb12u8")
	if got := ids(vs); !slices.Equal(got, []string{"CVE-2026-0001"}) {
		t.Errorf("after the second import: %v", got)
	}
	if vs, _ := before.Affecting("Debian:12", "curl", "7.88.1-10+deb12u8"); len(vs) != 0 || before.Version() != 1 {
		t.Error("an earlier snapshot changed")
	}
	if w.Index().Advisory("DSA-5532-1") != before.Advisory("DSA-5532-1") {
		t.Error("an unchanged advisory was rebuilt instead of shared")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestSubscriptionMergesChanges(t *testing.T) {
	ctx := context.Background()
	db, st := newDB(t, vulndb.Options{})
	w := vulndb.NewWatcher(st, vulndb.WatcherOptions{Logger: quietLogger()})
	if _, err := db.Import(ctx, testfiles.Path(t, "osv-mini", "npm")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	sub := w.Subscribe()
	defer sub.Close()
	for _, eco := range []string{"Maven", "NuGet"} {
		if _, err := db.Import(ctx, testfiles.Path(t, "osv-mini", eco)); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-sub.Ready():
	default:
		t.Fatal("subscription not signalled")
	}
	ch, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []advisory.PackageKey{advisory.MakeKey("Maven", "org.apache.logging.log4j:log4j-core"), advisory.MakeKey("NuGet", "newtonsoft.json")}
	if ch.From != 1 || ch.To != 3 || ch.Full || !slices.Equal(ch.Keys, want) {
		t.Errorf("merged change %+v, want 1->3 %v", ch, want)
	}
	if c, err := w.Refresh(ctx); err != nil || c != nil {
		t.Errorf("refresh without a new version: %v %v", c, err)
	}
}

func TestSyncer(t *testing.T) {
	ctx := context.Background()
	db, st := newDB(t, vulndb.Options{})
	if err := vulndb.NewSyncer(db, vulndb.SyncerOptions{Source: vulndb.NoSource}).Run(ctx); err != nil {
		t.Fatalf("source none: %v", err)
	}
	s := vulndb.NewSyncer(db, vulndb.SyncerOptions{Source: testfiles.Path(t, "osv-mini"), Ecosystems: []string{"Go"}, Interval: time.Hour})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for s.Status().LastSuccess.IsZero() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v, _ := st.AdvisoryVersion(context.Background()); v != 1 || s.Status().LastResult == nil || s.Status().LastResult.Added != 8 {
		t.Errorf("version %d, status %+v", v, s.Status())
	}
	bad := vulndb.NewSyncer(db, vulndb.SyncerOptions{Source: filepath.Join(t.TempDir(), "missing")})
	if _, err := bad.SyncOnce(context.Background()); err == nil || bad.Status().LastError == "" {
		t.Errorf("failed sync not reported: %v %+v", err, bad.Status())
	}
}
