package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// queryFixture is a store with three images and their ENHANCED findings, written through
// ApplyScans with real scanning.Detail JSON (so the indexed columns are the writer's).
type queryFixture struct {
	db   *DB
	t0   time.Time
	arns map[string]string // "repo/vuln" -> ARN
}

type fixtureFinding struct {
	vuln, severity, source, vendor string
	score                          float64
	aliases, related               []string
	pkgs                           []match.VulnerablePackage
}

func newQueryFixture(t *testing.T) *queryFixture {
	t.Helper()
	db := openTest(t)
	fx := &queryFixture{db: db, t0: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), arns: map[string]string{}}
	log4j := match.VulnerablePackage{Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1", Ecosystem: "Maven", PackageManager: "JAR",
		FilePath: "/var/lib/neo4j/lib/log4j-core-2.14.1.jar", Layer: "sha256:aaaa", FixedInVersion: "2.15.0"}
	ssl := match.VulnerablePackage{Name: "openssl", Version: "3.0.11", Release: "1~deb12u1", Arch: "amd64", Epoch: 1, Ecosystem: "Debian:12",
		PackageManager: "OS", Layer: "sha256:bbbb"}
	images := []struct {
		repo, digest, tag, arch string
		pushed                  time.Time
		fs                      []fixtureFinding
	}{
		{"prod/neo4j", fakeDigest("1"), "4.4.0", "amd64", fx.t0, []fixtureFinding{
			{vuln: "CVE-2021-44228", severity: "CRITICAL", source: "GITHUB", vendor: "CRITICAL", score: 10, aliases: []string{"GHSA-jfh8-c2jp-5v3q"}, pkgs: []match.VulnerablePackage{log4j}},
			{vuln: "CVE-2023-5678", severity: "MEDIUM", source: "DEBIAN_CVE", vendor: "medium", score: 5.3, related: []string{"DSA-5532-1"}, pkgs: []match.VulnerablePackage{ssl}},
		}},
		{"prod/web", fakeDigest("2"), "1.0", "arm64", fx.t0.Add(time.Hour), []fixtureFinding{
			{vuln: "CVE-2023-5678", severity: "MEDIUM", source: "DEBIAN_CVE", vendor: "medium", score: 5.3, pkgs: []match.VulnerablePackage{ssl}},
			{vuln: "GHSA-xxxx-yyyy-zzzz", severity: "UNDEFINED", source: "GITHUB", aliases: []string{"CVE-2099-0001"}, pkgs: []match.VulnerablePackage{log4j, ssl}},
		}},
		{"test/web", fakeDigest("3"), "dev", "amd64", fx.t0.Add(2 * time.Hour), []fixtureFinding{
			{vuln: "CVE-2021-44228", severity: "CRITICAL", source: "GITHUB", score: 10, pkgs: []match.VulnerablePackage{log4j}},
		}},
	}
	for _, img := range images {
		fx.addImage(t, img.repo, img.digest, img.tag, img.arch, img.pushed, img.fs)
	}
	return fx
}

// addImage pushes an image and writes its ENHANCED findings as a scan does.
func (fx *queryFixture) addImage(t *testing.T, repo, digest, tag, arch string, pushed time.Time, fs []fixtureFinding) {
	t.Helper()
	ctx := context.Background()
	m := store.Manifest{Repository: repo, Digest: digest, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}"), PushedAt: pushed}
	if _, err := fx.db.PutManifest(ctx, m, nil, []string{tag}, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	if err := fx.db.Tx(ctx, func(tx *sql.Tx) error { // PutManifest stamps the time of the push
		_, err := tx.ExecContext(ctx, "UPDATE manifests SET pushed_at = ? WHERE repository = ?", pushed.UnixMilli(), repo)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	target := store.ScanTarget{Repository: repo, Digest: digest, ScanType: policy.ScanTypeEnhanced}
	info := scanning.ImageInfo{Architecture: arch}
	facts, _ := json.Marshal(info)
	var writes []store.Finding
	for i, ff := range fs {
		score := ff.score
		mf := match.Finding{VulnerabilityID: ff.vuln, Title: ff.vuln + " - pkg", Severity: ff.severity, Source: ff.source, VendorSeverity: ff.vendor,
			Aliases: ff.aliases, Related: ff.related, Packages: ff.pkgs}
		if score > 0 {
			mf.Score = &score
		}
		detail, err := json.Marshal(scanning.Detail{Finding: mf, Image: info})
		if err != nil {
			t.Fatal(err)
		}
		at := fx.t0.Add(time.Duration(i) * time.Minute)
		arn := scanning.FindingARN(testOrigin, repo, digest, policy.ScanTypeEnhanced, ff.vuln)
		fx.arns[repo+"/"+ff.vuln] = arn
		writes = append(writes, store.Finding{Repository: repo, Digest: digest, ScanType: policy.ScanTypeEnhanced, VulnerabilityID: ff.vuln,
			ARN: arn, Status: "ACTIVE", Severity: ff.severity, Score: score, Fingerprint: ff.vuln, Detail: detail,
			FirstObservedAt: at, LastObservedAt: at, UpdatedAt: at})
	}
	err := fx.db.ApplyScans(ctx, []store.ScanTarget{target}, func(store.ScanState) (store.ScanUpdate, error) {
		return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: fx.t0, ImageFacts: facts}, Findings: writes}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func sf(c findings.Comparison, v string) findings.StringFilter {
	return findings.StringFilter{Comparison: c, Value: v}
}

func strs(f findings.Field, fs ...findings.StringFilter) findings.Criteria {
	return findings.Criteria{Strings: map[findings.Field][]findings.StringFilter{f: fs}}
}

func TestFindingsByARN(t *testing.T) {
	fx := newQueryFixture(t)
	arn := fx.arns["prod/web/GHSA-xxxx-yyyy-zzzz"]
	rows, err := fx.db.FindingsByARN(context.Background(), []string{arn, "arn:aws:inspector2:us-east-1:123456789012:finding/0000"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Finding.ARN != arn || rows[0].Manifest.Tags[0] != "1.0" || rows[0].Finding.Severity != "UNDEFINED" {
		t.Fatalf("rows %+v", rows)
	}
	// A deleted image takes its findings (and their packages) with it.
	if _, err := fx.db.DeleteManifest(context.Background(), "prod/web", fakeDigest("2"), true); err != nil {
		t.Fatal(err)
	}
	if rows, _ := fx.db.FindingsByARN(context.Background(), []string{arn}); len(rows) != 0 {
		t.Fatalf("found a finding of a deleted image")
	}
	var n int
	if err := fx.db.Reader().QueryRow("SELECT count(*) FROM finding_packages WHERE finding_id NOT IN (SELECT id FROM findings)").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d orphan package rows (%v)", n, err)
	}
}

// TestMigrationIndexesFindings writes a finding in the schema before 0027 and checks that the
// migration fills its query columns and package rows as the writer does.
func TestMigrationIndexesFindings(t *testing.T) {
	ctx := context.Background()
	w, reopen := storeAt(t, 26)
	detail, _ := json.Marshal(scanning.Detail{Finding: match.Finding{VulnerabilityID: "CVE-1", Title: "CVE-1 - a", Source: "S", VendorSeverity: "v",
		Aliases: []string{"GHSA-1"}, Related: []string{"DSA-1"}, Packages: []match.VulnerablePackage{
			{Name: "a", Version: "1", FilePath: "/x/a", Layer: "sha256:l", FixedInVersion: "2"}, {Name: "b", Version: "1", Epoch: 2}}}})
	if _, err := w.ExecContext(ctx, `INSERT INTO findings(id, repository, image_digest, scan_type, vulnerability_id, arn, status, severity, fingerprint,
		first_observed_at, last_observed_at, updated_at) VALUES (7, 'app', 'sha256:1', 'ENHANCED', 'CVE-1', 'arn:1', 'ACTIVE', 'LOW', 'fp', 1, 1, 1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecContext(ctx, `INSERT INTO finding_details(finding_id, detail) VALUES (7, ?)`, string(detail)); err != nil {
		t.Fatal(err)
	}
	db := reopen()
	var title, source, vendor, fix, aliases, related string
	if err := db.Reader().QueryRow("SELECT title, source, vendor_severity, fix_available, aliases, related FROM findings WHERE id = 7").
		Scan(&title, &source, &vendor, &fix, &aliases, &related); err != nil {
		t.Fatal(err)
	}
	if title != "CVE-1 - a" || source != "S" || vendor != "v" || fix != "PARTIAL" || aliases != `["GHSA-1"]` || related != `["DSA-1"]` {
		t.Fatalf("columns %q %q %q %q %q %q", title, source, vendor, fix, aliases, related)
	}
	rows, err := queryAll(ctx, db.Reader(), func(r rowScanner) (string, error) {
		var name, path, layer string
		var epoch int
		err := r.Scan(&name, &epoch, &path, &layer)
		return name + "|" + path + "|" + layer + "|" + string(rune('0'+epoch)), err
	}, "SELECT name, epoch, file_path, source_layer_hash FROM finding_packages WHERE finding_id = 7 ORDER BY seq")
	if err != nil || !slices.Equal(rows, []string{"a|/x/a|sha256:l|0", "b|||2"}) {
		t.Fatalf("packages %q (%v)", rows, err)
	}
}

// TestMigrationCopiesReachability: migration 0036 fills finding_packages.reachability of the
// findings written before it, from whole details and from details split by 0032.
func TestMigrationCopiesReachability(t *testing.T) {
	ctx := context.Background()
	w, reopen := storeAt(t, 35)
	pkgs := `[{"name":"golang.org/x/net","version":"v0.1.0","filePath":"/app","reachability":"ABSENT"},{"name":"stdlib","version":"go1.20","filePath":"/app","reachability":"PRESENT"}]`
	for _, q := range []string{
		`INSERT INTO findings(id, repository, image_digest, scan_type, vulnerability_id, arn, status, severity, fingerprint, first_observed_at, last_observed_at, updated_at)
			VALUES (1, 'app', 'sha256:1', 'ENHANCED', 'CVE-1', 'arn:1', 'ACTIVE', 'LOW', 'fp', 1, 1, 1),
			(2, 'app', 'sha256:1', 'ENHANCED', 'CVE-2', 'arn:2', 'ACTIVE', 'LOW', 'fp', 1, 1, 1),
			(3, 'app', 'sha256:1', 'ENHANCED', 'CVE-3', 'arn:3', 'ACTIVE', 'LOW', 'fp', 1, 1, 1)`,
		`INSERT INTO finding_texts(id, text) VALUES (10, '"vulnerabilityId":"CVE-2"'), (11, '{"architecture":"amd64"}')`,
		// A whole detail, a split one, and one without reachability.
		`INSERT INTO finding_details(finding_id, head_id, tail_id, detail) VALUES
			(1, NULL, NULL, '{"finding":{"vulnerabilityId":"CVE-1","vulnerablePackages":` + pkgs + `},"image":{}}'),
			(2, 10, 11, '` + pkgs + `'),
			(3, NULL, NULL, '{"finding":{"vulnerabilityId":"CVE-3","vulnerablePackages":[{"name":"openssl","version":"3"}]},"image":{}}')`,
		`INSERT INTO finding_packages(finding_id, seq, name, version, epoch, release, arch, file_path, source_layer_hash) VALUES
			(1, 0, 'golang.org/x/net', 'v0.1.0', 0, '', '', '/app', ''), (1, 1, 'stdlib', 'go1.20', 0, '', '', '/app', ''),
			(2, 0, 'golang.org/x/net', 'v0.1.0', 0, '', '', '/app', ''), (2, 1, 'stdlib', 'go1.20', 0, '', '', '/app', ''),
			(3, 0, 'openssl', '3', 0, '', '', '', '')`,
	} {
		if _, err := w.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db := reopen()
	rows, err := queryAll(ctx, db.Reader(), func(r rowScanner) (string, error) {
		var id, seq int
		var reach string
		err := r.Scan(&id, &seq, &reach)
		return fmt.Sprintf("%d/%d=%s", id, seq, reach), err
	}, "SELECT finding_id, seq, reachability FROM finding_packages ORDER BY finding_id, seq")
	want := []string{"1/0=ABSENT", "1/1=PRESENT", "2/0=ABSENT", "2/1=PRESENT", "3/0="}
	if err != nil || !slices.Equal(rows, want) {
		t.Fatalf("reachability %q (%v), want %q", rows, err, want)
	}
}

var testOrigin = events.Origin{Account: "123456789012", Region: "us-east-1"}
