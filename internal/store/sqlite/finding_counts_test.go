package sqlite

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/suppression"
)

// checkCounts compares image_finding_counts with a count of the findings, and the
// aggregations answered from it with the same aggregations counted from the findings.
func checkCounts(t *testing.T, db *DB, step string) {
	t.Helper()
	ctx := context.Background()
	const cols = "repository || ' ' || image_digest || ' ' || scan_type || ' ' || n_all || '/' || n_critical || '/' || n_high || '/' || n_medium || '/' || n_low || '/' || n_informational || '/' || n_undefined"
	kept, err := queryStrings(ctx, db.Reader(), "SELECT "+cols+" FROM image_finding_counts WHERE n_all > 0 ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	recount, err := queryStrings(ctx, db.Reader(), `SELECT `+cols+` FROM (SELECT repository, image_digest, scan_type, count(*) AS n_all,
		sum(severity = 'CRITICAL') AS n_critical, sum(severity = 'HIGH') AS n_high, sum(severity = 'MEDIUM') AS n_medium, sum(severity = 'LOW') AS n_low,
		sum(severity = 'INFORMATIONAL') AS n_informational, sum(severity NOT IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL')) AS n_undefined
		FROM findings WHERE status = 'ACTIVE' AND suppressed = 0 GROUP BY repository, image_digest, scan_type) ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(kept, recount) {
		t.Fatalf("%s: counts kept\n%s\nrecounted\n%s", step, strings.Join(kept, "\n"), strings.Join(recount, "\n"))
	}
	if len(kept) == 0 && step != "repository deleted" {
		t.Fatalf("%s: nothing counted", step)
	}
	active := findings.Criteria{Strings: map[findings.Field][]findings.StringFilter{findings.FindingStatus: {sf(findings.Equals, "ACTIVE")}}}
	// A criterion every finding meets takes the aggregation off the counts.
	everyFinding := findings.Criteria{Strings: map[findings.Field][]findings.StringFilter{findings.FindingStatus: {sf(findings.Equals, "ACTIVE")},
		findings.FindingType: {sf(findings.Equals, "PACKAGE_VULNERABILITY")}}}
	recounts := []struct{ table, kept, recount string }{
		{"vulnerability_finding_counts", `SELECT scan_type || ' ' || title || ' ' || vulnerability_id || ' ' || aliases || ' ' || n_all || '/' || n_critical || '/' ||
			n_high || '/' || n_medium || '/' || n_fix FROM vulnerability_finding_counts WHERE n_all > 0 ORDER BY 1`,
			`SELECT scan_type || ' ' || title || ' ' || vulnerability_id || ' ' || aliases || ' ' || count(*) || '/' || sum(severity = 'CRITICAL') || '/' ||
			sum(severity = 'HIGH') || '/' || sum(severity = 'MEDIUM') || '/' || sum(fix_available IN ('YES', 'PARTIAL'))
			FROM findings WHERE status = 'ACTIVE' AND suppressed = 0 GROUP BY scan_type, title, vulnerability_id, aliases ORDER BY 1`},
		{"repository_finding_counts", `SELECT scan_type || ' ' || repository || ' ' || n_images || ' ' || n_all || '/' || n_critical || '/' || n_high || '/' ||
			n_medium || '/' || n_low || '/' || n_informational || '/' || n_undefined FROM repository_finding_counts WHERE n_all > 0 ORDER BY 1`,
			`SELECT scan_type || ' ' || repository || ' ' || count(DISTINCT image_digest) || ' ' || count(*) || '/' || sum(severity = 'CRITICAL') || '/' ||
			sum(severity = 'HIGH') || '/' || sum(severity = 'MEDIUM') || '/' || sum(severity = 'LOW') || '/' || sum(severity = 'INFORMATIONAL') || '/' ||
			sum(severity NOT IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL'))
			FROM findings WHERE status = 'ACTIVE' AND suppressed = 0 GROUP BY scan_type, repository ORDER BY 1`},
		{"finding_days", `SELECT scan_type || ' ' || day || ' ' || opened || '/' || closed FROM finding_days WHERE opened > 0 OR closed > 0 ORDER BY 1`,
			`SELECT scan_type || ' ' || day || ' ' || sum(opened) || '/' || sum(closed) FROM (
				SELECT scan_type, first_observed_at / 86400000 AS day, 1 AS opened, 0 AS closed FROM findings
				UNION ALL SELECT scan_type, updated_at / 86400000, 0, 1 FROM findings WHERE status = 'CLOSED') GROUP BY scan_type, day ORDER BY 1`},
	}
	for _, rc := range recounts {
		kept, err := queryStrings(ctx, db.Reader(), rc.kept)
		if err != nil {
			t.Fatal(err)
		}
		recount, err := queryStrings(ctx, db.Reader(), rc.recount)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(kept, recount) {
			t.Fatalf("%s: %s kept\n%s\nrecounted\n%s", step, rc.table, strings.Join(kept, "\n"), strings.Join(recount, "\n"))
		}
	}
	vulns := []findings.StringFilter{sf(findings.Equals, "CVE-2023-5678"), sf(findings.Equals, "CVE-2021-44228")}
	for _, tc := range []struct {
		typ   findings.AggregationType
		vulns []findings.StringFilter
	}{
		{findings.AggregateRepository, nil}, {findings.AggregateImage, nil}, {findings.AggregateTitle, nil}, {findings.AggregateFindingType, nil},
		{findings.AggregateTitle, vulns[:1]}, {findings.AggregateTitle, vulns},
	} {
		typ := tc.typ
		crit := findings.Criteria{Strings: maps.Clone(active.Strings)}
		slowCrit := findings.Criteria{Strings: maps.Clone(everyFinding.Strings)}
		if tc.vulns != nil {
			crit.Strings[findings.VulnerabilityID], slowCrit.Strings[findings.VulnerabilityID] = tc.vulns, tc.vulns
		}
		q := findings.AggregationQuery{Type: typ, Criteria: crit, Limit: 100, Account: testOrigin.Account, Region: testOrigin.Region,
			Exploited: []string{"CVE-2023-5678", "CVE-2021-44228"}}
		if !countsAnswer(q) {
			t.Fatalf("%s aggregation not answered from the counts", typ)
		}
		fast, err := db.AggregateFindings(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		q.Criteria = slowCrit
		slow, err := db.AggregateFindings(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(fast) != fmt.Sprint(slow) {
			t.Fatalf("%s: %s aggregation from the counts\n%v\nfrom the findings\n%v", step, typ, fast, slow)
		}
	}
}

// TestFindingCountsKept checks that the per-image counts equal a recount of the findings
// after each kind of write: a scan, a re-evaluation, suppression rules made and dropped, the
// findings of an image closed (as when its scan eligibility expires), an image deleted, a
// repository deleted.
func TestFindingCountsKept(t *testing.T) {
	ctx := context.Background()
	fx := newQueryFixture(t) // the scans
	db := fx.db
	db.SetFindingContext(FindingContext{Account: testOrigin.Account, Region: testOrigin.Region})
	checkCounts(t, db, "scanned")

	target := store.ScanTarget{Repository: "prod/web", Digest: fakeDigest("2"), ScanType: policy.ScanTypeEnhanced}
	later := fx.t0.Add(24 * time.Hour)
	reevaluate := func(step string, change func(fs []store.Finding) []store.Finding) {
		t.Helper()
		if err := db.ApplyScans(ctx, []store.ScanTarget{target}, func(st store.ScanState) (store.ScanUpdate, error) {
			if err := loadAll(ctx, &st); err != nil {
				return store.ScanUpdate{}, err
			}
			// A copy: the state read must stay as read, the store writes what differs from it.
			return store.ScanUpdate{Findings: change(slices.Clone(st.Findings))}, nil
		}); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, db, step)
	}
	reevaluate("re-evaluated: one more severe, one closed, one new", func(fs []store.Finding) []store.Finding {
		for i := range fs {
			fs[i].LastObservedAt = later
			switch fs[i].VulnerabilityID {
			case "CVE-2023-5678":
				fs[i].Severity, fs[i].Fingerprint, fs[i].UpdatedAt = "HIGH", "changed", later
			case "GHSA-xxxx-yyyy-zzzz":
				fs[i].Status, fs[i].UpdatedAt = "CLOSED", later
			}
		}
		n := fs[0]
		// A title names its vulnerability (match.title): the new finding's says so.
		n.Detail = []byte(strings.Replace(string(n.Detail), `"title":"`+n.VulnerabilityID, `"title":"CVE-2026-0001`, 1))
		n.VulnerabilityID, n.ARN, n.Severity, n.Fingerprint, n.FirstObservedAt = "CVE-2026-0001", "arn:new", "LOW", "new", later
		return append(fs, n)
	})
	reevaluate("re-evaluated: observed only", func(fs []store.Finding) []store.Finding {
		for i := range fs {
			fs[i].LastObservedAt = later.Add(time.Hour)
		}
		return fs
	})
	reevaluate("re-evaluated: reopened", func(fs []store.Finding) []store.Finding {
		for i := range fs {
			if fs[i].Status == "CLOSED" {
				fs[i].Status, fs[i].UpdatedAt = "ACTIVE", later.Add(2*time.Hour)
			}
		}
		return fs
	})

	rule := suppression.Rule{ARN: "arn:aws:inspector2:us-east-1:123456789012:owner/123456789012/filter/c", Name: "criticals", Action: suppression.Suppress,
		Criteria: strs(findings.Severity, sf(findings.Equals, "CRITICAL")), Owner: testOrigin.Account, CreatedAt: fx.t0, UpdatedAt: fx.t0}
	none := func([]findings.Listed) ([]store.OutboxEvent, error) { return nil, nil }
	if err := db.CreateFilter(ctx, rule, none); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db, "suppression rule created")
	if _, err := db.UpdateFilter(ctx, rule.ARN, func(r *suppression.Rule) error {
		r.Criteria = strs(findings.ECRImageRepositoryName, sf(findings.Prefix, "prod/"))
		return nil
	}, none); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db, "suppression rule changed")
	if _, err := db.DeleteFilter(ctx, rule.ARN, none); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db, "suppression rule deleted")

	target = store.ScanTarget{Repository: "test/web", Digest: fakeDigest("3"), ScanType: policy.ScanTypeEnhanced}
	reevaluate("findings closed (scan eligibility expired)", func(fs []store.Finding) []store.Finding {
		for i := range fs {
			fs[i].Status, fs[i].UpdatedAt = "CLOSED", later
		}
		return fs
	})
	if _, err := db.DeleteManifest(ctx, "prod/neo4j", fakeDigest("1"), true); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db, "image deleted")
	if _, err := db.DeleteRepository(ctx, "prod/web", true); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db, "repository deleted")
}

// loadAll reads the detail of every finding of st.
func loadAll(ctx context.Context, st *store.ScanState) error {
	var ids []string
	for _, f := range st.Findings {
		ids = append(ids, f.VulnerabilityID)
	}
	got, err := st.Details(ctx, ids)
	for i := range st.Findings {
		st.Findings[i].Detail = got[st.Findings[i].VulnerabilityID]
	}
	return err
}

// TestCountsAnswer checks which aggregations the kept counts answer.
func TestCountsAnswer(t *testing.T) {
	active := sf(findings.Equals, "ACTIVE")
	crit := func(extra map[findings.Field][]findings.StringFilter) findings.Criteria {
		c := findings.Criteria{Strings: map[findings.Field][]findings.StringFilter{findings.FindingStatus: {active}}}
		maps.Copy(c.Strings, extra)
		return c
	}
	vuln := map[findings.Field][]findings.StringFilter{findings.VulnerabilityID: {sf(findings.Equals, "CVE-1")}}
	tests := []struct {
		name string
		q    findings.AggregationQuery
		want bool
	}{
		{"repositories", findings.AggregationQuery{Type: findings.AggregateRepository, Criteria: crit(nil)}, true},
		{"titles", findings.AggregationQuery{Type: findings.AggregateTitle, Criteria: crit(nil)}, true},
		{"finding types", findings.AggregationQuery{Type: findings.AggregateFindingType, Criteria: crit(nil)}, true},
		{"titles of a vulnerability", findings.AggregationQuery{Type: findings.AggregateTitle, Criteria: crit(vuln)}, true},
		{"finding types of a vulnerability", findings.AggregationQuery{Type: findings.AggregateFindingType, Criteria: crit(vuln)}, false},
		{"repositories of a vulnerability", findings.AggregationQuery{Type: findings.AggregateRepository, Criteria: crit(vuln)}, false},
		{"titles of a vulnerability prefix", findings.AggregationQuery{Type: findings.AggregateTitle,
			Criteria: crit(map[findings.Field][]findings.StringFilter{findings.VulnerabilityID: {sf(findings.Prefix, "CVE-")}})}, false},
		{"titles, severity filter", findings.AggregationQuery{Type: findings.AggregateTitle,
			Criteria: crit(map[findings.Field][]findings.StringFilter{findings.Severity: {sf(findings.Equals, "HIGH")}})}, false},
		{"packages", findings.AggregationQuery{Type: findings.AggregatePackage, Criteria: crit(nil)}, false},
		{"suppressed", findings.AggregationQuery{Type: findings.AggregateTitle,
			Criteria: findings.Criteria{Strings: map[findings.Field][]findings.StringFilter{findings.FindingStatus: {sf(findings.Equals, "SUPPRESSED")}}}}, false},
	}
	for _, tc := range tests {
		if got := countsAnswer(tc.q); got != tc.want {
			t.Errorf("%s: countsAnswer %v, want %v", tc.name, got, tc.want)
		}
	}
}
