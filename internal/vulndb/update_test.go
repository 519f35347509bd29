package vulndb_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/vulndb"
)

// writeMirror lays records out as OSV's bucket does: <Eco>/all.zip, <Eco>/<ID>.json,
// <Eco>/modified_id.csv (newest first) and ecosystems.txt.
func writeMirror(t testing.TB, dir string, ecos map[string]map[string][]byte) {
	t.Helper()
	var names []string
	for eco, recs := range ecos {
		names = append(names, eco)
		d := filepath.Join(dir, eco)
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
		writeZip(t, filepath.Join(d, "all.zip"), recs)
		type line struct{ modified, id string }
		var lines []line
		for name, raw := range recs {
			var r struct{ ID, Modified string }
			if json.Unmarshal(raw, &r) != nil {
				// A broken record on purpose: list it as changed now.
				r.ID, r.Modified = strings.TrimSuffix(name, ".json"), "2099-01-01T00:00:00Z"
			}
			lines = append(lines, line{r.Modified, r.ID})
			if err := os.WriteFile(filepath.Join(d, r.ID+".json"), raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		sort.Slice(lines, func(i, j int) bool { return lines[i].modified > lines[j].modified })
		var csv strings.Builder
		for _, l := range lines {
			fmt.Fprintf(&csv, "%s,%s\n", l.modified, l.id)
		}
		if err := os.WriteFile(filepath.Join(d, "modified_id.csv"), []byte(csv.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(names)
	if err := os.WriteFile(filepath.Join(dir, "ecosystems.txt"), []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// bucket serves a mirror folder over HTTP like a static bucket (ETag, Range, If-Range),
// logs requests, and can cut all.zip responses short.
type bucket struct {
	dir       string
	mu        sync.Mutex
	requests  []string
	dropAfter int64 // > 0: close the connection after this many bytes of a whole all.zip
	stall     bool  // with dropAfter: stop sending instead, until the client gives up
}

func (b *bucket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	entry := r.URL.Path
	if rg := r.Header.Get("Range"); rg != "" {
		entry += " " + rg
	}
	b.requests = append(b.requests, entry)
	drop, stall := b.dropAfter, b.stall
	b.mu.Unlock()
	p := filepath.Join(b.dir, filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/")))
	f, err := os.Open(p)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", fmt.Sprintf(`"%d-%d"`, fi.ModTime().UnixNano(), fi.Size()))
	if drop > 0 && strings.HasSuffix(p, "all.zip") && r.Header.Get("Range") == "" {
		w.Header().Set("Content-Length", fmt.Sprint(fi.Size()))
		w.WriteHeader(http.StatusOK)
		_, _ = io.CopyN(w, f, drop)
		w.(http.Flusher).Flush()
		if stall {
			<-r.Context().Done()
		}
		panic(http.ErrAbortHandler) // the connection drops half-way
	}
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}

func (b *bucket) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.requests
	b.requests = nil
	return out
}

func serveBucket(t testing.TB, dir string) (*bucket, string) {
	b := &bucket{dir: dir}
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	return b, srv.URL
}

func TestUpdateFullThenIncremental(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ecos := map[string]map[string][]byte{
		"Debian": miniRecords(t, "Debian"),
		"npm":    miniRecords(t, "npm"),
		"Go":     miniRecords(t, "Go"),
	}
	writeMirror(t, dir, ecos)
	b, url := serveBucket(t, dir)
	db, _ := newDB(t, vulndb.Options{CacheDir: t.TempDir()})

	res, err := db.Update(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 1 || res.Added != 21 {
		t.Fatalf("full sync: %+v", res)
	}
	reqs := b.take()
	for _, want := range []string{"/ecosystems.txt", "/Debian/all.zip", "/npm/all.zip", "/Go/all.zip"} {
		if !slices.Contains(reqs, want) {
			t.Errorf("full sync did not fetch %s: %v", want, reqs)
		}
	}

	// Upstream changes one Debian record, adds an npm record and deletes a Go record.
	changed := strings.Replace(string(ecos["Debian"]["DSA-5532-1.json"]), "3.0.11-1~deb12u2", "3.0.11-1~deb12u3", 1)
	ecos["Debian"]["DSA-5532-1.json"] = []byte(strings.Replace(changed, `"modified": "2023-10-24T00:00:00Z"`, `"modified": "2024-05-01T00:00:00Z"`, 1))
	ecos["npm"]["GHSA-test-0001.json"] = []byte(`{"id":"GHSA-test-0001","modified":"2024-05-02T00:00:00Z","aliases":["CVE-2099-0001"],
		"affected":[{"package":{"ecosystem":"npm","name":"left-pad"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.3.0"}]}]}]}`)
	delete(ecos["Go"], "GO-2020-0015.json")
	writeMirror(t, dir, ecos)
	_ = os.Remove(filepath.Join(dir, "Go", "GO-2020-0015.json"))

	res, err = db.Update(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 2 || res.Added != 1 || res.BatchStats.Changed != 1 || res.Deleted != 1 {
		t.Fatalf("incremental sync: %+v", res)
	}
	reqs = b.take()
	slices.Sort(reqs)
	want := []string{"/Debian/DSA-5532-1.json", "/Debian/modified_id.csv", "/Go/modified_id.csv", "/ecosystems.txt", "/npm/GHSA-test-0001.json", "/npm/modified_id.csv"}
	if !slices.Equal(reqs, want) {
		t.Errorf("incremental sync fetched %v, want %v", reqs, want)
	}
	wantKeys := []advisory.PackageKey{advisory.MakeKey("Debian:12", "openssl"), advisory.MakeKey("Go", "golang.org/x/text"), advisory.MakeKey("npm", "left-pad")}
	if !slices.Equal(res.Keys, wantKeys) {
		t.Errorf("change set %v, want %v", res.Keys, wantKeys)
	}
	vs, _ := db.Query(ctx, "npm", "left-pad", "1.2.0")
	if got := ids(vs); !slices.Equal(got, []string{"CVE-2099-0001"}) {
		t.Errorf("new record: %v", got)
	}
	vs, _ = db.Query(ctx, "Go", "golang.org/x/text", "0.3.2")
	if got := ids(vs); slices.Contains(got, "CVE-2020-14040") {
		t.Errorf("deleted record still matches: %v", got)
	}

	// Nothing changed: only the listings are read and no version is made.
	res, err = db.Update(ctx, url, []string{"Debian", "npm"})
	if err != nil || res.Changed || res.Version != 2 {
		t.Fatalf("no-op sync: %+v %v", res, err)
	}
	if reqs = b.take(); !slices.Equal(reqs, []string{"/Debian/modified_id.csv", "/npm/modified_id.csv"}) {
		t.Errorf("no-op sync fetched %v", reqs)
	}
}

func TestUpdateFromFolder(t *testing.T) {
	ctx := context.Background()
	db, _ := newDB(t, vulndb.Options{})
	res, err := db.Update(ctx, testfiles.Path(t, "osv-mini"), []string{"Maven", "Alpine"})
	if err != nil || res.Version != 1 || res.Added != 11 {
		t.Fatalf("folder sync: %+v %v", res, err)
	}
	res, err = db.Update(ctx, testfiles.Path(t, "osv-mini"), nil) // every ecosystem folder
	if err != nil || res.Version != 2 || res.Added != 34 || res.Unchanged != 11 {
		t.Fatalf("folder sync of all ecosystems: %+v %v", res, err)
	}
	if _, err := db.Update(ctx, testfiles.Path(t, "osv-mini"), []string{"Hackage"}); !errors.Is(err, vulndb.ErrNotFound) {
		t.Errorf("unknown ecosystem: %v", err)
	}
	if _, err := db.Update(ctx, testfiles.Path(t, "osv-mini"), []string{"../etc"}); err == nil {
		t.Error("an ecosystem name with a path separator was accepted")
	}
}

func TestUpdateFailuresKeepPreviousVersion(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ecos := map[string]map[string][]byte{"Go": miniRecords(t, "Go")}
	writeMirror(t, dir, ecos)
	b, url := serveBucket(t, dir)
	cache := t.TempDir()
	db, st := newDB(t, vulndb.Options{CacheDir: cache})
	if _, err := db.Update(ctx, url, nil); err != nil {
		t.Fatal(err)
	}
	keep := func(t *testing.T) {
		t.Helper()
		v, err := st.AdvisoryVersion(ctx)
		if err != nil || v != 1 {
			t.Errorf("version %d (%v), want 1", v, err)
		}
		vs, _ := db.Query(ctx, "Go", "stdlib", "1.19.0")
		if len(vs) != 3 {
			t.Errorf("previous version not usable: %v", ids(vs))
		}
	}

	t.Run("record that fails to parse", func(t *testing.T) {
		bad := maps2(ecos)
		bad["Go"]["GO-2024-3333.json"] = []byte(`{"id":"GO-2024-3333","modified":"2026-01-01T00:00:00Z","affected":[{"package":`)
		writeMirror(t, dir, bad)
		_, err := db.Update(ctx, url, nil)
		t.Log(err)
		if !errors.Is(err, advisory.ErrInvalidRecord) || !strings.Contains(err.Error(), "GO-2024-3333.json") {
			t.Fatalf("err = %v", err)
		}
		keep(t)
	})

	t.Run("corrupt zip", func(t *testing.T) {
		writeMirror(t, dir, ecos)
		zipPath := filepath.Join(dir, "Go", "all.zip")
		raw, _ := os.ReadFile(zipPath)
		copy(raw[len(raw)-100:], strings.Repeat("x", 100)) // the central directory
		if err := os.WriteFile(zipPath, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		// A new ecosystem is always fetched whole.
		_ = os.Rename(filepath.Join(dir, "Go"), filepath.Join(dir, "Hex"))
		_, err := db.Update(ctx, url, []string{"Hex"})
		t.Log(err)
		if !errors.Is(err, vulndb.ErrCorruptArchive) || !strings.Contains(err.Error(), "all.zip") {
			t.Fatalf("err = %v", err)
		}
		keep(t)
		_ = os.RemoveAll(filepath.Join(dir, "Hex"))
	})

	t.Run("connection dropped half-way, then resumed", func(t *testing.T) {
		npm := miniRecords(t, "npm")
		writeMirror(t, dir, map[string]map[string][]byte{"Go": ecos["Go"], "npm": npm})
		b.take()
		b.mu.Lock()
		b.dropAfter = 1000
		b.mu.Unlock()
		_, err := db.Update(ctx, url, []string{"npm"})
		t.Log(err)
		if err == nil || !strings.Contains(err.Error(), "after 1000 of") || !strings.Contains(err.Error(), "resumes") {
			t.Fatalf("err = %v", err)
		}
		keep(t)
		b.mu.Lock()
		b.dropAfter = 0
		b.mu.Unlock()
		b.take()
		res, err := db.Update(ctx, url, []string{"npm"})
		if err != nil || res.Version != 2 || res.Added != 5 {
			t.Fatalf("resumed update: %+v %v", res, err)
		}
		if reqs := b.take(); !slices.Contains(reqs, "/npm/all.zip bytes=1000-") {
			t.Errorf("the download was not resumed: %v", reqs)
		}
		entries, _ := filepath.Glob(filepath.Join(cache, "*", "npm", "*"))
		if len(entries) != 0 {
			t.Errorf("downloads left in the cache: %v", entries)
		}
	})
}

func TestUpdateFetchesRecordWithColonInID(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ecos := map[string]map[string][]byte{"AlmaLinux": miniRecords(t, "AlmaLinux")}
	writeMirror(t, dir, ecos)
	b, url := serveBucket(t, dir)
	db, _ := newDB(t, vulndb.Options{})
	if _, err := db.Update(ctx, url, nil); err != nil {
		t.Fatal(err)
	}
	raw := string(ecos["AlmaLinux"]["ALSA-2023:0946.json"])
	raw = strings.Replace(raw, `"modified": "2023-02-28T19:45:58Z"`, `"modified": "2024-01-01T00:00:00Z"`, 1)
	if !strings.Contains(raw, "2024-01-01") {
		t.Fatalf("test record changed upstream: %s", raw[:200])
	}
	ecos["AlmaLinux"]["ALSA-2023:0946.json"] = []byte(raw)
	writeMirror(t, dir, ecos)
	b.take()
	res, err := db.Update(ctx, url, nil)
	if err != nil || res.BatchStats.Changed != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	if reqs := b.take(); !slices.Contains(reqs, "/AlmaLinux/ALSA-2023:0946.json") {
		t.Errorf("requests %v", reqs)
	}
}

func TestUpdateFallsBackToAllZip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ecos := map[string]map[string][]byte{"Alpine": miniRecords(t, "Alpine")}
	writeMirror(t, dir, ecos)
	b, url := serveBucket(t, dir)
	db, _ := newDB(t, vulndb.Options{})
	if _, err := db.Update(ctx, url, nil); err != nil {
		t.Fatal(err)
	}
	// The listing names a changed record whose file is not there (yet).
	raw := strings.Replace(string(ecos["Alpine"]["ALPINE-CVE-2024-3094.json"]), `"modified": "2026-11-29T00:00:00Z"`, `"modified": "2026-12-01T00:00:00Z"`, 1)
	ecos["Alpine"]["ALPINE-CVE-2024-3094.json"] = []byte(strings.Replace(raw, "5.6.1-r2", "5.6.1-r3", 2))
	writeMirror(t, dir, ecos)
	if err := os.Remove(filepath.Join(dir, "Alpine", "ALPINE-CVE-2024-3094.json")); err != nil {
		t.Fatal(err)
	}
	b.take()
	res, err := db.Update(ctx, url, nil)
	if err != nil || res.BatchStats.Changed != 1 || res.Deleted != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if reqs := b.take(); !slices.Contains(reqs, "/Alpine/all.zip") {
		t.Errorf("no fallback to all.zip: %v", reqs)
	}
	vs, _ := db.Query(ctx, "Alpine:v3.24", "xz", "5.6.1-r2")
	if got := ids(vs); !slices.Equal(got, []string{"CVE-2024-3094"}) {
		t.Errorf("changed record: %v", got)
	}
}

func TestUpdateStalledTransfer(t *testing.T) {
	dir := t.TempDir()
	writeMirror(t, dir, map[string]map[string][]byte{"npm": miniRecords(t, "npm")})
	b, url := serveBucket(t, dir)
	b.dropAfter, b.stall = 700, true
	db, st := newDB(t, vulndb.Options{CacheDir: t.TempDir(), StallTimeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := db.Update(context.Background(), url, nil)
	if err == nil || !strings.Contains(err.Error(), "stalled") || !strings.Contains(err.Error(), "after 700 of") {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("gave up after %s", el)
	}
	if v, _ := st.AdvisoryVersion(context.Background()); v != 0 {
		t.Errorf("version %d", v)
	}
}

func maps2(m map[string]map[string][]byte) map[string]map[string][]byte {
	out := map[string]map[string][]byte{}
	for k, v := range m {
		out[k] = map[string][]byte{}
		for n, b := range v {
			out[k][n] = b
		}
	}
	return out
}
