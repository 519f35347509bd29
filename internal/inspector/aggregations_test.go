package inspector

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/findings"
)

func TestListFindingAggregations(t *testing.T) {
	h, _ := newTestHandler(t)
	resource := "arn:aws:ecr:us-east-1:123456789012:repository/prod/neo4j/" + testDigest
	for _, tc := range []struct {
		name, body, member string
		want               map[string]any // members of the first response; nil: no response
	}{
		{"repository", `{"aggregationType":"REPOSITORY"}`, "repositoryAggregation",
			map[string]any{"repository": "prod/neo4j", "accountId": "123456789012", "affectedImages": 1.0,
				"severityCounts": map[string]any{"all": 1.0, "medium": 0.0, "high": 0.0, "critical": 1.0}}},
		{"repository filtered in", `{"aggregationType":"REPOSITORY","aggregationRequest":{"repositoryAggregation":{"repositories":[{"comparison":"PREFIX","value":"prod/"}],"sortBy":"AFFECTED_IMAGES","sortOrder":"ASC"}}}`,
			"repositoryAggregation", map[string]any{"repository": "prod/neo4j"}},
		{"repository filtered out", `{"aggregationType":"REPOSITORY","aggregationRequest":{"repositoryAggregation":{"repositories":[{"comparison":"NOT_EQUALS","value":"prod/neo4j"}]}}}`,
			"repositoryAggregation", nil},
		{"other account", `{"aggregationType":"REPOSITORY","accountIds":[{"comparison":"EQUALS","value":"999999999999"}]}`, "repositoryAggregation", nil},
		{"image", `{"aggregationType":"AWS_ECR_CONTAINER","aggregationRequest":{"awsEcrContainerAggregation":{"imageTags":[{"comparison":"EQUALS","value":"4.4.0"}]}}}`,
			"awsEcrContainerAggregation", map[string]any{"resourceId": resource, "imageSha": testDigest, "repository": "prod/neo4j", "imageTags": []any{"4.4.0"}}},
		{"image layer", `{"aggregationType":"IMAGE_LAYER"}`, "imageLayerAggregation",
			map[string]any{"repository": "prod/neo4j", "resourceId": resource, "layerHash": "sha256:aaaa", "accountId": "123456789012"}},
		{"image layer, another layer", `{"aggregationType":"IMAGE_LAYER","aggregationRequest":{"imageLayerAggregation":{"layerHashes":[{"comparison":"EQUALS","value":"sha256:bbbb"}]}}}`,
			"imageLayerAggregation", nil},
		{"package", `{"aggregationType":"PACKAGE"}`, "packageAggregation", map[string]any{"packageName": "org.apache.logging.log4j:log4j-core"}},
		{"title", `{"aggregationType":"TITLE","aggregationRequest":{"titleAggregation":{"vulnerabilityIds":[{"comparison":"EQUALS","value":"CVE-2021-44228"}],"resourceType":"AWS_ECR_CONTAINER_IMAGE"}}}`,
			"titleAggregation", map[string]any{"title": "CVE-2021-44228 - log4j-core", "vulnerabilityId": "CVE-2021-44228"}},
		{"title of lambda functions", `{"aggregationType":"TITLE","aggregationRequest":{"titleAggregation":{"resourceType":"AWS_LAMBDA_FUNCTION"}}}`, "titleAggregation", nil},
		{"finding type", `{"aggregationType":"FINDING_TYPE"}`, "findingTypeAggregation",
			map[string]any{"exploitAvailableCount": 1.0, "fixAvailableCount": 1.0, "severityCounts": map[string]any{"all": 1.0, "medium": 0.0, "high": 0.0, "critical": 1.0}}},
		{"a type of no container finding", `{"aggregationType":"AMI"}`, "amiAggregation", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := signed(t, h, "POST", "/findings/aggregation/list", "inspector2", []byte(tc.body))
			if rec.Code != 200 {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			var out struct {
				AggregationType string                       `json:"aggregationType"`
				Responses       []map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if len(out.Responses) != 0 {
					t.Fatalf("want no group, got %s", rec.Body)
				}
				return
			}
			if len(out.Responses) != 1 {
				t.Fatalf("want one group, got %s", rec.Body)
			}
			var got map[string]any
			if err := json.Unmarshal(out.Responses[0][tc.member], &got); err != nil {
				t.Fatalf("%s: %v", rec.Body, err)
			}
			for k, v := range tc.want {
				g, _ := json.Marshal(got[k])
				w, _ := json.Marshal(v)
				if string(g) != string(w) {
					t.Errorf("%s = %s, want %s (%s)", k, g, w, rec.Body)
				}
			}
		})
	}
}

func TestListFindingAggregationsPages(t *testing.T) {
	h, _ := newTestHandler(t)
	// One group: a page of one has no next token; a token of ListFindings is refused.
	rec := signed(t, h, "POST", "/findings/aggregation/list", "inspector2", []byte(`{"aggregationType":"REPOSITORY","maxResults":1}`))
	if rec.Code != 200 || strings.Contains(rec.Body.String(), "nextToken") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	tok := findings.EncodeToken("ListFindings", findings.Criteria{}, findings.Sort{}, findings.Cursor{})
	rec = signed(t, h, "POST", "/findings/aggregation/list", "inspector2", []byte(`{"aggregationType":"REPOSITORY","nextToken":"`+tok+`"}`))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), `"nextToken"`) {
		t.Errorf("a token of ListFindings: %d %s", rec.Code, rec.Body)
	}
}

func TestListFindingAggregationsInvalid(t *testing.T) {
	h, _ := newTestHandler(t)
	for _, tc := range []struct {
		name, body, field, reason string
	}{
		{"no type", `{}`, "aggregationType", findings.ReasonFieldValidationFailed},
		{"wrong type", `{"aggregationType":"COLOUR"}`, "aggregationType", findings.ReasonFieldValidationFailed},
		{"max results 0", `{"aggregationType":"REPOSITORY","maxResults":0}`, "maxResults", findings.ReasonFieldValidationFailed},
		{"max results 101", `{"aggregationType":"REPOSITORY","maxResults":101}`, "maxResults", findings.ReasonFieldValidationFailed},
		{"two members", `{"aggregationType":"REPOSITORY","aggregationRequest":{"repositoryAggregation":{},"titleAggregation":{}}}`, "aggregationRequest",
			findings.ReasonFieldValidationFailed},
		{"no member", `{"aggregationType":"REPOSITORY","aggregationRequest":{}}`, "aggregationRequest", findings.ReasonFieldValidationFailed},
		{"member of another type", `{"aggregationType":"REPOSITORY","aggregationRequest":{"titleAggregation":{}}}`, "aggregationRequest.titleAggregation",
			findings.ReasonFieldValidationFailed},
		{"wrong sortBy", `{"aggregationType":"PACKAGE","aggregationRequest":{"packageAggregation":{"sortBy":"AFFECTED_IMAGES"}}}`,
			"aggregationRequest.packageAggregation.sortBy", findings.ReasonFieldValidationFailed},
		{"wrong sortOrder", `{"aggregationType":"REPOSITORY","aggregationRequest":{"repositoryAggregation":{"sortOrder":"UP"}}}`,
			"aggregationRequest.repositoryAggregation.sortOrder", findings.ReasonFieldValidationFailed},
		{"wrong comparison", `{"aggregationType":"REPOSITORY","aggregationRequest":{"repositoryAggregation":{"repositories":[{"comparison":"LIKE","value":"x"}]}}}`,
			"aggregationRequest.repositoryAggregation.repositories[0].comparison", findings.ReasonFieldValidationFailed},
		{"member the type lacks", `{"aggregationType":"REPOSITORY","aggregationRequest":{"repositoryAggregation":{"imageTags":[{"comparison":"EQUALS","value":"x"}]}}}`,
			"aggregationRequest.repositoryAggregation.imageTags", findings.ReasonFieldValidationFailed},
		{"unknown member of a filter", `{"aggregationType":"REPOSITORY","aggregationRequest":{"repositoryAggregation":{"repositories":[{"comparison":"EQUALS","value":"x","colour":"red"}]}}}`,
			"aggregationRequest.repositoryAggregation.repositories", findings.ReasonFieldValidationFailed},
		{"wrong enum", `{"aggregationType":"FINDING_TYPE","aggregationRequest":{"findingTypeAggregation":{"findingType":"MALWARE"}}}`,
			"aggregationRequest.findingTypeAggregation.findingType", findings.ReasonFieldValidationFailed},
		{"too many filters", `{"aggregationType":"REPOSITORY","aggregationRequest":{"repositoryAggregation":{"repositories":[]}}}`,
			"aggregationRequest.repositoryAggregation.repositories", findings.ReasonFieldValidationFailed},
		{"wrong JSON type", `{"aggregationType":"REPOSITORY","aggregationRequest":{"repositoryAggregation":{"repositories":"x"}}}`,
			"aggregationRequest.repositoryAggregation.repositories", findings.ReasonCannotParse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := signed(t, h, "POST", "/findings/aggregation/list", "inspector2", []byte(tc.body))
			var out struct {
				Reason string `json:"reason"`
				Fields []struct {
					Name string `json:"name"`
				} `json:"fields"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != 400 || rec.Header().Get("X-Amzn-ErrorType") != errValidation {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if out.Reason != tc.reason || len(out.Fields) == 0 || out.Fields[0].Name != tc.field {
				t.Errorf("reason %s fields %+v, want %s %s (%s)", out.Reason, out.Fields, tc.reason, tc.field, rec.Body)
			}
		})
	}
}

// FuzzDecodeAggregation: whatever the body, the decoder returns a request or a validation
// error, and never panics.
func FuzzDecodeAggregation(f *testing.F) {
	for _, s := range []string{`{}`, `{"aggregationType":"REPOSITORY"}`,
		`{"aggregationType":"AWS_ECR_CONTAINER","aggregationRequest":{"awsEcrContainerAggregation":{"lastInUseAt":[{"startInclusive":1}],"inUseCount":[{"lowerInclusive":1}]}}}`,
		`{"aggregationType":"TITLE","aggregationRequest":{"titleAggregation":{"titles":[{"comparison":"PREFIX","value":"CVE"}],"findingType":"PACKAGE_VULNERABILITY"}}}`,
		`{"aggregationType":"REPOSITORY","aggregationRequest":{"repositoryAggregation":null,"titleAggregation":{}}}`, `[]`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := decodeAggregation(body, "ListFindingAggregations")
		if err != nil && !errors.Is(err, findings.ErrInvalid) {
			t.Fatalf("%q: %v is not a validation error", body, err)
		}
	})
}
