package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
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

func (fx *queryFixture) list(t *testing.T, q findings.Query) []string {
	t.Helper()
	q.Account, q.Region = testOrigin.Account, testOrigin.Region
	if q.Limit == 0 {
		q.Limit = 100
	}
	rows, err := fx.db.QueryFindings(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, r.Finding.Repository+"/"+r.Finding.VulnerabilityID)
		if r.Manifest.Digest != r.Finding.Digest || len(r.Finding.Detail) == 0 {
			t.Errorf("%s: manifest %q, detail %d bytes", out[len(out)-1], r.Manifest.Digest, len(r.Finding.Detail))
		}
	}
	return out
}

func sf(c findings.Comparison, v string) findings.StringFilter {
	return findings.StringFilter{Comparison: c, Value: v}
}

func strs(f findings.Field, fs ...findings.StringFilter) findings.Criteria {
	return findings.Criteria{Strings: map[findings.Field][]findings.StringFilter{f: fs}}
}

func ptr[T any](v T) *T { return &v }

func TestQueryFindingsCriteria(t *testing.T) {
	fx := newQueryFixture(t)
	all := []string{"prod/neo4j/CVE-2021-44228", "prod/neo4j/CVE-2023-5678", "prod/web/CVE-2023-5678", "prod/web/GHSA-xxxx-yyyy-zzzz", "test/web/CVE-2021-44228"}
	for _, tc := range []struct {
		name string
		c    findings.Criteria
		kev  []string
		want []string
	}{
		{"none", findings.Criteria{}, nil, all},
		{"vulnerability id", strs(findings.VulnerabilityID, sf(findings.Equals, "CVE-2021-44228")), nil, []string{all[0], all[4]}},
		{"repository prefix", strs(findings.ECRImageRepositoryName, sf(findings.Prefix, "prod/")), nil, all[:4]},
		{"two prefixes OR'd", strs(findings.ECRImageRepositoryName, sf(findings.Prefix, "prod/n"), sf(findings.Prefix, "test")), nil, []string{all[0], all[1], all[4]}},
		{"not equals excludes", strs(findings.ECRImageRepositoryName, sf(findings.NotEquals, "prod/web"), sf(findings.NotEquals, "test/web")), nil, all[:2]},
		{"severity and repository AND'd", findings.Criteria{Strings: map[findings.Field][]findings.StringFilter{
			findings.Severity: {sf(findings.Equals, "CRITICAL")}, findings.ECRImageRepositoryName: {sf(findings.Prefix, "prod")}}}, nil, all[:1]},
		{"untriaged is undefined", strs(findings.Severity, sf(findings.Equals, "UNTRIAGED")), nil, all[3:4]},
		{"undefined is no inspector word", strs(findings.Severity, sf(findings.Equals, "UNDEFINED")), nil, nil},
		{"tags", strs(findings.ECRImageTags, sf(findings.Equals, "dev")), nil, all[4:]},
		{"tags not equal", strs(findings.ECRImageTags, sf(findings.NotEquals, "dev")), nil, all[:4]},
		{"architecture", strs(findings.ECRImageArchitecture, sf(findings.Equals, "arm64")), nil, all[2:4]},
		{"image hash", strs(findings.ECRImageHash, sf(findings.Equals, fakeDigest("3"))), nil, all[4:]},
		{"resource id", strs(findings.ResourceID, sf(findings.Equals, "arn:aws:ecr:us-east-1:123456789012:repository/prod/web/"+fakeDigest("2"))), nil, all[2:4]},
		{"resource id prefix", strs(findings.ResourceID, sf(findings.Prefix, "arn:aws:ecr:us-east-1:123456789012:repository/test/")), nil, all[4:]},
		{"account", strs(findings.AWSAccountID, sf(findings.Equals, "123456789012")), nil, all},
		{"other account", strs(findings.AWSAccountID, sf(findings.Equals, "999999999999")), nil, nil},
		{"resource type", strs(findings.ResourceType, sf(findings.Equals, "AWS_EC2_INSTANCE")), nil, nil},
		{"not applicable equals", strs("ec2InstanceVpcId", sf(findings.Equals, "vpc-1")), nil, nil},
		{"not applicable not equals", strs("ec2InstanceVpcId", sf(findings.NotEquals, "vpc-1")), nil, all},
		{"source", strs(findings.VulnerabilitySource, sf(findings.Equals, "DEBIAN_CVE")), nil, all[1:3]},
		{"vendor severity", strs(findings.VendorSeverity, sf(findings.Equals, "medium")), nil, all[1:3]},
		{"title prefix", strs(findings.Title, sf(findings.Prefix, "GHSA")), nil, all[3:4]},
		{"fix available", strs(findings.FixAvailable, sf(findings.Equals, "PARTIAL")), nil, all[3:4]},
		{"fix not available", strs(findings.FixAvailable, sf(findings.Equals, "NO")), nil, all[1:3]},
		{"related", strs(findings.RelatedVulnerabilities, sf(findings.Equals, "DSA-5532-1")), nil, all[1:2]},
		{"finding arn", strs(findings.FindingARN, sf(findings.Equals, fx.arns["test/web/CVE-2021-44228"])), nil, all[4:]},
		{"exploited, by id and alias", strs(findings.ExploitAvailable, sf(findings.Equals, "YES")), []string{"CVE-2021-44228", "CVE-2099-0001"},
			[]string{all[0], all[3], all[4]}},
		{"not exploited", strs(findings.ExploitAvailable, sf(findings.Equals, "NO")), []string{"CVE-2021-44228"}, all[1:4]},
		{"score range", findings.Criteria{Numbers: map[findings.Field][]findings.NumberFilter{findings.InspectorScore: {{Lower: ptr(5.0), Upper: ptr(6.0)}}}}, nil, all[1:3]},
		{"epss has no value", findings.Criteria{Numbers: map[findings.Field][]findings.NumberFilter{findings.EPSSScore: {{Lower: ptr(0.0)}}}}, nil, nil},
		{"pushed at", findings.Criteria{Dates: map[findings.Field][]findings.DateFilter{findings.ECRImagePushedAt: {{Start: ptr(fx.t0.Add(time.Minute))}}}}, nil, all[2:]},
		{"first observed", findings.Criteria{Dates: map[findings.Field][]findings.DateFilter{findings.FirstObservedAt: {{Start: ptr(fx.t0.Add(time.Minute)), End: ptr(fx.t0.Add(time.Minute))}}}}, nil,
			[]string{all[1], all[3]}},
		{"last observed", findings.Criteria{Dates: map[findings.Field][]findings.DateFilter{findings.LastObservedAt: {{End: ptr(fx.t0)}}}}, nil, []string{all[0], all[2], all[4]}},
		{"never pulled", findings.Criteria{Dates: map[findings.Field][]findings.DateFilter{findings.ECRImageLastInUseAt: {{Start: ptr(time.Time{})}}}}, nil, nil},
		{"package file path prefix", findings.Criteria{Packages: []findings.PackageFilter{{FilePath: ptr(sf(findings.Prefix, "/var/lib/neo4j/lib/"))}}}, nil,
			[]string{all[0], all[3], all[4]}},
		{"package fields are one package's", findings.Criteria{Packages: []findings.PackageFilter{{Name: ptr(sf(findings.Equals, "openssl")),
			SourceLayerHash: ptr(sf(findings.Equals, "sha256:aaaa"))}}}, nil, nil},
		{"package epoch and release", findings.Criteria{Packages: []findings.PackageFilter{{Release: ptr(sf(findings.Equals, "1~deb12u1")),
			Epoch: &findings.NumberFilter{Lower: ptr(1.0), Upper: ptr(1.0)}, Architecture: ptr(sf(findings.Equals, "amd64"))}}}, nil, all[1:4]},
		{"package lambda layer", findings.Criteria{Packages: []findings.PackageFilter{{SourceLambdaLayerArn: ptr(sf(findings.Equals, "arn:x"))}}}, nil, nil},
		{"packages OR'd", findings.Criteria{Packages: []findings.PackageFilter{{Name: ptr(sf(findings.Equals, "nothing"))}, {Version: ptr(sf(findings.Equals, "3.0.11"))}}}, nil, all[1:4]},
		{"resource tags", findings.Criteria{Maps: map[findings.Field][]findings.MapFilter{findings.ResourceTags: {{Comparison: findings.Equals, Key: "k"}}}}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fx.list(t, findings.Query{Criteria: tc.c, Exploited: tc.kev})
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// TestQueryFindingsSortAndPages pages through every sort field, one finding a page, in both
// orders: the pages add up to the whole, ordered, list.
func TestQueryFindingsSortAndPages(t *testing.T) {
	fx := newQueryFixture(t)
	ctx := context.Background()
	for _, field := range findings.SortFields() {
		for _, order := range []findings.Order{findings.Asc, findings.Desc} {
			q := findings.Query{Sort: findings.Sort{Field: field, Order: order}, Account: testOrigin.Account, Region: testOrigin.Region}
			q.Limit = 100
			whole, err := fx.db.QueryFindings(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(whole) != 5 {
				t.Fatalf("%s %s: %d findings", field, order, len(whole))
			}
			q.Limit = 1
			var paged []findings.Listed
			for range 10 {
				page, err := fx.db.QueryFindings(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				paged = append(paged, page...)
				q.After = &page[0].Cursor
			}
			if len(paged) != len(whole) {
				t.Fatalf("%s %s: %d paged, %d whole", field, order, len(paged), len(whole))
			}
			for i := range whole {
				if paged[i].Finding.ARN != whole[i].Finding.ARN {
					t.Fatalf("%s %s: page %d is %s, want %s", field, order, i, paged[i].Finding.VulnerabilityID, whole[i].Finding.VulnerabilityID)
				}
			}
		}
	}
	// Severity descending puts CRITICAL first, the untriaged finding last; score ascending
	// the unscored first.
	first := func(s findings.Sort) string {
		rows, err := fx.db.QueryFindings(ctx, findings.Query{Sort: s, Limit: 5})
		if err != nil || len(rows) != 5 {
			t.Fatal(rows, err)
		}
		return rows[0].Finding.Severity + "," + rows[4].Finding.Severity
	}
	if got := first(findings.Sort{Field: findings.SortSeverity, Order: findings.Desc}); got != "CRITICAL,UNDEFINED" {
		t.Errorf("severity DESC: %s", got)
	}
	if got := first(findings.Sort{Field: findings.SortInspectorScore, Order: findings.Asc}); got != "UNDEFINED,CRITICAL" {
		t.Errorf("score ASC: %s", got)
	}
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
	path := filepath.Join(t.TempDir(), "meta.db")
	w, err := openPool(path, false)
	if err != nil {
		t.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	if err := migrateTo(ctx, w, 26); err != nil {
		t.Fatal(err)
	}
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
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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

// TestQueryFindingsByReachability: the Lading member of vulnerablePackages filters selects Go
// findings by whether the vulnerable symbols are in the binary, package by package.
func TestQueryFindingsByReachability(t *testing.T) {
	fx := newQueryFixture(t)
	gobin := func(name, reach string) match.VulnerablePackage {
		return match.VulnerablePackage{Name: name, Version: "v1.0.0", Ecosystem: "Go", PackageManager: "GOBINARY", FilePath: "/usr/local/bin/app",
			Layer: "sha256:cccc", Reachability: reach}
	}
	fx.addImage(t, "go/app", fakeDigest("4"), "1", "amd64", fx.t0, []fixtureFinding{
		{vuln: "CVE-2024-0001", severity: "HIGH", source: "GO", pkgs: []match.VulnerablePackage{gobin("golang.org/x/net", match.ReachPresent)}},
		{vuln: "CVE-2024-0002", severity: "HIGH", source: "GO", pkgs: []match.VulnerablePackage{gobin("golang.org/x/text", match.ReachAbsent)}},
		{vuln: "CVE-2024-0003", severity: "HIGH", source: "GO", pkgs: []match.VulnerablePackage{gobin("stdlib", match.ReachUnknown),
			gobin("golang.org/x/crypto", match.ReachAbsent)}},
	})
	reach := func(c findings.Comparison, v string) findings.Criteria {
		return findings.Criteria{Packages: []findings.PackageFilter{{Reachability: ptr(sf(c, v))}}}
	}
	for _, tc := range []struct {
		name string
		c    findings.Criteria
		want []string
	}{
		{"present", reach(findings.Equals, match.ReachPresent), []string{"go/app/CVE-2024-0001"}},
		{"absent, one package of two", reach(findings.Equals, match.ReachAbsent), []string{"go/app/CVE-2024-0002", "go/app/CVE-2024-0003"}},
		{"unknown", reach(findings.Equals, match.ReachUnknown), []string{"go/app/CVE-2024-0003"}},
		{"same package as the name", findings.Criteria{Packages: []findings.PackageFilter{{Name: ptr(sf(findings.Equals, "stdlib")),
			Reachability: ptr(sf(findings.Equals, match.ReachAbsent))}}}, nil},
		{"not absent: other ecosystems have none", findings.Criteria{Packages: []findings.PackageFilter{{Reachability: ptr(sf(findings.NotEquals, match.ReachAbsent))}},
			Strings: map[findings.Field][]findings.StringFilter{findings.ECRImageRepositoryName: {sf(findings.Equals, "go/app")}}},
			[]string{"go/app/CVE-2024-0001", "go/app/CVE-2024-0003"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fx.list(t, findings.Query{Criteria: tc.c}); !slices.Equal(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// TestMigrationCopiesReachability: migration 0036 fills finding_packages.reachability of the
// findings written before it, from whole details and from details split by 0032.
func TestMigrationCopiesReachability(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	w, err := openPool(path, false)
	if err != nil {
		t.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	if err := migrateTo(ctx, w, 35); err != nil {
		t.Fatal(err)
	}
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
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
