package events

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lading-registry/lading/internal/store"
)

// DetailTypeAPICall is the detail type of the events CloudTrail sends EventBridge for API calls.
// Webhooks receive them only when they ask for them (detail_types): every mutating call makes
// one, which would flood a webhook that only wanted image and scan events.
const DetailTypeAPICall = "AWS API Call via CloudTrail"

// Wants reports whether the webhook receives events of detailType.
func (w Webhook) Wants(detailType string) bool {
	if len(w.DetailTypes) > 0 {
		return slices.Contains(w.DetailTypes, detailType)
	}
	return detailType != DetailTypeAPICall // opt-in
}

// AnyWants reports whether some webhook receives events of detailType, so that events nobody
// receives are not written.
func AnyWants(hooks []Webhook, detailType string) bool {
	for _, h := range hooks {
		if h.Wants(detailType) {
			return true
		}
	}
	return false
}

// APICall is one call to a face, authorized or refused, as the audit records it.
type APICall struct {
	// Service is the face's signing name: "ecr" (the registry face's calls are ECR's too),
	// "inspector2".
	Service string
	// Action is the IAM action, "ecr:PutImage"; the event name is its part after the colon.
	Action string
	// AccessKeyID and UserName identify the caller; both empty for an anonymous caller.
	AccessKeyID string
	UserName    string
	SourceIP    string
	UserAgent   string
	// Repository is the repository the call was about, if any.
	Repository string
	// ErrorCode and ErrorMessage are set when the call was refused or failed.
	ErrorCode    string
	ErrorMessage string
	At           time.Time // zero means now
}

type userIdentity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	ARN         string `json:"arn,omitempty"`
	AccountID   string `json:"accountId"`
	AccessKeyID string `json:"accessKeyId,omitempty"`
	UserName    string `json:"userName,omitempty"`
}

type apiCallDetail struct {
	EventVersion       string            `json:"eventVersion"`
	UserIdentity       userIdentity      `json:"userIdentity"`
	EventTime          string            `json:"eventTime"`
	EventSource        string            `json:"eventSource"`
	EventName          string            `json:"eventName"`
	AWSRegion          string            `json:"awsRegion"`
	SourceIPAddress    string            `json:"sourceIPAddress"`
	UserAgent          string            `json:"userAgent"`
	ErrorCode          string            `json:"errorCode,omitempty"`
	ErrorMessage       string            `json:"errorMessage,omitempty"`
	RequestParameters  map[string]string `json:"requestParameters"`
	ResponseElements   any               `json:"responseElements"`
	RequestID          string            `json:"requestID"`
	EventID            string            `json:"eventID"`
	ReadOnly           bool              `json:"readOnly"`
	EventType          string            `json:"eventType"`
	ManagementEvent    bool              `json:"managementEvent"`
	RecipientAccountID string            `json:"recipientAccountId"`
	EventCategory      string            `json:"eventCategory"`
}

// APICall builds an "AWS API Call via CloudTrail" event (source aws.<service>): the
// CloudTrail record of the call in its detail, requestParameters holding only the registry and
// repository.
func (o Origin) APICall(c APICall, readOnly bool) (store.OutboxEvent, error) {
	_, name, ok := strings.Cut(c.Action, ":")
	if c.Service == "" || !ok || name == "" {
		return store.OutboxEvent{}, fmt.Errorf("%w: API call needs a service and an action service:Name", ErrInvalidEvent)
	}
	at := c.At
	if at.IsZero() {
		at = time.Now()
	}
	id := userIdentity{Type: "IAMUser", PrincipalID: c.AccessKeyID, AccountID: o.Account, AccessKeyID: c.AccessKeyID, UserName: c.UserName,
		ARN: fmt.Sprintf("arn:%s:iam::%s:user/%s", o.partition(), o.Account, c.UserName)}
	if c.AccessKeyID == "" {
		// How CloudTrail writes an anonymous caller.
		id = userIdentity{Type: "AWSAccount", AccountID: "anonymous"}
	}
	params := map[string]string{"registryId": o.Account}
	var resources []string
	if c.Repository != "" {
		params["repositoryName"] = c.Repository
		resources = []string{o.RepositoryARN(c.Repository)}
	}
	source := "aws." + c.Service
	return o.event(DetailTypeAPICall, source, at, resources, apiCallDetail{
		EventVersion:       "1.08",
		UserIdentity:       id,
		EventTime:          at.UTC().Format(timeLayout),
		EventSource:        c.Service + ".amazonaws.com",
		EventName:          name,
		AWSRegion:          o.Region,
		SourceIPAddress:    c.SourceIP,
		UserAgent:          c.UserAgent,
		ErrorCode:          c.ErrorCode,
		ErrorMessage:       c.ErrorMessage,
		RequestParameters:  params,
		RequestID:          uuid.NewString(),
		EventID:            uuid.NewString(),
		ReadOnly:           readOnly,
		EventType:          "AwsApiCall",
		ManagementEvent:    true,
		RecipientAccountID: o.Account,
		EventCategory:      "Management",
	})
}
