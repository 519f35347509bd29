package inspector_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/aws/aws-sdk-go-v2/service/inspector2/types"

	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/testserver"
)

// The seed image: neo4j-like holds log4j-core 2.14.1 (Log4Shell) in a known layer.
const (
	log4shell  = "CVE-2021-44228"
	log4jLayer = "sha256:77241fdad4f9d386d414bf64582da44435c14b77852fc80aedf7bbfa927e7857"
	log4jPath  = "/var/lib/neo4j/lib/log4j-core-2.14.1.jar"
	repo       = "inspect-prod"
)

// story is a server with the seed image pushed into a continuously scanned repository and
// its scan done.
type story struct {
	srv     *testserver.Server
	reports string // the directory reports are written to
	cli     string
	sdk     *inspector2.Client
}

func newStory(t *testing.T, serveArgs ...string) *story {
	t.Helper()
	reports := ""
	if testserver.ClusterSize(t) > 0 {
		// Nodes write reports where they are told; a cluster shares one directory (as it
		// would share a volume), since any node may run an export.
		reports = t.TempDir()
		serveArgs = append(serveArgs, "--reports-dir", reports)
	}
	srv := testserver.Serve(t, ladingBin, serveArgs...)
	if reports == "" {
		reports = filepath.Join(srv.DataDir, "reports")
	}
	srv.RunStore(t, "db", "import", "--log-level", "warn", testfiles.Path(t, "osv-mini", "Maven", "all.zip"))
	s := &story{srv: srv, reports: reports, cli: "/usr/bin/aws"} // Debian's AWS CLI v2; an older v1 may come first on PATH
	if _, err := os.Stat(s.cli); err != nil {
		s.cli = testserver.Tool(t, "aws")
	}
	s.sdk = inspector2.New(inspector2.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL()), Retryer: testserver.SDKRetryer(),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: testserver.AccessKeyID, SecretAccessKey: testserver.SecretAccessKey}, nil
		})})
	s.aws(t, "ecr", "create-repository", "--repository-name", repo)
	s.aws(t, "ecr", "put-registry-scanning-configuration", "--scan-type", "ENHANCED",
		"--rules", `[{"repositoryFilters":[{"filter":"prod","filterType":"WILDCARD"}],"scanFrequency":"CONTINUOUS_SCAN"}]`)
	skopeo := testserver.Tool(t, "skopeo")
	src := "oci-archive:" + testfiles.Path(t, "images", "debian-family.tar") + ":neo4j-like"
	cmd := exec.Command(skopeo, "copy", "--dest-tls-verify=false", "--dest-authfile", filepath.Join(srv.DockerConfig(t), "config.json"),
		src, "docker://"+srv.Addr+"/"+repo+":4.4.0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, err := s.run("ecr", "describe-image-scan-findings", "--repository-name", repo, "--image-id", "imageTag=4.4.0")
		if err == nil && strings.Contains(string(out), log4shell) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scan never found %s: %s %v\nserver log:\n%s", log4shell, out, err, s.srv.Logs())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (s *story) run(args ...string) ([]byte, error) {
	cmd := exec.Command(s.cli, append(args, "--endpoint-url", s.srv.URL(), "--output", "json")...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+testserver.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+testserver.SecretAccessKey,
		"AWS_DEFAULT_REGION=us-west-2", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("aws %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}

func (s *story) aws(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out, err := s.run(args...)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if len(bytes.TrimSpace(out)) > 0 {
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return v
}

// raw sends a request signed for service (unsigned when "") and returns the status, the error
// type header and the body.
func (s *story) raw(t *testing.T, method, path, target, service string, body string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if target != "" {
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", target)
	}
	if service != "" {
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: testserver.AccessKeyID, SecretAccessKey: testserver.SecretAccessKey}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, "us-west-2", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), b
}

func cliFindings(t *testing.T, out map[string]any) []map[string]any {
	t.Helper()
	list, _ := out["findings"].([]any)
	var fs []map[string]any
	for _, f := range list {
		fs = append(fs, f.(map[string]any))
	}
	return fs
}

func vulnID(f map[string]any) string {
	p, _ := f["packageVulnerabilityDetails"].(map[string]any)
	id, _ := p["vulnerabilityId"].(string)
	return id
}

func TestInspectorStory(t *testing.T) {
	s := newStory(t)
	ctx := context.Background()

	// The AWS CLI: filtered by vulnerability id and by repository name.
	var arn string
	for _, filter := range []string{
		`{"vulnerabilityId":[{"comparison":"EQUALS","value":"` + log4shell + `"}]}`,
		`{"ecrImageRepositoryName":[{"comparison":"EQUALS","value":"` + repo + `"}],"severity":[{"comparison":"EQUALS","value":"CRITICAL"}]}`,
	} {
		fs := cliFindings(t, s.aws(t, "inspector2", "list-findings", "--filter-criteria", filter))
		var found map[string]any
		for _, f := range fs {
			if vulnID(f) == log4shell {
				found = f
			}
		}
		if found == nil {
			t.Fatalf("list-findings --filter-criteria %s: no %s in %v", filter, log4shell, fs)
		}
		if found["severity"] != "CRITICAL" || found["status"] != "ACTIVE" || found["exploitAvailable"] != "YES" || found["type"] != "PACKAGE_VULNERABILITY" {
			t.Errorf("finding %v", found)
		}
		arn, _ = found["findingArn"].(string)
	}
	if !strings.HasPrefix(arn, "arn:aws:inspector2:us-east-1:000000000000:finding/") {
		t.Fatalf("finding ARN %q", arn)
	}
	if fs := cliFindings(t, s.aws(t, "inspector2", "list-findings", "--filter-criteria",
		`{"ecrImageRepositoryName":[{"comparison":"PREFIX","value":"other"}]}`)); len(fs) != 0 {
		t.Errorf("a filter matching no repository listed %d findings", len(fs))
	}
	// The CLI follows nextToken: pages of one add up to the whole list, sorted by severity.
	whole := cliFindings(t, s.aws(t, "inspector2", "list-findings", "--sort-criteria", "field=SEVERITY,sortOrder=DESC"))
	paged := cliFindings(t, s.aws(t, "inspector2", "list-findings", "--sort-criteria", "field=SEVERITY,sortOrder=DESC", "--page-size", "1"))
	if len(whole) < 3 || len(paged) != len(whole) || whole[0]["severity"] != "CRITICAL" {
		t.Errorf("%d findings whole, %d paged, first %v", len(whole), len(paged), whole[0]["severity"])
	}
	// A wrong enum value, through the CLI (which does not check enums itself).
	if _, err := s.run("inspector2", "list-findings", "--filter-criteria", `{"severity":[{"comparison":"LIKE","value":"HIGH"}]}`); err == nil ||
		!strings.Contains(err.Error(), "ValidationException") {
		t.Errorf("comparison LIKE: %v", err)
	}

	// The SDK: filtered by the jar's path, by prefix.
	out, err := s.sdk.ListFindings(ctx, &inspector2.ListFindingsInput{FilterCriteria: &types.FilterCriteria{
		VulnerablePackages: []types.PackageFilter{{FilePath: &types.StringFilter{Comparison: types.StringComparisonPrefix, Value: aws.String("/var/lib/neo4j/lib/log4j")}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Every log4j-core CVE of the jar, Log4Shell among them.
	var f types.Finding
	for _, g := range out.Findings {
		if aws.ToString(g.FindingArn) == arn {
			f = g
		}
		if p := g.PackageVulnerabilityDetails.VulnerablePackages; len(p) == 0 || !strings.HasPrefix(aws.ToString(p[0].FilePath), "/var/lib/neo4j/lib/log4j") {
			t.Errorf("filePath PREFIX listed %s", aws.ToString(g.Title))
		}
	}
	if len(out.Findings) < 2 || f.FindingArn == nil {
		t.Fatalf("filePath PREFIX: %d findings, Log4Shell not among them", len(out.Findings))
	}
	p := f.PackageVulnerabilityDetails.VulnerablePackages
	img := f.Resources[0].Details.AwsEcrContainerImage
	if len(p) != 1 || aws.ToString(p[0].FilePath) != log4jPath || aws.ToString(p[0].SourceLayerHash) != log4jLayer || aws.ToString(p[0].Version) != "2.14.1" ||
		aws.ToString(img.RepositoryName) != repo || len(img.ImageTags) != 1 || img.ImageTags[0] != "4.4.0" || f.ExploitAvailable != types.ExploitAvailableYes ||
		f.FixAvailable != types.FixAvailableYes || aws.ToFloat64(f.InspectorScore) < 9 || f.InspectorScoreDetails == nil {
		t.Errorf("finding through the SDK: %+v", f)
	}

	t.Run("same finding as DescribeImageScanFindings", func(t *testing.T) { sameAsECR(t, s, arn) })
	t.Run("bad input", func(t *testing.T) { badInput(t, s) })
	t.Run("aggregations and coverage", func(t *testing.T) { aggregationsAndCoverage(t, s) })

	// BatchGetFindingDetails: Log4Shell is in the KEV catalogue.
	det, err := s.sdk.BatchGetFindingDetails(ctx, &inspector2.BatchGetFindingDetailsInput{FindingArns: []string{arn, "arn:aws:inspector2:us-east-1:000000000000:finding/00"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(det.FindingDetails) != 1 || det.FindingDetails[0].CisaData == nil || aws.ToTime(det.FindingDetails[0].CisaData.DateAdded).Format(time.DateOnly) != "2021-12-10" ||
		aws.ToTime(det.FindingDetails[0].CisaData.DateDue).Format(time.DateOnly) != "2021-12-24" || aws.ToString(det.FindingDetails[0].CisaData.Action) == "" ||
		len(det.FindingDetails[0].Cwes) == 0 || len(det.FindingDetails[0].ReferenceUrls) == 0 {
		t.Errorf("details %+v", det.FindingDetails)
	}
	if len(det.Errors) != 1 || det.Errors[0].ErrorCode != types.FindingDetailsErrorCodeFindingDetailsNotFound {
		t.Errorf("errors %+v", det.Errors)
	}

	// SearchVulnerabilities: what the advisory database knows of Log4Shell.
	vs, err := s.sdk.SearchVulnerabilities(ctx, &inspector2.SearchVulnerabilitiesInput{FilterCriteria: &types.SearchVulnerabilitiesFilterCriteria{
		VulnerabilityIds: []string{log4shell}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs.Vulnerabilities) != 1 {
		t.Fatalf("%d vulnerabilities", len(vs.Vulnerabilities))
	}
	v := vs.Vulnerabilities[0]
	if aws.ToString(v.Id) != log4shell || aws.ToString(v.Description) == "" || v.Cvss3 == nil || v.Cvss3.BaseScore < 9 || v.CisaData == nil ||
		len(v.ReferenceUrls) == 0 || v.Source != types.VulnerabilitySourceNvd {
		t.Errorf("vulnerability %+v", v)
	}
	status, _, body := s.raw(t, "POST", "/vulnerabilities/search", "", "inspector2", `{"filterCriteria":{"vulnerabilityIds":["`+log4shell+`"]}}`)
	if status != 200 || !strings.Contains(string(body), `"fixedVersions":["2.15.0"`) && !strings.Contains(string(body), `"2.15.0"`) {
		t.Errorf("affected packages and fixed versions: %d %s", status, body)
	}
}

// sameAsECR checks that the finding Inspector lists is DescribeImageScanFindings' enhanced
// finding: the raw JSON of both, Inspector's names mapped back to ECR's, is equal.
func sameAsECR(t *testing.T, s *story, arn string) {
	status, _, body := s.raw(t, "POST", "/", "AmazonEC2ContainerRegistry_V20150921.DescribeImageScanFindings", "ecr",
		`{"repositoryName":"`+repo+`","imageId":{"imageTag":"4.4.0"}}`)
	if status != 200 {
		t.Fatalf("DescribeImageScanFindings: %d %s", status, body)
	}
	var ecr struct {
		ImageScanFindings struct {
			EnhancedFindings []map[string]any `json:"enhancedFindings"`
		} `json:"imageScanFindings"`
	}
	if err := json.Unmarshal(body, &ecr); err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	for _, f := range ecr.ImageScanFindings.EnhancedFindings {
		if f["findingArn"] == arn {
			want = f
		}
	}
	if want == nil {
		t.Fatalf("no enhanced finding %s in %s", arn, body)
	}
	status, _, body = s.raw(t, "POST", "/findings/list", "", "inspector2", `{"filterCriteria":{"findingArn":[{"comparison":"EQUALS","value":"`+arn+`"}]}}`)
	var ins struct {
		Findings []map[string]any `json:"findings"`
	}
	if err := json.Unmarshal(body, &ins); err != nil || status != 200 || len(ins.Findings) != 1 {
		t.Fatalf("ListFindings by ARN: %d %s %v", status, body, err)
	}
	got := ins.Findings[0]
	// Inspector's names for ECR's members, and what only Inspector has.
	got["score"], got["inspectorScore"] = got["inspectorScore"], nil
	delete(got, "inspectorScore")
	if d, ok := got["inspectorScoreDetails"].(map[string]any); ok {
		cvss := d["adjustedCvss"].(map[string]any)
		delete(cvss, "cvssSource")
		got["scoreDetails"] = map[string]any{"cvss": cvss}
		delete(got, "inspectorScoreDetails")
	}
	rec := got["remediation"].(map[string]any)["recommendation"].(map[string]any)
	if u, ok := rec["Url"]; ok {
		rec["url"] = u
		delete(rec, "Url")
	}
	for _, r := range got["resources"].([]any) {
		res := r.(map[string]any)
		if res["partition"] != "aws" || res["region"] != "us-east-1" {
			t.Errorf("resource partition %v region %v", res["partition"], res["region"])
		}
		delete(res, "partition")
		delete(res, "region")
	}
	for _, p := range got["packageVulnerabilityDetails"].(map[string]any)["vulnerablePackages"].([]any) {
		delete(p.(map[string]any), "remediation")
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("Inspector's finding, in ECR's names:\n%s\nDescribeImageScanFindings':\n%s", g, w)
	}
}

func badInput(t *testing.T, s *story) {
	ctx := context.Background()
	for _, n := range []int32{0, 101} {
		_, err := s.sdk.ListFindings(ctx, &inspector2.ListFindingsInput{MaxResults: aws.Int32(n)})
		var ve *types.ValidationException
		if !errors.As(err, &ve) || ve.Reason != types.ValidationExceptionReasonFieldValidationFailed || len(ve.Fields) == 0 ||
			aws.ToString(ve.Fields[0].Name) != "maxResults" {
			t.Errorf("maxResults %d: %v", n, err)
		}
	}
	// A token of one filter given with another.
	first, err := s.sdk.ListFindings(ctx, &inspector2.ListFindingsInput{MaxResults: aws.Int32(1)})
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page: %v", err)
	}
	_, err = s.sdk.ListFindings(ctx, &inspector2.ListFindingsInput{NextToken: first.NextToken, FilterCriteria: &types.FilterCriteria{
		Severity: []types.StringFilter{{Comparison: types.StringComparisonEquals, Value: aws.String("HIGH")}}}})
	var ve *types.ValidationException
	if !errors.As(err, &ve) || aws.ToString(ve.Fields[0].Name) != "nextToken" {
		t.Errorf("a token of another filter: %v", err)
	}
	for _, tc := range []struct {
		name, path, service, body string
		status                    int
		typ                       string
	}{
		{"unknown filter member", "/findings/list", "inspector2", `{"filterCriteria":{"colour":[{"comparison":"EQUALS","value":"red"}]}}`, 400, "ValidationException"},
		{"unknown member of a filter", "/findings/list", "inspector2", `{"filterCriteria":{"vulnerablePackages":[{"path":{"comparison":"EQUALS","value":"/"}}]}}`, 400, "ValidationException"},
		{"a token of another operation", "/findings/list", "inspector2", `{"nextToken":"eyJvIjoiTGlzdENvdmVyYWdlIiwicSI6IiIsImMiOnt9fQ"}`, 400, "ValidationException"},
		{"unsigned", "/findings/list", "", `{}`, 403, "MissingAuthenticationTokenException"},
		{"signed for ecr", "/findings/list", "ecr", `{}`, 403, "InvalidSignatureException"},
		{"not implemented yet", "/cis/scan/list", "inspector2", `{}`, 501, "NotImplementedException"},
	} {
		status, typ, body := s.raw(t, "POST", tc.path, "", tc.service, tc.body)
		if status != tc.status || typ != tc.typ {
			t.Errorf("%s: %d %s %s, want %d %s", tc.name, status, typ, body, tc.status, tc.typ)
		}
		var b struct {
			Message string `json:"message"`
			Reason  string `json:"reason"`
		}
		if err := json.Unmarshal(body, &b); err != nil || b.Message == "" || tc.typ == "ValidationException" && b.Reason == "" {
			t.Errorf("%s: body %s", tc.name, body)
		}
	}
	// The CLI with a wrong key.
	cmd := exec.Command(s.cli, "inspector2", "list-findings", "--endpoint-url", s.srv.URL())
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+testserver.AccessKeyID, "AWS_SECRET_ACCESS_KEY=wrong", "AWS_DEFAULT_REGION=us-west-2",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "InvalidSignatureException") {
		t.Errorf("a wrong secret: %v %s", err, out)
	}
}
