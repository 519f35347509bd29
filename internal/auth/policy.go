package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
)

// IAM policy documents, as AWS writes them: {"Version", "Statement": [{"Sid", "Effect",
// "Action"|"NotAction", "Resource"|"NotResource", "Principal"}]}. Lading implements the part of
// the language that decides who may call which operation on which repository; what it does not
// implement (Condition, NotPrincipal, policy variables, principals other than access keys and
// accounts) is refused when the policy is stored, never ignored, so that a policy never grants
// more than it reads as granting.

// ErrInvalidPolicy is matched (errors.Is) by every error of ParseIdentityPolicy and
// ParseResourcePolicy.
var ErrInvalidPolicy = errors.New("invalid policy document")

// MaxPolicySize bounds a policy document, as ECR's model bounds a repository policy's text.
const MaxPolicySize = 10240

// maxPolicyDepth bounds the nesting of a document's JSON, so that parsing an attacker's
// document costs little.
const maxPolicyDepth = 16

// PolicyKind tells which elements a statement must and may have.
type PolicyKind int

// Kinds of policy.
const (
	// IdentityPolicy is attached to an access key: no Principal, a Resource or NotResource.
	IdentityPolicy PolicyKind = iota
	// ResourcePolicy is attached to a repository or the registry: a Principal; the Resource is
	// optional (a repository policy's statements apply to its repository).
	ResourcePolicy
)

// Policy is a parsed policy document.
type Policy struct {
	Statements []Statement
}

// Statement is one statement of a policy. Patterns keep their wildcards: '*' matches any run
// of characters, '?' any one.
type Statement struct {
	Sid  string
	Deny bool
	// Actions are "service:Action" patterns, matched case-insensitively; with NotAction the
	// statement applies to every action matching none of them.
	Actions   []string
	NotAction bool
	// Resources are ARN patterns, matched case-sensitively segment by segment; with
	// NotResource the statement applies to every resource matching none of them. No resource
	// at all (resource policies only) means the resource the policy is attached to.
	Resources   []string
	NotResource bool
	// Principals (resource policies only) are "*", account ids and IAM user ARNs.
	Principals []string
}

// Compiled on first use, not at start: every command (`lading scan` too) pays for package
// initialisation, and these serve only some.
var (
	actionPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+$`) })
	accountID     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{12}$`) })
	userARN       = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):user/([\w+=,.@-]{1,64})$`) })
	rootARN       = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):root$`) })
	keyName       = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\w+=,.@-]{1,64}$`) })
)

func policyErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidPolicy, fmt.Sprintf(format, args...))
}

// ParseIdentityPolicy parses the policy of an access key.
func ParseIdentityPolicy(doc string) (*Policy, error) { return parsePolicy(doc, IdentityPolicy) }

// ParseResourcePolicy parses a repository or registry policy.
func ParseResourcePolicy(doc string) (*Policy, error) { return parsePolicy(doc, ResourcePolicy) }

func parsePolicy(doc string, kind PolicyKind) (*Policy, error) {
	if len(doc) > MaxPolicySize {
		return nil, policyErr("the document is %d bytes, more than %d", len(doc), MaxPolicySize)
	}
	// encoding/json keeps the last of two equal keys; a policy holding two "Effect"s would then
	// read differently to a person and to Lading, so duplicates are refused first.
	if err := checkJSON([]byte(doc)); err != nil {
		return nil, policyErr("%v", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &top); err != nil {
		return nil, policyErr("the document must be a JSON object")
	}
	for k := range top {
		switch k {
		case "Version", "Id", "Statement":
		default:
			return nil, policyErr("unknown element %q (a policy has Version, Id and Statement)", k)
		}
	}
	if raw, ok := top["Version"]; ok {
		var v string
		if json.Unmarshal(raw, &v) != nil || (v != "2012-10-17" && v != "2008-10-17") {
			return nil, policyErr("Version must be \"2012-10-17\" or \"2008-10-17\"")
		}
	}
	if raw, ok := top["Id"]; ok {
		var id string
		if json.Unmarshal(raw, &id) != nil {
			return nil, policyErr("Id must be a string")
		}
	}
	raw, ok := top["Statement"]
	if !ok {
		return nil, policyErr("the document has no Statement")
	}
	var list []json.RawMessage
	if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && trimmed[0] == '{' {
		list = []json.RawMessage{raw}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, policyErr("Statement must be an object or a list of objects")
	}
	if len(list) == 0 {
		return nil, policyErr("Statement is empty")
	}
	p := &Policy{}
	for i, s := range list {
		st, err := parseStatement(s, kind)
		if err != nil {
			return nil, fmt.Errorf("%w (Statement[%d])", err, i)
		}
		p.Statements = append(p.Statements, st)
	}
	return p, nil
}

func parseStatement(raw json.RawMessage, kind PolicyKind) (Statement, error) {
	var st Statement
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return st, policyErr("a statement must be a JSON object")
	}
	for k := range m {
		switch k {
		case "Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal":
		case "Condition":
			return st, policyErr("Condition is not supported by Lading; narrow the statement with Action and Resource instead")
		case "NotPrincipal":
			return st, policyErr("NotPrincipal is not supported by Lading; use Principal with a Deny statement")
		default:
			return st, policyErr("unknown element %q in a statement", k)
		}
	}
	if raw, ok := m["Sid"]; ok {
		if json.Unmarshal(raw, &st.Sid) != nil {
			return st, policyErr("Sid must be a string")
		}
	}
	var effect string
	if json.Unmarshal(m["Effect"], &effect) != nil || (effect != "Allow" && effect != "Deny") {
		return st, policyErr("Effect must be \"Allow\" or \"Deny\"")
	}
	st.Deny = effect == "Deny"

	var err error
	st.Actions, st.NotAction, err = exactlyOne(m, "Action", "NotAction", true)
	if err != nil {
		return st, err
	}
	for _, a := range st.Actions {
		if a != "*" && !actionPattern().MatchString(a) {
			return st, policyErr("action %q: want \"*\" or \"service:Action\", the action part with * and ? wildcards", truncate(a, 80))
		}
	}
	st.Resources, st.NotResource, err = exactlyOne(m, "Resource", "NotResource", kind == IdentityPolicy)
	if err != nil {
		return st, err
	}
	for _, r := range st.Resources {
		if err := checkResource(r); err != nil {
			return st, err
		}
	}
	rawPrincipal, hasPrincipal := m["Principal"]
	switch {
	case kind == IdentityPolicy && hasPrincipal:
		return st, policyErr("Principal belongs in repository and registry policies, not in an access key's policy")
	case kind == ResourcePolicy && !hasPrincipal:
		return st, policyErr("a repository or registry policy statement needs a Principal")
	case hasPrincipal:
		if st.Principals, err = parsePrincipal(rawPrincipal); err != nil {
			return st, err
		}
	}
	return st, nil
}

// exactlyOne reads the element name or its negation notName, of which one must be present
// when required and at most one may be.
func exactlyOne(m map[string]json.RawMessage, name, notName string, required bool) ([]string, bool, error) {
	raw, has := m[name]
	rawNot, hasNot := m[notName]
	switch {
	case has && hasNot:
		return nil, false, policyErr("a statement has %s or %s, not both", name, notName)
	case has:
		v, err := stringOrList(name, raw)
		return v, false, err
	case hasNot:
		v, err := stringOrList(notName, rawNot)
		return v, true, err
	case required:
		return nil, false, policyErr("a statement needs %s or %s", name, notName)
	}
	return nil, false, nil
}

// stringOrList reads a string or a non-empty list of strings.
func stringOrList(name string, raw json.RawMessage) ([]string, error) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) != nil {
		return nil, policyErr("%s must be a string or a list of strings", name)
	}
	if len(list) == 0 {
		return nil, policyErr("%s is an empty list", name)
	}
	return list, nil
}

func checkResource(r string) error {
	if r == "*" {
		return nil
	}
	if strings.Contains(r, "${") {
		return policyErr("resource %q: policy variables are not supported by Lading", truncate(r, 80))
	}
	if parts := strings.SplitN(r, ":", 6); len(parts) != 6 || parts[0] != "arn" || parts[2] == "" {
		return policyErr("resource %q: want \"*\" or an ARN such as arn:aws:ecr:<region>:<registry id>:repository/<name>", truncate(r, 80))
	}
	return nil
}

// parsePrincipal reads "*" or {"AWS": "*" | account | ARN | [...]}.
func parsePrincipal(raw json.RawMessage) ([]string, error) {
	var star string
	if json.Unmarshal(raw, &star) == nil {
		if star != "*" {
			return nil, policyErr("Principal must be \"*\" or {\"AWS\": ...}")
		}
		return []string{"*"}, nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil, policyErr("Principal must be \"*\" or {\"AWS\": ...}")
	}
	var out []string
	for k, v := range m {
		if k != "AWS" {
			return nil, policyErr("principal type %q is not supported by Lading: its principals are access keys (\"AWS\")", truncate(k, 40))
		}
		list, err := stringOrList("Principal.AWS", v)
		if err != nil {
			return nil, err
		}
		for _, p := range list {
			if p != "*" && !accountID().MatchString(p) && !userARN().MatchString(p) && !rootARN().MatchString(p) {
				return nil, policyErr("principal %q: want \"*\", an account (<registry id> or arn:aws:iam::<registry id>:root) "+
					"or an access key as arn:aws:iam::<registry id>:user/<name>", truncate(p, 80))
			}
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, policyErr("Principal names nobody")
	}
	return out, nil
}

// checkJSON checks that data is one JSON value, without duplicate keys in any object and
// nested at most maxPolicyDepth deep.
func checkJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var walk func(depth int) error
	walk = func(depth int) error {
		if depth > maxPolicyDepth {
			return errors.New("the document is nested too deeply")
		}
		tok, err := dec.Token()
		if err != nil {
			return errors.New("the document is not valid JSON")
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return errors.New("the document is not valid JSON")
				}
				k, _ := kt.(string)
				if seen[k] {
					return fmt.Errorf("the element %q appears twice in one object", truncate(k, 40))
				}
				seen[k] = true
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
		case '[':
			for dec.More() {
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return errors.New("the document is not valid JSON")
		}
		return nil
	}
	if err := walk(0); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("the document holds more than one JSON value")
	}
	return nil
}

// --- evaluation ------------------------------------------------------------------------------

// request is what a statement is matched against.
type request struct {
	action   string // "ecr:PutImage"
	resource string // an ARN, or "*" for registry-level operations
	// principal is the caller's IAM user ARN; empty for an anonymous caller.
	principal string
	account   string // the registry id
}

// match reports whether the statement applies to req. Principals are not looked at (identity
// policies have none; see matchPrincipal).
func (s *Statement) match(req request) bool {
	return s.matchAction(req.action) && s.matchResource(req.resource)
}

func (s *Statement) matchAction(action string) bool {
	hit := false
	for _, a := range s.Actions {
		// Actions are case-insensitive, as in IAM: "ecr:putimage" grants ecr:PutImage.
		if globMatch(strings.ToLower(a), strings.ToLower(action)) {
			hit = true
			break
		}
	}
	return hit != s.NotAction
}

func (s *Statement) matchResource(resource string) bool {
	if s.Resources == nil { // a resource policy's own resource
		return true
	}
	hit := false
	for _, r := range s.Resources {
		if matchARN(r, resource) {
			hit = true
			break
		}
	}
	return hit != s.NotResource
}

// matchPrincipal reports whether a resource policy statement names the caller. An account
// (its id or root ARN) stands for every access key of it; in a same-account policy it grants
// nothing by itself (IAM delegates the decision to the keys' own policies) but its Deny
// applies to them all.
func (s *Statement) matchPrincipal(req request) bool {
	for _, p := range s.Principals {
		switch {
		case p == "*":
			return true
		case req.principal == "":
		case p == req.principal:
			return true
		case s.Deny && (p == req.account || p == "arn:aws:iam::"+req.account+":root"):
			return true
		}
	}
	return false
}

// matchARN matches an ARN pattern against an ARN, segment by segment, so that a wildcard does
// not run across the colons that separate partition, service, region, account and resource.
// "*" matches everything; a registry-level request ("*") is matched only by "*".
func matchARN(pattern, arn string) bool {
	if pattern == "*" {
		return true
	}
	if arn == "*" {
		return false
	}
	ps := strings.SplitN(pattern, ":", 6)
	as := strings.SplitN(arn, ":", 6)
	if len(ps) != 6 || len(as) != 6 {
		return false
	}
	for i := range ps {
		if !globMatch(ps[i], as[i]) {
			return false
		}
	}
	return true
}

// globMatch reports whether s matches pattern, '*' standing for any run of characters and '?'
// for any one. It backtracks only to the last '*', so it runs in O(len(pattern)*len(s)).
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// verdict is what one policy says of a request.
type verdict struct{ allow, deny bool }

// evaluate applies the policy's statements to req; resource policies also match principals.
func (p *Policy) evaluate(req request, kind PolicyKind) verdict {
	var v verdict
	if p == nil {
		return v
	}
	for i := range p.Statements {
		s := &p.Statements[i]
		if kind == ResourcePolicy && !s.matchPrincipal(req) {
			continue
		}
		if !s.match(req) {
			continue
		}
		if s.Deny {
			v.deny = true
		} else {
			v.allow = true
		}
	}
	return v
}

// allowsAction reports whether some Allow statement grants action on some resource, for
// listings, which then show only the resources allowed one by one.
func (p *Policy) allowsAction(req request, kind PolicyKind) bool {
	if p == nil {
		return false
	}
	for i := range p.Statements {
		s := &p.Statements[i]
		if s.Deny || (kind == ResourcePolicy && !s.matchPrincipal(req)) {
			continue
		}
		if s.matchAction(req.action) {
			return true
		}
	}
	return false
}
