package scanning

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/vulndb"
)

// osvMini holds the real OSV records of testdata/osv-mini, by id.
func osvMini(t *testing.T) map[string]map[string]any {
	t.Helper()
	zips, err := filepath.Glob(filepath.Join(testfiles.Path(t, "osv-mini"), "*", "all.zip"))
	if err != nil || len(zips) == 0 {
		t.Fatalf("osv-mini records: %v", err)
	}
	out := map[string]map[string]any{}
	for _, z := range zips {
		zr, err := zip.OpenReader(z)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			raw, err := io.ReadAll(rc)
			_ = rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			var rec map[string]any
			if err := json.Unmarshal(raw, &rec); err != nil {
				t.Fatal(err)
			}
			out[rec["id"].(string)] = rec
		}
		_ = zr.Close()
	}
	return out
}

type testImage struct {
	repos []string
	os    *inventory.OSInfo
	pkgs  []inventory.Package
}

// testRegistry is a store with scanned images in continuous coverage, its advisory
// database and the scanning service over them.
type testRegistry struct {
	db      *sqlite.DB
	vdb     *vulndb.DB
	watcher *vulndb.Watcher
	svc     *Service
	dir     string
	files   int
}

func osPkg(eco, name, source, version, layer string) inventory.Package {
	return inventory.Package{Ecosystem: eco, Name: name, SourceName: source, Version: version, Arch: "amd64", Path: "var/lib/dpkg/status",
		Layer: layer, PackageManager: inventory.ManagerOS}
}

func langPkg(eco, manager, name, version, path, layer string) inventory.Package {
	return inventory.Package{Ecosystem: eco, Name: name, Version: version, Path: path, Layer: layer, PackageManager: manager}
}

// frontendRepos hold one image: enough targets for the store to read their states ahead.
var frontendRepos = func() []string {
	out := []string{"web/frontend", "web/frontend-mirror"}
	for i := range 16 {
		out = append(out, fmt.Sprintf("web/frontend-%d", i))
	}
	return out
}()

// continuousImages are images whose packages the osv-mini records affect in ways worth
// checking: one vulnerability through packages of two ecosystems (Log4Shell in a Debian
// package and a jar), several findings of one package, one inventory in two repositories.
func continuousImages() []testImage {
	deb10 := &inventory.OSInfo{ID: "debian", VersionID: "10", Ecosystem: "Debian:10", Path: "etc/os-release", Layer: "sha256:d10"}
	alpine := &inventory.OSInfo{ID: "alpine", VersionID: "3.23.2", Ecosystem: "Alpine:v3.23", Path: "etc/os-release", Layer: "sha256:a323"}
	deb12 := &inventory.OSInfo{ID: "debian", VersionID: "12", Ecosystem: "Debian:12", Path: "etc/os-release", Layer: "sha256:d12"}
	alma := &inventory.OSInfo{ID: "almalinux", VersionID: "9.1", Ecosystem: "AlmaLinux:9", Path: "etc/os-release", Layer: "sha256:al9"}
	return []testImage{
		{repos: []string{"java/service"}, os: deb10, pkgs: []inventory.Package{
			osPkg("Debian:10", "liblog4j2-java", "apache-log4j2", "2.11.1-2", "sha256:d10"),
			osPkg("Debian:10", "libc6", "glibc", "2.28-10", "sha256:d10"),
			osPkg("Debian:10", "zlib1g", "zlib", "1:1.2.11.dfsg-1", "sha256:d10"),
			langPkg("Maven", inventory.ManagerJAR, "org.apache.logging.log4j:log4j-core", "2.14.1", "app/lib/log4j-core-2.14.1.jar", "sha256:j1"),
			langPkg("Maven", inventory.ManagerJAR, "org.apache.logging.log4j:log4j-api", "2.14.1", "app/lib/log4j-api-2.14.1.jar", "sha256:j1"),
			langPkg("Maven", inventory.ManagerJAR, "org.apache.logging.log4j:log4j-core", "2.14.1", "app/lib/fat.jar!/log4j-core", "sha256:j2"),
		}},
		{repos: frontendRepos, os: alpine, pkgs: []inventory.Package{
			osPkg("Alpine:v3.23", "busybox", "", "1.36.1-r20", "sha256:a323"),
			osPkg("Alpine:v3.23", "libssl3", "openssl", "3.3.0-r0", "sha256:a323"),
			osPkg("Alpine:v3.23", "libcrypto3", "openssl", "3.3.0-r0", "sha256:a323"),
			langPkg("npm", inventory.ManagerNodePkg, "lodash", "4.17.15", "app/node_modules/lodash/package.json", "sha256:n1"),
			langPkg("npm", inventory.ManagerNodePkg, "lodash", "4.17.21", "app/node_modules/x/node_modules/lodash/package.json", "sha256:n1"),
		}},
		{repos: []string{"go/api"}, os: deb12, pkgs: []inventory.Package{
			osPkg("Debian:12", "libssl3", "openssl", "3.0.11-1~deb12u1", "sha256:d12"),
			langPkg("Go", inventory.ManagerGoBinary, "stdlib", "1.21.1", "app/server", "sha256:g1"),
			langPkg("Go", inventory.ManagerGoBinary, "golang.org/x/net", "0.17.0", "app/server", "sha256:g1"),
			langPkg("Go", inventory.ManagerGoBinary, "golang.org/x/text", "0.3.6", "app/server", "sha256:g1"),
		}},
		{repos: []string{"misc/tools"}, os: alma, pkgs: []inventory.Package{
			osPkg("AlmaLinux:9", "openssl", "", "1:3.0.1-40.el9", "sha256:al9"),
			langPkg("PyPI", inventory.ManagerPythonPkg, "requests", "2.25.0", "usr/lib/python3/site-packages/requests", "sha256:p1"),
			langPkg("PyPI", inventory.ManagerPythonPkg, "urllib3", "1.26.5", "usr/lib/python3/site-packages/urllib3", "sha256:p1"),
			langPkg("NuGet", inventory.ManagerDotnetCore, "Newtonsoft.Json", "12.0.3", "app/App.deps.json", "sha256:p1"),
			langPkg("crates.io", inventory.ManagerCargo, "smallvec", "0.6.1", "usr/bin/tool", "sha256:p1"),
			langPkg("RubyGems", inventory.ManagerGemspec, "nokogiri", "1.12.0", "gems/nokogiri.gemspec", "sha256:p1"),
		}},
		{repos: []string{"web/clean"}, os: alpine, pkgs: []inventory.Package{
			osPkg("Alpine:v3.23", "busybox", "", "1.36.1-r29", "sha256:a323"),
			langPkg("npm", inventory.ManagerNodePkg, "lodash", "4.17.21", "app/node_modules/lodash/package.json", "sha256:n2"),
		}},
	}
}

func newTestRegistry(t *testing.T, images []testImage, clock *time.Time) *testRegistry {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	quiet := slog.New(slog.DiscardHandler)
	r := &testRegistry{db: db, vdb: vulndb.New(db, vulndb.Options{Logger: quiet}), watcher: vulndb.NewWatcher(db, vulndb.WatcherOptions{Logger: quiet}), dir: dir}
	r.svc = New(db, nil, r.watcher, Config{Origin: events.Origin{Account: "123456789012", Region: "eu-west-1"}, Logger: quiet,
		Now: func() time.Time { return *clock }})
	if err := db.PutScanningPolicy(ctx, policy.Policy{ScanType: policy.ScanTypeEnhanced, Rules: []policy.Rule{{Frequency: policy.FrequencyContinuous,
		Filters: []policy.Filter{{Value: "*", Type: policy.FilterTypeWildcard}}}}}); err != nil {
		t.Fatal(err)
	}
	for i, img := range images {
		content := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[],"n":%d}`, i)
		sum := sha256.Sum256(content)
		dgst := "sha256:" + hex.EncodeToString(sum[:])
		head, parts, err := EncodeInventory(img.os, img.pkgs, map[string]string{img.pkgs[0].Layer: "ADD rootfs /"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		invID, err := db.PutImageInventory(ctx, dgst, string(inventory.ModeEnhanced), inventory.Fingerprint(inventory.ModeEnhanced), img.os.Ecosystem, packageKeys(img.pkgs), len(img.pkgs), head, parts)
		if err != nil {
			t.Fatal(err)
		}
		for _, repo := range img.repos {
			m := store.Manifest{Repository: repo, Digest: dgst, MediaType: "application/vnd.oci.image.manifest.v1+json",
				ConfigMediaType: "application/vnd.oci.image.config.v1+json", Content: content, Size: int64(len(content))}
			if _, err := db.PutManifest(ctx, m, nil, []string{"latest"}, store.PutOptions{CreateRepository: true}); err != nil {
				t.Fatal(err)
			}
			if err := db.PutImageScan(ctx, store.ImageScan{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced, Status: StatusActive,
				Description: DescActive, Frequency: policy.FrequencyContinuous, InventoryID: invID, CompletedAt: *clock, UpdatedAt: *clock}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return r
}

// importRecords imports records (as one batch) and returns the change the watcher sees.
func (r *testRegistry) importRecords(t *testing.T, recs ...map[string]any) vulndb.Change {
	t.Helper()
	var paths []string
	for _, rec := range recs {
		raw, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		r.files++
		p := filepath.Join(r.dir, fmt.Sprintf("rec-%d.json", r.files))
		if err := os.WriteFile(p, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	ctx := context.Background()
	if _, err := r.vdb.Import(ctx, paths...); err != nil {
		t.Fatal(err)
	}
	ch, err := r.watcher.Refresh(ctx)
	if err != nil || ch == nil {
		t.Fatalf("refresh: %v %v", ch, err)
	}
	return *ch
}

type findingRow struct {
	repo, digest, vuln, arn, status, severity, fingerprint, detail string
	score                                                          float64
	first, last, updated                                           int64
}

func (r *testRegistry) findings(t *testing.T) []findingRow {
	t.Helper()
	// Through the store's reads, which know how lastObservedAt is kept.
	rows, err := r.db.Reader().Query("SELECT repository, image_digest FROM image_scans ORDER BY repository, image_digest")
	if err != nil {
		t.Fatal(err)
	}
	var images [][2]string
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			t.Fatal(err)
		}
		images = append(images, k)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	var out []findingRow
	for _, img := range images {
		fs, err := r.db.Findings(context.Background(), img[0], img[1], policy.ScanTypeEnhanced)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			out = append(out, findingRow{repo: f.Repository, digest: f.Digest, vuln: f.VulnerabilityID, arn: f.ARN, status: f.Status,
				severity: f.Severity, fingerprint: f.Fingerprint, detail: string(f.Detail), score: f.Score,
				first: f.FirstObservedAt.UnixMilli(), last: f.LastObservedAt.UnixMilli(), updated: f.UpdatedAt.UnixMilli()})
		}
	}
	return out
}

var pushedAt = regexp.MustCompile(`"pushedAt":"[^"]*"`)

// events returns the outbox events after seq, as comparable strings, and the last seq.
func (r *testRegistry) events(t *testing.T, after int64) ([]string, int64) {
	t.Helper()
	evs, err := r.db.ReadOutbox(context.Background(), after, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		// The two registries were pushed to at different times.
		detail := pushedAt.ReplaceAllString(string(ev.Detail), `"pushedAt":""`)
		out = append(out, ev.DetailType+" "+strings.Join(ev.Resources, ",")+" "+ev.Time.UTC().String()+" "+detail)
		after = ev.Seq
	}
	slices.Sort(out)
	return out, after
}

// reevaluatedAt lists the images whose scan the re-evaluation at t rewrote.
func (r *testRegistry) reevaluatedAt(t *testing.T, at time.Time) map[[2]string]bool {
	t.Helper()
	rows, err := r.db.Reader().Query("SELECT repository, image_digest FROM image_scans WHERE updated_at = ?", at.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[[2]string]bool{}
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			t.Fatal(err)
		}
		out[k] = true
	}
	return out
}

func withField(rec map[string]any, key string, v any) map[string]any {
	out := map[string]any{}
	for k, x := range rec {
		out[k] = x
	}
	out[key] = v
	return out
}

// TestReevaluateMatchesFullRematch checks the partial re-evaluation of a change with known
// keys against matching every package of every image (a Full change), on two registries
// built alike: every finding of the images it re-evaluates and every event must be the same,
// and the images it leaves out must have nothing to change but lastObservedAt.
func TestReevaluateMatchesFullRematch(t *testing.T) {
	ctx := context.Background()
	recs := osvMini(t)
	held := []string{"GHSA-jfh8-c2jp-5v3q", "GO-2023-2102", "x_NSWG-ECO-516"}
	var base []map[string]any
	for id, rec := range recs {
		if !slices.Contains(held, id) {
			base = append(base, rec)
		}
	}
	clock := time.Now().UTC().Truncate(time.Millisecond)
	later := func(rec map[string]any) map[string]any {
		return withField(rec, "modified", clock.Add(time.Hour).Format(time.RFC3339))
	}
	dsa := later(recs["DSA-5020-1"])
	var affected []any
	for _, a := range dsa["affected"].([]any) {
		a := withField(a.(map[string]any), "ranges", []any{map[string]any{"type": "ECOSYSTEM",
			"events": []any{map[string]any{"introduced": "0"}, map[string]any{"fixed": "2.11.0-1"}}}})
		affected = append(affected, a)
	}
	dsa["affected"] = affected
	steps := []struct {
		name   string
		recs   []map[string]any
		events int // at least
		check  func(t *testing.T, fs []findingRow)
	}{
		{"Log4Shell jar advisory joins the Debian package's finding", []map[string]any{recs["GHSA-jfh8-c2jp-5v3q"]}, 1, func(t *testing.T, fs []findingRow) {
			for _, f := range fs {
				if f.repo == "java/service" && f.vuln == "CVE-2021-44228" {
					if f.status != FindingActive || !strings.Contains(f.detail, `"ecosystem":"Maven"`) || !strings.Contains(f.detail, `"ecosystem":"Debian:10"`) {
						t.Fatalf("CVE-2021-44228 does not hold both packages: %s %s", f.status, f.detail)
					}
					return
				}
			}
			t.Fatal("no CVE-2021-44228 finding")
		}},
		{"one advisory of two packages", []map[string]any{recs["GO-2023-2102"]}, 1, nil},
		{"another advisory of a package with findings", []map[string]any{recs["x_NSWG-ECO-516"]}, 1, nil},
		{"a fixed version moves below the installed one", []map[string]any{dsa}, 1, nil},
		{"an advisory is withdrawn", []map[string]any{withField(later(recs["GHSA-35jh-r3h4-6jhm"]), "withdrawn", clock.Format(time.RFC3339))}, len(frontendRepos), func(t *testing.T, fs []findingRow) {
			closed := 0
			for _, f := range fs {
				if f.vuln == "CVE-2021-23337" && f.status == FindingClosed {
					closed++
				}
			}
			if closed != len(frontendRepos) {
				t.Fatalf("CVE-2021-23337 closed in %d images, want %d", closed, len(frontendRepos))
			}
		}},
		{"an advisory's text changes", []map[string]any{withField(later(recs["GO-2022-1059"]), "details", "Rewritten details.")}, 1, nil},
		{"a change no image holds", []map[string]any{later(recs["RUSTSEC-2016-0001"])}, 0, nil},
	}
	for i, step := range steps {
		for _, legacy := range []bool{false, true} {
			name := step.name
			if legacy {
				name += ", findings without package keys"
			}
			t.Run(name, func(t *testing.T) {
				// Two registries with the same history: the base records and the earlier steps,
				// each applied by a full rematch.
				clock = time.Now().UTC().Truncate(time.Millisecond)
				partial := newTestRegistry(t, continuousImages(), &clock)
				full := newTestRegistry(t, continuousImages(), &clock)
				var seqP, seqF int64
				for _, r := range []*testRegistry{partial, full} {
					for j := -1; j < i; j++ {
						recs := base
						if j >= 0 {
							recs = steps[j].recs
						}
						clock = clock.Add(time.Minute)
						ch := r.importRecords(t, recs...)
						if _, err := r.svc.Reevaluate(ctx, vulndb.Change{From: ch.From, To: ch.To, Full: true}); err != nil {
							t.Fatal(err)
						}
					}
					clock = clock.Add(-time.Duration(i+1) * time.Minute)
				}
				if legacy {
					// As an older Lading wrote them: the detail alone says which packages they hold,
					// and which image facts they were written with.
					if err := partial.db.Tx(ctx, func(tx *sql.Tx) error {
						if _, err := tx.ExecContext(ctx, "UPDATE image_scans SET image_facts = ''"); err != nil {
							return err
						}
						_, err := tx.ExecContext(ctx, "UPDATE findings SET package_keys = NULL")
						return err
					}); err != nil {
						t.Fatal(err)
					}
				}
				_, seqP = partial.events(t, 0)
				_, seqF = full.events(t, 0)
				clock = clock.Add(time.Duration(i+2) * time.Minute)
				chP := partial.importRecords(t, step.recs...)
				chF := full.importRecords(t, step.recs...)
				if chP.Full || len(chP.Keys) == 0 {
					t.Fatalf("change %+v: want known keys", chP)
				}
				if _, err := partial.svc.Reevaluate(ctx, chP); err != nil {
					t.Fatal(err)
				}
				if _, err := full.svc.Reevaluate(ctx, vulndb.Change{From: chF.From, To: chF.To, Full: true}); err != nil {
					t.Fatal(err)
				}
				redone := partial.reevaluatedAt(t, clock)
				fp, ff := partial.findings(t), full.findings(t)
				if len(fp) != len(ff) {
					t.Fatalf("%d findings, full rematch has %d", len(fp), len(ff))
				}
				for i := range fp {
					p, f := fp[i], ff[i]
					if !redone[[2]string{p.repo, p.digest}] && f.last == clock.UnixMilli() {
						p.last = f.last // the full rematch observes every image again
					}
					if p != f {
						t.Fatalf("finding differs from the full rematch:\n got %.600v\nwant %.600v", p, f)
					}
				}
				evP, _ := partial.events(t, seqP)
				evF, _ := full.events(t, seqF)
				if !slices.Equal(evP, evF) {
					t.Fatalf("events differ from the full rematch: %d and %d; first of each:\n%.600v\n%.600v", len(evP), len(evF), evP, evF)
				}
				if len(evP) < step.events {
					t.Fatalf("%d events, want at least %d", len(evP), step.events)
				}
				if len(redone) == 0 && step.events > 0 {
					t.Fatal("no image re-evaluated")
				}
				if step.check != nil {
					step.check(t, fp)
				}
			})
		}
	}
}

// TestReevaluateNotEvaluated: what a re-evaluation cannot evaluate (a version that does not
// compare, an advisory range that does not compile) is stored with the scan, said in its
// description and counted by the metric; a partial re-evaluation keeps the entries of the
// packages it did not touch and replaces those it did, as a full rematch would.
func TestReevaluateNotEvaluated(t *testing.T) {
	ctx := context.Background()
	deb12 := &inventory.OSInfo{ID: "debian", VersionID: "12", Ecosystem: "Debian:12", Path: "etc/os-release", Layer: "sha256:d12"}
	images := []testImage{{repos: []string{"app/unknown"}, os: deb12, pkgs: []inventory.Package{
		osPkg("Debian:12", "zlib1g", "zlib", "x:1.2.13", "sha256:d12"), // not a Debian version
		osPkg("Debian:12", "libssl3", "openssl", "3.0.11-1~deb12u1", "sha256:d12"),
	}}}
	record := func(id, pkg, fixed, modified string) map[string]any {
		return map[string]any{"id": id, "modified": modified, "upstream": []string{"CVE-2099-" + id[4:8]},
			"affected": []any{map[string]any{"package": map[string]any{"ecosystem": "Debian:12", "name": pkg},
				"ranges": []any{map[string]any{"type": "ECOSYSTEM", "events": []any{map[string]any{"introduced": "0"}, map[string]any{"fixed": fixed}}}}}}}
	}
	clock := time.Now().UTC().Truncate(time.Millisecond)
	r := newTestRegistry(t, images, &clock)
	reg := prometheus.NewRegistry()
	r.svc = New(r.db, nil, r.watcher, Config{Origin: events.Origin{Account: "123456789012", Region: "eu-west-1"}, Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return clock }, Registerer: reg})
	metric := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "lading_scan_packages_not_evaluated_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == kindReevaluation {
					return m.GetCounter().GetValue()
				}
			}
		}
		t.Fatal("metric not registered")
		return 0
	}
	steps := []struct {
		name     string
		recs     []map[string]any
		full     bool
		wantDesc string
		want     []string // package/advisory of each entry
		metric   float64
	}{
		{"a version that does not compare", []map[string]any{record("DSA-0001-1", "zlib", "1:1.3-1", "2024-01-01T00:00:00Z")}, true,
			"ACTIVE with 1 packages not evaluated", []string{"zlib1g/"}, 1},
		{"a range that does not compile", []map[string]any{record("DSA-0002-1", "openssl", "not:a:version", "2024-01-01T00:00:00Z")}, false,
			"ACTIVE with 2 packages not evaluated", []string{"zlib1g/", "libssl3/DSA-0002-1"}, 3},
		{"the range is corrected", []map[string]any{record("DSA-0002-1", "openssl", "3.0.11-1~deb12u2", "2024-02-01T00:00:00Z")}, false,
			"ACTIVE with 1 packages not evaluated", []string{"zlib1g/"}, 4},
	}
	for _, step := range steps {
		clock = clock.Add(time.Minute)
		ch := r.importRecords(t, step.recs...)
		if step.full {
			ch = vulndb.Change{From: ch.From, To: ch.To, Full: true}
		}
		if _, err := r.svc.Reevaluate(ctx, ch); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		var dgst string
		if err := r.db.Reader().QueryRow("SELECT image_digest FROM image_scans WHERE repository = 'app/unknown'").Scan(&dgst); err != nil {
			t.Fatal(err)
		}
		sc, err := r.db.ImageScan(ctx, "app/unknown", dgst, policy.ScanTypeEnhanced)
		if err != nil {
			t.Fatal(err)
		}
		ns, err := NotEvaluatedOf(sc)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range ns {
			got = append(got, n.Package+"/"+n.AdvisoryID)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(step.want))
		if sc.Description != step.wantDesc || !slices.Equal(got, want) || sc.NotEvaluatedPackages != len(step.want) {
			t.Errorf("%s: description %q, entries %v (%d packages); want %q, %v", step.name, sc.Description, got, sc.NotEvaluatedPackages, step.wantDesc, want)
		}
		if m := metric(); m != step.metric {
			t.Errorf("%s: metric %v, want %v", step.name, m, step.metric)
		}
	}
}

// TestReevaluateObservesWithoutRewriting: a re-evaluation observes again every ACTIVE finding
// of the images it re-evaluates, and lastObservedAt says so through the store's reads (the
// scanner's, and Inspector's by ARN), while the rows of the findings it does not change are
// not written: the image's observation time moves instead (migration 0021).
func TestReevaluateObservesWithoutRewriting(t *testing.T) {
	ctx := context.Background()
	recs := osvMini(t)
	const held = "x_NSWG-ECO-516" // an advisory of a package other advisories have findings for
	var base []map[string]any
	for id, rec := range recs {
		if id != held {
			base = append(base, rec)
		}
	}
	clock := time.Now().UTC().Truncate(time.Millisecond)
	r := newTestRegistry(t, continuousImages(), &clock)
	ch := r.importRecords(t, base...)
	if _, err := r.svc.Reevaluate(ctx, vulndb.Change{From: ch.From, To: ch.To, Full: true}); err != nil {
		t.Fatal(err)
	}
	scanned := clock
	before := map[[3]string]findingRow{}
	for _, f := range r.findings(t) {
		before[[3]string{f.repo, f.digest, f.vuln}] = f
	}

	clock = clock.Add(time.Hour)
	ch = r.importRecords(t, recs[held])
	if ch.Full || len(ch.Keys) == 0 {
		t.Fatalf("change %+v: want known keys", ch)
	}
	if _, err := r.svc.Reevaluate(ctx, ch); err != nil {
		t.Fatal(err)
	}
	redone := r.reevaluatedAt(t, clock)
	if len(redone) == 0 {
		t.Fatal("no image re-evaluated")
	}
	observed, added := 0, 0
	var arns []string
	for _, f := range r.findings(t) {
		img := [2]string{f.repo, f.digest}
		prev, existed := before[[3]string{f.repo, f.digest, f.vuln}]
		switch {
		case !redone[img]:
			if f != prev {
				t.Fatalf("finding of an image not re-evaluated changed:\n got %.400v\nwant %.400v", f, prev)
			}
		case !existed:
			added++
		case f.status == FindingActive && f.fingerprint == prev.fingerprint:
			if f.last != clock.UnixMilli() {
				t.Fatalf("%s in %s: lastObservedAt %d, want the re-evaluation's time %d", f.vuln, f.repo, f.last, clock.UnixMilli())
			}
			prev.last = f.last
			if f != prev {
				t.Fatalf("unchanged finding changed beyond lastObservedAt:\n got %.400v\nwant %.400v", f, prev)
			}
			var own int64
			if err := r.db.Reader().QueryRow("SELECT last_observed_at FROM findings WHERE repository = ? AND image_digest = ? AND vulnerability_id = ?",
				f.repo, f.digest, f.vuln).Scan(&own); err != nil {
				t.Fatal(err)
			}
			if own != scanned.UnixMilli() {
				t.Fatalf("%s in %s: row rewritten (last_observed_at %d), want it as the scan wrote it (%d)", f.vuln, f.repo, own, scanned.UnixMilli())
			}
			observed++
			arns = append(arns, f.arn)
		}
	}
	if observed == 0 || added == 0 {
		t.Fatalf("%d findings observed again and %d added: the case is not exercised", observed, added)
	}
	var written int
	if err := r.db.Reader().QueryRow("SELECT count(*) FROM findings WHERE last_observed_at = ?", clock.UnixMilli()).Scan(&written); err != nil {
		t.Fatal(err)
	}
	if written != added {
		t.Fatalf("%d finding rows written, want %d (the new findings only)", written, added)
	}
	// Inspector's reads (ListFindings, BatchGetFindingDetails) apply the same rule.
	listed, err := r.db.FindingsByARN(ctx, arns)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(arns) {
		t.Fatalf("%d findings by ARN, want %d", len(listed), len(arns))
	}
	for _, l := range listed {
		if !l.Finding.LastObservedAt.Equal(clock) {
			t.Fatalf("%s by ARN: lastObservedAt %s, want %s", l.Finding.ARN, l.Finding.LastObservedAt, clock)
		}
	}
}
