package inspector

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/reports"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

// newTestReports runs report jobs over the test store for the handler's lifetime.
func newTestReports(tb testing.TB, db *sqlite.DB, fs *findings.Service, cfg Config, dir string) *reports.Service {
	tb.Helper()
	rs := reports.New(db, fs, NewFindingEncoder(fs, cfg), reports.Config{Dir: dir, Account: cfg.RegistryID, Region: cfg.Region, Logger: cfg.Logger})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		rs.Run(ctx)
	}()
	tb.Cleanup(func() { cancel(); <-done })
	return rs
}

func TestReportValidation(t *testing.T) {
	h, _ := newTestHandler(t)
	const dest = `"s3Destination":{"bucketName":"reports","kmsKeyArn":"arn:aws:kms:us-east-1:123456789012:key/k"}`
	for _, tc := range []struct {
		name, path, body, errType, field string
	}{
		{"no format", "/reporting/create", `{` + dest + `}`, errValidation, "reportFormat"},
		{"bad format", "/reporting/create", `{"reportFormat":"XML",` + dest + `}`, errValidation, "reportFormat"},
		{"bad SBOM format", "/sbomexport/create", `{"reportFormat":"CSV",` + dest + `}`, errValidation, "reportFormat"},
		{"no destination", "/sbomexport/create", `{"reportFormat":"SPDX_2_3"}`, errValidation, "s3Destination"},
		{"no KMS key", "/reporting/create", `{"reportFormat":"CSV","s3Destination":{"bucketName":"reports"}}`, errValidation, "s3Destination.kmsKeyArn"},
		{"unknown destination member", "/reporting/create", `{"reportFormat":"CSV","s3Destination":{"bucketName":"reports","kmsKeyArn":"k","region":"x"}}`, errValidation, "s3Destination"},
		{"bucket ..", "/reporting/create", `{"reportFormat":"CSV","s3Destination":{"bucketName":"..","kmsKeyArn":"k"}}`, errValidation, "s3Destination.bucketName"},
		{"prefix ..", "/sbomexport/create", `{"reportFormat":"SPDX_2_3","s3Destination":{"bucketName":"reports","keyPrefix":"a/../../b","kmsKeyArn":"k"}}`, errValidation, "s3Destination.keyPrefix"},
		{"absolute prefix", "/sbomexport/create", `{"reportFormat":"SPDX_2_3","s3Destination":{"bucketName":"reports","keyPrefix":"/etc","kmsKeyArn":"k"}}`, errValidation, "s3Destination.keyPrefix"},
		{"unknown filter member", "/reporting/create", `{"reportFormat":"CSV","filterCriteria":{"colour":[]},` + dest + `}`, errValidation, "filterCriteria.colour"},
		{"unknown resource member", "/sbomexport/create", `{"reportFormat":"SPDX_2_3","resourceFilterCriteria":{"colour":[]},` + dest + `}`, errValidation, "resourceFilterCriteria"},
		{"PREFIX resource filter", "/sbomexport/create", `{"reportFormat":"SPDX_2_3","resourceFilterCriteria":{"ecrRepositoryName":[{"comparison":"PREFIX","value":"a"}]},` + dest + `}`, errValidation, "resourceFilterCriteria.ecrRepositoryName[0].comparison"},
		{"empty resource filter list", "/sbomexport/create", `{"reportFormat":"SPDX_2_3","resourceFilterCriteria":{"ecrImageTags":[]},` + dest + `}`, errValidation, "resourceFilterCriteria.ecrImageTags"},
		{"no report id", "/sbomexport/get", `{}`, errValidation, "reportId"},
		{"malformed report id", "/reporting/cancel", `{"reportId":"../../etc"}`, errValidation, "reportId"},
		{"unknown report", "/sbomexport/get", `{"reportId":"0b5c1b4e-1111-4222-8333-444455556666"}`, errNotFound, ""},
		{"unknown findings report", "/reporting/status/get", `{"reportId":"0b5c1b4e-1111-4222-8333-444455556666"}`, errNotFound, ""},
		{"no findings report yet", "/reporting/status/get", `{}`, errNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := signed(t, h, "POST", tc.path, "inspector2", []byte(tc.body))
			if got := rec.Header().Get("X-Amzn-ErrorType"); got != tc.errType {
				t.Fatalf("%d %s %s, want %s", rec.Code, got, rec.Body, tc.errType)
			}
			if tc.field == "" {
				return
			}
			var body struct {
				Fields []struct{ Name string } `json:"fields"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Fields) == 0 || body.Fields[0].Name != tc.field {
				t.Errorf("fields %+v, want %s: %s", body.Fields, tc.field, rec.Body)
			}
		})
	}
}

// waitStatus polls a report until it is no longer IN_PROGRESS and returns the last answer.
func waitStatus(t *testing.T, h *Handler, path, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rec := signed(t, h, "POST", path, "inspector2", []byte(`{"reportId":"`+id+`"}`))
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if out["status"] != "IN_PROGRESS" {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("still IN_PROGRESS: %v", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFindingsReportCSV(t *testing.T) {
	h, arn := newTestHandler(t)
	rec := signed(t, h, "POST", "/reporting/create", "inspector2", []byte(`{"reportFormat":"CSV",
		"filterCriteria":{"ecrImageRepositoryName":[{"comparison":"EQUALS","value":"prod/neo4j"}]},
		"s3Destination":{"bucketName":"reports","keyPrefix":"daily/","kmsKeyArn":"k"}}`))
	var created struct{ ReportID string }
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || rec.Code != 200 || created.ReportID == "" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	out := waitStatus(t, h, "/reporting/status/get", created.ReportID)
	if out["status"] != "SUCCEEDED" || out["reportId"] != created.ReportID {
		t.Fatalf("%v", out)
	}
	dest, _ := out["destination"].(map[string]any)
	crit, _ := out["filterCriteria"].(map[string]any)
	if dest["bucketName"] != "reports" || dest["keyPrefix"] != "daily" || crit["ecrImageRepositoryName"] == nil {
		t.Errorf("destination %v, criteria %v", dest, crit)
	}
	rows := readCSV(t, h, "reports", "daily/"+created.ReportID+".csv")
	if len(rows) != 2 || strings.Join(rows[0], ",") != strings.Join(csvHeader, ",") || len(rows[1]) != len(csvHeader) {
		t.Fatalf("rows %q", rows)
	}
	row := map[string]string{}
	for i, name := range csvHeader {
		row[name] = rows[1][i]
	}
	for name, want := range map[string]string{"Finding ARN": arn, "Vulnerability Id": "CVE-2021-44228", "Severity": "CRITICAL", "Status": "ACTIVE",
		"Exploit Available": "YES", "Fixed in Version": "2.15.0", "File Path": "/var/lib/neo4j/lib/log4j-core-2.14.1.jar", "Package Manager": "JAR",
		"Resource Type": "AWS_ECR_CONTAINER_IMAGE", "Container Image Tags": "4.4.0", "Finding Type": "PACKAGE_VULNERABILITY", "Inspector Score": "10"} {
		if row[name] != want {
			t.Errorf("%s = %q, want %q", name, row[name], want)
		}
	}
	// A filter that selects nothing fails the report, as Inspector's.
	rec = signed(t, h, "POST", "/reporting/create", "inspector2", []byte(`{"reportFormat":"JSON",
		"filterCriteria":{"vulnerabilityId":[{"comparison":"EQUALS","value":"CVE-0000-0000"}]},"s3Destination":{"bucketName":"reports","kmsKeyArn":"k"}}`))
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if out := waitStatus(t, h, "/reporting/status/get", created.ReportID); out["status"] != "FAILED" || out["errorCode"] != "NO_FINDINGS_FOUND" {
		t.Errorf("%v", out)
	}
}

// readCSV reads a report file the test handler's jobs wrote.
func readCSV(t *testing.T, h *Handler, bucket, key string) [][]string {
	t.Helper()
	f, _, err := h.cfg.Reports.(*reports.Service).File(context.Background(), bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// FuzzReportRequests sends arbitrary bodies to the report operations: each answer is 200 or a
// typed 4xx, never a fault, whatever the criteria, destination or report id.
func FuzzReportRequests(f *testing.F) {
	h, _ := newTestHandler(f)
	paths := []string{"/sbomexport/create", "/reporting/create", "/sbomexport/get", "/reporting/status/get", "/sbomexport/cancel", "/reporting/cancel"}
	for _, b := range []string{
		`{"reportFormat":"CYCLONEDX_1_4","s3Destination":{"bucketName":"reports","keyPrefix":"a/b","kmsKeyArn":"k"}}`,
		`{"reportFormat":"SPDX_2_3","resourceFilterCriteria":{"ecrRepositoryName":[{"comparison":"EQUALS","value":"prod/neo4j"}],"ec2InstanceTags":[{"comparison":"EQUALS","key":"k"}]},"s3Destination":{"bucketName":"reports","kmsKeyArn":"k"}}`,
		`{"reportFormat":"CSV","filterCriteria":{"severity":[{"comparison":"EQUALS","value":"CRITICAL"}]},"s3Destination":{"bucketName":"reports","keyPrefix":"../x","kmsKeyArn":"k"}}`,
		`{"reportId":"0b5c1b4e-1111-4222-8333-444455556666"}`,
		`{"reportId":"x0b5c1b4e-1111-4222-8333-444455556666/.."}`,
	} {
		for op := range paths {
			f.Add(uint8(op), []byte(b))
		}
	}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		rec := signed(t, h, "POST", paths[int(op)%len(paths)], "inspector2", body)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%q: response %q is not a JSON object", body, rec.Body.Bytes())
		}
		if rec.Code != http.StatusOK && (rec.Code < 400 || rec.Code >= 500 || rec.Header().Get("X-Amzn-ErrorType") == "") {
			t.Fatalf("%q: status %d: %s", body, rec.Code, rec.Body.Bytes())
		}
	})
}
