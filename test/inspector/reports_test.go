package inspector_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/aws/aws-sdk-go-v2/service/inspector2/types"
	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/lading-registry/lading/internal/testserver"
)

// inspectorCSVHeader is Inspector's findings report header, typed here from the Amazon Inspector
// user guide ("Exporting findings reports") and reports Inspector exported, apart from the
// server's copy.
const inspectorCSVHeader = "AWS Account Id,Severity,Fix Available,Finding Type,Title,Description,Finding ARN,First Seen,Last Seen," +
	"Last Updated,Resource ID,Container Image Tags,Region,Platform,Resource Tags,Affected Packages,Package Installed Version," +
	"Fixed in Version,Package Remediation,File Path,Network Paths,Age (Days),Remediation,Inspector Score,Inspector Score Vector,Status," +
	"Vulnerability Id,Vendor,Vendor Severity,Vendor Advisory,Vendor Advisory Published,NVD CVSS3 Score,NVD CVSS3 Vector,NVD CVSS2 Score," +
	"NVD CVSS2 Vector,Vendor CVSS3 Score,Vendor CVSS3 Vector,Vendor CVSS2 Score,Vendor CVSS2 Vector,Resource Type,Ami,Resource Public Ipv4," +
	"Resource Private Ipv4,Resource Ipv6,Resource Vpc,Port Range,Epss Score,Exploit Available,Last Exploited At,Lambda Layers," +
	"Lambda Package Type,Lambda Last Updated At,Reference Urls,Detector Name,Package Manager"

const kmsKey = "arn:aws:kms:us-west-2:000000000000:key/00000000-0000-0000-0000-000000000000"

// waitReport polls a report's status until it leaves IN_PROGRESS.
func waitReport(t *testing.T, s *story, status func() (string, error)) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := status()
		if err != nil {
			t.Fatal(err)
		}
		if st != "IN_PROGRESS" {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the report is still IN_PROGRESS\nserver log:\n%s", s.srv.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// reportFiles lists the files under a bucket of the server's reports directory, by key.
func reportFiles(t *testing.T, s *story, bucket string) map[string]string {
	t.Helper()
	root := filepath.Join(s.reports, bucket)
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = p
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// download GETs a report file with the admin's Basic credentials (none when !authed).
func download(t *testing.T, s *story, bucket, key string, authed bool) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.srv.URL()+"/lading/reports/"+bucket+"/"+key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authed {
		req.SetBasicAuth(testserver.AccessKeyID, testserver.SecretAccessKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestReports makes SBOM exports and findings reports of the seed image with the AWS CLI and
// the SDK, parses their files with cyclonedx-go, tools-golang and encoding/csv, and downloads
// them.
func TestReports(t *testing.T) {
	s := newStory(t)
	ctx := context.Background()

	// An SBOM export in CycloneDX 1.4, with the SDK (Debian's AWS CLI predates the SBOM
	// export commands).
	cdxOut, err := s.sdk.CreateSbomExport(ctx, &inspector2.CreateSbomExportInput{ReportFormat: types.SbomReportFormatCyclonedx14,
		ResourceFilterCriteria: &types.ResourceFilterCriteria{EcrRepositoryName: []types.ResourceStringFilter{{Comparison: types.ResourceStringComparisonEquals, Value: aws.String(repo)}}},
		S3Destination:          &types.Destination{BucketName: aws.String("sboms"), KeyPrefix: aws.String("exports/cdx"), KmsKeyArn: aws.String(kmsKey)}})
	if err != nil {
		t.Fatal(err)
	}
	cdxID := aws.ToString(cdxOut.ReportId)
	st := waitReport(t, s, func() (string, error) {
		out, err := s.sdk.GetSbomExport(ctx, &inspector2.GetSbomExportInput{ReportId: cdxOut.ReportId})
		if err != nil {
			return "", err
		}
		return string(out.Status), nil
	})
	if st != "SUCCEEDED" {
		t.Fatalf("SBOM export %s: %s\n%s", cdxID, st, s.srv.Logs())
	}
	got, err := s.sdk.GetSbomExport(ctx, &inspector2.GetSbomExportInput{ReportId: cdxOut.ReportId})
	if err != nil {
		t.Fatal(err)
	}
	if got.Format != types.SbomReportFormatCyclonedx14 || aws.ToString(got.S3Destination.BucketName) != "sboms" ||
		aws.ToString(got.S3Destination.KeyPrefix) != "exports/cdx" || aws.ToString(got.S3Destination.KmsKeyArn) != kmsKey ||
		got.FilterCriteria == nil || len(got.FilterCriteria.EcrRepositoryName) != 1 || aws.ToString(got.FilterCriteria.EcrRepositoryName[0].Value) != repo {
		t.Errorf("GetSbomExport: %+v", got)
	}
	files := reportFiles(t, s, "sboms")
	if len(files) != 1 {
		t.Fatalf("SBOM export files: %v, want one (one image)", files)
	}
	for key, p := range files {
		if !strings.HasPrefix(key, "exports/cdx/SBOM/000000000000/"+cdxID+"/"+repo+"/sha256_") {
			t.Errorf("SBOM file key %s: not Inspector's layout", key)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var bom cdx.BOM
		if err := cdx.NewBOMDecoder(bytes.NewReader(b), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
			t.Fatalf("the CycloneDX export does not parse: %v", err)
		}
		if bom.SpecVersion != cdx.SpecVersion1_4 || !hasComponent(bom, "log4j-core") || !hasVulnerability(bom, log4shell) {
			t.Errorf("CycloneDX export: spec %v, log4j-core %v, %s %v", bom.SpecVersion, hasComponent(bom, "log4j-core"), log4shell, hasVulnerability(bom, log4shell))
		}
		code, body := download(t, s, "sboms", key, true)
		if code != http.StatusOK || !bytes.Equal(body, b) {
			t.Errorf("download %s: %d, %d bytes, want the file's %d", key, code, len(body), len(b))
		}
		if code, _ := download(t, s, "sboms", key, false); code != http.StatusUnauthorized {
			t.Errorf("anonymous download: %d, want 401", code)
		}
	}
	if code, _ := download(t, s, "sboms", "exports/cdx/../../x", true); code != http.StatusNotFound {
		t.Errorf("download outside the bucket: %d, want 404", code)
	}

	// An SBOM export in SPDX 2.3, with the SDK.
	created, err := s.sdk.CreateSbomExport(ctx, &inspector2.CreateSbomExportInput{ReportFormat: types.SbomReportFormatSpdx23,
		S3Destination: &types.Destination{BucketName: aws.String("spdx-bucket"), KmsKeyArn: aws.String(kmsKey)}})
	if err != nil {
		t.Fatal(err)
	}
	st = waitReport(t, s, func() (string, error) {
		out, err := s.sdk.GetSbomExport(ctx, &inspector2.GetSbomExportInput{ReportId: created.ReportId})
		if err != nil {
			return "", err
		}
		return string(out.Status), nil
	})
	if st != "SUCCEEDED" {
		t.Fatalf("SPDX export: %s", st)
	}
	for _, p := range reportFiles(t, s, "spdx-bucket") {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := spdxjson.Read(f)
		f.Close()
		if err != nil {
			t.Fatalf("the SPDX export does not parse: %v", err)
		}
		found := false
		for _, p := range doc.Packages {
			found = found || strings.Contains(p.PackageName, "log4j-core")
		}
		if doc.SPDXVersion != "SPDX-2.3" || !found {
			t.Errorf("SPDX export: version %s, log4j-core %v", doc.SPDXVersion, found)
		}
	}

	// A findings report in CSV, with the AWS CLI.
	out := s.aws(t, "inspector2", "create-findings-report", "--report-format", "CSV",
		"--filter-criteria", `{"vulnerabilityId":[{"comparison":"EQUALS","value":"`+log4shell+`"}]}`,
		"--s3-destination", "bucketName=findings,keyPrefix=daily,kmsKeyArn="+kmsKey)
	csvID, _ := out["reportId"].(string)
	st = waitReport(t, s, func() (string, error) {
		out, err := s.run("inspector2", "get-findings-report-status", "--report-id", csvID)
		var v struct{ Status string }
		if err == nil {
			err = json.Unmarshal(out, &v)
		}
		return v.Status, err
	})
	if st != "SUCCEEDED" {
		t.Fatalf("findings report: %s", st)
	}
	csvPath := filepath.Join(s.reports, "findings", "daily", csvID+".csv")
	b, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatalf("the CSV report is not where Inspector puts it: %v", err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("the CSV report does not parse: %v", err)
	}
	if len(rows) != 2 || strings.Join(rows[0], ",") != inspectorCSVHeader {
		t.Fatalf("CSV report: %d rows, header %q", len(rows), rows[0])
	}
	row := map[string]string{}
	for i, name := range rows[0] {
		row[name] = rows[1][i]
	}
	if row["Vulnerability Id"] != log4shell || row["Exploit Available"] != "YES" || !strings.Contains(row["File Path"], log4jPath) ||
		!strings.HasPrefix(row["Finding ARN"], "arn:aws:inspector2:") {
		t.Errorf("CSV row: %v", row)
	}

	// A findings report in JSON, with the SDK; GetFindingsReportStatus without an id gives
	// the latest.
	fr, err := s.sdk.CreateFindingsReport(ctx, &inspector2.CreateFindingsReportInput{ReportFormat: types.ReportFormatJson,
		S3Destination: &types.Destination{BucketName: aws.String("findings"), KmsKeyArn: aws.String(kmsKey)}})
	if err != nil {
		t.Fatal(err)
	}
	st = waitReport(t, s, func() (string, error) {
		out, err := s.sdk.GetFindingsReportStatus(ctx, &inspector2.GetFindingsReportStatusInput{})
		if err != nil {
			return "", err
		}
		if aws.ToString(out.ReportId) != aws.ToString(fr.ReportId) {
			return "", errors.New("GetFindingsReportStatus without an id is not the latest report: " + aws.ToString(out.ReportId))
		}
		return string(out.Status), nil
	})
	if st != "SUCCEEDED" {
		t.Fatalf("JSON findings report: %s", st)
	}
	key := aws.ToString(fr.ReportId) + ".json"
	code, body := download(t, s, "findings", key, true)
	var report struct {
		Findings []map[string]any `json:"findings"`
	}
	if err := json.Unmarshal(body, &report); code != http.StatusOK || err != nil {
		t.Fatalf("download %s: %d %v", key, code, err)
	}
	ids := map[string]bool{}
	for _, f := range report.Findings {
		ids[vulnID(f)] = true
	}
	if !ids[log4shell] {
		t.Errorf("the JSON report lacks %s: %v", log4shell, ids)
	}

	t.Run("bad input", func(t *testing.T) { badReportInput(t, s) })
}

func hasComponent(bom cdx.BOM, name string) bool {
	if bom.Components == nil {
		return false
	}
	for _, c := range *bom.Components {
		if strings.Contains(c.Name, name) {
			return true
		}
	}
	return false
}

func hasVulnerability(bom cdx.BOM, id string) bool {
	if bom.Vulnerabilities == nil {
		return false
	}
	for _, v := range *bom.Vulnerabilities {
		if v.ID == id {
			return true
		}
	}
	return false
}

func badReportInput(t *testing.T, s *story) {
	ctx := context.Background()
	dest := func(bucket, prefix string) *types.Destination {
		return &types.Destination{BucketName: aws.String(bucket), KeyPrefix: aws.String(prefix), KmsKeyArn: aws.String(kmsKey)}
	}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"bad SBOM format", func() error {
			_, err := s.sdk.CreateSbomExport(ctx, &inspector2.CreateSbomExportInput{ReportFormat: "CYCLONEDX_1_5", S3Destination: dest("ok-bucket", "")})
			return err
		}},
		{"bad findings format", func() error {
			_, err := s.sdk.CreateFindingsReport(ctx, &inspector2.CreateFindingsReportInput{ReportFormat: "XML", S3Destination: dest("ok-bucket", "")})
			return err
		}},
		{"bucket with ..", func() error {
			_, err := s.sdk.CreateFindingsReport(ctx, &inspector2.CreateFindingsReportInput{ReportFormat: types.ReportFormatCsv, S3Destination: dest("..", "")})
			return err
		}},
		{"bucket with a slash", func() error {
			_, err := s.sdk.CreateSbomExport(ctx, &inspector2.CreateSbomExportInput{ReportFormat: types.SbomReportFormatSpdx23, S3Destination: dest("a/b", "")})
			return err
		}},
		{"prefix climbing out", func() error {
			_, err := s.sdk.CreateSbomExport(ctx, &inspector2.CreateSbomExportInput{ReportFormat: types.SbomReportFormatSpdx23, S3Destination: dest("ok-bucket", "x/../../../etc")})
			return err
		}},
		{"absolute prefix", func() error {
			_, err := s.sdk.CreateFindingsReport(ctx, &inspector2.CreateFindingsReportInput{ReportFormat: types.ReportFormatCsv, S3Destination: dest("ok-bucket", "/etc")})
			return err
		}},
		{"PREFIX on a resource filter", func() error {
			_, err := s.sdk.CreateSbomExport(ctx, &inspector2.CreateSbomExportInput{ReportFormat: types.SbomReportFormatSpdx23, S3Destination: dest("ok-bucket", ""),
				ResourceFilterCriteria: &types.ResourceFilterCriteria{EcrRepositoryName: []types.ResourceStringFilter{{Comparison: "PREFIX", Value: aws.String("x")}}}})
			return err
		}},
		{"malformed report id", func() error {
			_, err := s.sdk.GetSbomExport(ctx, &inspector2.GetSbomExportInput{ReportId: aws.String("not-a-report")})
			return err
		}},
	} {
		var ve *types.ValidationException
		if err := tc.call(); !errors.As(err, &ve) {
			t.Errorf("%s: %v, want ValidationException", tc.name, err)
		}
	}
	unknown := aws.String("0b5c1b4e-1111-4222-8333-444455556666")
	for name, call := range map[string]func() error{
		"GetSbomExport": func() error {
			_, err := s.sdk.GetSbomExport(ctx, &inspector2.GetSbomExportInput{ReportId: unknown})
			return err
		},
		"CancelSbomExport": func() error {
			_, err := s.sdk.CancelSbomExport(ctx, &inspector2.CancelSbomExportInput{ReportId: unknown})
			return err
		},
		"GetFindingsReportStatus": func() error {
			_, err := s.sdk.GetFindingsReportStatus(ctx, &inspector2.GetFindingsReportStatusInput{ReportId: unknown})
			return err
		},
		"CancelFindingsReport": func() error {
			_, err := s.sdk.CancelFindingsReport(ctx, &inspector2.CancelFindingsReportInput{ReportId: unknown})
			return err
		},
	} {
		var nf *types.ResourceNotFoundException
		if err := call(); !errors.As(err, &nf) {
			t.Errorf("%s of an unknown report: %v, want ResourceNotFoundException", name, err)
		}
	}
	// Nothing was written outside the reports directory's buckets.
	if _, err := os.Stat(filepath.Join(s.srv.DataDir, "etc")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused prefix left something behind: %v", err)
	}
}
