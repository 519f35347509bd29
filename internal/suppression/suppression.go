// Package suppression holds suppression rules, Inspector's filters (CreateFilter, ListFilters,
// UpdateFilter, DeleteFilter): a name, an action (SUPPRESS or NONE), the same filter criteria
// as ListFindings (internal/findings, validated by the same code), a reason and tags. An ACTIVE
// finding matched by a SUPPRESS rule shows as SUPPRESSED.
//
// Whether a finding is suppressed is stored with the finding, not computed when it is read:
// the finding queries (ListFindings, DescribeImageScanFindings and its counts, the pull gate)
// read one column, whatever the rules. The store recomputes it for every finding when a rule
// changes (in the rule's transaction, with an "Inspector2 Finding" event per finding whose
// status changes) and for each finding a scan or a re-evaluation writes with its detail (so a
// new finding matching a rule is SUPPRESSED from the start). A rule is not evaluated again
// when only an image's tags change.
package suppression

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/store"
)

// Action is what a rule does to the findings it matches.
type Action string

// Actions, as Inspector names them.
const (
	Suppress Action = "SUPPRESS"
	None     Action = "NONE"
)

// Rule is a suppression rule (Inspector's Filter).
type Rule struct {
	ARN         string
	Name        string
	Action      Action
	Description string
	Reason      string
	Criteria    findings.Criteria
	Tags        map[string]string
	Owner       string // the account that made it
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Errors of the rules.
var (
	ErrNotFound  = errors.New("suppression rule not found")
	ErrNameTaken = errors.New("a suppression rule with this name already exists")
)

// Announce builds the events of findings whose status a rule change changed (each with its
// detail, its image and the suppression now stored).
type Announce func(changed []findings.Listed) ([]store.OutboxEvent, error)

// Store keeps the rules and applies them to the stored findings. Each write recomputes, in its
// transaction, which findings are suppressed, and writes the events announce returns.
type Store interface {
	// CreateFilter stores a new rule; ErrNameTaken when its name is in use.
	CreateFilter(ctx context.Context, r Rule, announce Announce) error
	// UpdateFilter changes the rule with this ARN through change; ErrNotFound when there is
	// none, ErrNameTaken when change renames it to a name in use.
	UpdateFilter(ctx context.Context, arn string, change func(*Rule) error, announce Announce) (Rule, error)
	// DeleteFilter removes the rule with this ARN; ErrNotFound when there is none.
	DeleteFilter(ctx context.Context, arn string, announce Announce) (Rule, error)
	// ListFilters returns the rules matching q, oldest first (by creation time, then ARN),
	// after q.After, at most q.Limit.
	ListFilters(ctx context.Context, q ListQuery) ([]Rule, error)
}

// ListQuery selects rules.
type ListQuery struct {
	ARNs   []string // nil: any
	Action Action   // "": any
	// After, when set, is the last rule of the previous page (its creation time and ARN,
	// which order rules): a rule deleted since does not lose the place.
	After *Cursor
	Limit int
}

// Cursor is where a page of rules ends.
type Cursor struct {
	CreatedAt time.Time
	ARN       string
}

// Service manages rules for every face (Inspector's API, `lading vex import`, the console).
type Service struct {
	store           Store
	account, region string
	announce        Announce
	now             func() time.Time
}

// NewService returns the rules of a registry. announce builds the events of findings whose
// status a rule change changes (scanning.AnnounceListed); now may be nil (time.Now).
func NewService(st Store, account, region string, announce Announce, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, account: account, region: region, announce: announce, now: now}
}

// Limits of Inspector's model (and of its documentation for names).
const (
	MaxDescription  = 512
	MaxReason       = 512
	MaxTagKey       = 128
	MaxTagValue     = 256
	MaxTags         = 50
	DefaultPageSize = 100
	MaxPageSize     = 100
)

// namePattern is what Inspector's documentation allows in a filter's name.
// Compiled on first use, not at start: every command (`lading scan` too) pays for package
// initialisation, and these serve only some.
var namePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._-]{3,64}$`) })

// Input is what creating a rule takes, and what updating one may change (nil: unchanged).
type Input struct {
	Name        *string
	Action      *Action
	Description *string
	Reason      *string
	Criteria    *findings.Criteria
	Tags        map[string]string
}

func (in Input) validate(create bool) error {
	var fields []findings.FieldError
	bad := func(name, msg string) { fields = append(fields, findings.FieldError{Name: name, Message: msg}) }
	if create {
		if in.Name == nil {
			bad("name", "is required")
		}
		if in.Action == nil {
			bad("action", "is required")
		}
		if in.Criteria == nil {
			bad("filterCriteria", "is required")
		}
	}
	if in.Name != nil && !namePattern().MatchString(*in.Name) {
		bad("name", "must be 3 to 64 characters: letters, digits, '.', '_' and '-'")
	}
	if in.Action != nil && *in.Action != Suppress && *in.Action != None {
		bad("action", fmt.Sprintf("Value '%s' is not one of [NONE SUPPRESS]", *in.Action))
	}
	if in.Description != nil {
		if n := utf8.RuneCountInString(*in.Description); n < 1 || n > MaxDescription {
			bad("description", fmt.Sprintf("length must be between 1 and %d", MaxDescription))
		}
	}
	if in.Reason != nil {
		if n := utf8.RuneCountInString(*in.Reason); n < 1 || n > MaxReason {
			bad("reason", fmt.Sprintf("length must be between 1 and %d", MaxReason))
		}
	}
	if len(in.Tags) > MaxTags {
		bad("tags", fmt.Sprintf("must have at most %d tags", MaxTags))
	}
	for k, v := range in.Tags {
		if n := utf8.RuneCountInString(k); n < 1 || n > MaxTagKey || strings.HasPrefix(k, "aws:") {
			bad("tags."+k, fmt.Sprintf("keys must be 1 to %d characters and not start with aws:", MaxTagKey))
		}
		if utf8.RuneCountInString(v) > MaxTagValue {
			bad("tags."+k, fmt.Sprintf("values must be at most %d characters", MaxTagValue))
		}
	}
	if in.Criteria != nil {
		if err := findings.Validate("filterCriteria", *in.Criteria, nil); err != nil {
			var ve *findings.ValidationError
			if errors.As(err, &ve) {
				fields = append(fields, ve.Fields...)
			} else {
				return err
			}
		}
	}
	if len(fields) == 0 {
		return nil
	}
	slices.SortStableFunc(fields, func(a, b findings.FieldError) int { return strings.Compare(a.Name, b.Name) })
	return &findings.ValidationError{Reason: findings.ReasonFieldValidationFailed, Fields: fields}
}

// ruleARN names a new rule: arn:aws:inspector2:<region>:<account>:owner/<account>/filter/<id>.
// The id starts with the clock in nanoseconds, so rules made in the same millisecond (the
// stored creation time) still list in the order they were made: ListFilters orders by
// creation time, then ARN.
func (s *Service) ruleARN() (string, error) {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], uint64(time.Now().UnixNano()))
	if _, err := rand.Read(id[8:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("arn:aws:inspector2:%s:%s:owner/%s/filter/%s", s.region, s.account, s.account, hex.EncodeToString(id[:])), nil
}

// Create stores a new rule and applies it.
func (s *Service) Create(ctx context.Context, in Input) (Rule, error) {
	if err := in.validate(true); err != nil {
		return Rule{}, err
	}
	arn, err := s.ruleARN()
	if err != nil {
		return Rule{}, err
	}
	now := s.now().UTC()
	r := Rule{ARN: arn, Name: *in.Name, Action: *in.Action, Criteria: *in.Criteria, Tags: in.Tags, Owner: s.account,
		CreatedAt: now, UpdatedAt: now}
	if in.Description != nil {
		r.Description = *in.Description
	}
	if in.Reason != nil {
		r.Reason = *in.Reason
	}
	if err := s.store.CreateFilter(ctx, r, s.announce); err != nil {
		return Rule{}, fmt.Errorf("create suppression rule %s: %w", r.Name, err)
	}
	return r, nil
}

// Update changes a rule (the members of in that are set) and applies it again.
func (s *Service) Update(ctx context.Context, arn string, in Input) (Rule, error) {
	if n := utf8.RuneCountInString(arn); n < 1 || n > 128 {
		return Rule{}, findings.Invalid(findings.ReasonFieldValidationFailed, "filterArn", "length must be between 1 and 128")
	}
	if in.Tags != nil {
		return Rule{}, findings.Invalid(findings.ReasonFieldValidationFailed, "tags", "are not changed by an update")
	}
	if err := in.validate(false); err != nil {
		return Rule{}, err
	}
	now := s.now().UTC()
	r, err := s.store.UpdateFilter(ctx, arn, func(r *Rule) error {
		if in.Name != nil {
			r.Name = *in.Name
		}
		if in.Action != nil {
			r.Action = *in.Action
		}
		if in.Description != nil {
			r.Description = *in.Description
		}
		if in.Reason != nil {
			r.Reason = *in.Reason
		}
		if in.Criteria != nil {
			r.Criteria = *in.Criteria
		}
		r.UpdatedAt = now
		return nil
	}, s.announce)
	if err != nil {
		return Rule{}, fmt.Errorf("update suppression rule %s: %w", arn, err)
	}
	return r, nil
}

// Delete removes a rule; the findings only it suppressed become ACTIVE again.
func (s *Service) Delete(ctx context.Context, arn string) (Rule, error) {
	if n := utf8.RuneCountInString(arn); n < 1 || n > 128 {
		return Rule{}, findings.Invalid(findings.ReasonFieldValidationFailed, "arn", "length must be between 1 and 128")
	}
	r, err := s.store.DeleteFilter(ctx, arn, s.announce)
	if err != nil {
		return Rule{}, fmt.Errorf("delete suppression rule %s: %w", arn, err)
	}
	return r, nil
}

// ListInput selects a page of rules.
type ListInput struct {
	ARNs       []string
	Action     *Action
	MaxResults *int
	NextToken  *string
}

// ListOutput is a page of rules.
type ListOutput struct {
	Rules     []Rule
	NextToken string
}

// pageToken is a ListFilters nextToken: bound to the query it pages through.
type pageToken struct {
	Query     string `json:"q"`
	CreatedAt int64  `json:"t"` // Unix milliseconds
	ARN       string `json:"a"`
}

func listHash(in ListInput) string {
	arns := slices.Clone(in.ARNs)
	slices.Sort(arns)
	action := ""
	if in.Action != nil {
		action = string(*in.Action)
	}
	return action + "|" + strings.Join(arns, ",")
}

// List returns a page of rules.
func (s *Service) List(ctx context.Context, in ListInput) (ListOutput, error) {
	limit := DefaultPageSize
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > MaxPageSize {
			return ListOutput{}, findings.Invalid(findings.ReasonFieldValidationFailed, "maxResults", fmt.Sprintf("must be between 1 and %d", MaxPageSize))
		}
		limit = *in.MaxResults
	}
	q := ListQuery{Limit: limit + 1}
	if len(in.ARNs) > 0 { // an empty list selects nothing out, as no list
		q.ARNs = in.ARNs
	}
	if in.Action != nil {
		if *in.Action != Suppress && *in.Action != None {
			return ListOutput{}, findings.Invalid(findings.ReasonFieldValidationFailed, "action", fmt.Sprintf("Value '%s' is not one of [NONE SUPPRESS]", *in.Action))
		}
		q.Action = *in.Action
	}
	if in.NextToken != nil && *in.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(*in.NextToken)
		var t pageToken
		if err == nil {
			err = json.Unmarshal(b, &t)
		}
		if err != nil || t.ARN == "" {
			return ListOutput{}, findings.Invalid(findings.ReasonFieldValidationFailed, "nextToken", "the token is not one this listing issued")
		}
		if t.Query != listHash(in) {
			return ListOutput{}, findings.Invalid(findings.ReasonFieldValidationFailed, "nextToken", "the token was issued for other arns or action")
		}
		q.After = &Cursor{CreatedAt: time.UnixMilli(t.CreatedAt), ARN: t.ARN}
	}
	rules, err := s.store.ListFilters(ctx, q)
	if err != nil {
		return ListOutput{}, fmt.Errorf("list suppression rules: %w", err)
	}
	out := ListOutput{Rules: rules}
	if len(rules) > limit {
		out.Rules = rules[:limit]
		last := rules[limit-1]
		b, err := json.Marshal(pageToken{Query: listHash(in), CreatedAt: last.CreatedAt.UnixMilli(), ARN: last.ARN})
		if err != nil {
			return ListOutput{}, err
		}
		out.NextToken = base64.RawURLEncoding.EncodeToString(b)
	}
	return out, nil
}
