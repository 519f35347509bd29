package inspector_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/aws/aws-sdk-go-v2/service/inspector2/types"

	"github.com/lading-registry/lading/internal/testfiles"
	"github.com/lading-registry/lading/internal/testserver"
)

// testRepo matches no rule of the story's configuration (prod is scanned continuously).
const testRepo = "inspect-test"

// aggregationsAndCoverage: the seed image's Log4Shell counted under its repository and its
// layer; the test repository's copy of it covered as SCAN_FREQUENCY_MANUAL; the rescan
// configuration and the account status read back.
func aggregationsAndCoverage(t *testing.T, s *story) {
	ctx := context.Background()
	// The CLI: REPOSITORY.
	out := s.aws(t, "inspector2", "list-finding-aggregations", "--aggregation-type", "REPOSITORY")
	var repoAgg map[string]any
	for _, r := range out["responses"].([]any) {
		if a, ok := r.(map[string]any)["repositoryAggregation"].(map[string]any); ok && a["repository"] == repo {
			repoAgg = a
		}
	}
	counts, _ := repoAgg["severityCounts"].(map[string]any)
	if repoAgg == nil || counts["critical"].(float64) < 1 || repoAgg["affectedImages"] != 1.0 || repoAgg["accountId"] != "000000000000" {
		t.Errorf("REPOSITORY aggregation: %v", out)
	}
	// The SDK: IMAGE_LAYER of the log4j layer, and the TITLE of Log4Shell.
	agg, err := s.sdk.ListFindingAggregations(ctx, &inspector2.ListFindingAggregationsInput{AggregationType: types.AggregationTypeImageLayer,
		AggregationRequest: &types.AggregationRequestMemberImageLayerAggregation{Value: types.ImageLayerAggregation{
			Repositories: []types.StringFilter{{Comparison: types.StringComparisonEquals, Value: aws.String(repo)}},
			LayerHashes:  []types.StringFilter{{Comparison: types.StringComparisonEquals, Value: aws.String(log4jLayer)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(agg.Responses) != 1 {
		t.Fatalf("IMAGE_LAYER: %d groups", len(agg.Responses))
	}
	layer, ok := agg.Responses[0].(*types.AggregationResponseMemberImageLayerAggregation)
	if !ok || aws.ToString(layer.Value.LayerHash) != log4jLayer || aws.ToString(layer.Value.Repository) != repo ||
		!strings.HasPrefix(aws.ToString(layer.Value.ResourceId), "arn:aws:ecr:us-east-1:000000000000:repository/"+repo+"/sha256:") ||
		layer.Value.SeverityCounts == nil || aws.ToInt64(layer.Value.SeverityCounts.Critical) < 1 {
		t.Errorf("IMAGE_LAYER group %+v", agg.Responses[0])
	}
	title, err := s.sdk.ListFindingAggregations(ctx, &inspector2.ListFindingAggregationsInput{AggregationType: types.AggregationTypeTitle,
		AggregationRequest: &types.AggregationRequestMemberTitleAggregation{Value: types.TitleAggregation{
			VulnerabilityIds: []types.StringFilter{{Comparison: types.StringComparisonEquals, Value: aws.String(log4shell)}}}}})
	if err != nil || len(title.Responses) != 1 {
		t.Fatalf("TITLE: %v %+v", err, title)
	}
	if g := title.Responses[0].(*types.AggregationResponseMemberTitleAggregation).Value; aws.ToString(g.VulnerabilityId) != log4shell ||
		aws.ToInt64(g.SeverityCounts.All) != 1 {
		t.Errorf("TITLE group %+v", g)
	}

	// The seed image again, in a repository no rule scans.
	s.aws(t, "ecr", "create-repository", "--repository-name", testRepo)
	src := "oci-archive:" + testfiles.Path(t, "images", "debian-family.tar") + ":neo4j-like"
	cmd := exec.Command(testserver.Tool(t, "skopeo"), "copy", "--dest-tls-verify=false", "--dest-authfile", filepath.Join(s.srv.DockerConfig(t), "config.json"),
		src, "docker://"+s.srv.Addr+"/"+testRepo+":4.4.0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, b)
	}
	cov := s.aws(t, "inspector2", "list-coverage", "--filter-criteria",
		`{"ecrRepositoryName":[{"comparison":"EQUALS","value":"`+testRepo+`"}],"resourceType":[{"comparison":"EQUALS","value":"AWS_ECR_CONTAINER_IMAGE"}]}`)
	res, _ := cov["coveredResources"].([]any)
	if len(res) != 1 {
		t.Fatalf("coverage of %s: %v", testRepo, cov)
	}
	r := res[0].(map[string]any)
	st := r["scanStatus"].(map[string]any)
	meta := r["resourceMetadata"].(map[string]any)
	if st["statusCode"] != "INACTIVE" || st["reason"] != "SCAN_FREQUENCY_MANUAL" || r["scanType"] != "PACKAGE" ||
		meta["ecrRepository"].(map[string]any)["scanFrequency"] != "MANUAL" || meta["ecrImage"].(map[string]any)["tags"].([]any)[0] != "4.4.0" {
		t.Errorf("the test repository's image: %v", r)
	}
	// The SDK: the scanned image ACTIVE, and the statistics by reason.
	prod, err := s.sdk.ListCoverage(ctx, &inspector2.ListCoverageInput{FilterCriteria: &types.CoverageFilterCriteria{
		EcrRepositoryName: []types.CoverageStringFilter{{Comparison: types.CoverageStringComparisonEquals, Value: aws.String(repo)}},
		ResourceType:      []types.CoverageStringFilter{{Comparison: types.CoverageStringComparisonEquals, Value: aws.String("AWS_ECR_CONTAINER_IMAGE")}}}})
	if err != nil || len(prod.CoveredResources) != 1 {
		t.Fatalf("coverage of %s: %v %+v", repo, err, prod)
	}
	if p := prod.CoveredResources[0]; p.ScanStatus.StatusCode != types.ScanStatusCodeActive || p.ScanStatus.Reason != types.ScanStatusReasonSuccessful ||
		p.LastScannedAt == nil || p.ResourceMetadata.EcrRepository.ScanFrequency != types.EcrScanFrequencyContinuousScan {
		t.Errorf("the continuously scanned image: %+v", p)
	}
	stats, err := s.sdk.ListCoverageStatistics(ctx, &inspector2.ListCoverageStatisticsInput{GroupBy: types.GroupKeyScanStatusReason})
	if err != nil || aws.ToInt64(stats.TotalCounts) != 4 {
		t.Fatalf("statistics: %v %+v", err, stats)
	}
	byReason := map[string]int64{}
	for _, c := range stats.CountsByGroup {
		byReason[string(c.GroupKey)] = c.Count
	}
	if byReason["SUCCESSFUL"] != 2 || byReason["SCAN_FREQUENCY_MANUAL"] != 2 {
		t.Errorf("statistics by reason %v", byReason)
	}

	// The rescan configuration: the --rescan-duration default, changed at run time.
	conf := s.aws(t, "inspector2", "get-configuration")
	if d := conf["ecrConfiguration"].(map[string]any)["rescanDurationState"].(map[string]any)["rescanDuration"]; d != "DAYS_14" {
		t.Errorf("configuration %v", conf)
	}
	if _, err := s.sdk.UpdateConfiguration(ctx, &inspector2.UpdateConfigurationInput{EcrConfiguration: &types.EcrConfiguration{
		RescanDuration: types.EcrRescanDurationDays180, PullDateRescanDuration: types.EcrPullDateRescanDurationDays90}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.sdk.GetConfiguration(ctx, &inspector2.GetConfigurationInput{})
	if err != nil || got.EcrConfiguration.RescanDurationState.RescanDuration != types.EcrRescanDurationDays180 ||
		got.EcrConfiguration.RescanDurationState.PullDateRescanDuration != types.EcrPullDateRescanDurationDays90 {
		t.Errorf("after UpdateConfiguration: %v %+v", err, got)
	}
	status, err := s.sdk.BatchGetAccountStatus(ctx, &inspector2.BatchGetAccountStatusInput{})
	if err != nil || len(status.Accounts) != 1 || status.Accounts[0].ResourceState.Ecr.Status != types.StatusEnabled ||
		status.Accounts[0].ResourceState.Ec2.Status != types.StatusDisabled {
		t.Errorf("account status: %v %+v", err, status)
	}

	// Bad input.
	var ve *types.ValidationException
	for _, n := range []int32{0, 101} {
		_, err := s.sdk.ListFindingAggregations(ctx, &inspector2.ListFindingAggregationsInput{AggregationType: types.AggregationTypeRepository, MaxResults: aws.Int32(n)})
		if !errors.As(err, &ve) || len(ve.Fields) == 0 || aws.ToString(ve.Fields[0].Name) != "maxResults" {
			t.Errorf("maxResults %d: %v", n, err)
		}
	}
	_, err = s.sdk.ListFindingAggregations(ctx, &inspector2.ListFindingAggregationsInput{AggregationType: types.AggregationTypeRepository,
		AggregationRequest: &types.AggregationRequestMemberRepositoryAggregation{Value: types.RepositoryAggregation{SortBy: "SEVERITY"}}})
	if !errors.As(err, &ve) || ve.Reason != types.ValidationExceptionReasonFieldValidationFailed ||
		aws.ToString(ve.Fields[0].Name) != "aggregationRequest.repositoryAggregation.sortBy" {
		t.Errorf("a wrong sortBy: %v", err)
	}
	first, err := s.sdk.ListFindings(ctx, &inspector2.ListFindingsInput{MaxResults: aws.Int32(1)})
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page: %v", err)
	}
	if _, err := s.sdk.ListCoverage(ctx, &inspector2.ListCoverageInput{NextToken: first.NextToken}); !errors.As(err, &ve) || aws.ToString(ve.Fields[0].Name) != "nextToken" {
		t.Errorf("a ListFindings token to ListCoverage: %v", err)
	}
	for _, body := range []string{
		`{"aggregationType":"REPOSITORY","aggregationRequest":{"repositoryAggregation":{},"imageLayerAggregation":{}}}`,
		`{"aggregationType":"REPOSITORY","aggregationRequest":{"repositoryAggregation":{"repositories":[{"comparison":"LIKE","value":"x"}]}}}`,
	} {
		if code, typ, b := s.raw(t, "POST", "/findings/aggregation/list", "", "inspector2", body); code != 400 || typ != "ValidationException" ||
			!strings.Contains(string(b), `"reason":"FIELD_VALIDATION_FAILED"`) || !strings.Contains(string(b), `"fields"`) {
			t.Errorf("%s: %d %s %s", body, code, typ, b)
		}
	}
}
