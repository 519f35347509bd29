package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/pullgate"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/suppression"
)

// The findings cases: scan results written and read back, the finding queries, suppression
// rules and the pull gate's blocking findings (moved from store/sqlite's tests).

var testOrigin = events.Origin{Account: "123456789012", Region: "us-east-1"}

// queryFixture is a store with three images and their ENHANCED findings, written through
// ApplyScans with real scanning.Detail JSON (so the indexed columns are the writer's).
type queryFixture struct {
	db    Store
	clock *clock
	t0    time.Time
	arns  map[string]string // "repo/vuln" -> ARN
}

type fixtureFinding struct {
	vuln, severity, source, vendor string
	score                          float64
	aliases, related               []string
	pkgs                           []match.VulnerablePackage
	arn                            string // the finding's ARN when not scanning.FindingARN's
}

func newQueryFixture(t *testing.T, open Opener) *queryFixture {
	t.Helper()
	db := open(t)
	fx := &queryFixture{db: db, t0: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), arns: map[string]string{}}
	fx.clock = newClock(fx.t0)
	db.SetClock(fx.clock.Now)
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
	fx.clock.set(pushed) // PutManifest stamps the time of the push
	if _, err := fx.db.PutManifest(ctx, m, nil, []string{tag}, store.PutOptions{CreateRepository: true}); err != nil {
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
		if ff.arn != "" {
			arn = ff.arn
		}
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

func testQueryFindingsCriteria(t *testing.T, open Opener) {
	fx := newQueryFixture(t, open)
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

// testQueryFindingsSortAndPages pages through every sort field, one finding a page, in both
// orders: the pages add up to the whole, ordered, list.
func testQueryFindingsSortAndPages(t *testing.T, open Opener) {
	fx := newQueryFixture(t, open)
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

func testFindingsByARN(t *testing.T, open Opener) {
	fx := newQueryFixture(t, open)
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
	if fs, err := fx.db.Findings(context.Background(), "prod/web", fakeDigest("2"), policy.ScanTypeEnhanced); err != nil || len(fs) != 0 {
		t.Fatalf("findings of a deleted image: %v, %v", fs, err)
	}
}

// testFindingsByARNOfAnyShape: findings are found by whatever ARN they were written with, also
// one ending as another finding's ARN does (PostgreSQL finds the scanner's ARNs by the key
// their end encodes, 0051).
func testFindingsByARNOfAnyShape(t *testing.T, open Opener) {
	fx := newQueryFixture(t, open)
	derived := fx.arns["prod/web/GHSA-xxxx-yyyy-zzzz"]
	lookalike := "arn:aws:inspector2:eu-west-1:000000000000:finding/" + derived[len(derived)-32:]
	pkg := []match.VulnerablePackage{{Name: "zlib", Version: "1.2", Ecosystem: "Debian:12", PackageManager: "OS", Layer: "sha256:cccc"}}
	fx.addImage(t, "odd/web", fakeDigest("9"), "odd", "amd64", fx.t0.Add(3*time.Hour), []fixtureFinding{
		{vuln: "CVE-2000-0001", severity: "LOW", source: "NVD", pkgs: pkg, arn: "arn:custom/1"},
		{vuln: "CVE-2000-0002", severity: "LOW", source: "NVD", pkgs: pkg, arn: lookalike},
	})
	for _, tc := range []struct {
		arns []string
		want []string
	}{
		{[]string{"arn:custom/1"}, []string{"odd/web/CVE-2000-0001"}},
		{[]string{lookalike}, []string{"odd/web/CVE-2000-0002"}},
		{[]string{derived}, []string{"prod/web/GHSA-xxxx-yyyy-zzzz"}},
		{[]string{derived, lookalike, "arn:custom/1", "arn:custom/2"}, []string{"odd/web/CVE-2000-0001", "odd/web/CVE-2000-0002", "prod/web/GHSA-xxxx-yyyy-zzzz"}},
	} {
		rows, err := fx.db.FindingsByARN(context.Background(), tc.arns)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rows {
			got = append(got, r.Finding.Repository+"/"+r.Finding.VulnerabilityID)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("by ARN %v: %v, want %v", tc.arns, got, tc.want)
		}
		var eq []findings.StringFilter
		for _, a := range tc.arns {
			eq = append(eq, sf(findings.Equals, a))
		}
		got = fx.list(t, findings.Query{Criteria: strs(findings.FindingARN, eq...)})
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("findingArn EQUALS %v: %v, want %v", tc.arns, got, tc.want)
		}
	}
}

// testQueryFindingsByReachability: the Lading member of vulnerablePackages filters selects Go
// findings by whether the vulnerable symbols are in the binary, package by package.
func testQueryFindingsByReachability(t *testing.T, open Opener) {
	fx := newQueryFixture(t, open)
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

// recorder is an Announce that records what it is handed and makes one event per finding.
type recorder struct{ got []string }

func (r *recorder) announce(ls []findings.Listed) ([]store.OutboxEvent, error) {
	var evs []store.OutboxEvent
	for _, l := range ls {
		r.got = append(r.got, l.Finding.Repository+"/"+l.Finding.VulnerabilityID+"="+scanning.InspectorStatus(l.Finding))
		evs = append(evs, store.OutboxEvent{DetailType: "Inspector2 Finding", Source: "aws.inspector2", Detail: json.RawMessage(`{}`)})
	}
	return evs, nil
}

func (r *recorder) take() []string {
	out := r.got
	slices.Sort(out)
	r.got = nil
	return out
}

func (fx *queryFixture) byStatus(t *testing.T, status string) []string {
	t.Helper()
	return fx.list(t, findings.Query{Criteria: strs(findings.FindingStatus, sf(findings.Equals, status))})
}

func outboxCount(t *testing.T, db Store) int {
	t.Helper()
	evs, err := db.ReadOutbox(context.Background(), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

func testSuppressionRules(t *testing.T, open Opener) {
	ctx := context.Background()
	fx := newQueryFixture(t, open)
	db := fx.db
	db.SetFindingContext(store.FindingContext{Account: testOrigin.Account, Region: testOrigin.Region})
	rec := &recorder{}
	rule := suppression.Rule{ARN: "arn:aws:inspector2:us-east-1:123456789012:owner/123456789012/filter/a", Name: "log4j-prod", Action: suppression.Suppress,
		Criteria: findings.Criteria{Strings: map[findings.Field][]findings.StringFilter{
			findings.VulnerabilityID:        {sf(findings.Equals, "CVE-2021-44228")},
			findings.ECRImageRepositoryName: {sf(findings.Prefix, "prod/")},
		}}, Owner: testOrigin.Account, CreatedAt: fx.t0, UpdatedAt: fx.t0}
	before := outboxCount(t, db)
	if err := db.CreateFilter(ctx, rule, rec.announce); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.take(), []string{"prod/neo4j/CVE-2021-44228=SUPPRESSED"}; !slices.Equal(got, want) {
		t.Errorf("announced %v, want %v", got, want)
	}
	if got := outboxCount(t, db) - before; got != 1 {
		t.Errorf("%d events written, want 1", got)
	}
	if got, want := fx.byStatus(t, "SUPPRESSED"), []string{"prod/neo4j/CVE-2021-44228"}; !slices.Equal(got, want) {
		t.Errorf("SUPPRESSED findings %v, want %v", got, want)
	}
	if got := fx.byStatus(t, "ACTIVE"); slices.Contains(got, "prod/neo4j/CVE-2021-44228") || len(got) != 4 {
		t.Errorf("ACTIVE findings %v: want the 4 others", got)
	}
	// DescribeImageScanFindings reads through Findings: suppression comes with the detail.
	fs, err := db.Findings(ctx, "prod/neo4j", fakeDigest("1"), policy.ScanTypeEnhanced)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if want := f.VulnerabilityID == "CVE-2021-44228"; f.Suppressed != want {
			t.Errorf("Findings: %s suppressed %v, want %v", f.VulnerabilityID, f.Suppressed, want)
		}
	}

	dup := rule
	dup.ARN += "b"
	if err := db.CreateFilter(ctx, dup, rec.announce); !errors.Is(err, suppression.ErrNameTaken) {
		t.Errorf("duplicate name: %v, want ErrNameTaken", err)
	}
	if _, err := db.UpdateFilter(ctx, "arn:nope", func(*suppression.Rule) error { return nil }, rec.announce); !errors.Is(err, suppression.ErrNotFound) {
		t.Errorf("update of a missing rule: %v, want ErrNotFound", err)
	}

	// A new finding matching the rule is suppressed from its first write, and announced so.
	m := store.Manifest{Repository: "prod/api", Digest: fakeDigest("4"), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
	if _, err := db.PutManifest(ctx, m, nil, []string{"v1"}, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	detail, err := json.Marshal(scanning.Detail{Finding: match.Finding{VulnerabilityID: "CVE-2021-44228", Severity: "CRITICAL",
		Packages: []match.VulnerablePackage{{Name: "log4j-core", Version: "2.14.1", Ecosystem: "Maven"}}}})
	if err != nil {
		t.Fatal(err)
	}
	now := fx.t0.Add(time.Hour)
	var written []store.Finding
	target := store.ScanTarget{Repository: m.Repository, Digest: m.Digest, ScanType: policy.ScanTypeEnhanced}
	err = db.ApplyScans(ctx, []store.ScanTarget{target}, func(store.ScanState) (store.ScanUpdate, error) {
		return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: now}, Findings: []store.Finding{{
			Repository: m.Repository, Digest: m.Digest, ScanType: policy.ScanTypeEnhanced, VulnerabilityID: "CVE-2021-44228", ARN: "arn:x",
			Status: "ACTIVE", Severity: "CRITICAL", Fingerprint: "x", Detail: detail, FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now}},
			Announce: func(w []store.Finding) ([]store.OutboxEvent, error) { written = w; return nil, nil }}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 1 || !written[0].Suppressed {
		t.Errorf("announced on write %+v: want the finding suppressed", written)
	}

	// NONE suppresses nothing: both come back ACTIVE, each announced.
	before = outboxCount(t, db)
	if _, err := db.UpdateFilter(ctx, rule.ARN, func(r *suppression.Rule) error { r.Action = suppression.None; return nil }, rec.announce); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.take(), []string{"prod/api/CVE-2021-44228=ACTIVE", "prod/neo4j/CVE-2021-44228=ACTIVE"}; !slices.Equal(got, want) {
		t.Errorf("announced %v, want %v", got, want)
	}
	if got := outboxCount(t, db) - before; got != 2 {
		t.Errorf("%d events written, want 2", got)
	}
	if got := fx.byStatus(t, "SUPPRESSED"); len(got) != 0 {
		t.Errorf("SUPPRESSED findings %v after NONE", got)
	}

	// Back to SUPPRESS, then deleted: suppressed, then ACTIVE again.
	if _, err := db.UpdateFilter(ctx, rule.ARN, func(r *suppression.Rule) error { r.Action = suppression.Suppress; return nil }, rec.announce); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); len(got) != 2 {
		t.Errorf("announced %v, want the two findings", got)
	}
	if rules, err := db.ListFilters(ctx, suppression.ListQuery{Action: suppression.Suppress}); err != nil || len(rules) != 1 || rules[0].Name != rule.Name {
		t.Errorf("ListFilters(SUPPRESS) = %+v, %v", rules, err)
	}
	if _, err := db.DeleteFilter(ctx, rule.ARN, rec.announce); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.take(), []string{"prod/api/CVE-2021-44228=ACTIVE", "prod/neo4j/CVE-2021-44228=ACTIVE"}; !slices.Equal(got, want) {
		t.Errorf("announced %v after delete, want %v", got, want)
	}
	if rules, err := db.ListFilters(ctx, suppression.ListQuery{}); err != nil || len(rules) != 0 {
		t.Errorf("ListFilters after delete = %+v, %v", rules, err)
	}
	if _, err := db.DeleteFilter(ctx, rule.ARN, rec.announce); !errors.Is(err, suppression.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
}

func testListFiltersPages(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	for i, name := range []string{"one", "two", "three", "four"} {
		at := time.Date(2026, 11, 1, 0, 0, i, 0, time.UTC)
		r := suppression.Rule{ARN: "arn:" + name, Name: name, Action: suppression.None, Owner: testOrigin.Account, CreatedAt: at, UpdatedAt: at}
		if i%2 == 1 {
			r.Action = suppression.Suppress
		}
		if err := db.CreateFilter(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		q    suppression.ListQuery
		want []string
	}{
		{"all", suppression.ListQuery{}, []string{"one", "two", "three", "four"}},
		{"page", suppression.ListQuery{Limit: 2}, []string{"one", "two"}},
		{"after", suppression.ListQuery{After: &suppression.Cursor{CreatedAt: time.Date(2026, 11, 1, 0, 0, 1, 0, time.UTC), ARN: "arn:two"}}, []string{"three", "four"}},
		{"after a rule deleted since", suppression.ListQuery{After: &suppression.Cursor{CreatedAt: time.Date(2026, 11, 1, 0, 0, 1, 5e8, time.UTC), ARN: "arn:gone"}},
			[]string{"three", "four"}},
		{"action", suppression.ListQuery{Action: suppression.Suppress}, []string{"two", "four"}},
		{"arns", suppression.ListQuery{ARNs: []string{"arn:three", "arn:one", "arn:none"}}, []string{"one", "three"}},
		{"no arns match", suppression.ListQuery{ARNs: []string{}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := db.ListFilters(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rules {
				got = append(got, r.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func testBlockingFindings(t *testing.T, open Opener) {
	ctx := context.Background()
	fx := newQueryFixture(t, open)
	db := fx.db
	later := fx.t0.Add(time.Hour)
	for _, tc := range []struct {
		name     string
		rank     int
		observed time.Time
		want     []string
	}{
		{"critical", pullgate.Rank("CRITICAL"), later, []string{"CVE-2021-44228"}},
		{"medium and above, most severe first", pullgate.Rank("MEDIUM"), later, []string{"CVE-2021-44228", "CVE-2023-5678"}},
		{"observed too recently", pullgate.Rank("LOW"), fx.t0.Add(-time.Second), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.BlockingFindings(ctx, "prod/neo4j", fakeDigest("1"), policy.ScanTypeEnhanced, tc.rank, tc.observed)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	// A suppressed finding does not block.
	db.SetFindingContext(store.FindingContext{Account: testOrigin.Account, Region: testOrigin.Region})
	rule := suppression.Rule{ARN: "arn:r", Name: "r", Action: suppression.Suppress, Criteria: strs(findings.VulnerabilityID, sf(findings.Equals, "CVE-2021-44228"))}
	if err := db.CreateFilter(ctx, rule, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := db.BlockingFindings(ctx, "prod/neo4j", fakeDigest("1"), policy.ScanTypeEnhanced, pullgate.Rank("CRITICAL"), later); err != nil || len(got) != 0 {
		t.Errorf("with the finding suppressed: %v, %v", got, err)
	}
}

// testFindingDetailsReadOnDemand checks that an update sees findings without their detail but
// with their package keys, reads the detail it asks for, and that a finding written back
// without its detail keeps the stored one, while a new finding without one is refused.
func testFindingDetailsReadOnDemand(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	dgst := fakeDigest("d")
	m := store.Manifest{Repository: "app", Digest: dgst, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
	if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	target := store.ScanTarget{Repository: "app", Digest: dgst, ScanType: policy.ScanTypeEnhanced}
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	keys := []store.PackageKey{{Ecosystem: "Debian:12", Name: "openssl"}, {Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core"}}
	finding := func(id string, keys []store.PackageKey, detail string) store.Finding {
		return store.Finding{Repository: "app", Digest: dgst, ScanType: policy.ScanTypeEnhanced, VulnerabilityID: id, ARN: "arn:" + id,
			Status: "ACTIVE", Severity: "HIGH", Fingerprint: "fp-" + detail, PackageKeys: keys, Detail: []byte(detail),
			FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now}
	}
	apply := func(update func(st store.ScanState) ([]store.Finding, error)) error {
		return db.ApplyScans(ctx, []store.ScanTarget{target}, func(st store.ScanState) (store.ScanUpdate, error) {
			fs, err := update(st)
			return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: now}, Findings: fs}, err
		})
	}
	tabbed := []store.PackageKey{{Ecosystem: "npm", Name: "odd\tname"}}
	if err := apply(func(store.ScanState) ([]store.Finding, error) {
		return []store.Finding{finding("CVE-1", keys, `{"n":1}`), finding("CVE-2", tabbed, `{"n":2}`)}, nil
	}); err != nil {
		t.Fatal(err)
	}

	err := apply(func(st store.ScanState) ([]store.Finding, error) {
		if len(st.Findings) != 2 {
			t.Fatalf("%d findings, want 2", len(st.Findings))
		}
		one, two := st.Findings[0], st.Findings[1]
		if one.Detail != nil || two.Detail != nil {
			t.Fatalf("findings read with their detail: %q %q", one.Detail, two.Detail)
		}
		if !slices.Equal(one.PackageKeys, keys) {
			t.Fatalf("package keys %v, want %v", one.PackageKeys, keys)
		}
		if two.PackageKeys != nil {
			t.Fatalf("keys that cannot be written back were stored: %v", two.PackageKeys)
		}
		details, err := st.Details(ctx, []string{"CVE-2", "CVE-9"})
		if err != nil {
			t.Fatal(err)
		}
		if len(details) != 1 || string(details["CVE-2"]) != `{"n":2}` {
			t.Fatalf("details %q", details)
		}
		// CVE-1 closes without its detail loaded: the stored detail stays.
		one.Status, one.UpdatedAt = "CLOSED", now.Add(time.Hour)
		return []store.Finding{one}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.Findings(ctx, "app", dgst, policy.ScanTypeEnhanced)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Status != "CLOSED" || string(got[0].Detail) != `{"n":1}` || string(got[1].Detail) != `{"n":2}` {
		t.Fatalf("findings after the update: %+v", got)
	}

	err = apply(func(store.ScanState) ([]store.Finding, error) {
		f := finding("CVE-3", keys, "")
		f.Detail = nil
		return []store.Finding{f}, nil
	})
	if !errors.Is(err, store.ErrNoDetail) {
		t.Fatalf("new finding without detail: got %v, want store.ErrNoDetail", err)
	}
	if got, _ := db.Findings(ctx, "app", dgst, policy.ScanTypeEnhanced); len(got) != 2 {
		t.Fatalf("the refused update wrote %d findings", len(got))
	}

	// Deleting the image deletes its findings.
	if _, err := db.DeleteManifest(ctx, "app", dgst, true); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Findings(ctx, "app", dgst, policy.ScanTypeEnhanced); err != nil || len(got) != 0 {
		t.Fatalf("findings after the image was deleted: %v, %v", got, err)
	}
}

// testFindingDetailWithNUL: a detail whose text holds an escaped NUL (advisory text is
// untrusted) is written, indexed and read back byte for byte.
func testFindingDetailWithNUL(t *testing.T, open Opener) {
	ctx := context.Background()
	fx := newQueryFixture(t, open)
	m := store.Manifest{Repository: "odd", Digest: fakeDigest("9"), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
	if _, err := fx.db.PutManifest(ctx, m, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	detail, err := json.Marshal(scanning.Detail{Finding: match.Finding{VulnerabilityID: "CVE-2026-0001", Title: "nul title",
		Description: "a \x00 in the text", Severity: "LOW", Packages: []match.VulnerablePackage{{Name: "p", Version: "1", Ecosystem: "npm"}}}})
	if err != nil {
		t.Fatal(err)
	}
	// The image's facts are the image's to choose too.
	facts, err := json.Marshal(scanning.ImageInfo{Architecture: "riscv64", Author: "nul \x00 author"})
	if err != nil {
		t.Fatal(err)
	}
	target := store.ScanTarget{Repository: m.Repository, Digest: m.Digest, ScanType: policy.ScanTypeEnhanced}
	err = fx.db.ApplyScans(ctx, []store.ScanTarget{target}, func(store.ScanState) (store.ScanUpdate, error) {
		return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: fx.t0, ImageFacts: facts}, Findings: []store.Finding{{
			Repository: m.Repository, Digest: m.Digest, ScanType: policy.ScanTypeEnhanced, VulnerabilityID: "CVE-2026-0001", ARN: "arn:nul",
			Status: "ACTIVE", Severity: "LOW", Fingerprint: "x", Detail: detail, FirstObservedAt: fx.t0, LastObservedAt: fx.t0, UpdatedAt: fx.t0}}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := fx.db.Findings(ctx, m.Repository, m.Digest, policy.ScanTypeEnhanced)
	if err != nil || len(fs) != 1 || string(fs[0].Detail) != string(detail) {
		t.Fatalf("findings %v (%v): want the detail back as written", fs, err)
	}
	if got := fx.list(t, findings.Query{Criteria: strs(findings.Title, sf(findings.Equals, "nul title"))}); !slices.Equal(got, []string{"odd/CVE-2026-0001"}) {
		t.Fatalf("listed by title: %v", got)
	}
	if got := fx.list(t, findings.Query{Criteria: strs(findings.ECRImageArchitecture, sf(findings.Equals, "riscv64"))}); !slices.Equal(got, []string{"odd/CVE-2026-0001"}) {
		t.Fatalf("listed by architecture: %v", got)
	}
}

// testFindingCountsAndDays: the per-image and per-repository counts of ACTIVE findings by
// severity, and the findings opened per day, as the console reads them.
func testFindingCountsAndDays(t *testing.T, open Opener) {
	ctx := context.Background()
	fx := newQueryFixture(t, open)
	byRepo, err := fx.db.RepositoryFindingCounts(ctx, policy.ScanTypeEnhanced)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]int{
		"prod/neo4j": {"CRITICAL": 1, "MEDIUM": 1}, "prod/web": {"MEDIUM": 1, "UNDEFINED": 1}, "test/web": {"CRITICAL": 1}}
	if !reflect.DeepEqual(byRepo, want) {
		t.Errorf("repository counts %v, want %v", byRepo, want)
	}
	if other, err := fx.db.RepositoryFindingCounts(ctx, policy.ScanTypeBasic); err != nil || len(other) != 0 {
		t.Errorf("basic counts %v (%v), want none", other, err)
	}
	byImage, err := fx.db.ActiveFindingCounts(ctx, "prod/web", []string{fakeDigest("2"), fakeDigest("1"), fakeDigest("9")}, policy.ScanTypeEnhanced)
	if err != nil {
		t.Fatal(err)
	}
	if wantImg := map[string]map[string]int{fakeDigest("2"): {"MEDIUM": 1, "UNDEFINED": 1}}; !reflect.DeepEqual(byImage, wantImg) {
		t.Errorf("image counts %v, want %v", byImage, wantImg)
	}
	days, err := fx.db.FindingDays(ctx, fx.t0.AddDate(0, 0, -1), 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range days {
		got = append(got, fmt.Sprintf("%s %d/%d", d.Day.Format(time.DateOnly), d.Opened, d.Closed))
	}
	if wantDays := []string{"2026-10-31 0/0", "2026-11-01 5/0", "2026-11-02 0/0"}; !slices.Equal(got, wantDays) {
		t.Errorf("days %v, want %v", got, wantDays)
	}
}
