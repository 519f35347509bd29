// Package store holds the metadata model shared by Lading's faces and workers — repositories,
// manifests, tags, upload sessions, access keys — and the errors its drivers return.
// The interfaces over it are owned by the packages that use them; store/sqlite implements them.
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Errors returned by drivers, for callers to test with errors.Is.
var (
	ErrRepositoryNotFound = errors.New("repository not found")
	ErrRepositoryExists   = errors.New("repository already exists")
	ErrRepositoryNotEmpty = errors.New("repository contains images")
	ErrManifestNotFound   = errors.New("manifest not found")
	ErrTagNotFound        = errors.New("tag not found")
	ErrBlobUnknown        = errors.New("blob not linked into repository")
	ErrManifestUnknown    = errors.New("referenced manifest not in repository")
	ErrUploadNotFound     = errors.New("upload not found")
	// ErrReferencedByIndex means a manifest is a child of an index in the same repository.
	ErrReferencedByIndex = errors.New("manifest is referenced by an index")
	// ErrTagImmutable means a tag of an IMMUTABLE repository would move to another manifest.
	ErrTagImmutable = errors.New("tag is immutable")
	// ErrImageAlreadyExists refuses a push that would change nothing (PutOptions.RefuseUnchanged).
	ErrImageAlreadyExists = errors.New("image already exists")
	ErrAccessKeyFound     = errors.New("access key already exists")
	ErrNotFound           = errors.New("not found")
)

// Tag mutability values, as ECR names them.
const (
	TagMutable   = "MUTABLE"
	TagImmutable = "IMMUTABLE"
)

// Repository is a named collection of manifests, tags and blob links.
type Repository struct {
	Name           string
	CreatedAt      time.Time
	TagMutability  string
	ScanOnPush     bool
	EncryptionType string
	KMSKey         string
	Tags           map[string]string // resource tags (ECR TagResource), not image tags
}

// Reference kinds in a manifest.
const (
	RefConfig   = "config"
	RefLayer    = "layer"
	RefManifest = "manifest"
)

// Reference is something a manifest points at.
type Reference struct {
	Kind      string
	Digest    string
	Size      int64
	MediaType string
	// Required references must already exist in the repository; non-distributable layers do not.
	Required bool
	// Platform is "os/arch[/variant]" for an index's child manifests.
	Platform string
}

// Manifest is a stored image manifest, image index or artifact manifest.
type Manifest struct {
	Repository      string
	Digest          string
	MediaType       string
	ArtifactType    string
	ConfigMediaType string
	ConfigDigest    string
	Subject         string
	Annotations     map[string]string
	Size            int64
	ImageSize       int64
	Content         []byte
	PushedAt        time.Time
	LastPulledAt    time.Time
	Tags            []string
}

// Descriptor summarises a manifest that refers to another one (for the referrers API).
type Descriptor struct {
	MediaType    string
	Digest       string
	Size         int64
	ArtifactType string
	Annotations  map[string]string
}

// PutOptions tune PutManifest.
type PutOptions struct {
	// CreateRepository creates the repository on its first push.
	CreateRepository bool
	// RefuseUnchanged refuses with ErrImageAlreadyExists a push that changes nothing: the
	// manifest is stored already and every tag given names it already (ECR's PutImage does).
	RefuseUnchanged bool
	// Generated marks a manifest Lading itself pushes (an image's SBOM referrer): no push
	// event, no scan. No face sets it.
	Generated bool
}

// PutManifestResult says what a manifest push changed.
type PutManifestResult struct {
	Created bool // the manifest was not in the repository before
	// RepositoryCreated is set when the push created the repository.
	RepositoryCreated bool
}

// AccessKey is an access key id and its secret. The secret is kept, not hashed, because SigV4
// verification needs it to recompute signatures (as AWS does).
type AccessKey struct {
	ID          string
	Secret      string
	Description string
	CreatedAt   time.Time
	// Name is the key's IAM user name (arn:aws:iam::<registry id>:user/<name>), unique.
	Name string
	// Preset names the key's policy among internal/auth's presets; when empty, Policy holds
	// the policy document.
	Preset string
	Policy string
}

// SecretChange replaces a stored secret, provided it still holds Old: the secret of access key
// AccessKeyID or, when that is empty, the value of setting Setting.
type SecretChange struct {
	AccessKeyID string
	Setting     string
	Old, New    string
}

// ImageID names one image entry as ECR lists them: a digest and one of its tags, or the digest
// alone for an untagged manifest.
type ImageID struct {
	Digest string
	Tag    string
}

// Tag status filters of ECR's ListImages and DescribeImages.
const (
	TagStatusTagged   = "TAGGED"
	TagStatusUntagged = "UNTAGGED"
	TagStatusAny      = "ANY"
)

// OutboxEvent is one EventBridge-shaped event in the metadata store's outbox, written in the
// same transaction as the change it reports and delivered later by internal/events.
// The whole envelope (id, account, region) is fixed when the event is written, so that every
// delivery of it, to every webhook and after every restart, carries the same bytes.
type OutboxEvent struct {
	// Seq is assigned by the store: increasing in commit order, never reused.
	Seq int64
	// ID is the envelope id (a UUID); the store assigns one when it is empty. Appending an
	// event whose ID is already in the outbox is a no-op, so a retried append is harmless.
	ID         string
	DetailType string // "ECR Image Action", "Inspector2 Finding", ...
	Source     string // "aws.ecr", "aws.inspector2"
	Account    string // the registry id
	Region     string
	Time       time.Time
	Resources  []string        // ARNs; nil is written as []
	Detail     json.RawMessage // a JSON object
	// DetailCompact says Detail is already a compact JSON object, as json.Marshal of a
	// struct writes it: the store takes it as is instead of checking and compacting it again
	// (which cost a re-evaluation's single writer as much as the insert of the event).
	DetailCompact bool
	CreatedAt     time.Time // set by the store
}

// StoredDetail is the event's detail as the outbox keeps it: compact JSON, an object. It fails
// with ErrBadOutboxEvent when the detail is not a JSON object.
func (ev OutboxEvent) StoredDetail() (string, error) {
	if ev.DetailCompact && len(ev.Detail) > 0 && ev.Detail[0] == '{' {
		return string(ev.Detail), nil
	}
	var detail bytes.Buffer
	if err := json.Compact(&detail, ev.Detail); err != nil {
		return "", fmt.Errorf("%w: %s: detail: %w", ErrBadOutboxEvent, ev.DetailType, err)
	}
	if detail.Len() == 0 || detail.Bytes()[0] != '{' {
		return "", fmt.Errorf("%w: %s: detail must be a JSON object", ErrBadOutboxEvent, ev.DetailType)
	}
	return detail.String(), nil
}

// ErrBadOutboxEvent means an event cannot be written to the outbox as given.
var ErrBadOutboxEvent = errors.New("invalid outbox event")

// BlobLink is a blob made visible in a repository (a row of repository_blobs).
type BlobLink struct {
	Repository string
	Digest     string
	Size       int64
	LinkedAt   time.Time
}

// InventoryPrune counts the cached inventories garbage collection removed (or would remove).
type InventoryPrune struct {
	LayerInventories int64
	ImageInventories int64
	Bytes            int64 // their stored (compressed) size
}

// Lifecycle policy errors.
var (
	ErrLifecyclePolicyNotFound  = errors.New("lifecycle policy not found")
	ErrLifecyclePreviewNotFound = errors.New("lifecycle policy preview not found")
)

// LifecyclePolicy is a repository's lifecycle policy.
type LifecyclePolicy struct {
	Repository      string
	Text            string
	LastEvaluatedAt time.Time // zero before the first run
}

// LifecyclePreview is the last lifecycle policy preview of a repository.
type LifecyclePreview struct {
	Repository string
	Text       string
	Status     string
	Results    []LifecyclePreviewResult
	CreatedAt  time.Time
}

// LifecyclePreviewResult is an image a preview expires.
type LifecyclePreviewResult struct {
	Digest       string    `json:"digest"`
	Tags         []string  `json:"tags,omitempty"`
	PushedAt     time.Time `json:"pushedAt"`
	RulePriority int       `json:"rulePriority"`
}
