// Package pullgate is the pull-time policy gate (beyond ECR; Harbor has it): a registry default
// and per-repository overrides of "refuse pulls of images with ACTIVE, unsuppressed findings at
// or above SEVERITY, first observed more than GRACE ago", with identities the policy exempts.
// The /v2/ face asks Check before it serves a manifest; the rule is here, the findings are the
// store's (suppression is stored with each finding, see internal/suppression).
package pullgate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Severities a gate can be set at, least severe first (Inspector's words).
var severities = []string{"INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

// Off is the severity of a repository override that turns the registry's gate off.
const Off = "NONE"

// Rank orders severities, 0 for one the gate does not know (UNTRIAGED, UNDEFINED).
func Rank(severity string) int { return slices.Index(severities, severity) + 1 }

// Policy is a gate: Severity "" or Off lets every pull through.
type Policy struct {
	Severity string        `json:"severity"`
	Grace    time.Duration `json:"grace"`
	// Exempt are the identities the gate lets through: access key names, access key ids or
	// IAM user ARNs (arn:aws:iam::<registry id>:user/<name>).
	Exempt []string `json:"exempt,omitempty"`
}

// Enabled reports whether the policy refuses anything.
func (p Policy) Enabled() bool { return p.Severity != "" && p.Severity != Off }

// Validate checks a policy.
func (p Policy) Validate() error {
	if p.Severity != "" && p.Severity != Off && Rank(p.Severity) == 0 {
		return fmt.Errorf("%w: severity %q is not one of %s or %s", ErrInvalid, p.Severity, strings.Join(severities, ", "), Off)
	}
	if p.Grace < 0 {
		return fmt.Errorf("%w: grace %s is negative", ErrInvalid, p.Grace)
	}
	for _, e := range p.Exempt {
		if strings.TrimSpace(e) == "" {
			return fmt.Errorf("%w: an exempt identity is empty", ErrInvalid)
		}
	}
	return nil
}

// Errors.
var (
	// ErrRefused is wrapped by the refusal of a pull; its text names the findings.
	ErrRefused = errors.New("pull refused by the pull-time policy gate")
	ErrInvalid = errors.New("invalid pull gate")
)

// Caller is who pulls, as the registry's authentication knows them (zero when anonymous). The
// gate takes it rather than auth's Principal: the store, which auth's tests use, imports this
// package.
type Caller struct {
	AccessKeyID string
	Name        string // the access key's name (its IAM user name)
}

// Store holds the per-repository overrides and finds what blocks an image.
type Store interface {
	// RepositoryPullGate returns a repository's override; ok is false when it has none.
	RepositoryPullGate(ctx context.Context, repo string) (p Policy, ok bool, err error)
	// BlockingFindings returns the vulnerability ids of the ACTIVE, unsuppressed findings of
	// the image's scan of scanType with a severity of rank minRank or more, first observed
	// at or before observedBy, most severe first.
	BlockingFindings(ctx context.Context, repo, digest, scanType string, minRank int, observedBy time.Time) ([]string, error)
}

// Gate decides pulls.
type Gate struct {
	store      Store
	def        Policy
	registryID string
	scanType   func(ctx context.Context) (string, error)
	now        func() time.Time
	// page names where a person reads an image's findings (the console's image page); nil: none.
	page func(repo, digest string) string
}

// New returns a gate with the registry's default policy (from `lading serve`'s flags).
// scanType tells the scan type whose findings count (the registry's current one).
func New(st Store, def Policy, registryID string, scanType func(ctx context.Context) (string, error), now func() time.Time) (*Gate, error) {
	if err := def.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Gate{store: st, def: def, registryID: registryID, scanType: scanType, now: now}, nil
}

// WithPage makes refusals name where the image's findings are read (set before the gate is used).
func (g *Gate) WithPage(page func(repo, digest string) string) *Gate {
	g.page = page
	return g
}

// MaxNamed is how many findings a refusal names.
const MaxNamed = 5

// Check returns nil when p may pull repo@digest, and an error wrapping ErrRefused naming the
// findings that block it otherwise.
func (g *Gate) Check(ctx context.Context, p Caller, repo, digest string) error {
	pol, ok, err := g.store.RepositoryPullGate(ctx, repo)
	if err != nil {
		return fmt.Errorf("pull gate of %s: %w", repo, err)
	}
	if !ok {
		pol = g.def
	}
	if !pol.Enabled() || g.exempt(pol, p) {
		return nil
	}
	scanType, err := g.scanType(ctx)
	if err != nil {
		return err
	}
	ids, err := g.store.BlockingFindings(ctx, repo, digest, scanType, Rank(pol.Severity), g.now().Add(-pol.Grace))
	if err != nil {
		return fmt.Errorf("pull gate of %s@%s: %w", repo, digest, err)
	}
	if len(ids) == 0 {
		return nil
	}
	named := ids[:min(len(ids), MaxNamed)]
	more := ""
	if len(ids) > len(named) {
		more = fmt.Sprintf(" and %d more", len(ids)-len(named))
	}
	noun := "findings"
	if len(ids) == 1 {
		noun = "finding"
	}
	grace := ""
	if pol.Grace > 0 {
		grace = " first observed more than " + pol.Grace.String() + " ago"
	}
	see := ""
	if g.page != nil {
		see = "; see " + g.page(repo, digest)
	}
	return fmt.Errorf("%w: %s@%s has %d ACTIVE %s at or above %s%s: %s%s%s", ErrRefused, repo, digest, len(ids), noun, pol.Severity, grace,
		strings.Join(named, ", "), more, see)
}

// exempt reports whether the policy names the caller.
func (g *Gate) exempt(pol Policy, p Caller) bool {
	if p.AccessKeyID == "" {
		return false
	}
	arn := "arn:aws:iam::" + g.registryID + ":user/" + p.Name
	for _, e := range pol.Exempt {
		if e == p.Name || e == p.AccessKeyID || e == arn {
			return true
		}
	}
	return false
}
