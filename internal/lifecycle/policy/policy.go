// Package policy is ECR's lifecycle policy language: Parse validates a policy's JSON as ECR
// does, and Evaluate decides which images of a repository expire, and by which rule (pure).
//
// Evaluation follows the ECR user guide's rules: every rule is evaluated against every image;
// rules then apply in priority order (lowest number first); an image is expired by at most one
// rule; an image that matches the tag selection of a rule cannot be expired by a rule of lower
// precedence, though later rules still see it when they count; images expire oldest first.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Tag statuses, count types and units as the policy JSON spells them.
const (
	TagStatusTagged   = "tagged"
	TagStatusUntagged = "untagged"
	TagStatusAny      = "any"

	CountMoreThan  = "imageCountMoreThan"
	CountSincePush = "sinceImagePushed"

	UnitDays = "days"

	ActionExpire = "expire"
)

// MaxWildcards is how many '*' a tagPatternList entry may hold.
const MaxWildcards = 4

// ErrInvalid is what every validation failure wraps.
var ErrInvalid = errors.New("invalid lifecycle policy")

// Error is a policy ECR would refuse; Reason is the text after ECR's "Lifecycle policy
// validation failure: ".
type Error struct{ Reason string }

func (e *Error) Error() string { return "lifecycle policy validation failure: " + e.Reason }

// Unwrap makes every *Error an ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

func invalid(format string, args ...any) error { return &Error{Reason: fmt.Sprintf(format, args...)} }

// Policy is a parsed lifecycle policy, its rules in priority order.
type Policy struct {
	Rules []Rule
}

// Rule is one rule of a policy.
type Rule struct {
	Priority    int
	Description string
	TagStatus   string
	TagPrefixes []string
	TagPatterns []string
	CountType   string
	CountUnit   string
	CountNumber int
	Action      string
}

// Image is what evaluation needs of an image.
type Image struct {
	Digest   string
	Tags     []string
	PushedAt time.Time
}

// Expiry is an image a policy expires and the priority of the rule that does.
type Expiry struct {
	Image        Image
	RulePriority int
}

// Parse validates a policy's JSON as ECR does and returns it with its rules sorted by priority.
// The reasons of schema errors are worded as ECR's validator words them.
func Parse(text string) (Policy, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return Policy{}, invalid("Could not map policyString into LifecyclePolicy.")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Policy{}, invalid("Could not map policyString into LifecyclePolicy.")
	}
	root, err := object(doc, []string{"rules"}, []string{"rules"})
	if err != nil {
		return Policy{}, err
	}
	list, ok := root["rules"].([]any)
	if !ok {
		return Policy{}, wrongType(root["rules"], "array")
	}
	if len(list) == 0 {
		return Policy{}, invalid("array is too short: must have at least 1 elements but instance has 0 elements")
	}
	var p Policy
	for _, item := range list {
		r, err := parseRule(item)
		if err != nil {
			return Policy{}, err
		}
		p.Rules = append(p.Rules, r)
	}
	if err := p.check(); err != nil {
		return Policy{}, err
	}
	sort.SliceStable(p.Rules, func(i, j int) bool { return p.Rules[i].Priority < p.Rules[j].Priority })
	return p, nil
}

func parseRule(v any) (Rule, error) {
	m, err := object(v, []string{"rulePriority", "selection", "action"}, []string{"rulePriority", "description", "selection", "action"})
	if err != nil {
		return Rule{}, err
	}
	var r Rule
	if r.Priority, err = integer(m["rulePriority"], 1); err != nil {
		return r, err
	}
	if d, ok := m["description"]; ok {
		if r.Description, ok = d.(string); !ok {
			return r, wrongType(d, "string")
		}
	}
	sel, err := object(m["selection"], []string{"tagStatus", "countType", "countNumber"},
		[]string{"tagStatus", "tagPrefixList", "tagPatternList", "countType", "countUnit", "countNumber"})
	if err != nil {
		return r, err
	}
	if r.TagStatus, err = enum(sel["tagStatus"], TagStatusTagged, TagStatusUntagged, TagStatusAny); err != nil {
		return r, err
	}
	if r.CountType, err = enum(sel["countType"], CountMoreThan, CountSincePush); err != nil {
		return r, err
	}
	if r.CountNumber, err = integer(sel["countNumber"], 1); err != nil {
		return r, err
	}
	if u, ok := sel["countUnit"]; ok {
		if r.CountUnit, err = enum(u, UnitDays); err != nil {
			return r, err
		}
	}
	// ECR's schema is a oneOf of the two count types: sinceImagePushed with its unit,
	// imageCountMoreThan without one; a rule fitting neither gets the oneOf's complaint.
	if (r.CountType == CountSincePush) != (r.CountUnit != "") {
		return r, invalid("instance failed to match exactly one schema (matched 0 out of 2)")
	}
	for key, dst := range map[string]*[]string{"tagPrefixList": &r.TagPrefixes, "tagPatternList": &r.TagPatterns} {
		raw, ok := sel[key]
		if !ok {
			continue
		}
		if *dst, err = stringList(raw); err != nil {
			return r, err
		}
		if *dst == nil {
			*dst = []string{} // present but empty, which check refuses
		}
	}
	act, err := object(m["action"], []string{"type"}, []string{"type"})
	if err != nil {
		return r, err
	}
	if r.Action, err = enum(act["type"], ActionExpire); err != nil {
		return r, err
	}
	return r, nil
}

// check applies the rules ECR states beyond the schema.
func (p Policy) check() error {
	priorities := map[int]bool{}
	highest, untagged := 0, 0
	selections := map[string]int{}
	for _, r := range p.Rules {
		if priorities[r.Priority] {
			return invalid("Rule priorities must be unique: rulePriority %d is given to more than one rule", r.Priority)
		}
		priorities[r.Priority] = true
		highest = max(highest, r.Priority)
		switch r.TagStatus {
		case TagStatusTagged:
			if r.TagPrefixes == nil && r.TagPatterns == nil {
				return invalid("Rule %d: tagPrefixList or tagPatternList must be specified when tagStatus is tagged", r.Priority)
			}
			if r.TagPrefixes != nil && r.TagPatterns != nil {
				return invalid("Rule %d: tagPrefixList and tagPatternList cannot both be specified", r.Priority)
			}
			list, kind := r.TagPrefixes, "prefix"
			if r.TagPatterns != nil {
				list, kind = r.TagPatterns, "pattern"
			}
			if len(list) == 0 {
				return invalid("Rule %d: the tag %s list must not be empty", r.Priority, kind)
			}
			for _, s := range list {
				if s == "" {
					return invalid("Rule %d: a tag %s must not be empty", r.Priority, kind)
				}
				if kind == "pattern" && strings.Count(s, "*") > MaxWildcards {
					return invalid("Rule %d: tag pattern %q has more than %d wildcards", r.Priority, s, MaxWildcards)
				}
			}
			key := kind + "\x00" + strings.Join(sortedCopy(list), "\x00")
			if other, dup := selections[key]; dup {
				return invalid("Rules %d and %d select the same tags: the set of rules must contain a unique set of tag %ses", other, r.Priority, kind)
			}
			selections[key] = r.Priority
		default:
			if r.TagPrefixes != nil || r.TagPatterns != nil {
				return invalid("Rule %d: tagPrefixList and tagPatternList are only allowed when tagStatus is tagged", r.Priority)
			}
			if r.TagStatus == TagStatusUntagged {
				untagged++
				if untagged > 1 {
					return invalid("Only one rule is allowed to select untagged images")
				}
			}
		}
	}
	for _, r := range p.Rules {
		if r.TagStatus == TagStatusAny && r.Priority != highest {
			return invalid("Rule %d: a rule with tagStatus any must have the highest rulePriority (%d) and be evaluated last", r.Priority, highest)
		}
	}
	return nil
}

func sortedCopy(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return slices.Compact(out)
}

// object checks that v is a JSON object with the required keys and no keys beyond allowed.
func object(v any, required, allowed []string) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, wrongType(v, "object")
	}
	var missing, extra []string
	for _, k := range required {
		if _, ok := m[k]; !ok {
			missing = append(missing, k)
		}
	}
	for k := range m {
		if !slices.Contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	if len(missing) > 0 {
		return nil, invalid("object has missing required properties (%s)", quoteList(missing))
	}
	if len(extra) > 0 {
		return nil, invalid("object instance has properties which are not allowed by the schema: (%s)", quoteList(extra))
	}
	return m, nil
}

func quoteList(xs []string) string {
	slices.Sort(xs)
	b, _ := json.Marshal(xs)
	return string(b)
}

func typeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	default:
		return "object"
	}
}

func wrongType(v any, want string) error {
	return invalid("instance type (%s) does not match any allowed primitive type (allowed: [%q])", typeName(v), want)
}

func integer(v any, minimum int64) (int, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, wrongType(v, "integer")
	}
	i, err := n.Int64()
	if err != nil {
		if f, ferr := n.Float64(); ferr == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			i = int64(f) // 3.0 is an integer to a JSON schema
		} else {
			return 0, wrongType(v, "integer")
		}
	}
	if i < minimum {
		return 0, invalid("numeric instance is lower than the required minimum (minimum: %d, found: %d)", minimum, i)
	}
	if i > math.MaxInt32 {
		return 0, invalid("numeric instance is greater than the required maximum (maximum: %d, found: %d)", math.MaxInt32, i)
	}
	return int(i), nil
}

func enum(v any, values ...string) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", wrongType(v, "string")
	}
	if !slices.Contains(values, s) {
		return "", invalid("instance value (%q) not found in enum (possible values: %s)", s, quoteList(slices.Clone(values)))
	}
	return s, nil
}

func stringList(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, wrongType(v, "array")
	}
	var out []string
	for _, item := range list {
		s, ok := item.(string)
		if !ok {
			return nil, wrongType(item, "string")
		}
		out = append(out, s)
	}
	return out, nil
}

// Selects reports whether a rule's tag selection matches an image with these tags.
func (r Rule) Selects(tags []string) bool {
	switch r.TagStatus {
	case TagStatusUntagged:
		return len(tags) == 0
	case TagStatusAny:
		return true
	}
	if len(tags) == 0 {
		return false
	}
	// Every listed prefix (pattern) must match one of the image's tags.
	for _, p := range r.TagPrefixes {
		if !slices.ContainsFunc(tags, func(t string) bool { return strings.HasPrefix(t, p) }) {
			return false
		}
	}
	for _, p := range r.TagPatterns {
		if !slices.ContainsFunc(tags, func(t string) bool { return Match(p, t) }) {
			return false
		}
	}
	return true
}

// Match reports whether tag matches pattern, in which each '*' stands for any run of
// characters (none included) and every other character for itself.
func Match(pattern, tag string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == tag
	}
	if !strings.HasPrefix(tag, parts[0]) {
		return false
	}
	tag = tag[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(tag, mid)
		if i < 0 {
			return false
		}
		tag = tag[i+len(mid):]
	}
	return len(tag) >= len(last) && strings.HasSuffix(tag, last)
}

// maxDays bounds an age a time.Duration can hold (about 290 years).
const maxDays = 100000

// Evaluate returns the images p expires at now, oldest first.
func Evaluate(p Policy, images []Image, now time.Time) []Expiry {
	rules := slices.Clone(p.Rules)
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].Priority < rules[j].Priority })
	newestFirst := slices.Clone(images)
	sort.SliceStable(newestFirst, func(i, j int) bool {
		a, b := newestFirst[i], newestFirst[j]
		if !a.PushedAt.Equal(b.PushedAt) {
			return a.PushedAt.After(b.PushedAt)
		}
		return a.Digest > b.Digest
	})
	claimed := map[string]bool{} // matched by a rule of higher precedence
	expired := map[string]int{}
	for _, r := range rules {
		var matched []Image
		for _, img := range newestFirst {
			if r.Selects(img.Tags) {
				matched = append(matched, img)
			}
		}
		var marked []Image
		switch r.CountType {
		case CountMoreThan:
			if len(matched) > r.CountNumber {
				marked = matched[r.CountNumber:]
			}
		case CountSincePush:
			if r.CountNumber > maxDays {
				break // older than any clock can tell
			}
			limit := now.Add(-time.Duration(r.CountNumber) * 24 * time.Hour)
			for _, img := range matched {
				if img.PushedAt.Before(limit) {
					marked = append(marked, img)
				}
			}
		}
		for _, img := range marked {
			if !claimed[img.Digest] {
				expired[img.Digest] = r.Priority
			}
		}
		for _, img := range matched {
			claimed[img.Digest] = true
		}
	}
	var out []Expiry
	for i := len(newestFirst) - 1; i >= 0; i-- {
		img := newestFirst[i]
		if prio, ok := expired[img.Digest]; ok {
			out = append(out, Expiry{Image: img, RulePriority: prio})
		}
	}
	return out
}

// Canonical returns text compacted, as ECR returns a stored policy (whitespace removed).
func Canonical(text string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(text)); err != nil {
		return text
	}
	return b.String()
}
