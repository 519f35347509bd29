package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWebhookWants(t *testing.T) {
	for _, tc := range []struct {
		types      []string
		detailType string
		want       bool
	}{
		{nil, DetailTypeImageAction, true},
		{nil, DetailTypeAPICall, false}, // opt-in
		{[]string{DetailTypeAPICall}, DetailTypeAPICall, true},
		{[]string{DetailTypeAPICall}, DetailTypeImageAction, false},
		{[]string{DetailTypeImageScan}, DetailTypeAPICall, false},
	} {
		if got := (Webhook{DetailTypes: tc.types}).Wants(tc.detailType); got != tc.want {
			t.Errorf("a webhook with %q wants %q: %v", tc.types, tc.detailType, got)
		}
	}
	if AnyWants([]Webhook{{}, {DetailTypes: []string{DetailTypeImageScan}}}, DetailTypeAPICall) {
		t.Error("no webhook asked for CloudTrail events")
	}
	if _, err := ParseConfig([]byte("webhooks:\n  - url: http://127.0.0.1:1/\n    detail_types: [\"AWS API Call via CloudTrail\"]\n")); err != nil {
		t.Errorf("a webhook may ask for CloudTrail events: %v", err)
	}
}

func TestAPICall(t *testing.T) {
	o := Origin{Account: "123456789012", Region: "eu-west-1"}
	at := time.Date(2026, 12, 4, 7, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		call     APICall
		readOnly bool
		want     map[string]any // fields of the envelope, dotted
	}{
		{"allowed push", APICall{Service: "ecr", Action: "ecr:PutImage", AccessKeyID: "LAKCI", UserName: "ci", SourceIP: "10.1.2.3",
			UserAgent: "crane", Repository: "team-a/app", At: at}, false, map[string]any{
			"detail-type": DetailTypeAPICall, "source": "aws.ecr", "account": "123456789012", "region": "eu-west-1",
			"time": "2026-12-04T07:00:00Z", "resources.0": "arn:aws:ecr:eu-west-1:123456789012:repository/team-a/app",
			"detail.eventSource": "ecr.amazonaws.com", "detail.eventName": "PutImage", "detail.eventTime": "2026-12-04T07:00:00Z",
			"detail.awsRegion": "eu-west-1", "detail.sourceIPAddress": "10.1.2.3", "detail.userAgent": "crane",
			"detail.userIdentity.type": "IAMUser", "detail.userIdentity.arn": "arn:aws:iam::123456789012:user/ci",
			"detail.userIdentity.accessKeyId": "LAKCI", "detail.userIdentity.userName": "ci", "detail.userIdentity.accountId": "123456789012",
			"detail.requestParameters.repositoryName": "team-a/app", "detail.requestParameters.registryId": "123456789012",
			"detail.readOnly": false, "detail.eventType": "AwsApiCall", "detail.recipientAccountId": "123456789012", "detail.errorCode": nil,
		}},
		{"anonymous refusal", APICall{Service: "ecr", Action: "ecr:BatchGetImage", Repository: "private", ErrorCode: "AccessDenied",
			ErrorMessage: "User: anonymous is not authorized", At: at}, true, map[string]any{
			"detail.userIdentity.type": "AWSAccount", "detail.userIdentity.accountId": "anonymous", "detail.userIdentity.arn": nil,
			"detail.errorCode": "AccessDenied", "detail.errorMessage": "User: anonymous is not authorized", "detail.readOnly": true,
		}},
		{"inspector, no repository", APICall{Service: "inspector2", Action: "inspector2:CreateFilter", AccessKeyID: "LAKI", UserName: "i", At: at}, false,
			map[string]any{"source": "aws.inspector2", "detail.eventSource": "inspector2.amazonaws.com", "detail.eventName": "CreateFilter",
				"resources.0": nil, "detail.requestParameters.repositoryName": nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := o.APICall(tc.call, tc.readOnly)
			if err != nil {
				t.Fatal(err)
			}
			b, err := MarshalEnvelope(ev)
			if err != nil {
				t.Fatal(err)
			}
			var env map[string]any
			if err := json.Unmarshal(b, &env); err != nil {
				t.Fatal(err)
			}
			for path, want := range tc.want {
				if got := lookup(env, path); got != want {
					t.Errorf("%s = %v, want %v", path, got, want)
				}
			}
		})
	}
	if _, err := o.APICall(APICall{Service: "ecr", Action: "PutImage"}, false); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("an action without its service: %v", err)
	}
}

// lookup reads a dotted path ("resources.0" indexes a list) from decoded JSON.
func lookup(v any, path string) any {
	for len(path) > 0 {
		key, rest, _ := strings.Cut(path, ".")
		switch x := v.(type) {
		case map[string]any:
			v = x[key]
		case []any:
			i := int(key[0] - '0')
			if len(key) != 1 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
		path = rest
	}
	return v
}
