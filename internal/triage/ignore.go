package triage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lading-registry/lading/internal/match"
)

// ErrInvalidIgnoreFile wraps every reason an ignore file is refused.
var ErrInvalidIgnoreFile = errors.New("invalid ignore file")

// IgnoreRule leaves a vulnerability out of the findings, until Expires when set.
type IgnoreRule struct {
	ID string
	// Expires is the first moment (midnight UTC of the date given) the rule no longer
	// ignores, as Trivy reads "exp:"; zero for never.
	Expires time.Time
	Reason  string
	// Line is where the rule is in its file, for messages.
	Line int
}

// Expired reports whether the rule no longer ignores at now.
func (r IgnoreRule) Expired(now time.Time) bool { return !r.Expires.IsZero() && !now.Before(r.Expires) }

// IgnoreList is a parsed ignore file.
type IgnoreList struct {
	Rules []IgnoreRule
}

// maxIgnoreRules bounds a file's rules (a file is typed by people; this keeps a hostile one
// from costing much).
const maxIgnoreRules = 100_000

// ParseIgnoreFile reads an ignore file in Trivy's .trivyignore form: one vulnerability id per
// line, optionally followed by "exp:YYYY-MM-DD" and by "# reason"; blank lines and lines
// starting with "#" are comments. A file whose first statement is "vulnerabilities:" is read
// in Trivy's YAML form instead (id, statement, expired_at).
func ParseIgnoreFile(data []byte) (*IgnoreList, error) {
	if isYAMLIgnore(data) {
		return parseYAMLIgnore(data)
	}
	var l IgnoreList
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rule := IgnoreRule{Line: n}
		if i := strings.Index(line, "#"); i >= 0 {
			rule.Reason = strings.TrimSpace(line[i+1:])
			line = strings.TrimSpace(line[:i])
		}
		fields := strings.Fields(line)
		rule.ID = fields[0]
		for _, f := range fields[1:] {
			date, ok := strings.CutPrefix(f, "exp:")
			if !ok {
				return nil, fmt.Errorf("%w: line %d: %q is neither exp:YYYY-MM-DD nor a # comment", ErrInvalidIgnoreFile, n, f)
			}
			if !rule.Expires.IsZero() {
				return nil, fmt.Errorf("%w: line %d: two expiry dates", ErrInvalidIgnoreFile, n)
			}
			t, err := time.Parse(time.DateOnly, date)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: expiry %q: want YYYY-MM-DD", ErrInvalidIgnoreFile, n, date)
			}
			rule.Expires = t
		}
		if err := l.add(rule); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidIgnoreFile, err)
	}
	return &l, nil
}

func (l *IgnoreList) add(r IgnoreRule) error {
	if strings.ContainsFunc(r.ID, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		return fmt.Errorf("%w: line %d: the id holds a control character", ErrInvalidIgnoreFile, r.Line)
	}
	if len(l.Rules) >= maxIgnoreRules {
		return fmt.Errorf("%w: more than %d rules", ErrInvalidIgnoreFile, maxIgnoreRules)
	}
	l.Rules = append(l.Rules, r)
	return nil
}

// isYAMLIgnore reports whether the first line that is not blank or a comment opens Trivy's
// YAML form.
func isYAMLIgnore(data []byte) bool {
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		return strings.HasPrefix(line, "vulnerabilities:")
	}
	return false
}

func parseYAMLIgnore(data []byte) (*IgnoreList, error) {
	var doc struct {
		Vulnerabilities []struct {
			ID        string `yaml:"id"`
			Statement string `yaml:"statement"`
			ExpiredAt string `yaml:"expired_at"`
		} `yaml:"vulnerabilities"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	// Trivy's paths and purls narrow a rule; ignoring them would ignore more than was asked,
	// so a rule that has them is refused rather than widened.
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidIgnoreFile, err)
	}
	var l IgnoreList
	for i, v := range doc.Vulnerabilities {
		r := IgnoreRule{ID: strings.TrimSpace(v.ID), Reason: v.Statement, Line: i + 1}
		if r.ID == "" {
			return nil, fmt.Errorf("%w: vulnerability %d has no id", ErrInvalidIgnoreFile, i+1)
		}
		if v.ExpiredAt != "" {
			t, err := time.Parse(time.DateOnly, v.ExpiredAt)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: expired_at %q: want YYYY-MM-DD", ErrInvalidIgnoreFile, r.ID, v.ExpiredAt)
			}
			r.Expires = t
		}
		if err := l.add(r); err != nil {
			return nil, err
		}
	}
	return &l, nil
}

// Match returns the rule that names the finding (by its id, an alias or an advisory id),
// whether or not it has expired; false when none does. Of several, an unexpired one wins.
func (l *IgnoreList) Match(f match.Finding, now time.Time) (IgnoreRule, bool) {
	var found IgnoreRule
	ok := false
	for _, r := range l.Rules {
		if !namesFinding(r.ID, f) {
			continue
		}
		if !r.Expired(now) {
			return r, true
		}
		if !ok {
			found, ok = r, true
		}
	}
	return found, ok
}

// namesFinding reports whether id is the finding's vulnerability id, an alias, or the id of
// one of its advisories (case-insensitively: people type "cve-2024-1").
func namesFinding(id string, f match.Finding) bool {
	if strings.EqualFold(id, f.VulnerabilityID) {
		return true
	}
	for _, ids := range [][]string{f.Aliases, f.AdvisoryIDs} {
		for _, a := range ids {
			if strings.EqualFold(id, a) {
				return true
			}
		}
	}
	return false
}
