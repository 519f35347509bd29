// Package policy is the pure part of scanning: the registry scanning configuration (ECR's
// PutRegistryScanningConfiguration) and how it applies to one repository, as ECR computes it for
// BatchGetRepositoryScanningConfiguration and as the scanner follows it.
package policy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Scan types, as ECR names them.
const (
	ScanTypeBasic    = "BASIC"
	ScanTypeEnhanced = "ENHANCED"
)

// Scan frequencies, as ECR names them.
const (
	FrequencyScanOnPush = "SCAN_ON_PUSH"
	FrequencyContinuous = "CONTINUOUS_SCAN"
	FrequencyManual     = "MANUAL"
)

// FilterTypeWildcard is the only repository filter type ECR knows.
const FilterTypeWildcard = "WILDCARD"

// Policy is the registry scanning configuration.
type Policy struct {
	ScanType string `json:"scanType"`
	Rules    []Rule `json:"rules"`
}

// Rule applies a scan frequency to the repositories matching any of its filters.
type Rule struct {
	Frequency string   `json:"scanFrequency"`
	Filters   []Filter `json:"repositoryFilters"`
}

// Filter is a repository name filter.
type Filter struct {
	Value string `json:"filter"`
	Type  string `json:"filterType"`
}

// DefaultPolicy is what a registry has before anyone configures scanning: basic scanning with
// no rules, so every repository is scanned manually (or on push when the repository says so).
func DefaultPolicy() Policy { return Policy{ScanType: ScanTypeBasic, Rules: []Rule{}} }

// Limits of a registry scanning configuration, as PutRegistryScanningConfiguration's model
// sets them; every face that takes a configuration checks them with its own wording.
const (
	MaxRules          = 2
	MaxFiltersPerRule = 100
	MaxFilterLen      = 255
)

// ErrInvalid is a configuration outside the model's shape (see the limits above).
var ErrInvalid = errors.New("invalid scanning configuration")

// ErrFrequencyNotAllowed is a rule whose scan frequency its scan type does not offer.
var ErrFrequencyNotAllowed = errors.New("scan frequency not allowed for the scan type")

// RuleError is a refused rule of a policy: Index counts from 0.
type RuleError struct {
	Index     int
	ScanType  string
	Frequency string
	Err       error
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("rule %d: %s scan type only supports the SCAN_ON_PUSH scan frequency, not %s", e.Index+1, e.ScanType, e.Frequency)
}

func (e *RuleError) Unwrap() error { return e.Err }

// Validate checks a configuration: its shape as the model defines it (faces check it first, to
// name the field in their own words), and the rule ECR adds beyond that: basic scanning scans on
// push only (it has no continuous scanning, and manual scans need no rule).
func Validate(p Policy) error {
	if p.ScanType != ScanTypeBasic && p.ScanType != ScanTypeEnhanced {
		return fmt.Errorf("%w: scan type %q", ErrInvalid, p.ScanType)
	}
	if len(p.Rules) > MaxRules {
		return fmt.Errorf("%w: %d rules, at most %d", ErrInvalid, len(p.Rules), MaxRules)
	}
	for i, r := range p.Rules {
		switch r.Frequency {
		case FrequencyScanOnPush, FrequencyContinuous, FrequencyManual:
		default:
			return fmt.Errorf("%w: rule %d: scan frequency %q", ErrInvalid, i+1, r.Frequency)
		}
		if len(r.Filters) < 1 || len(r.Filters) > MaxFiltersPerRule {
			return fmt.Errorf("%w: rule %d: %d repository filters, want 1 to %d", ErrInvalid, i+1, len(r.Filters), MaxFiltersPerRule)
		}
		for _, f := range r.Filters {
			if f.Type != FilterTypeWildcard || len(f.Value) > MaxFilterLen || !FilterPattern.MatchString(f.Value) {
				return fmt.Errorf("%w: rule %d: repository filter %q of type %q", ErrInvalid, i+1, f.Value, f.Type)
			}
		}
	}
	for i, r := range p.Rules {
		if p.ScanType == ScanTypeBasic && r.Frequency != FrequencyScanOnPush {
			return &RuleError{Index: i, ScanType: p.ScanType, Frequency: r.Frequency, Err: ErrFrequencyNotAllowed}
		}
	}
	return nil
}

// FilterPattern is the model's pattern for a filter value.
var FilterPattern = regexp.MustCompile(`^[a-z0-9*](?:[._\-/a-z0-9*]?[a-z0-9*]+)*$`)

// Decision is how one repository is scanned under a policy.
type Decision struct {
	// Frequency is SCAN_ON_PUSH, CONTINUOUS_SCAN or MANUAL. Under enhanced scanning MANUAL
	// means "not scanned", since enhanced scanning has no manual scans.
	Frequency string
	// ScanOnPush reports whether an image pushed to the repository is scanned.
	ScanOnPush bool
	// AppliedFilters are the filters of the deciding rule that match the repository.
	AppliedFilters []Filter
}

// Scanned reports whether images of the repository are scanned automatically.
func (d Decision) Scanned() bool { return d.Frequency != FrequencyManual }

// rank orders frequencies by precedence: continuous scanning wins over scan on push.
func rank(frequency string) int {
	switch frequency {
	case FrequencyContinuous:
		return 3
	case FrequencyScanOnPush:
		return 2
	case FrequencyManual:
		return 1
	}
	return 0
}

// Evaluate applies policy to the repository repo. repoScanOnPush is the repository's own,
// deprecated, scanOnPush flag: basic scanning still honours it, enhanced scanning ignores it.
// Under basic scanning only SCAN_ON_PUSH rules count.
func Evaluate(policy Policy, repo string, repoScanOnPush bool) Decision {
	if policy.ScanType == ScanTypeEnhanced && len(policy.Rules) == 0 {
		// ECR documents enhanced scanning without rules as continuous scanning of every repository.
		return Decision{Frequency: FrequencyContinuous, ScanOnPush: true, AppliedFilters: []Filter{{Value: "*", Type: FilterTypeWildcard}}}
	}
	best := Decision{Frequency: FrequencyManual}
	bestRank := 0
	for _, rule := range policy.Rules {
		if policy.ScanType != ScanTypeEnhanced && rule.Frequency != FrequencyScanOnPush {
			continue
		}
		r := rank(rule.Frequency)
		if r == 0 || r < bestRank {
			continue
		}
		var matched []Filter
		for _, f := range rule.Filters {
			if Match(f.Value, repo) {
				matched = append(matched, f)
			}
		}
		if len(matched) == 0 {
			continue
		}
		if r == bestRank {
			best.AppliedFilters = append(best.AppliedFilters, matched...)
			continue
		}
		best = Decision{Frequency: rule.Frequency, AppliedFilters: matched}
		bestRank = r
	}
	if policy.ScanType != ScanTypeEnhanced && bestRank == 0 && repoScanOnPush {
		best.Frequency = FrequencyScanOnPush
	}
	best.ScanOnPush = best.Frequency == FrequencyScanOnPush || best.Frequency == FrequencyContinuous
	if best.AppliedFilters == nil {
		best.AppliedFilters = []Filter{}
	}
	return best
}

// Match reports whether an ECR WILDCARD filter matches a repository name: a filter without '*'
// matches any name containing it; with '*', the whole name must match, each '*' standing for
// any run of characters (including none).
func Match(filter, repo string) bool {
	if !strings.Contains(filter, "*") {
		return strings.Contains(repo, filter)
	}
	parts := strings.Split(filter, "*")
	first, last := parts[0], parts[len(parts)-1]
	if !strings.HasPrefix(repo, first) {
		return false
	}
	rest := repo[len(first):]
	if len(rest) < len(last) || !strings.HasSuffix(rest, last) {
		return false
	}
	rest = rest[:len(rest)-len(last)]
	// Middle parts match greedily from the left: the first occurrence leaves the most room.
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	return true
}
