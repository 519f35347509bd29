package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lading-registry/lading/internal/store"
)

// Detail types and sources, as EventBridge names them.
const (
	DetailTypeImageAction      = "ECR Image Action"
	DetailTypeImageScan        = "ECR Image Scan"
	DetailTypeInspectorScan    = "Inspector2 Scan"
	DetailTypeInspectorFinding = "Inspector2 Finding"

	SourceECR        = "aws.ecr"
	SourceInspector2 = "aws.inspector2"
)

// Values of ImageAction.Action.
const (
	ActionPush   = "PUSH"
	ActionDelete = "DELETE"
)

// ErrInvalidEvent means an event builder was given incomplete or impossible input.
var ErrInvalidEvent = errors.New("invalid event")

// timeLayout is the envelope's "time": ISO-8601 in UTC, to the second, as EventBridge writes it.
const timeLayout = "2006-01-02T15:04:05Z"

// findingTimeLayout is how Inspector's EventBridge findings write timestamps ("Wed Sep 04
// 16:55:38.411 UTC 2024"), unlike its API, which uses epoch numbers.
const findingTimeLayout = "Mon Jan 02 15:04:05.000 MST 2006"

// Origin is who the events say they come from: the registry id as the account, and the
// region the registry presents itself in. Its methods build outbox events; they do no I/O.
type Origin struct {
	Account string
	Region  string
}

func (o Origin) partition() string {
	switch {
	case strings.HasPrefix(o.Region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(o.Region, "us-gov-"):
		return "aws-us-gov"
	default:
		return "aws"
	}
}

// RepositoryARN is arn:aws:ecr:<region>:<account>:repository/<name>.
func (o Origin) RepositoryARN(repository string) string {
	return fmt.Sprintf("arn:%s:ecr:%s:%s:repository/%s", o.partition(), o.Region, o.Account, repository)
}

// ImageResourceID is the id Inspector gives an image: the repository ARN, a slash, the digest.
func (o Origin) ImageResourceID(repository, digest string) string {
	return o.RepositoryARN(repository) + "/" + digest
}

func (o Origin) event(detailType, source string, at time.Time, resources []string, detail any) (store.OutboxEvent, error) {
	if o.Account == "" || o.Region == "" {
		return store.OutboxEvent{}, fmt.Errorf("%w: %s: origin needs an account and a region", ErrInvalidEvent, detailType)
	}
	body, err := marshal(detail)
	if err != nil {
		return store.OutboxEvent{}, fmt.Errorf("%s detail: %w", detailType, err)
	}
	if at.IsZero() {
		at = time.Now()
	}
	if resources == nil {
		resources = []string{}
	}
	return store.OutboxEvent{
		ID:         uuid.NewString(),
		DetailType: detailType,
		Source:     source,
		Account:    o.Account,
		Region:     o.Region,
		Time:       at.UTC(),
		Resources:  resources,
		Detail:     body,
		// json's encoder writes compact JSON, and every detail is a struct: an object.
		DetailCompact: true,
	}, nil
}

// marshal is json.Marshal without HTML escaping, so that "&&" in a remediation stays readable.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

type envelope struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// MarshalEnvelope is the JSON a webhook receives for ev: the EventBridge envelope
// {version "0", id, detail-type, source, account, time, region, resources, detail}.
// The same event always gives the same bytes.
func MarshalEnvelope(ev store.OutboxEvent) ([]byte, error) {
	resources := ev.Resources
	if resources == nil {
		resources = []string{}
	}
	detail := ev.Detail
	if len(detail) == 0 {
		detail = json.RawMessage("{}")
	}
	b, err := marshal(envelope{
		Version:    "0",
		ID:         ev.ID,
		DetailType: ev.DetailType,
		Source:     ev.Source,
		Account:    ev.Account,
		Time:       ev.Time.UTC().Format(timeLayout),
		Region:     ev.Region,
		Resources:  resources,
		Detail:     detail,
	})
	if err != nil {
		return nil, fmt.Errorf("marshal event %s: %w", ev.ID, err)
	}
	return b, nil
}

// ImageAction is a manifest pushed to or deleted from a repository ("ECR Image Action").
type ImageAction struct {
	Action     string // ActionPush or ActionDelete
	Repository string
	Digest     string
	// Tag is the tag the action was made through; empty for a push or delete by digest.
	Tag               string
	ManifestMediaType string
	// ArtifactMediaType is the config media type of an image, or the artifact type.
	ArtifactMediaType string
	At                time.Time // zero means now
}

type imageActionDetail struct {
	Result            string `json:"result"`
	RepositoryName    string `json:"repository-name"`
	ImageDigest       string `json:"image-digest"`
	ActionType        string `json:"action-type"`
	ImageTag          string `json:"image-tag,omitempty"`
	ManifestMediaType string `json:"manifest-media-type,omitempty"`
	ArtifactMediaType string `json:"artifact-media-type,omitempty"`
}

// ImageAction builds an "ECR Image Action" event (source aws.ecr, no resources). Lading
// reports only actions that succeeded, so result is always SUCCESS.
func (o Origin) ImageAction(a ImageAction) (store.OutboxEvent, error) {
	if a.Action != ActionPush && a.Action != ActionDelete {
		return store.OutboxEvent{}, fmt.Errorf("%w: image action %q: want %s or %s", ErrInvalidEvent, a.Action, ActionPush, ActionDelete)
	}
	if a.Repository == "" || a.Digest == "" {
		return store.OutboxEvent{}, fmt.Errorf("%w: image action needs a repository and a digest", ErrInvalidEvent)
	}
	return o.event(DetailTypeImageAction, SourceECR, a.At, nil, imageActionDetail{
		Result:            "SUCCESS",
		RepositoryName:    a.Repository,
		ImageDigest:       a.Digest,
		ActionType:        a.Action,
		ImageTag:          a.Tag,
		ManifestMediaType: a.ManifestMediaType,
		ArtifactMediaType: a.ArtifactMediaType,
	})
}

// Severities a scan may count findings under: ECR basic scanning's, plus Inspector's UNTRIAGED.
var severities = map[string]bool{
	"CRITICAL": true, "HIGH": true, "MEDIUM": true, "LOW": true, "INFORMATIONAL": true, "UNDEFINED": true, "UNTRIAGED": true,
}

// ScanCompleted is a finished scan of one image.
type ScanCompleted struct {
	Repository string
	Digest     string
	Tags       []string
	// Status is the basic scan's outcome, COMPLETE (the default) or FAILED; the enhanced event
	// is only for a completed initial scan.
	Status string
	// SeverityCounts counts the image's findings by severity (CRITICAL, HIGH, MEDIUM, LOW,
	// INFORMATIONAL, UNDEFINED, UNTRIAGED). Missing severities count zero.
	SeverityCounts map[string]int
	At             time.Time // zero means now
}

func (s ScanCompleted) validate(detailType string) error {
	if s.Repository == "" || s.Digest == "" {
		return fmt.Errorf("%w: %s needs a repository and a digest", ErrInvalidEvent, detailType)
	}
	keys := make([]string, 0, len(s.SeverityCounts))
	for k := range s.SeverityCounts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !severities[k] {
			return fmt.Errorf("%w: %s: unknown severity %q", ErrInvalidEvent, detailType, k)
		}
		if s.SeverityCounts[k] < 0 {
			return fmt.Errorf("%w: %s: negative count for %s", ErrInvalidEvent, detailType, k)
		}
	}
	return nil
}

func nonNil(tags []string) []string {
	if tags == nil {
		return []string{}
	}
	return tags
}

type imageScanDetail struct {
	ScanStatus     string         `json:"scan-status"`
	RepositoryName string         `json:"repository-name"`
	SeverityCounts map[string]int `json:"finding-severity-counts"`
	ImageDigest    string         `json:"image-digest"`
	ImageTags      []string       `json:"image-tags"`
}

// ImageScan builds an "ECR Image Scan" event for a completed basic scan (source aws.ecr,
// resources the repository ARN). As in ECR, only non-zero severity counts are present.
func (o Origin) ImageScan(s ScanCompleted) (store.OutboxEvent, error) {
	if err := s.validate(DetailTypeImageScan); err != nil {
		return store.OutboxEvent{}, err
	}
	status := s.Status
	switch status {
	case "":
		status = "COMPLETE"
	case "COMPLETE", "FAILED", "UNSUPPORTED_IMAGE":
		// A basic scan ends in one of these (UNSUPPORTED_IMAGE: no supported operating system).
	default:
		return store.OutboxEvent{}, fmt.Errorf("%w: %s: scan status %q: want COMPLETE, FAILED or UNSUPPORTED_IMAGE", ErrInvalidEvent, DetailTypeImageScan, status)
	}
	counts := map[string]int{}
	for k, n := range s.SeverityCounts {
		if n > 0 {
			counts[k] = n
		}
	}
	return o.event(DetailTypeImageScan, SourceECR, s.At, []string{o.RepositoryARN(s.Repository)}, imageScanDetail{
		ScanStatus:     status,
		RepositoryName: s.Repository,
		SeverityCounts: counts,
		ImageDigest:    s.Digest,
		ImageTags:      nonNil(s.Tags),
	})
}

type inspectorCounts struct {
	Critical int `json:"CRITICAL"`
	High     int `json:"HIGH"`
	Medium   int `json:"MEDIUM"`
	Total    int `json:"TOTAL"`
}

type inspectorScanDetail struct {
	ScanStatus     string          `json:"scan-status"`
	RepositoryName string          `json:"repository-name"`
	SeverityCounts inspectorCounts `json:"finding-severity-counts"`
	ImageDigest    string          `json:"image-digest"`
	ImageTags      []string        `json:"image-tags"`
	Version        string          `json:"version"`
}

// InspectorScan builds an "Inspector2 Scan" event for a completed initial enhanced scan
// (source aws.inspector2, resources the repository ARN). As Inspector does, repository-name
// holds the repository ARN, and the counts are always CRITICAL, HIGH, MEDIUM and TOTAL, the
// total being every finding whatever its severity. Status is ignored.
func (o Origin) InspectorScan(s ScanCompleted) (store.OutboxEvent, error) {
	if err := s.validate(DetailTypeInspectorScan); err != nil {
		return store.OutboxEvent{}, err
	}
	c := inspectorCounts{
		Critical: s.SeverityCounts["CRITICAL"],
		High:     s.SeverityCounts["HIGH"],
		Medium:   s.SeverityCounts["MEDIUM"],
	}
	for _, n := range s.SeverityCounts {
		c.Total += n
	}
	arn := o.RepositoryARN(s.Repository)
	return o.event(DetailTypeInspectorScan, SourceInspector2, s.At, []string{arn}, inspectorScanDetail{
		ScanStatus:     "INITIAL_SCAN_COMPLETE",
		RepositoryName: arn,
		SeverityCounts: c,
		ImageDigest:    s.Digest,
		ImageTags:      nonNil(s.Tags),
		Version:        "1.0",
	})
}
