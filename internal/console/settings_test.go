package console

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/sbom"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/suppression"
)

// realRules returns the suppression rules of a real SQLite store, with their real validation.
func realRules(t *testing.T) *suppression.Service {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return suppression.NewService(db, "000000000000", "us-east-1", scanning.AnnounceListed(events.Origin{Account: "000000000000", Region: "us-east-1"}), nil)
}

// fakeRescan keeps a rescan configuration as scanning.Service does (members not set keep
// their value).
type fakeRescan struct{ r policy.Rescan }

func (f *fakeRescan) Rescan(context.Context) (policy.Rescan, policy.Window, error) {
	return f.r, f.r.Window(), nil
}
func (f *fakeRescan) SetRescan(_ context.Context, r policy.Rescan) error {
	f.r = r
	return nil
}

func TestSuppressionRuleForms(t *testing.T) {
	fx := newFixture(t)
	rules := realRules(t)
	fx.h.cfg.Rules = rules
	c := fx.client()
	_, csrf := fx.signIn(c, testSecret)
	form := func(kv ...string) url.Values {
		v := url.Values{"csrf": {csrf}}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	// Refusals come from suppression.Service's validation, shown with the form as typed.
	refusals := []struct {
		name   string
		form   url.Values
		status int
		want   string
	}{
		{"short name", form("name", "x", "action", "SUPPRESS", "vulnerability_ids", "CVE-1"), 400, "name: must be 3 to 64 characters"},
		{"bad action", form("name", "rule-a", "action", "HIDE", "vulnerability_ids", "CVE-1"), 400, "is not one of [NONE SUPPRESS]"},
		{"too many ids", form("name", "rule-a", "action", "SUPPRESS", "vulnerability_ids", strings.Repeat("CVE-1,", 11)), 400, "between 1 and 10 filters"},
		{"unknown severity", form("name", "rule-a", "action", "SUPPRESS", "severity", "SEVERE"), 400, "unknown severity"},
	}
	for _, tt := range refusals {
		status, _, body := fx.post(c, Prefix+"settings/rules", tt.form)
		if status != tt.status || !strings.Contains(html.UnescapeString(body), tt.want) {
			t.Errorf("%s: HTTP %d, want %d with %q", tt.name, status, tt.status, tt.want)
		}
		if !strings.Contains(body, `id="rule-error"`) || !strings.Contains(body, `value="`+html.EscapeString(tt.form.Get("name"))+`"`) {
			t.Errorf("%s: the form is not shown again with its error", tt.name)
		}
	}
	status, loc, _ := fx.post(c, Prefix+"settings/rules", form("name", "log4j-accepted", "action", "SUPPRESS", "reason", "mitigated "+evilText,
		"vulnerability_ids", "CVE-2021-44228", "repositories", "team/*, other", "severity", "CRITICAL", "severity", "HIGH", "packages", "log4j-core",
		"file_path", "/opt/app/"))
	if status != http.StatusSeeOther || !strings.Contains(loc, "notice=rule-created") {
		t.Fatalf("create: HTTP %d to %q", status, loc)
	}
	listed, err := rules.List(context.Background(), suppression.ListInput{})
	if err != nil || len(listed.Rules) != 1 {
		t.Fatalf("rules after create: %+v %v", listed, err)
	}
	r := listed.Rules[0]
	want := "ecrImageRepositoryName starts with team/ or ecrImageRepositoryName = other"
	if got := describeCriteria(r.Criteria); !strings.Contains(got, want) || !strings.Contains(got, "vulnerabilityId = CVE-2021-44228") ||
		!strings.Contains(got, "package name = log4j-core and package filePath starts with /opt/app/") || r.Reason != "mitigated "+evilText {
		t.Errorf("stored rule %+v: %s", r, got)
	}
	if status, _, _ := fx.post(c, Prefix+"settings/rules", form("name", "log4j-accepted", "action", "NONE", "vulnerability_ids", "CVE-1")); status != http.StatusConflict {
		t.Errorf("a second rule of the same name: HTTP %d", status)
	}
	// The list escapes the reason; the edit form shows the rule's fields back.
	_, _, page := fx.get(c, Prefix+"settings?rule="+url.QueryEscape(r.ARN))
	for _, w := range []string{"mitigated &lt;script&gt;", `value="team/*, other"`, `value="log4j-core"`, `value="/opt/app/"`, `value="CRITICAL" checked`,
		`action="/console/settings/rules/update"`, "Edit suppression rule log4j-accepted"} {
		if !strings.Contains(page, w) {
			t.Errorf("edit form: no %q", w)
		}
	}
	if strings.Contains(page, evilText) {
		t.Error("the rule's reason is not escaped")
	}
	status, _, _ = fx.post(c, Prefix+"settings/rules/update", form("arn", r.ARN, "name", "log4j-accepted", "action", "NONE", "vulnerability_ids", "CVE-2021-45046"))
	if status != http.StatusSeeOther {
		t.Fatalf("update: HTTP %d", status)
	}
	listed, _ = rules.List(context.Background(), suppression.ListInput{})
	if r := listed.Rules[0]; r.Action != suppression.None || describeCriteria(r.Criteria) != "vulnerabilityId = CVE-2021-45046" {
		t.Errorf("after update: %s %s", r.Action, describeCriteria(r.Criteria))
	}
	if status, _, _ := fx.post(c, Prefix+"settings/rules/update", form("arn", "arn:nope", "name", "abc", "action", "NONE", "vulnerability_ids", "x")); status != http.StatusNotFound {
		t.Errorf("update of an unknown rule: HTTP %d", status)
	}
	// A key without the permission is refused each form.
	fx.authz.deny["inspector2:DeleteFilter"] = true
	if status, _, _ := fx.post(c, Prefix+"settings/rules/delete", form("arn", r.ARN)); status != http.StatusForbidden {
		t.Errorf("delete without inspector2:DeleteFilter: HTTP %d", status)
	}
	delete(fx.authz.deny, "inspector2:DeleteFilter")
	if status, _, _ := fx.post(c, Prefix+"settings/rules/delete", form("arn", r.ARN)); status != http.StatusSeeOther {
		t.Errorf("delete: HTTP %d", status)
	}
	if listed, _ := rules.List(context.Background(), suppression.ListInput{}); len(listed.Rules) != 0 {
		t.Errorf("rules after delete: %d", len(listed.Rules))
	}
	if status, _, _ := fx.post(c, Prefix+"settings/rules/delete", form("arn", r.ARN)); status != http.StatusNotFound {
		t.Errorf("delete again: HTTP %d", status)
	}
	fx.authz.deny["inspector2:ListFilters"] = true
	if _, _, page := fx.get(c, Prefix+"settings"); strings.Contains(page, `id="supp-h"`) {
		t.Error("the rules are shown to a key not allowed inspector2:ListFilters")
	}
}

// A rule whose criteria the form has no field for keeps them when the form saves it.
func TestSuppressionRuleFixedCriteria(t *testing.T) {
	fx := newFixture(t)
	rules := realRules(t)
	fx.h.cfg.Rules = rules
	score := 9.0
	name, action := "high-score", suppression.Suppress
	r, err := rules.Create(context.Background(), suppression.Input{Name: &name, Action: &action,
		Criteria: &findings.Criteria{Numbers: map[findings.Field][]findings.NumberFilter{findings.InspectorScore: {{Lower: &score}}}}})
	if err != nil {
		t.Fatal(err)
	}
	c := fx.client()
	_, csrf := fx.signIn(c, testSecret)
	_, _, page := fx.get(c, Prefix+"settings?rule="+url.QueryEscape(r.ARN))
	if !strings.Contains(page, `id="rule-fixed"`) || !strings.Contains(page, "inspectorScore in [9, …]") || strings.Contains(page, `name="vulnerability_ids"`) {
		t.Errorf("the edit form of a rule with API-only criteria:\n%s", page)
	}
	status, _, _ := fx.post(c, Prefix+"settings/rules/update", url.Values{"csrf": {csrf}, "arn": {r.ARN}, "name": {"high-score"}, "action": {"NONE"},
		"reason": {"reviewed"}, "keep_criteria": {"1"}})
	if status != http.StatusSeeOther {
		t.Fatalf("update: HTTP %d", status)
	}
	listed, _ := rules.List(context.Background(), suppression.ListInput{})
	if got := listed.Rules[0]; got.Action != suppression.None || got.Reason != "reviewed" || describeCriteria(got.Criteria) != "inspectorScore in [9, …]" {
		t.Errorf("after update: %+v", got)
	}
	if status, _, _ := fx.get(c, Prefix+"settings?rule=arn:nope"); status != http.StatusNotFound {
		t.Errorf("editing an unknown rule: HTTP %d", status)
	}
}

func TestRescanSettings(t *testing.T) {
	fx := newFixture(t)
	rs := &fakeRescan{r: policy.Rescan{Duration: "DAYS_14", PullDateDuration: "DAYS_14", PullDateMode: policy.PullModeLastPull}}
	fx.h.cfg.Rescan = rs
	c := fx.client()
	_, csrf := fx.signIn(c, testSecret)
	_, _, page := fx.get(c, Prefix+"settings")
	if !strings.Contains(page, `id="rescan-current">DAYS_14<`) || !strings.Contains(page, "(14 days)") {
		t.Errorf("rescan section:\n%s", page)
	}
	tests := []struct {
		duration, pull, mode string
		status               int
		want                 policy.Rescan
	}{
		{"LIFETIME", "DAYS_90", policy.PullModeLastInUse, http.StatusSeeOther, policy.Rescan{Duration: "LIFETIME", PullDateDuration: "DAYS_90", PullDateMode: policy.PullModeLastInUse}},
		{"DAYS_7", "DAYS_90", policy.PullModeLastInUse, http.StatusBadRequest, policy.Rescan{Duration: "LIFETIME", PullDateDuration: "DAYS_90", PullDateMode: policy.PullModeLastInUse}},
		{"DAYS_30", "DAYS_1", policy.PullModeLastPull, http.StatusBadRequest, policy.Rescan{Duration: "LIFETIME", PullDateDuration: "DAYS_90", PullDateMode: policy.PullModeLastInUse}},
	}
	for _, tt := range tests {
		status, _, body := fx.post(c, Prefix+"settings/rescan", url.Values{"csrf": {csrf}, "rescan_duration": {tt.duration},
			"pull_date_rescan_duration": {tt.pull}, "pull_date_rescan_mode": {tt.mode}})
		if status != tt.status {
			t.Errorf("%s/%s: HTTP %d, want %d", tt.duration, tt.pull, status, tt.status)
		}
		if tt.status == http.StatusBadRequest && !strings.Contains(body, `id="rescan-error"`) {
			t.Errorf("%s/%s: no error shown", tt.duration, tt.pull)
		}
		if rs.r.Duration != tt.want.Duration || rs.r.PullDateDuration != tt.want.PullDateDuration || rs.r.PullDateMode != tt.want.PullDateMode {
			t.Errorf("%s/%s: stored %+v", tt.duration, tt.pull, rs.r)
		}
	}
	_, _, page = fx.get(c, Prefix+"settings")
	if !strings.Contains(page, "(the image&#39;s lifetime)") {
		t.Errorf("after saving LIFETIME the page says:\n%s", page)
	}
	fx.authz.deny["inspector2:UpdateConfiguration"] = true
	if status, _, _ := fx.post(c, Prefix+"settings/rescan", url.Values{"csrf": {csrf}, "rescan_duration": {"DAYS_30"}}); status != http.StatusForbidden {
		t.Errorf("without inspector2:UpdateConfiguration: HTTP %d", status)
	}
	if _, _, page := fx.get(c, Prefix+"settings"); !strings.Contains(page, "may not change it (inspector2:UpdateConfiguration)") {
		t.Error("the rescan form is editable without inspector2:UpdateConfiguration")
	}
}

// fakeCoverage answers ListCoverage from a list, applying the criteria the page sets.
type fakeCoverage struct {
	resources []findings.CoveredResource
	lastIn    findings.CoverageInput
}

func (f *fakeCoverage) List(_ context.Context, in findings.CoverageInput) (findings.CoverageOutput, error) {
	f.lastIn = in
	if in.NextToken != nil && *in.NextToken != "page2" {
		return findings.CoverageOutput{}, findings.Invalid(findings.ReasonFieldValidationFailed, "nextToken", "not issued")
	}
	var out findings.CoverageOutput
	for _, r := range f.resources {
		if st := in.Criteria.Strings[findings.CovScanStatusCode]; len(st) > 0 && st[0].Value != r.StatusCode {
			continue
		}
		out.Resources = append(out.Resources, r)
	}
	if in.NextToken == nil {
		out.NextToken = "page2"
	}
	return out, nil
}

func (f *fakeCoverage) Statistics(_ context.Context, in findings.StatisticsInput) (findings.StatisticsOutput, error) {
	counts := map[string]int64{}
	for _, r := range f.resources {
		counts[r.StatusCode]++
	}
	var out findings.StatisticsOutput
	for k, n := range counts {
		out.Groups = append(out.Groups, findings.CoverageCount{Key: k, Count: n})
		out.Total += n
	}
	return out, nil
}

func TestCoveragePage(t *testing.T) {
	fx := newFixture(t)
	now := fx.now
	cov := &fakeCoverage{resources: []findings.CoveredResource{
		{Row: findings.CoverageRow{Repository: "team/app", Digest: imageDgst, Tags: []string{evilText}, PushedAt: now, LastScannedAt: now},
			ResourceType: findings.ResourceImage, StatusCode: "ACTIVE", Reason: "SUCCESSFUL", RepositoryScanFrequency: policy.FrequencyContinuous},
		{Row: findings.CoverageRow{Repository: "other", Digest: "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd", PushedAt: now},
			ResourceType: findings.ResourceImage, StatusCode: "INACTIVE", Reason: "SCAN_FREQUENCY_MANUAL", RepositoryScanFrequency: policy.FrequencyManual},
	}}
	fx.h.cfg.Coverage = cov
	fx.store.pol = policy.Policy{ScanType: policy.ScanTypeEnhanced, Rules: []policy.Rule{}}
	c := fx.client()
	fx.signIn(c, testSecret)
	tests := []struct {
		path      string
		want, not []string
	}{
		{Prefix + "coverage", []string{"team/app", "SUCCESSFUL", "SCAN_FREQUENCY_MANUAL", "&lt;script&gt;", `id="next-page"`, "CONTINUOUS"}, []string{evilText, "coverage-basic"}},
		{Prefix + "coverage?status=INACTIVE", []string{"SCAN_FREQUENCY_MANUAL"}, []string{"SUCCESSFUL</td>"}},
		{Prefix + "coverage?status=BOGUS&reason=NOPE&token=forged", []string{"SUCCESSFUL", "SCAN_FREQUENCY_MANUAL"}, []string{"First page"}},
		{Prefix + "coverage?token=page2", []string{"First page"}, []string{`id="next-page"`}},
		{Prefix, []string{`id="images-scanned">1<`, `id="images-not-scanned">1<`}, nil},
	}
	for _, tt := range tests {
		status, _, body := fx.get(c, tt.path)
		if status != http.StatusOK {
			t.Errorf("GET %s: HTTP %d", tt.path, status)
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: no %q", tt.path, w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(body, n) {
				t.Errorf("GET %s: holds %q", tt.path, n)
			}
		}
	}
	// The page asks for images only, with its filters.
	fx.get(c, Prefix+"coverage?status=ACTIVE&reason=SUCCESSFUL&repository=team/app")
	s := cov.lastIn.Criteria.Strings
	if s[findings.CovResourceType][0].Value != findings.ResourceImage || s[findings.CovScanStatusCode][0].Value != "ACTIVE" ||
		s[findings.CovScanStatusReason][0].Value != "SUCCESSFUL" || s[findings.CovRepositoryName][0].Value != "team/app" {
		t.Errorf("criteria %+v", s)
	}
	// Under basic scanning Inspector covers nothing, and the pages say so.
	fx.store.pol = policy.DefaultPolicy()
	for _, p := range []string{Prefix, Prefix + "coverage"} {
		if _, _, body := fx.get(c, p); !strings.Contains(body, `id="coverage-basic"`) {
			t.Errorf("GET %s under basic scanning does not say so", p)
		}
	}
	fx.authz.deny["inspector2:ListCoverage"] = true
	if status, _, _ := fx.get(c, Prefix+"coverage"); status != http.StatusForbidden {
		t.Errorf("coverage without inspector2:ListCoverage: HTTP %d", status)
	}
}

// fakeSBOMs writes a document naming the image, or sbom.ErrNoInventory for one not scanned.
type fakeSBOMs struct{ scanned string }

func (f fakeSBOMs) ImageSBOM(_ context.Context, repo, dgst, format string, w io.Writer) error {
	if dgst != f.scanned {
		return sbom.ErrNoInventory
	}
	_, err := io.WriteString(w, `{"format":"`+format+`","image":"`+repo+"@"+dgst+`"}`)
	return err
}

func TestImageSBOMDownloads(t *testing.T) {
	fx := newFixture(t)
	fx.h.cfg.SBOMs = fakeSBOMs{scanned: imageDgst}
	c := fx.client()
	fx.signIn(c, testSecret)
	img := Prefix + "image?" + url.Values{"repository": {"team/app"}, "digest": {imageDgst}}.Encode()
	// The fake scan has no inventory: no links.
	if _, _, page := fx.get(c, img); strings.Contains(page, "image/sbom") {
		t.Error("SBOM links for an image without an inventory")
	}
	fx.scans.inventory = 1
	_, _, page := fx.get(c, img)
	for _, f := range []string{"CYCLONEDX_1_4", "SPDX_2_3"} {
		if !strings.Contains(page, "format="+f) {
			t.Errorf("no %s link", f)
		}
	}
	sbomURL := func(repo, dgst, format string) string {
		return Prefix + "image/sbom?" + url.Values{"repository": {repo}, "digest": {dgst}, "format": {format}}.Encode()
	}
	tests := []struct {
		path   string
		status int
		want   string
	}{
		{sbomURL("team/app", imageDgst, "SPDX_2_3"), 200, `"format":"SPDX_2_3"`},
		{sbomURL("team/app", imageDgst, "CYCLONEDX_1_4"), 200, `"format":"CYCLONEDX_1_4"`},
		{sbomURL("team/app", imageDgst, "CSV"), 404, ""},
		{sbomURL("team/app", "sha256:0000", "SPDX_2_3"), 404, ""},
		{sbomURL("nope", imageDgst, "SPDX_2_3"), 404, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodGet, fx.srv.URL+tt.path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.want) {
			t.Errorf("GET %s: HTTP %d %.80s", tt.path, resp.StatusCode, b)
		}
		if tt.status == 200 && !strings.HasPrefix(resp.Header.Get("Content-Disposition"), `attachment; filename="team_app@sha256_`) {
			t.Errorf("GET %s: Content-Disposition %q", tt.path, resp.Header.Get("Content-Disposition"))
		}
	}
	fx.authz.deny["ecr:DescribeImageScanFindings"] = true
	if status, _, _ := fx.get(c, sbomURL("team/app", imageDgst, "SPDX_2_3")); status != http.StatusForbidden {
		t.Errorf("SBOM without ecr:DescribeImageScanFindings: HTTP %d", status)
	}
	// Signed out, nothing.
	if status, _, _ := fx.get(fx.client(), sbomURL("team/app", imageDgst, "SPDX_2_3")); status != http.StatusSeeOther {
		t.Errorf("SBOM signed out: HTTP %d", status)
	}
}

func TestParseSuppressionForm(t *testing.T) {
	tests := []struct {
		name    string
		form    url.Values
		want    string // describeCriteria of the input's criteria
		wantErr bool
	}{
		{"ids and prefix", url.Values{"name": {"a-b"}, "action": {"SUPPRESS"}, "vulnerability_ids": {"CVE-1, CVE-2"}, "repositories": {"team/*"}},
			"ecrImageRepositoryName starts with team/ and (vulnerabilityId = CVE-1 or vulnerabilityId = CVE-2)", false},
		{"path alone", url.Values{"name": {"abc"}, "action": {"NONE"}, "file_path": {"/usr/lib/"}}, "package filePath starts with /usr/lib/", false},
		{"nothing", url.Values{"name": {"abc"}, "action": {"NONE"}}, "every finding", false},
		{"severity twice", url.Values{"severity": {"LOW", "LOW"}}, "severity = LOW", false},
		{"bad severity", url.Values{"severity": {"low"}}, "", true},
	}
	for _, tt := range tests {
		_, in, err := parseSuppressionForm(tt.form)
		if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, errBadRequest)) {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if err == nil {
			if got := describeCriteria(*in.Criteria); got != tt.want {
				t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
			}
		}
	}
	// A form's criteria read back from the rule they make give the same criteria.
	_, in, err := parseSuppressionForm(url.Values{"vulnerability_ids": {"CVE-1"}, "repositories": {"a, b*"}, "tags": {"v1"}, "digests": {"sha256:ab"},
		"packages": {"p1 p2"}, "file_path": {"/x"}, "severity": {"HIGH"}})
	if err != nil {
		t.Fatal(err)
	}
	back := formOfRule(suppression.Rule{Criteria: *in.Criteria})
	if back.Fixed {
		t.Fatalf("the form's own criteria are not editable: %+v", back)
	}
	_, again, err := parseSuppressionForm(url.Values{"vulnerability_ids": {back.VulnerabilityIDs}, "repositories": {back.Repositories}, "tags": {back.Tags},
		"digests": {back.Digests}, "packages": {back.Packages}, "file_path": {back.FilePath}, "severity": back.Severities})
	if err != nil || describeCriteria(*again.Criteria) != describeCriteria(*in.Criteria) {
		t.Errorf("round trip: %q, want %q (%v)", describeCriteria(*again.Criteria), describeCriteria(*in.Criteria), err)
	}
}
