package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/suppression"
)

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

func outboxCount(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	if err := db.read.QueryRow("SELECT count(*) FROM outbox").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSuppressionRules(t *testing.T) {
	ctx := context.Background()
	fx := newQueryFixture(t)
	db := fx.db
	db.SetFindingContext(FindingContext{Account: testOrigin.Account, Region: testOrigin.Region})
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

func TestListFiltersPages(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
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
