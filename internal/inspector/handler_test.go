package inspector

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/kev"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/suppression"
)

const (
	testKey    = "LAKINSPECTORTEST0001"
	testSecret = "inspectortestsecretinspectortestsecret00"
	testDigest = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
)

// newTestHandler builds the face over a real store holding one image, "prod/neo4j", with an
// ENHANCED Log4Shell finding.
func newTestHandler(tb testing.TB) (*Handler, string) {
	tb.Helper()
	h, _, arn := newTestStore(tb, func(db *sqlite.DB, cfg *Config) {
		svc := scanning.New(db, nil, nil, scanning.Config{})
		cfg.Scanning, cfg.Coverage = svc, findings.NewCoverage(db, svc, cfg.RegistryID, cfg.Region)
	})
	return h, arn
}

// newTestStore is newTestHandler's store and handler; wire completes the handler's Config.
func newTestStore(tb testing.TB, wire func(*sqlite.DB, *Config)) (*Handler, *sqlite.DB, string) {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	log := slog.New(slog.DiscardHandler)
	if err := auth.Bootstrap(ctx, db, dir, testKey, testSecret, log); err != nil {
		tb.Fatal(err)
	}
	m := store.Manifest{Repository: "prod/neo4j", Digest: testDigest, MediaType: "application/vnd.oci.image.manifest.v1+json",
		ConfigMediaType: "application/vnd.oci.image.config.v1+json", Size: 2, Content: []byte("{}")}
	if _, err := db.PutManifest(ctx, m, nil, []string{"4.4.0"}, store.PutOptions{CreateRepository: true}); err != nil {
		tb.Fatal(err)
	}
	score := 10.0
	mf := match.Finding{VulnerabilityID: "CVE-2021-44228", Aliases: []string{"GHSA-jfh8-c2jp-5v3q"}, Title: "CVE-2021-44228 - log4j-core",
		Severity: "CRITICAL", Score: &score, CVSSVector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", CVSSVersion: "3.1", Source: "GITHUB",
		ReferenceURLs: []string{"https://logging.apache.org/log4j/2.x/security.html"},
		Packages: []match.VulnerablePackage{{Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1", Ecosystem: "Maven", PackageManager: "JAR",
			FilePath: "/var/lib/neo4j/lib/log4j-core-2.14.1.jar", Layer: "sha256:aaaa", FixedInVersion: "2.15.0", Remediation: "Upgrade to 2.15.0"}}}
	detail, _ := json.Marshal(scanning.Detail{Finding: mf, Image: scanning.ImageInfo{Architecture: "amd64"}})
	origin := events.Origin{Account: "123456789012", Region: "us-east-1"}
	arn := scanning.FindingARN(origin, m.Repository, m.Digest, policy.ScanTypeEnhanced, mf.VulnerabilityID)
	now := time.Now()
	err = db.ApplyScans(ctx, []store.ScanTarget{{Repository: m.Repository, Digest: m.Digest, ScanType: policy.ScanTypeEnhanced}},
		func(store.ScanState) (store.ScanUpdate, error) {
			return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: now}, Findings: []store.Finding{{VulnerabilityID: mf.VulnerabilityID,
				ARN: arn, Status: "ACTIVE", Severity: "CRITICAL", Score: score, Fingerprint: "fp", Detail: detail, FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now}}}, nil
		})
	if err != nil {
		tb.Fatal(err)
	}
	cat, err := kev.Embedded()
	if err != nil {
		tb.Fatal(err)
	}
	svc := findings.NewService(db, nil, cat, origin.Account, origin.Region)
	db.SetFindingContext(sqlite.FindingContext{Account: origin.Account, Region: origin.Region, Exploited: cat.IDs()})
	rules := suppression.NewService(db, origin.Account, origin.Region, scanning.AnnounceListed(origin), nil)
	cfg := Config{RegistryID: origin.Account, Region: origin.Region, Logger: log, Rules: rules}
	cfg.Reports = newTestReports(tb, db, svc, cfg, filepath.Join(dir, "reports"))
	wire(db, &cfg)
	return NewHandler(auth.NewAuthenticator(db, auth.Options{}), svc, cfg), db, arn
}

// signed sends a request through ServeHTTP, signed with the test key for service inspector2
// (unsigned when service is "").
func signed(tb testing.TB, h http.Handler, method, path, service string, body []byte) *httptest.ResponseRecorder {
	tb.Helper()
	req := httptest.NewRequest(method, "http://lading.test"+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if service != "" {
		sum := sha256.Sum256(body)
		creds := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, "eu-west-1", time.Now()); err != nil {
			tb.Fatal(err)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestListFindings(t *testing.T) {
	h, arn := newTestHandler(t)
	rec := signed(t, h, "POST", "/findings/list", "inspector2", []byte(`{"filterCriteria":{"vulnerablePackages":[{"filePath":{"comparison":"PREFIX","value":"/var/lib/neo4j/"}}]}}`))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	var out struct {
		Findings []map[string]any `json:"findings"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || len(out.Findings) != 1 {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	f := out.Findings[0]
	rem, _ := f["remediation"].(map[string]any)["recommendation"].(map[string]any)
	res, _ := f["resources"].([]any)[0].(map[string]any)
	if f["findingArn"] != arn || f["exploitAvailable"] != "YES" || f["inspectorScore"] != 10.0 || f["inspectorScoreDetails"] == nil ||
		rem["text"] == nil || res["partition"] != "aws" || res["region"] != "us-east-1" || f["severity"] != "CRITICAL" {
		t.Errorf("finding %s", rec.Body)
	}
	if _, lower := rem["url"]; lower {
		t.Error("Inspector's recommendation URL is Url")
	}
}

func TestErrors(t *testing.T) {
	h, _ := newTestHandler(t)
	for _, tc := range []struct {
		name, method, path, service, body string
		status                            int
		typ, field, reason                string
	}{
		{"unsigned", "POST", "/findings/list", "", `{}`, 403, "MissingAuthenticationTokenException", "", ""},
		{"signed for ecr", "POST", "/findings/list", "ecr", `{}`, 403, "InvalidSignatureException", "", ""},
		{"not implemented", "POST", "/cis/scan/list", "inspector2", `{}`, 501, errNotImplemented, "", ""},
		{"no such path", "POST", "/findings/nothing", "inspector2", `{}`, 404, errUnknownOperation, "", ""},
		{"not JSON", "POST", "/findings/list", "inspector2", `{`, 400, errValidation, "body", "CANNOT_PARSE"},
		{"wrong type", "POST", "/findings/list", "inspector2", `{"maxResults":"ten"}`, 400, errValidation, "maxResults", "CANNOT_PARSE"},
		{"max results 0", "POST", "/findings/list", "inspector2", `{"maxResults":0}`, 400, errValidation, "maxResults", "FIELD_VALIDATION_FAILED"},
		{"max results 101", "POST", "/findings/list", "inspector2", `{"maxResults":101}`, 400, errValidation, "maxResults", "FIELD_VALIDATION_FAILED"},
		{"unknown criterion", "POST", "/findings/list", "inspector2", `{"filterCriteria":{"colour":[{"comparison":"EQUALS","value":"red"}]}}`, 400, errValidation,
			"filterCriteria.colour", "FIELD_VALIDATION_FAILED"},
		{"unknown filter member", "POST", "/findings/list", "inspector2", `{"filterCriteria":{"severity":[{"comparison":"EQUALS","value":"HIGH","x":1}]}}`, 400,
			errValidation, "filterCriteria.severity", "FIELD_VALIDATION_FAILED"},
		{"wrong comparison", "POST", "/findings/list", "inspector2", `{"filterCriteria":{"severity":[{"comparison":"LIKE","value":"HIGH"}]}}`, 400, errValidation,
			"filterCriteria.severity[0].comparison", "FIELD_VALIDATION_FAILED"},
		{"missing value", "POST", "/findings/list", "inspector2", `{"filterCriteria":{"severity":[{"comparison":"EQUALS"}]}}`, 400, errValidation,
			"filterCriteria.severity[0].value", "FIELD_VALIDATION_FAILED"},
		{"wrong sort field", "POST", "/findings/list", "inspector2", `{"sortCriteria":{"field":"COLOUR","sortOrder":"ASC"}}`, 400, errValidation,
			"sortCriteria.field", "FIELD_VALIDATION_FAILED"},
		{"bad token", "POST", "/findings/list", "inspector2", `{"nextToken":"abc"}`, 400, errValidation, "nextToken", "FIELD_VALIDATION_FAILED"},
		{"eleven ARNs", "POST", "/findings/details/batch/get", "inspector2", `{"findingArns":["1","2","3","4","5","6","7","8","9","10","11"]}`, 400,
			errValidation, "findingArns", "FIELD_VALIDATION_FAILED"},
		{"no vulnerability ids", "POST", "/vulnerabilities/search", "inspector2", `{"filterCriteria":{"vulnerabilityIds":[]}}`, 400, errValidation,
			"filterCriteria.vulnerabilityIds", "FIELD_VALIDATION_FAILED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := signed(t, h, tc.method, tc.path, tc.service, []byte(tc.body))
			if rec.Code != tc.status || rec.Header().Get("X-Amzn-ErrorType") != tc.typ {
				t.Fatalf("%d %s %s, want %d %s", rec.Code, rec.Header().Get("X-Amzn-ErrorType"), rec.Body, tc.status, tc.typ)
			}
			var body struct {
				Message string `json:"message"`
				Reason  string `json:"reason"`
				Fields  []struct {
					Name, Message string
				} `json:"fields"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Message == "" {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if tc.field != "" && (body.Reason != tc.reason || len(body.Fields) == 0 || body.Fields[0].Name != tc.field) {
				t.Fatalf("reason %s fields %+v, want %s %s", body.Reason, body.Fields, tc.reason, tc.field)
			}
			if tc.typ == errNotImplemented && !strings.Contains(body.Message, "ListCisScans") {
				t.Errorf("message %q does not name the operation", body.Message)
			}
		})
	}
}

func TestBatchGetFindingDetails(t *testing.T) {
	h, arn := newTestHandler(t)
	rec := signed(t, h, "POST", "/findings/details/batch/get", "inspector2", []byte(`{"findingArns":["`+arn+`","arn:aws:inspector2:us-east-1:123456789012:finding/0"]}`))
	var out struct {
		FindingDetails []struct {
			FindingArn string
			CisaData   struct {
				Action    string
				DateAdded float64
				DateDue   float64
			}
			Cwes          []string
			ReferenceUrls []string
		}
		Errors []struct{ FindingArn, ErrorCode, ErrorMessage string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	if len(out.FindingDetails) != 1 || out.FindingDetails[0].FindingArn != arn || out.FindingDetails[0].CisaData.DateAdded != 1639094400 ||
		out.FindingDetails[0].CisaData.Action == "" || len(out.FindingDetails[0].Cwes) != 3 || len(out.FindingDetails[0].ReferenceUrls) != 1 {
		t.Errorf("details %s", rec.Body)
	}
	if len(out.Errors) != 1 || out.Errors[0].ErrorCode != "FINDING_DETAILS_NOT_FOUND" {
		t.Errorf("errors %+v", out.Errors)
	}
}

func TestRoutes(t *testing.T) {
	h, _ := newTestHandler(t)
	for _, tc := range []struct {
		method, path, route string
		handles             bool
	}{
		{"POST", "/findings/list", "inspector_ListFindings", true},
		{"POST", "/coverage/list", "inspector_ListCoverage", true},
		{"GET", "/tags/arn%3Aaws%3Aecr%3Aus-east-1%3A123456789012%3Arepository%2Fapp", "inspector_ListTagsForResource", true},
		{"GET", "/findings/list", "inspector_unknown", false},
		{"POST", "/", "inspector_unknown", false},
		{"GET", "/v2/", "inspector_unknown", false},
	} {
		r := httptest.NewRequest(tc.method, "http://lading.test"+tc.path, nil)
		if got := h.Handles(r); got != tc.handles {
			t.Errorf("%s %s: Handles %v", tc.method, tc.path, got)
		}
		if got := h.RouteName(r); got != tc.route {
			t.Errorf("%s %s: route %s, want %s", tc.method, tc.path, got, tc.route)
		}
	}
}

func TestDecodeUnion(t *testing.T) {
	members := []string{"repositoryAggregation", "packageAggregation"}
	for _, tc := range []struct {
		raw, want string
		ok        bool
	}{
		{`{"repositoryAggregation":{}}`, "repositoryAggregation", true},
		{`{"repositoryAggregation":{},"packageAggregation":null}`, "repositoryAggregation", true},
		{`{"repositoryAggregation":{},"packageAggregation":{}}`, "", false},
		{`{}`, "", false},
		{`{"amiAggregation":{}}`, "", false},
		{`[]`, "", false},
	} {
		got, _, err := decodeUnion([]byte(tc.raw), "aggregationRequest", members)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: %q, %v", tc.raw, got, err)
		}
		if err != nil {
			if ae := (&Handler{}).wireError(err); ae == nil || ae.Type != errValidation {
				t.Errorf("%s: %v is not a ValidationException", tc.raw, err)
			}
		}
	}
}

// FuzzListFindings feeds arbitrary bodies (filter criteria, sort, tokens) to the implemented
// operations: the answer is a result or a client error with a type and a message, never a
// 500.
func FuzzListFindings(f *testing.F) {
	h, arn := newTestHandler(f)
	paths := []string{"/findings/list", "/findings/details/batch/get", "/vulnerabilities/search"}
	for _, b := range []string{
		`{}`, `{"maxResults":1}`, `{"filterCriteria":{"severity":[{"comparison":"EQUALS","value":"CRITICAL"}],"ecrImageRepositoryName":[{"comparison":"PREFIX","value":"prod"}]}}`,
		`{"filterCriteria":{"firstObservedAt":[{"startInclusive":1.5e9,"endInclusive":2e9}],"inspectorScore":[{"lowerInclusive":1}]}}`,
		`{"filterCriteria":{"vulnerablePackages":[{"name":{"comparison":"NOT_EQUALS","value":"x"},"epoch":{"upperInclusive":3}}]},"sortCriteria":{"field":"SEVERITY","sortOrder":"DESC"}}`,
		`{"filterCriteria":{"resourceTags":[{"comparison":"EQUALS","key":"k","value":"v"}],"portRange":[{"beginInclusive":1}]}}`,
		`{"nextToken":"eyJvIjoiTGlzdEZpbmRpbmdzIiwicSI6IiIsImMiOnt9fQ"}`,
	} {
		f.Add(uint8(0), []byte(b))
	}
	f.Add(uint8(1), []byte(`{"findingArns":["`+arn+`"]}`))
	f.Add(uint8(2), []byte(`{"filterCriteria":{"vulnerabilityIds":["CVE-2021-44228"]}}`))
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		rec := signed(t, h, "POST", paths[int(op)%len(paths)], "inspector2", body)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%q: response %q is not a JSON object", body, rec.Body.Bytes())
		}
		switch {
		case rec.Code == http.StatusOK:
		case rec.Code >= 400 && rec.Code < 500:
			if rec.Header().Get("X-Amzn-ErrorType") == "" || out["message"] == "" {
				t.Fatalf("%q: error without a type or message: %s", body, rec.Body.Bytes())
			}
		default:
			t.Fatalf("%q: status %d: %s", body, rec.Code, rec.Body.Bytes())
		}
	})
}

type denyAll struct{ asked []string }

func (d *denyAll) Authorize(_ context.Context, p auth.Principal, action, resource string) error {
	d.asked = append(d.asked, action+" "+resource)
	return &auth.AccessDeniedError{User: "arn:aws:iam::123456789012:user/x", Principal: p, Action: action, Resource: resource}
}

// TestAuthorization: every call is decided as inspector2:<Operation> on "*" before it runs; a
// refusal is AccessDeniedException, 403, in AWS's words.
func TestAuthorization(t *testing.T) {
	h, _ := newTestHandler(t)
	az := &denyAll{}
	h.cfg.Authorizer = az
	rec := signed(t, h, "POST", "/findings/list", "inspector2", []byte(`{}`))
	if rec.Code != 403 || rec.Header().Get("X-Amzn-ErrorType") != errAccessDenied ||
		!strings.Contains(rec.Body.String(), "is not authorized to perform: inspector2:ListFindings on resource: *") {
		t.Fatalf("%d %s %s", rec.Code, rec.Header().Get("X-Amzn-ErrorType"), rec.Body)
	}
	if len(az.asked) != 1 || az.asked[0] != "inspector2:ListFindings *" {
		t.Errorf("asked %v", az.asked)
	}
}

// TestListFindingsReachability: a Go finding carries each package's reachability, and the
// Lading member of vulnerablePackages filters selects by it.
func TestListFindingsReachability(t *testing.T) {
	ctx := context.Background()
	h, db, _ := newTestStore(t, func(db *sqlite.DB, cfg *Config) {
		svc := scanning.New(db, nil, nil, scanning.Config{})
		cfg.Scanning, cfg.Coverage = svc, findings.NewCoverage(db, svc, cfg.RegistryID, cfg.Region)
	})
	m := store.Manifest{Repository: "go/app", Digest: "sha256:" + strings.Repeat("b", 64), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
	if _, err := db.PutManifest(ctx, m, nil, []string{"1"}, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	origin := events.Origin{Account: "123456789012", Region: "us-east-1"}
	now := time.Now()
	var writes []store.Finding
	for vuln, reach := range map[string]string{"CVE-2024-0001": match.ReachPresent, "CVE-2024-0002": match.ReachAbsent} {
		mf := match.Finding{VulnerabilityID: vuln, Title: vuln + " - golang.org/x/net", Severity: "HIGH", Source: "GO",
			Packages: []match.VulnerablePackage{{Name: "golang.org/x/net", Version: "v0.1.0", Ecosystem: "Go", PackageManager: "GOBINARY",
				FilePath: "/usr/local/bin/app", Layer: "sha256:cccc", Reachability: reach}}}
		detail, err := json.Marshal(scanning.Detail{Finding: mf})
		if err != nil {
			t.Fatal(err)
		}
		writes = append(writes, store.Finding{VulnerabilityID: vuln, ARN: scanning.FindingARN(origin, m.Repository, m.Digest, policy.ScanTypeEnhanced, vuln),
			Status: "ACTIVE", Severity: "HIGH", Fingerprint: vuln, Detail: detail, FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now})
	}
	if err := db.ApplyScans(ctx, []store.ScanTarget{{Repository: m.Repository, Digest: m.Digest, ScanType: policy.ScanTypeEnhanced}},
		func(store.ScanState) (store.ScanUpdate, error) {
			return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: now}, Findings: writes}, nil
		}); err != nil {
		t.Fatal(err)
	}
	for reach, want := range map[string]string{"PRESENT": "CVE-2024-0001", "ABSENT": "CVE-2024-0002"} {
		rec := signed(t, h, "POST", "/findings/list", "inspector2",
			[]byte(`{"filterCriteria":{"vulnerablePackages":[{"reachability":{"comparison":"EQUALS","value":"`+reach+`"}}]}}`))
		var out struct {
			Findings []struct {
				PackageVulnerabilityDetails struct {
					VulnerabilityID    string `json:"vulnerabilityId"`
					VulnerablePackages []struct {
						Reachability string `json:"reachability"`
					} `json:"vulnerablePackages"`
				} `json:"packageVulnerabilityDetails"`
			} `json:"findings"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != 200 || len(out.Findings) != 1 {
			t.Fatalf("%s: %d %v %s", reach, rec.Code, err, rec.Body)
		}
		d := out.Findings[0].PackageVulnerabilityDetails
		if d.VulnerabilityID != want || len(d.VulnerablePackages) != 1 || d.VulnerablePackages[0].Reachability != reach {
			t.Errorf("%s: %s", reach, rec.Body)
		}
	}
}
