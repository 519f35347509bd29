package inspector

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

// newCoverageHandler is the test store with coverage and the scanning operations wired, the
// registry ENHANCED with "prod" scanned continuously, and a second image in "test/app", which
// no rule scans. now moves the scanning service's clock.
func newCoverageHandler(t *testing.T) (*Handler, *sqlite.DB, *time.Time) {
	t.Helper()
	now := time.Now()
	h, db, _ := newTestStore(t, func(db *sqlite.DB, cfg *Config) {
		svc := scanning.New(db, nil, nil, scanning.Config{Origin: events.Origin{Account: "123456789012", Region: "us-east-1"},
			Now: func() time.Time { return now }})
		cfg.Scanning = svc
		cfg.Coverage = findings.NewCoverage(db, svc, "123456789012", "us-east-1")
	})
	ctx := context.Background()
	if err := db.PutScanningPolicy(ctx, policy.Policy{ScanType: policy.ScanTypeEnhanced, Rules: []policy.Rule{{Frequency: policy.FrequencyContinuous,
		Filters: []policy.Filter{{Value: "prod", Type: policy.FilterTypeWildcard}}}}}); err != nil {
		t.Fatal(err)
	}
	m := store.Manifest{Repository: "test/app", Digest: "sha256:0000000000000000000000000000000000000000000000000000000000000002",
		MediaType: "application/vnd.oci.image.manifest.v1+json", ConfigMediaType: "application/vnd.oci.image.config.v1+json", Size: 2, Content: []byte("{}")}
	if _, err := db.PutManifest(ctx, m, nil, []string{"1.0"}, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	return h, db, &now
}

type coverageOut struct {
	CoveredResources []struct {
		ResourceType string `json:"resourceType"`
		ResourceID   string `json:"resourceId"`
		ScanStatus   struct {
			StatusCode string `json:"statusCode"`
			Reason     string `json:"reason"`
		} `json:"scanStatus"`
		ResourceMetadata struct {
			ECRRepository struct {
				Name          string `json:"name"`
				ScanFrequency string `json:"scanFrequency"`
			} `json:"ecrRepository"`
			ECRImage *struct {
				Tags []string `json:"tags"`
			} `json:"ecrImage"`
		} `json:"resourceMetadata"`
	} `json:"coveredResources"`
	NextToken string `json:"nextToken"`
}

func listCoverage(t *testing.T, h *Handler, body string) coverageOut {
	t.Helper()
	rec := signed(t, h, "POST", "/coverage/list", "inspector2", []byte(body))
	var out coverageOut
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
		t.Fatalf("ListCoverage %s: %d %s", body, rec.Code, rec.Body)
	}
	return out
}

func TestListCoverage(t *testing.T) {
	h, _, _ := newCoverageHandler(t)
	out := listCoverage(t, h, `{}`)
	var got []string
	for _, r := range out.CoveredResources {
		got = append(got, r.ResourceType+" "+r.ResourceMetadata.ECRRepository.Name+" "+r.ScanStatus.StatusCode+" "+r.ScanStatus.Reason+" "+
			r.ResourceMetadata.ECRRepository.ScanFrequency)
	}
	want := []string{
		"AWS_ECR_REPOSITORY prod/neo4j ACTIVE SUCCESSFUL CONTINUOUS_SCAN",
		"AWS_ECR_CONTAINER_IMAGE prod/neo4j ACTIVE SUCCESSFUL CONTINUOUS_SCAN",
		"AWS_ECR_REPOSITORY test/app INACTIVE SCAN_FREQUENCY_MANUAL MANUAL",
		"AWS_ECR_CONTAINER_IMAGE test/app INACTIVE SCAN_FREQUENCY_MANUAL MANUAL",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("coverage:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if img := out.CoveredResources[1]; img.ResourceID != "arn:aws:ecr:us-east-1:123456789012:repository/prod/neo4j/"+testDigest ||
		img.ResourceMetadata.ECRImage == nil || len(img.ResourceMetadata.ECRImage.Tags) != 1 {
		t.Errorf("image resource %+v", img)
	}
	// Filters, and pages of one that add up to the whole.
	for _, tc := range []struct {
		body string
		n    int
	}{
		{`{"filterCriteria":{"scanStatusReason":[{"comparison":"EQUALS","value":"SCAN_FREQUENCY_MANUAL"}],"resourceType":[{"comparison":"EQUALS","value":"AWS_ECR_CONTAINER_IMAGE"}]}}`, 1},
		{`{"filterCriteria":{"ecrRepositoryName":[{"comparison":"NOT_EQUALS","value":"test/app"}]}}`, 2},
		{`{"filterCriteria":{"ecrRepositoryName":[{"comparison":"EQUALS","value":"test/app"},{"comparison":"EQUALS","value":"none"}]}}`, 2},
		{`{"filterCriteria":{"ecrImageTags":[{"comparison":"EQUALS","value":"4.4.0"}]}}`, 1},
		{`{"filterCriteria":{"lambdaFunctionName":[{"comparison":"EQUALS","value":"f"}]}}`, 0},
	} {
		if n := len(listCoverage(t, h, tc.body).CoveredResources); n != tc.n {
			t.Errorf("%s: %d resources, want %d", tc.body, n, tc.n)
		}
	}
	var paged []string
	body := `{"maxResults":1}`
	for range 10 {
		page := listCoverage(t, h, body)
		for _, r := range page.CoveredResources {
			paged = append(paged, r.ResourceID)
		}
		if page.NextToken == "" {
			break
		}
		body = `{"maxResults":1,"nextToken":"` + page.NextToken + `"}`
	}
	if len(paged) != 4 {
		t.Errorf("paged %v", paged)
	}
	for _, tc := range []struct{ name, path, body, field string }{
		{"PREFIX", "/coverage/list", `{"filterCriteria":{"ecrRepositoryName":[{"comparison":"PREFIX","value":"p"}]}}`, "filterCriteria.ecrRepositoryName[0].comparison"},
		{"max results 0", "/coverage/list", `{"maxResults":0}`, "maxResults"},
		{"max results 201", "/coverage/list", `{"maxResults":201}`, "maxResults"},
		{"unknown member", "/coverage/list", `{"filterCriteria":{"colour":[]}}`, "filterCriteria.colour"},
		{"a token of another operation", "/coverage/list", `{"nextToken":"eyJvIjoiTGlzdEZpbmRpbmdzIiwicSI6IiIsInIiOiJ4In0"}`, "nextToken"},
		{"wrong groupBy", "/coverage/statistics/list", `{"groupBy":"COLOUR"}`, "groupBy"},
	} {
		rec := signed(t, h, "POST", tc.path, "inspector2", []byte(tc.body))
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), `"name":"`+tc.field+`"`) {
			t.Errorf("%s: %d %s", tc.name, rec.Code, rec.Body)
		}
	}
}

func TestListCoverageStatistics(t *testing.T) {
	h, _, _ := newCoverageHandler(t)
	rec := signed(t, h, "POST", "/coverage/statistics/list", "inspector2", []byte(`{"groupBy":"SCAN_STATUS_REASON"}`))
	var out struct {
		CountsByGroup []struct {
			Count    int64  `json:"count"`
			GroupKey string `json:"groupKey"`
		} `json:"countsByGroup"`
		TotalCounts int64 `json:"totalCounts"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if out.TotalCounts != 4 || len(out.CountsByGroup) != 2 || out.CountsByGroup[0].Count != 2 || out.CountsByGroup[0].GroupKey != "SCAN_FREQUENCY_MANUAL" {
		t.Errorf("%s", rec.Body)
	}
}

func TestConfigurationAndExpiry(t *testing.T) {
	h, db, now := newCoverageHandler(t)
	get := func() string {
		rec := signed(t, h, "POST", "/configuration/get", "inspector2", []byte(`{}`))
		var out struct {
			ECR struct {
				State struct {
					RescanDuration, PullDateRescanDuration, PullDateRescanMode, Status string
				} `json:"rescanDurationState"`
			} `json:"ecrConfiguration"`
		}
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		s := out.ECR.State
		return s.RescanDuration + " " + s.PullDateRescanDuration + " " + s.PullDateRescanMode + " " + s.Status
	}
	if got := get(); got != "DAYS_14 DAYS_14 LAST_IN_USE_AT SUCCESS" {
		t.Errorf("the --rescan-duration default: %s", got)
	}
	for _, tc := range []struct{ body, field string }{
		{`{"ecrConfiguration":{"rescanDuration":"DAYS_1000"}}`, "ecrConfiguration.rescanDuration"},
		{`{"ecrConfiguration":{"rescanDuration":"DAYS_30","pullDateRescanMode":"SOMETIMES"}}`, "ecrConfiguration.pullDateRescanMode"},
		{`{"ecrConfiguration":{}}`, "ecrConfiguration.rescanDuration"},
	} {
		rec := signed(t, h, "POST", "/configuration/update", "inspector2", []byte(tc.body))
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), `"name":"`+tc.field+`"`) {
			t.Errorf("%s: %d %s", tc.body, rec.Code, rec.Body)
		}
	}
	// Twenty days later, a 30-day window still covers the image pushed today.
	*now = now.Add(20 * 24 * time.Hour)
	if rec := signed(t, h, "POST", "/configuration/update", "inspector2", []byte(`{"ecrConfiguration":{"rescanDuration":"DAYS_30","pullDateRescanDuration":"DAYS_30"}}`)); rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if got := get(); got != "DAYS_30 DAYS_30 LAST_IN_USE_AT SUCCESS" {
		t.Errorf("after UpdateConfiguration: %s", got)
	}
	if reason := listCoverage(t, h, `{}`).CoveredResources[1].ScanStatus.Reason; reason != "SUCCESSFUL" {
		t.Errorf("inside the window: %s", reason)
	}
	// Back to 14 days: the image leaves the window, its finding is closed, with an event.
	if rec := signed(t, h, "POST", "/configuration/update", "inspector2", []byte(`{"ecrConfiguration":{"rescanDuration":"DAYS_14"}}`)); rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	img := listCoverage(t, h, `{}`).CoveredResources[1]
	if img.ScanStatus.StatusCode != "INACTIVE" || img.ScanStatus.Reason != "SCAN_ELIGIBILITY_EXPIRED" {
		t.Errorf("out of the window: %+v", img.ScanStatus)
	}
	rec := signed(t, h, "POST", "/findings/list", "inspector2", []byte(`{}`))
	if !strings.Contains(rec.Body.String(), `"status":"CLOSED"`) {
		t.Errorf("the finding of an expired image: %s", rec.Body)
	}
	evs, err := db.ReadOutbox(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	closed := 0
	for _, e := range evs {
		if e.DetailType == "Inspector2 Finding" && strings.Contains(string(e.Detail), `"CLOSED"`) {
			closed++
		}
	}
	if closed != 1 {
		t.Errorf("%d closing events", closed)
	}
}

func TestAccountStatus(t *testing.T) {
	h, db, _ := newCoverageHandler(t)
	status := func() string {
		rec := signed(t, h, "POST", "/status/batch/get", "inspector2", []byte(`{"accountIds":["123456789012","999999999999"]}`))
		var out struct {
			Accounts []struct {
				State struct {
					Status string `json:"status"`
				} `json:"state"`
				ResourceState struct {
					ECR, EC2 struct {
						Status string `json:"status"`
					}
				} `json:"resourceState"`
			} `json:"accounts"`
			FailedAccounts []struct {
				AccountID string `json:"accountId"`
			} `json:"failedAccounts"`
		}
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &out) != nil || len(out.Accounts) != 1 || len(out.FailedAccounts) != 1 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		return out.Accounts[0].ResourceState.ECR.Status + " " + out.Accounts[0].ResourceState.EC2.Status
	}
	if got := status(); got != "ENABLED DISABLED" {
		t.Errorf("ENHANCED: %s", got)
	}
	if rec := signed(t, h, "POST", "/enable", "inspector2", []byte(`{"resourceTypes":["EC2"]}`)); rec.Code != 400 {
		t.Errorf("enable EC2: %d %s", rec.Code, rec.Body)
	}
	if rec := signed(t, h, "POST", "/enable", "inspector2", []byte(`{"resourceTypes":["ECS"]}`)); rec.Code != 400 {
		t.Errorf("enable ECS: %d %s", rec.Code, rec.Body)
	}
	rec := signed(t, h, "POST", "/disable", "inspector2", []byte(`{"resourceTypes":["ECR"]}`))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"ecr":"DISABLED"`) {
		t.Fatalf("disable: %d %s", rec.Code, rec.Body)
	}
	if got := status(); got != "DISABLED DISABLED" {
		t.Errorf("after Disable: %s", got)
	}
	pol, err := db.ScanningPolicy(context.Background())
	if err != nil || pol.ScanType != policy.ScanTypeBasic || len(pol.Rules) != 1 || pol.Rules[0].Frequency != policy.FrequencyScanOnPush {
		t.Errorf("after Disable the registry scans BASIC, on push where it scanned continuously: %+v %v", pol, err)
	}
	if rec := signed(t, h, "POST", "/findings/list", "inspector2", []byte(`{}`)); !strings.Contains(rec.Body.String(), `"status":"CLOSED"`) {
		t.Errorf("Disable closes the findings: %s", rec.Body)
	}
	if out := listCoverage(t, h, `{}`); len(out.CoveredResources) != 0 {
		t.Errorf("nothing is covered while ECR scanning is disabled: %+v", out)
	}
	rec = signed(t, h, "POST", "/enable", "inspector2", []byte(`{"resourceTypes":["ECR"],"clientToken":"x"}`))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"ecr":"ENABLED"`) {
		t.Fatalf("enable: %d %s", rec.Code, rec.Body)
	}
	if pol, err := db.ScanningPolicy(context.Background()); err != nil || pol.ScanType != policy.ScanTypeEnhanced || len(pol.Rules) != 1 {
		t.Errorf("Enable keeps the rules: %+v %v", pol, err)
	}
}

// FuzzDecodeCoverageCriteria: whatever the criteria, the decoder returns criteria that
// validate or not, or a validation error, and never panics.
func FuzzDecodeCoverageCriteria(f *testing.F) {
	for _, s := range []string{`{}`, `null`, `{"ecrRepositoryName":[{"comparison":"EQUALS","value":"prod"}]}`,
		`{"lastScannedAt":[{"startInclusive":1700000000,"endInclusive":1.8e9}],"ecrImageInUseCount":[{"lowerInclusive":1}]}`,
		`{"ec2InstanceTags":[{"comparison":"EQUALS","key":"k"}]}`, `{"scanStatusCode":"ACTIVE"}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := decodeCoverageCriteria(raw, "filterCriteria")
		if err != nil {
			if !errors.Is(err, findings.ErrInvalid) {
				t.Fatalf("%q: %v is not a validation error", raw, err)
			}
			return
		}
		if err := findings.ValidateCoverage("filterCriteria", c); err != nil && !errors.Is(err, findings.ErrInvalid) {
			t.Fatalf("%q: %v", raw, err)
		}
	})
}
