package vulndb_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/vulndb"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func openStore(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "meta.db")
	}
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func newDB(t testing.TB, opts vulndb.Options) (*vulndb.DB, *sqlite.DB) {
	t.Helper()
	st := openStore(t, "")
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	return vulndb.New(st, opts), st
}

// miniRecords returns the raw records of one osv-mini ecosystem, by file name.
func miniRecords(t testing.TB, eco string) map[string][]byte {
	t.Helper()
	zr, err := zip.OpenReader(testfiles.Path(t, "osv-mini", eco, "all.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = b
	}
	return out
}

func writeZip(t testing.TB, path string, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func ids(vs []*advisory.Vulnerability) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.VulnerabilityID)
	}
	return out
}

func TestImportMini(t *testing.T) {
	ctx := context.Background()
	db, _ := newDB(t, vulndb.Options{})
	res, err := db.Import(ctx, testfiles.Path(t, "osv-mini"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Version != 1 || res.Added != 45 || res.Withdrawn != 1 {
		t.Fatalf("first import: %+v", res)
	}
	if !slices.Contains(res.Keys, advisory.MakeKey("Maven", "org.apache.logging.log4j:log4j-core")) ||
		!slices.Contains(res.Keys, advisory.MakeKey("Go", "k8s.io/kubernetes")) {
		t.Errorf("change set lacks keys: %v", res.Keys)
	}

	st, err := db.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != 1 || st.Records != 45 || st.Withdrawn != 1 || st.LastKind != "import" {
		t.Errorf("status: %+v", st)
	}
	byEco := map[string]vulndb.EcosystemStatus{}
	for _, e := range st.Ecosystems {
		byEco[e.Ecosystem] = e
	}
	if e := byEco["Debian"]; e.Records != 8 || e.NewestModified.Year() != 2023 || !slices.Contains(e.Releases, "Debian:12") {
		t.Errorf("Debian status: %+v", e)
	}
	if e := byEco["Go"]; e.Records != 8 || e.Withdrawn != 1 {
		t.Errorf("Go status: %+v", e)
	}

	vs, err := db.Query(ctx, "Maven", "org.apache.logging.log4j:log4j-core", "2.14.1")
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(vs); !slices.Equal(got, []string{"CVE-2021-44228", "CVE-2021-44832", "CVE-2021-45046", "CVE-2021-45105"}) {
		t.Errorf("query: %v", got)
	}
	vs, err = db.Query(ctx, "npm", "left-pad", "1.0.0")
	if err != nil || vs == nil || len(vs) != 0 {
		t.Errorf("query of an unknown package: %v %v", vs, err)
	}

	// The same data again changes nothing and makes no version.
	res, err = db.Import(ctx, testfiles.Path(t, "osv-mini"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || res.Version != 1 || res.Unchanged != 45 || len(res.Keys) != 0 {
		t.Errorf("re-import: %+v", res)
	}

	// The index built from the store answers like the one built from files.
	ix, err := db.LoadIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Version() != 1 || ix.Stats().Advisories != 44 {
		t.Errorf("index: version %d stats %+v", ix.Version(), ix.Stats())
	}
	vs, _ = ix.Affecting("Debian:11", "zlib", "1:1.2.11.dfsg-2+deb11u1")
	if got := ids(vs); !slices.Equal(got, []string{"CVE-2022-37434"}) {
		t.Errorf("index from store: %v", got)
	}
}

func TestImportChangesAndDeletions(t *testing.T) {
	ctx := context.Background()
	db, _ := newDB(t, vulndb.Options{})
	dir := t.TempDir()
	deb := miniRecords(t, "Debian")
	writeZip(t, filepath.Join(dir, "Debian", "all.zip"), deb)
	res, err := db.Import(ctx, filepath.Join(dir, "Debian", "all.zip"))
	if err != nil || res.Version != 1 || res.Added != 8 {
		t.Fatalf("%+v %v", res, err)
	}

	// Upstream fixes openssl in Debian:12 later and drops DSA-5218-1 (zlib).
	changed := strings.Replace(string(deb["DSA-5532-1.json"]), "3.0.11-1~deb12u2", "3.0.11-1~deb12u3", 1)
	changed = strings.Replace(changed, `"modified": "2023-10-24T00:00:00Z"`, `"modified": "2024-01-01T00:00:00Z"`, 1)
	deb["DSA-5532-1.json"] = []byte(changed)
	delete(deb, "DSA-5218-1.json")
	writeZip(t, filepath.Join(dir, "Debian", "all.zip"), deb)
	res, err = db.Import(ctx, filepath.Join(dir, "Debian"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 2 || res.Changed != true || res.BatchStats.Changed != 1 || res.Deleted != 1 || res.Unchanged != 6 {
		t.Errorf("second import: %+v", res)
	}
	if want := []advisory.PackageKey{advisory.MakeKey("Debian:11", "zlib"), advisory.MakeKey("Debian:12", "openssl")}; !slices.Equal(res.Keys, want) {
		t.Errorf("change set %v, want %v", res.Keys, want)
	}
	cs, err := db.Changes(ctx, 1)
	if err != nil || !cs.Complete || cs.To != 2 || len(cs.Keys) != 2 {
		t.Errorf("changes since 1: %+v %v", cs, err)
	}
	vs, _ := db.Query(ctx, "Debian:12", "openssl", "3.0.11-1~deb12u2")
	if got := ids(vs); !slices.Equal(got, []string{"CVE-2023-5363"}) {
		t.Errorf("changed record not applied: %v", got)
	}
	vs, _ = db.Query(ctx, "Debian:11", "zlib", "1:1.2.11.dfsg-2")
	if len(vs) != 0 {
		t.Errorf("deleted record still matches: %v", ids(vs))
	}

	// A folder of loose records is not a complete set: nothing is deleted.
	loose := t.TempDir()
	if err := os.WriteFile(filepath.Join(loose, "X-1.json"), []byte(`{"id":"X-1","modified":"2024-01-01T00:00:00Z",
		"affected":[{"package":{"ecosystem":"Debian:12","name":"curl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = db.Import(ctx, loose)
	if err != nil || res.Version != 3 || res.Added != 1 || res.Deleted != 0 {
		t.Errorf("loose import: %+v %v", res, err)
	}
}

func TestImportFailuresKeepPreviousVersion(t *testing.T) {
	ctx := context.Background()
	db, _ := newDB(t, vulndb.Options{})
	if _, err := db.Import(ctx, testfiles.Path(t, "osv-mini", "Go")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	corrupt := filepath.Join(dir, "corrupt", "npm", "all.zip")
	writeZip(t, corrupt, miniRecords(t, "npm"))
	b, _ := os.ReadFile(corrupt)
	if err := os.WriteFile(corrupt, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}

	bad := miniRecords(t, "npm")
	bad["x_NSWG-ECO-516.json"] = []byte(`{"id":"x_NSWG-ECO-516","modified":"not a time"}`)
	badRecord := filepath.Join(dir, "bad", "npm", "all.zip")
	writeZip(t, badRecord, bad)

	// A corrupt entry in the middle of an otherwise valid zip.
	midCorrupt := filepath.Join(dir, "mid", "PyPI", "all.zip")
	writeZip(t, midCorrupt, miniRecords(t, "PyPI"))
	b, _ = os.ReadFile(midCorrupt)
	copy(b[200:], strings.Repeat("\x00", 64))
	if err := os.WriteFile(midCorrupt, b, 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		paths   []string
		wantErr error
		wantMsg string
	}{
		{"corrupt zip", []string{testfiles.Path(t, "osv-mini", "npm"), corrupt}, vulndb.ErrCorruptArchive, "npm/all.zip"},
		{"record that fails to parse", []string{badRecord}, advisory.ErrInvalidRecord, "x_NSWG-ECO-516.json"},
		{"damaged entry", []string{midCorrupt}, vulndb.ErrCorruptArchive, "PyPI/all.zip"},
		{"missing path", []string{filepath.Join(dir, "nope")}, os.ErrNotExist, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.Import(ctx, tt.paths...)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tt.wantErr, tt.wantMsg)
			}
			st, err := db.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Version != 1 || st.Records != 8 {
				t.Errorf("after a failed import: version %d, %d records", st.Version, st.Records)
			}
			vs, _ := db.Query(ctx, "npm", "lodash", "4.17.4")
			if len(vs) != 0 {
				t.Errorf("records of a failed import are visible: %v", ids(vs))
			}
			vs, _ = db.Query(ctx, "Go", "stdlib", "1.19.0")
			if len(vs) != 3 {
				t.Errorf("previous version not usable: %v", ids(vs))
			}
		})
	}

	// Told to skip invalid records, the import goes through without the bad one.
	skip := vulndb.New(db.Store(), vulndb.Options{SkipInvalid: true, Logger: quietLogger()})
	res, err := skip.Import(ctx, badRecord)
	if err != nil || res.Skipped != 1 || res.Added != 4 {
		t.Errorf("skip invalid: %+v %v", res, err)
	}
}

func TestImportCancelled(t *testing.T) {
	st := openStore(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	db := vulndb.New(st, vulndb.Options{Logger: quietLogger(), Progress: progressFunc(func() {
		if n++; n == 20 {
			cancel()
		}
	})})
	if _, err := db.Import(ctx, testfiles.Path(t, "osv-mini")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	v, err := st.AdvisoryVersion(context.Background())
	if err != nil || v != 0 {
		t.Fatalf("version %d after an interrupted import (%v)", v, err)
	}
	var staged int
	if err := st.Reader().QueryRow("SELECT COUNT(*) FROM advisory_records").Scan(&staged); err != nil || staged != 0 {
		t.Fatalf("%d staged records left behind (%v)", staged, err)
	}
	res, err := db.Import(context.Background(), testfiles.Path(t, "osv-mini"))
	if err != nil || res.Version != 1 || res.Added != 45 {
		t.Fatalf("import after interruption: %+v %v", res, err)
	}
}

type progressFunc func()

func (progressFunc) Begin(string, string, int64) {}
func (f progressFunc) Advance(int64)             { f() }
func (progressFunc) End()                        {}

func TestImportSameRecordTwiceKeepsTheNewest(t *testing.T) {
	ctx := context.Background()
	db, _ := newDB(t, vulndb.Options{})
	rec := func(modified, fixed string) string {
		return `{"id":"X-1","modified":"` + modified + `","affected":[{"package":{"ecosystem":"npm","name":"x"},
			"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"` + fixed + `"}]}]}]}`
	}
	write := func(js string) string {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, "X-1.json"), []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	current := write(rec("2024-02-01T00:00:00Z", "2.0.0"))
	if _, err := db.Import(ctx, current); err != nil {
		t.Fatal(err)
	}
	older := write(rec("2024-01-01T00:00:00Z", "1.0.0"))
	newer := write(rec("2024-03-01T00:00:00Z", "3.0.0"))
	tests := []struct {
		name  string
		paths []string
		fixed string
	}{
		{"older copy first", []string{older, current}, "2.0.0"},
		{"older copy last", []string{current, older}, "2.0.0"},
		{"newer copy among older", []string{older, newer, current}, "3.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := db.Import(ctx, tt.paths...); err != nil {
				t.Fatal(err)
			}
			vs, err := db.Query(ctx, "npm", "x", "0.5.0")
			if err != nil || len(vs) != 1 || !slices.Equal(vs[0].FixedVersions, []string{tt.fixed}) {
				t.Errorf("got %+v %v, want fixed in %s", vs, err, tt.fixed)
			}
		})
	}
}

func TestIndexForLoadsOnlyTheKeys(t *testing.T) {
	ctx := context.Background()
	db, _ := newDB(t, vulndb.Options{})
	if _, err := db.Import(ctx, testfiles.Path(t, "osv-mini")); err != nil {
		t.Fatal(err)
	}
	idx, err := db.IndexFor(ctx, []advisory.PackageKey{
		advisory.MakeKey("Maven", "org.apache.logging.log4j:log4j-core"),
		advisory.MakeKey("Debian:12", "openssl"), // Debian records may name the bare ecosystem too
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		eco, name, version string
	}{
		{"Maven", "org.apache.logging.log4j:log4j-core", "2.14.1"},
		{"Debian:12", "openssl", "3.0.11-1~deb12u1"},
	} {
		got, err := idx.Affecting(tc.eco, tc.name, tc.version)
		if err != nil {
			t.Fatal(err)
		}
		want, err := db.Query(ctx, tc.eco, tc.name, tc.version)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || len(got) != len(want) {
			t.Fatalf("%s %s: %d vulnerabilities, Query finds %d", tc.name, tc.version, len(got), len(want))
		}
	}
	if vs, _ := idx.Affecting("npm", "lodash", "4.17.15"); len(vs) != 0 {
		t.Fatalf("a package not asked for is in the index: %d", len(vs))
	}
}

func TestImportOfRecordsReadsOnlyTheirDigests(t *testing.T) {
	ctx := context.Background()
	db, _ := newDB(t, vulndb.Options{})
	if _, err := db.Import(ctx, testfiles.Path(t, "osv-mini")); err != nil {
		t.Fatal(err)
	}
	// A folder of records is no complete set: the import diffs each record on its own.
	dir := t.TempDir()
	for name, raw := range miniRecords(t, "Maven") {
		if err := os.WriteFile(filepath.Join(dir, name), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := db.Import(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || res.Unchanged != 4 {
		t.Fatalf("re-import of unchanged records: %+v", res)
	}
	raw := miniRecords(t, "Maven")["GHSA-jfh8-c2jp-5v3q.json"]
	changed := bytes.Replace(raw, []byte(`"modified": "`), []byte(`"modified": "2030-01-01T00:00:00Z", "x_old_modified": "`), 1)
	if bytes.Equal(changed, raw) {
		t.Fatal("test record not edited")
	}
	if err := os.WriteFile(filepath.Join(dir, "GHSA-jfh8-c2jp-5v3q.json"), changed, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = db.Import(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.BatchStats.Changed != 1 || res.Unchanged != 3 || res.Deleted != 0 || len(res.Keys) != 1 {
		t.Fatalf("one edited record: %+v keys %v", res, res.Keys)
	}
	st, err := db.Status(ctx)
	if err != nil || st.Records != 45 {
		t.Fatalf("records after a partial import: %+v %v", st, err)
	}
}
