package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// setDetail is a scanner's detail of vuln holding pkgs, in an image of architecture arch.
func setDetail(t *testing.T, vuln, arch string, pkgs ...match.VulnerablePackage) []byte {
	t.Helper()
	b, err := json.Marshal(scanning.Detail{Finding: match.Finding{VulnerabilityID: vuln, Title: vuln + " - openssl", Severity: "HIGH", Packages: pkgs},
		Image: scanning.ImageInfo{Architecture: arch}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// packageRows are the finding_packages rows of a repository's findings, one string each.
func packageRows(t *testing.T, db *DB, repo string) []string {
	t.Helper()
	rows, err := queryAll(context.Background(), db.Reader(), func(r rowScanner) (string, error) {
		var vuln, name, version, release, arch, path, layer, reach string
		var seq, epoch int
		err := r.Scan(&vuln, &seq, &name, &version, &epoch, &release, &arch, &path, &layer, &reach)
		return fmt.Sprintf("%s/%d %s %s %d %s %s %s %s %s", vuln, seq, name, version, epoch, release, arch, path, layer, reach), err
	}, `SELECT f.vulnerability_id, p.seq, p.name, p.version, p.epoch, p.release, p.arch, p.file_path, p.source_layer_hash, p.reachability
		FROM findings f JOIN finding_packages p ON p.finding_id = f.id WHERE f.repository = ? ORDER BY 1, 2`, repo)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestPackageSetsShared checks that findings of images holding the same vulnerable packages on
// different bases share one package set and its rows (0049), that each reads back its own
// detail byte for byte and its own layers, and that package filters and layer aggregations
// answer per image as before.
func TestPackageSetsShared(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	// Two packages from the base layer (the first package's: the detail's mark) and one from
	// another layer, in images on two bases; and a detail of another shape.
	pkgs := func(base string) []match.VulnerablePackage {
		return []match.VulnerablePackage{
			{Name: "openssl", Version: "3.0.11", Epoch: 1, Release: "1", Arch: "amd64", FilePath: "var/lib/dpkg/status", Layer: base, CreatedBy: "ADD rootfs " + base,
				FixedInVersion: "3.0.13"},
			{Name: "libssl3", Version: "3.0.11", FilePath: "var/lib/dpkg/status", Layer: base, CreatedBy: "ADD rootfs " + base},
			{Name: "app", Version: "1.0", FilePath: "app/go.mod", Layer: "sha256:app", CreatedBy: "COPY app /app", Reachability: match.ReachPresent},
		}
	}
	images := []struct{ repo, base string }{{"web", "sha256:basea"}, {"api", "sha256:baseb"}}
	details := map[string]map[string][]byte{}
	for _, img := range images {
		details[img.repo] = map[string][]byte{
			"CVE-1": setDetail(t, "CVE-1", "amd64", pkgs(img.base)...),
			"CVE-2": setDetail(t, "CVE-2", "amd64", pkgs(img.base)[2]),
			"OTHER": []byte(`{"finding":{"vulnerablePackages":[{"name":"zlib","version":"1","sourceLayerHash":"` + img.base + `"}]}}`),
		}
		dgst := fakeDigest(img.repo)
		m := store.Manifest{Repository: img.repo, Digest: dgst, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
		if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
			t.Fatal(err)
		}
		var fs []store.Finding
		for _, vuln := range []string{"CVE-1", "CVE-2", "OTHER"} {
			fs = append(fs, store.Finding{Repository: img.repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced, VulnerabilityID: vuln,
				ARN: "arn:" + img.repo + ":" + vuln, Status: "ACTIVE", Severity: "HIGH", Fingerprint: "fp", Detail: details[img.repo][vuln],
				FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now})
		}
		if err := db.ApplyScans(ctx, []store.ScanTarget{{Repository: img.repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced}},
			func(store.ScanState) (store.ScanUpdate, error) {
				return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: now}, Findings: fs}, nil
			}); err != nil {
			t.Fatal(err)
		}
	}

	for _, img := range images {
		got, err := db.Findings(ctx, img.repo, fakeDigest(img.repo), policy.ScanTypeEnhanced)
		if err != nil || len(got) != 3 {
			t.Fatalf("%s: %d findings (%v)", img.repo, len(got), err)
		}
		for _, f := range got {
			if want := details[img.repo][f.VulnerabilityID]; string(f.Detail) != string(want) {
				t.Errorf("%s %s: detail\n%s\nwant\n%s", img.repo, f.VulnerabilityID, f.Detail, want)
			}
		}
		b := img.base
		want := []string{
			"CVE-1/0 openssl 3.0.11 1 1 amd64 var/lib/dpkg/status " + b + " ",
			"CVE-1/1 libssl3 3.0.11 0   var/lib/dpkg/status " + b + " ",
			"CVE-1/2 app 1.0 0   app/go.mod sha256:app PRESENT",
			"CVE-2/0 app 1.0 0   app/go.mod sha256:app PRESENT",
			"OTHER/0 zlib 1 0    " + b + " ",
		}
		if got := packageRows(t, db, img.repo); !slices.Equal(got, want) {
			t.Errorf("%s: package rows\n%s\nwant\n%s", img.repo, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// One set per distinct packages part: CVE-1's and CVE-2's (marked, shared by both images)
	// and each image's other detail (its layer in its body); rows 3 + 1 + 1 + 1, not doubled.
	var sets, rows int
	if err := db.Reader().QueryRow(`SELECT (SELECT count(*) FROM finding_package_sets), (SELECT count(*) FROM finding_set_packages)`).
		Scan(&sets, &rows); err != nil {
		t.Fatal(err)
	}
	if sets != 4 || rows != 6 {
		t.Errorf("%d sets, %d set rows; want 4, 6", sets, rows)
	}

	// Package filters and layer aggregations see each image's own layer.
	for _, tt := range []struct {
		filter findings.PackageFilter
		want   []string
	}{
		{findings.PackageFilter{SourceLayerHash: &findings.StringFilter{Comparison: findings.Equals, Value: "sha256:basea"}}, []string{"web/CVE-1", "web/OTHER"}},
		{findings.PackageFilter{SourceLayerHash: &findings.StringFilter{Comparison: findings.Equals, Value: "sha256:app"}},
			[]string{"api/CVE-1", "api/CVE-2", "web/CVE-1", "web/CVE-2"}},
		{findings.PackageFilter{Name: &findings.StringFilter{Comparison: findings.Equals, Value: "libssl3"},
			SourceLayerHash: &findings.StringFilter{Comparison: findings.Equals, Value: "sha256:baseb"}}, []string{"api/CVE-1"}},
		{findings.PackageFilter{Name: &findings.StringFilter{Comparison: findings.Equals, Value: "zlib"}}, []string{"api/OTHER", "web/OTHER"}},
	} {
		listed, err := db.QueryFindings(ctx, findings.Query{Criteria: findings.Criteria{Packages: []findings.PackageFilter{tt.filter}},
			Account: testOrigin.Account, Region: testOrigin.Region, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range listed {
			got = append(got, l.Finding.Repository+"/"+l.Finding.VulnerabilityID)
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("filter %+v: %q, want %q", tt.filter, got, tt.want)
		}
	}
	agg, err := db.AggregateFindings(ctx, findings.AggregationQuery{Type: findings.AggregateImageLayer, Account: testOrigin.Account,
		Region: testOrigin.Region, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var layers []string
	for _, r := range agg {
		layers = append(layers, fmt.Sprintf("%s %s %d", r.Repository, r.LayerHash, r.Counts.All))
	}
	slices.Sort(layers)
	if want := []string{"api sha256:app 2", "api sha256:baseb 2", "web sha256:app 2", "web sha256:basea 2"}; !slices.Equal(layers, want) {
		t.Errorf("layer aggregation %q, want %q", layers, want)
	}

	// Sets outlive their findings until garbage collection removes those no finding names.
	if _, err := db.DeleteManifest(ctx, "web", fakeDigest("web"), true); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		dryRun     bool
		want, left int
	}{{true, 1, 4}, {false, 1, 3}, {false, 0, 3}} {
		n, err := db.PruneFindingPackageSets(ctx, step.dryRun)
		if err != nil || n != int64(step.want) {
			t.Fatalf("prune (dry run %v): %d, %v; want %d", step.dryRun, n, err, step.want)
		}
		if err := db.Reader().QueryRow(`SELECT count(*) FROM finding_package_sets`).Scan(&sets); err != nil || sets != step.left {
			t.Fatalf("%d sets left (%v), want %d", sets, err, step.left)
		}
	}
	if err := db.Reader().QueryRow(`SELECT count(*) FROM finding_set_packages WHERE set_id NOT IN (SELECT id FROM finding_package_sets)`).
		Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("%d rows of removed sets (%v)", rows, err)
	}
	if got := packageRows(t, db, "api"); len(got) != 5 {
		t.Fatalf("api's rows after the prune: %q", got)
	}
}

// TestPackageRowsWrittenThroughView checks that a statement writing one finding's package rows
// through the finding_packages view leaves the findings sharing its set as they were.
func TestPackageRowsWrittenThroughView(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	detail := setDetail(t, "CVE-1", "amd64", match.VulnerablePackage{Name: "a", Version: "1", Layer: "sha256:l", CreatedBy: "x"})
	for _, repo := range []string{"one", "two"} {
		dgst := fakeDigest(repo)
		m := store.Manifest{Repository: repo, Digest: dgst, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
		if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
			t.Fatal(err)
		}
		f := store.Finding{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced, VulnerabilityID: "CVE-1", ARN: "arn:" + repo,
			Status: "ACTIVE", Severity: "HIGH", Fingerprint: "fp", Detail: detail, FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now}
		if err := db.ApplyScans(ctx, []store.ScanTarget{{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced}},
			func(store.ScanState) (store.ScanUpdate, error) {
				return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: now}, Findings: []store.Finding{f}}, nil
			}); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO finding_packages(finding_id, seq, name, version, epoch, release, arch, file_path, source_layer_hash)
			SELECT id, 1, 'b', '2', 0, '', '', '/b', 'sha256:m' FROM findings WHERE repository = 'one'`,
		`DELETE FROM finding_packages WHERE seq = 0 AND finding_id = (SELECT id FROM findings WHERE repository = 'one')`,
	} {
		if _, err := db.write.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if got, want := packageRows(t, db, "one"), []string{"CVE-1/1 b 2 0   /b sha256:m "}; !slices.Equal(got, want) {
		t.Errorf("one: %q, want %q", got, want)
	}
	if got, want := packageRows(t, db, "two"), []string{"CVE-1/0 a 1 0    sha256:l "}; !slices.Equal(got, want) {
		t.Errorf("two: %q, want %q", got, want)
	}
	for _, repo := range []string{"one", "two"} {
		got, err := db.Findings(ctx, repo, fakeDigest(repo), policy.ScanTypeEnhanced)
		if err != nil || len(got) != 1 || string(got[0].Detail) != string(detail) {
			t.Fatalf("%s: %d findings (%v), detail %s", repo, len(got), err, got[0].Detail)
		}
	}
}

// TestMigrationSharesPackageSets writes findings as the store before 0049 held them (marked
// details on two layers sharing a packages part, a detail of another shape, a packages part
// with a raw 0x01 that is no mark, rows written apart from their detail) and checks that every
// detail and package row reads back the same after the migration, the shared part stored once.
func TestMigrationSharesPackageSets(t *testing.T) {
	ctx := context.Background()
	w, reopen := storeAt(t, 48)
	const (
		layerA = `,"sourceLayerHash":"sha256:a","createdBy":"ADD a"`
		layerB = `,"sourceLayerHash":"sha256:b","createdBy":"ADD b"`
		marked = "[{\"name\":\"openssl\",\"version\":\"3\",\"epoch\":1\x01},{\"name\":\"libssl\",\"version\":\"3\"\x01}," +
			`{"name":"app","version":"1","filePath":"/app","sourceLayerHash":"sha256:c","reachability":"ABSENT"}]`
	)
	stmts := []string{
		`INSERT INTO findings(id, repository, image_digest, scan_type, vulnerability_id, arn, status, severity, fingerprint,
			first_observed_at, last_observed_at, updated_at) VALUES
			(1, 'a', 'sha256:1', 'ENHANCED', 'CVE-1', 'arn:1', 'ACTIVE', 'LOW', 'fp', 1, 1, 1),
			(2, 'b', 'sha256:2', 'ENHANCED', 'CVE-1', 'arn:2', 'ACTIVE', 'LOW', 'fp', 1, 1, 1),
			(3, 'b', 'sha256:2', 'ENHANCED', 'CVE-3', 'arn:3', 'ACTIVE', 'LOW', 'fp', 1, 1, 1),
			(4, 'b', 'sha256:2', 'ENHANCED', 'CVE-4', 'arn:4', 'ACTIVE', 'LOW', 'fp', 1, 1, 1),
			(5, 'b', 'sha256:2', 'ENHANCED', 'CVE-5', 'arn:5', 'ACTIVE', 'LOW', 'fp', 1, 1, 1),
			(6, 'b', 'sha256:2', 'ENHANCED', 'CVE-6', 'arn:6', 'ACTIVE', 'LOW', 'fp', 1, 1, 1)`,
		`INSERT INTO finding_texts(id, text) VALUES (10, '"vulnerabilityId":"CVE-1"'), (11, '{"architecture":"amd64"}'),
			(12, '` + layerA + `'), (13, '` + layerB + `')`,
		`INSERT INTO finding_details(finding_id, head_id, tail_id, layer_id, detail) VALUES
			(1, 10, 11, 12, '` + marked + `'), (2, 10, 11, 13, '` + marked + `'),
			(3, NULL, NULL, NULL, '{"finding":{"vulnerablePackages":[{"name":"zlib","version":"1","sourceLayerHash":"sha256:z"}]},"image":{}}'),
			(4, 10, 11, NULL, '[{"name":"odd` + "\x01" + `","version":"1"}]'),
			(5, 10, 11, 12, '[]'), (6, 10, 11, NULL, '` + "\x02" + `5')`,
	}
	// The rows indexFinding wrote from each detail, but finding 5's, written apart.
	for _, id := range []int{1, 2, 3} {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO finding_layers(digest) SELECT DISTINCT coalesce(json_extract(p.value, '$.sourceLayerHash'), '')
			FROM finding_detail_view d, json_each(d.detail, '$.finding.vulnerablePackages') p WHERE d.finding_id = %d ON CONFLICT DO NOTHING`, id),
			fmt.Sprintf(`INSERT INTO finding_package_rows(finding_id, seq, name, version, epoch, release, arch, file_path, layer, reachability)
			SELECT d.finding_id, p.key, coalesce(json_extract(p.value, '$.name'), ''), coalesce(json_extract(p.value, '$.version'), ''),
				coalesce(json_extract(p.value, '$.epoch'), 0), coalesce(json_extract(p.value, '$.release'), ''),
				coalesce(json_extract(p.value, '$.arch'), ''), coalesce(json_extract(p.value, '$.filePath'), ''),
				l.id, coalesce(json_extract(p.value, '$.reachability'), '')
			FROM finding_detail_view d, json_each(d.detail, '$.finding.vulnerablePackages') p
				JOIN finding_layers l ON l.digest = coalesce(json_extract(p.value, '$.sourceLayerHash'), '')
			WHERE d.finding_id = %d`, id))
	}
	stmts = append(stmts, `INSERT INTO finding_packages(finding_id, seq, name, version, epoch, release, arch, file_path, source_layer_hash)
		VALUES (5, 0, 'kept', '1', 0, '', '', '', 'sha256:k')`)
	for _, q := range stmts {
		if _, err := w.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	read := func(q interface {
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	}) (details, rows []string) {
		var err error
		details, err = queryAll(ctx, q, func(r rowScanner) (string, error) {
			var id int
			var d string
			err := r.Scan(&id, &d)
			return fmt.Sprintf("%d %q", id, d), err
		}, "SELECT finding_id, detail FROM finding_detail_view ORDER BY 1")
		if err != nil {
			t.Fatal(err)
		}
		rows, err = queryAll(ctx, q, func(r rowScanner) (string, error) {
			var id, seq, epoch int
			var name, version, release, arch, path, layer, reach string
			err := r.Scan(&id, &seq, &name, &version, &epoch, &release, &arch, &path, &layer, &reach)
			return fmt.Sprintf("%d/%d %s %s %d %s %s %s %s %s", id, seq, name, version, epoch, release, arch, path, layer, reach), err
		}, "SELECT * FROM finding_packages ORDER BY 1, 2")
		if err != nil {
			t.Fatal(err)
		}
		return details, rows
	}
	beforeDetails, beforeRows := read(w)
	if len(beforeDetails) != 6 || len(beforeRows) != 8 {
		t.Fatalf("before: %d details, %d rows\n%s", len(beforeDetails), len(beforeRows), strings.Join(beforeRows, "\n"))
	}
	db := reopen()
	afterDetails, afterRows := read(db.Reader())
	if !slices.Equal(afterDetails, beforeDetails) {
		t.Errorf("details\n%s\nwant\n%s", strings.Join(afterDetails, "\n"), strings.Join(beforeDetails, "\n"))
	}
	if !slices.Equal(afterRows, beforeRows) {
		t.Errorf("rows\n%s\nwant\n%s", strings.Join(afterRows, "\n"), strings.Join(beforeRows, "\n"))
	}
	// Findings 1 and 2 share the marked part; 3 has its own, 4 none (stored whole, its 0x01 no
	// mark, its detail no JSON SQLite reads); 5's rows, apart from its detail, a set of its own
	// (the set of its '[]' left for garbage collection), which 6's part (0x02 and 5) is not: 6
	// is stored whole.
	var sets, shared, whole, own int
	if err := db.Reader().QueryRow(`SELECT (SELECT count(*) FROM finding_package_sets),
		(SELECT count(DISTINCT set_id) FROM finding_details WHERE finding_id IN (1, 2)),
		(SELECT count(*) FROM finding_details WHERE head_id IS NULL AND detail IS NOT NULL),
		(SELECT count(*) FROM finding_details d JOIN finding_package_sets s ON s.id = d.set_id WHERE s.body = char(2) || d.finding_id)`).
		Scan(&sets, &shared, &whole, &own); err != nil {
		t.Fatal(err)
	}
	if sets != 4 || shared != 1 || whole != 3 || own != 1 {
		t.Errorf("%d sets, %d for findings 1 and 2, %d whole, %d own; want 4, 1, 3, 1", sets, shared, whole, own)
	}
}
