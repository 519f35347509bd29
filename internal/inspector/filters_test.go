package inspector

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/aws/aws-sdk-go-v2/service/inspector2/types"

	"github.com/lading-registry/lading/internal/testserver"
)

func callJSON(t *testing.T, h *Handler, path, body string, want int) map[string]any {
	t.Helper()
	rec := signed(t, h, "POST", path, "inspector2", []byte(body))
	if rec.Code != want {
		t.Fatalf("%s: %d %s %s, want %d", path, rec.Code, rec.Header().Get("X-Amzn-ErrorType"), rec.Body, want)
	}
	return decodeBody(t, rec)
}

func decodeBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s: %v", rec.Body, err)
	}
	return out
}

func statusOf(t *testing.T, h *Handler) string {
	t.Helper()
	out := callJSON(t, h, "/findings/list", `{}`, 200)
	fs := out["findings"].([]any)
	if len(fs) != 1 {
		t.Fatalf("findings %v", fs)
	}
	return fs[0].(map[string]any)["status"].(string)
}

func TestFilters(t *testing.T) {
	h, _ := newTestHandler(t)
	criteria := `{"vulnerabilityId":[{"comparison":"EQUALS","value":"CVE-2021-44228"}],"firstObservedAt":[{"startInclusive":1600000000}],` +
		`"vulnerablePackages":[{"filePath":{"comparison":"PREFIX","value":"/var/lib/"}}]}`
	created := callJSON(t, h, "/filters/create", `{"name":"log4j-accepted","action":"SUPPRESS","reason":"not reachable","description":"d",`+
		`"tags":{"team":"a"},"filterCriteria":`+criteria+`}`, 200)
	arn, _ := created["arn"].(string)
	if len(arn) < 60 || arn[:len("arn:aws:inspector2:us-east-1:123456789012:owner/123456789012/filter/")] != "arn:aws:inspector2:us-east-1:123456789012:owner/123456789012/filter/" {
		t.Fatalf("arn %q", arn)
	}
	if got := statusOf(t, h); got != "SUPPRESSED" {
		t.Errorf("status %s after CreateFilter, want SUPPRESSED", got)
	}
	listed := callJSON(t, h, "/findings/list", `{"filterCriteria":{"findingStatus":[{"comparison":"EQUALS","value":"SUPPRESSED"}]}}`, 200)
	if n := len(listed["findings"].([]any)); n != 1 {
		t.Errorf("findingStatus SUPPRESSED lists %d findings, want 1", n)
	}

	// ListFilters gives the criteria back as they were sent.
	out := callJSON(t, h, "/filters/list", `{"action":"SUPPRESS"}`, 200)
	fs := out["filters"].([]any)
	if len(fs) != 1 {
		t.Fatalf("filters %v", fs)
	}
	f := fs[0].(map[string]any)
	var want map[string]any
	if err := json.Unmarshal([]byte(criteria), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f["criteria"], want) {
		t.Errorf("criteria %v, want %v", f["criteria"], want)
	}
	if f["arn"] != arn || f["name"] != "log4j-accepted" || f["reason"] != "not reachable" || f["ownerId"] != "123456789012" ||
		f["tags"].(map[string]any)["team"] != "a" || f["createdAt"] == nil || f["updatedAt"] == nil {
		t.Errorf("filter %v", f)
	}
	if out := callJSON(t, h, "/filters/list", `{"action":"NONE"}`, 200); len(out["filters"].([]any)) != 0 {
		t.Errorf("NONE filters %v", out)
	}

	callJSON(t, h, "/filters/update", `{"filterArn":"`+arn+`","action":"NONE"}`, 200)
	if got := statusOf(t, h); got != "ACTIVE" {
		t.Errorf("status %s after UpdateFilter NONE, want ACTIVE", got)
	}
	callJSON(t, h, "/filters/update", `{"filterArn":"`+arn+`","action":"SUPPRESS"}`, 200)
	callJSON(t, h, "/filters/delete", `{"arn":"`+arn+`"}`, 200)
	if got := statusOf(t, h); got != "ACTIVE" {
		t.Errorf("status %s after DeleteFilter, want ACTIVE", got)
	}
}

func TestFilterErrors(t *testing.T) {
	h, _ := newTestHandler(t)
	callJSON(t, h, "/filters/create", `{"name":"taken","action":"NONE","filterCriteria":{}}`, 200)
	for _, tc := range []struct {
		name, path, body string
		status           int
		typ, field       string
	}{
		{"duplicate name", "/filters/create", `{"name":"taken","action":"NONE","filterCriteria":{}}`, 400, errBadRequest, ""},
		{"no name", "/filters/create", `{"action":"NONE","filterCriteria":{}}`, 400, errValidation, "name"},
		{"bad name", "/filters/create", `{"name":"a b","action":"NONE","filterCriteria":{}}`, 400, errValidation, "name"},
		{"bad action", "/filters/create", `{"name":"abc","action":"HIDE","filterCriteria":{}}`, 400, errValidation, "action"},
		{"no criteria", "/filters/create", `{"name":"abc","action":"NONE"}`, 400, errValidation, "filterCriteria"},
		{"unknown criterion", "/filters/create", `{"name":"abc","action":"NONE","filterCriteria":{"colour":[]}}`, 400, errValidation, "filterCriteria.colour"},
		{"bad comparison", "/filters/create", `{"name":"abc","action":"NONE","filterCriteria":{"severity":[{"comparison":"LIKE","value":"x"}]}}`, 400,
			errValidation, "filterCriteria.severity[0].comparison"},
		{"update unknown", "/filters/update", `{"filterArn":"arn:aws:inspector2:us-east-1:123456789012:owner/123456789012/filter/0","action":"NONE"}`, 404, errNotFound, ""},
		{"update no arn", "/filters/update", `{"action":"NONE"}`, 400, errValidation, "filterArn"},
		{"delete unknown", "/filters/delete", `{"arn":"arn:aws:inspector2:us-east-1:123456789012:owner/123456789012/filter/0"}`, 404, errNotFound, ""},
		{"list max 0", "/filters/list", `{"maxResults":0}`, 400, errValidation, "maxResults"},
		{"list bad token", "/filters/list", `{"nextToken":"x"}`, 400, errValidation, "nextToken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := signed(t, h, "POST", tc.path, "inspector2", []byte(tc.body))
			if rec.Code != tc.status || rec.Header().Get("X-Amzn-ErrorType") != tc.typ {
				t.Fatalf("%d %s %s, want %d %s", rec.Code, rec.Header().Get("X-Amzn-ErrorType"), rec.Body, tc.status, tc.typ)
			}
			body := decodeBody(t, rec)
			if tc.field == "" {
				return
			}
			fields, _ := body["fields"].([]any)
			if len(fields) == 0 || fields[0].(map[string]any)["name"] != tc.field {
				t.Errorf("fields %v, want %s first", body["fields"], tc.field)
			}
		})
	}
}

func TestListFiltersPagination(t *testing.T) {
	h, _ := newTestHandler(t)
	for _, n := range []string{"r-1", "r-2", "r-3"} {
		callJSON(t, h, "/filters/create", `{"name":"`+n+`","action":"NONE","filterCriteria":{}}`, 200)
	}
	var names []any
	token := ""
	for range 3 {
		body := `{"maxResults":2}`
		if token != "" {
			body = `{"maxResults":2,"nextToken":"` + token + `"}`
		}
		out := callJSON(t, h, "/filters/list", body, 200)
		for _, f := range out["filters"].([]any) {
			names = append(names, f.(map[string]any)["name"])
		}
		token, _ = out["nextToken"].(string)
		if token == "" {
			break
		}
	}
	if !reflect.DeepEqual(names, []any{"r-1", "r-2", "r-3"}) {
		t.Errorf("pages gave %v", names)
	}
	// A token is bound to its action.
	first := callJSON(t, h, "/filters/list", `{"maxResults":1}`, 200)
	rec := signed(t, h, "POST", "/filters/list", "inspector2", []byte(`{"maxResults":1,"action":"NONE","nextToken":"`+first["nextToken"].(string)+`"}`))
	if rec.Code != 400 {
		t.Errorf("token reused with another action: %d %s", rec.Code, rec.Body)
	}
}

// TestFiltersThroughTheSDK sends a rule through the AWS SDK for Go and reads it back: the
// criteria, times and error types parse as the SDK's own shapes.
func TestFiltersThroughTheSDK(t *testing.T) {
	ctx := context.Background()
	h, _ := newTestHandler(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := inspector2.New(inspector2.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), Retryer: testserver.SDKRetryer(),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}, nil
		})})
	start := time.Date(2021, 12, 1, 0, 0, 0, 0, time.UTC)
	criteria := &types.FilterCriteria{
		VulnerabilityId:    []types.StringFilter{{Comparison: types.StringComparisonEquals, Value: aws.String("CVE-2021-44228")}},
		FirstObservedAt:    []types.DateFilter{{StartInclusive: aws.Time(start)}},
		InspectorScore:     []types.NumberFilter{{LowerInclusive: aws.Float64(9)}},
		VulnerablePackages: []types.PackageFilter{{Name: &types.StringFilter{Comparison: types.StringComparisonPrefix, Value: aws.String("org.apache")}}},
	}
	created, err := client.CreateFilter(ctx, &inspector2.CreateFilterInput{Name: aws.String("sdk-rule"), Action: types.FilterActionSuppress,
		FilterCriteria: criteria, Reason: aws.String("accepted"), Tags: map[string]string{"owner": "sec"}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.ListFilters(ctx, &inspector2.ListFiltersInput{Arns: []string{*created.Arn}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Filters) != 1 {
		t.Fatalf("filters %+v", out.Filters)
	}
	f := out.Filters[0]
	c := f.Criteria
	if f.Action != types.FilterActionSuppress || *f.Name != "sdk-rule" || *f.OwnerId != "123456789012" || f.Tags["owner"] != "sec" || f.CreatedAt == nil ||
		*c.VulnerabilityId[0].Value != "CVE-2021-44228" || !c.FirstObservedAt[0].StartInclusive.Equal(start) || *c.InspectorScore[0].LowerInclusive != 9 ||
		*c.VulnerablePackages[0].Name.Value != "org.apache" || c.VulnerablePackages[0].Version != nil {
		t.Errorf("filter read back %+v, criteria %+v", f, c)
	}
	_, err = client.CreateFilter(ctx, &inspector2.CreateFilterInput{Name: aws.String("sdk-rule"), Action: types.FilterActionNone, FilterCriteria: criteria})
	var bad *types.BadRequestException
	if !errors.As(err, &bad) {
		t.Errorf("duplicate name: %v, want BadRequestException", err)
	}
	_, err = client.DeleteFilter(ctx, &inspector2.DeleteFilterInput{Arn: aws.String(*created.Arn + "0")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("deleting an unknown filter: %v, want ResourceNotFoundException", err)
	}
}
