package findings

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/kev"
)

// MaxVulnerabilityIDs is how many ids one SearchVulnerabilities takes.
const MaxVulnerabilityIDs = 10

// Vulnerability is what the advisory database knows of one vulnerability, merged over the
// records about it (the CVE's own, the GitHub and distribution advisories aliasing it).
type Vulnerability struct {
	ID          string
	Description string
	// Severity is the highest severity word of the records (CRITICAL ... INFORMATIONAL), or
	// UNTRIAGED when none rates it; VendorSeverity is the word the first rating record used.
	Severity       string
	VendorSeverity string
	CVSS           []advisory.CVSS
	CWEs           []string
	ReferenceURLs  []string
	Related        []string
	SourceURL      string
	Published      time.Time
	Modified       time.Time
	Exploit        *kev.Entry
	Affected       []AffectedPackage
}

// AffectedPackage is a package a vulnerability affects, and the versions that fix it.
type AffectedPackage struct {
	Ecosystem     string
	Name          string
	FixedVersions []string
}

// SearchVulnerabilities looks vulnerabilities up by id (a CVE, or an advisory's own id). Ids
// the database does not know are left out of the answer, as Inspector leaves them.
func (s *Service) SearchVulnerabilities(_ context.Context, ids []string) ([]Vulnerability, error) {
	if len(ids) < 1 || len(ids) > MaxVulnerabilityIDs {
		return nil, Invalid(ReasonFieldValidationFailed, "filterCriteria.vulnerabilityIds", fmt.Sprintf("must have between 1 and %d items", MaxVulnerabilityIDs))
	}
	for i, id := range ids {
		if len(id) < 1 || len(id) > 128 {
			return nil, Invalid(ReasonFieldValidationFailed, fmt.Sprintf("filterCriteria.vulnerabilityIds[%d]", i), "length must be between 1 and 128")
		}
	}
	var ix *advisory.Index
	if s.advs != nil {
		ix = s.advs.Index()
	}
	var out []Vulnerability
	for _, id := range ids {
		var advs []*advisory.Advisory
		if ix != nil {
			advs = ix.ByVulnerability(id)
		}
		if len(advs) == 0 {
			continue
		}
		v := Describe(id, advs)
		if e, ok := s.kev.Lookup(append([]string{id}, aliasesOf(advs)...)...); ok {
			v.Exploit = &e
			v.CWEs = mergeSorted(v.CWEs, e.CWEs)
		}
		out = append(out, v)
	}
	return out, nil
}

func aliasesOf(advs []*advisory.Advisory) []string {
	var out []string
	for _, a := range advs {
		out = append(out, a.VulnerabilityID)
		out = append(out, a.Aliases...)
	}
	return out
}

// Describe merges the advisories about vulnerability id (pure). The record whose id is the
// vulnerability's speaks first, then the others by id.
func Describe(id string, advs []*advisory.Advisory) Vulnerability {
	ordered := slices.Clone(advs)
	slices.SortStableFunc(ordered, func(a, b *advisory.Advisory) int {
		switch {
		case a.ID == id && b.ID != id:
			return -1
		case b.ID == id && a.ID != id:
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	v := Vulnerability{ID: id, Severity: Untriaged}
	rank := severityRank(Untriaged)
	seenVector := map[string]bool{}
	affected := map[[2]string]*AffectedPackage{}
	var order [][2]string
	for _, a := range ordered {
		if v.Description == "" {
			v.Description = firstNonEmpty(a.Details, a.Summary)
		}
		if r := severityRank(string(a.Severity.Level)); r < rank {
			rank, v.Severity = r, string(a.Severity.Level)
		}
		if v.VendorSeverity == "" && a.Severity.Raw != "" {
			v.VendorSeverity = a.Severity.Raw
		}
		for _, c := range a.CVSS {
			if !seenVector[c.Vector] {
				seenVector[c.Vector] = true
				v.CVSS = append(v.CVSS, c)
			}
		}
		v.CWEs = mergeSorted(v.CWEs, CWEs(a))
		for _, r := range a.References {
			if !slices.Contains(v.ReferenceURLs, r.URL) {
				v.ReferenceURLs = append(v.ReferenceURLs, r.URL)
			}
		}
		for _, rel := range append(slices.Clone(a.Aliases), a.Related...) {
			if rel != id && !slices.Contains(v.Related, rel) {
				v.Related = append(v.Related, rel)
			}
		}
		if a.ID != id && !slices.Contains(v.Related, a.ID) {
			v.Related = append(v.Related, a.ID)
		}
		if v.Published.IsZero() || (!a.Published.IsZero() && a.Published.Before(v.Published)) {
			v.Published = a.Published
		}
		if a.Modified.After(v.Modified) {
			v.Modified = a.Modified
		}
		for _, af := range a.Affected {
			k := [2]string{af.Ecosystem, af.Name}
			p, ok := affected[k]
			if !ok {
				p = &AffectedPackage{Ecosystem: af.Ecosystem, Name: af.Name}
				affected[k] = p
				order = append(order, k)
			}
			for _, r := range af.Ranges {
				for _, e := range r.Events {
					if e.Kind == advisory.Fixed && !slices.Contains(p.FixedVersions, e.Version) {
						p.FixedVersions = append(p.FixedVersions, e.Version)
					}
				}
			}
		}
	}
	if strings.HasPrefix(id, "CVE-") {
		v.SourceURL = "https://nvd.nist.gov/vuln/detail/" + id
	}
	slices.Sort(v.Related)
	for _, k := range order {
		v.Affected = append(v.Affected, *affected[k])
	}
	return v
}

// Severity words, most severe first, as Inspector uses them. Untriaged is a finding or
// vulnerability that no source rated; the store and ECR's basic scans call it UNDEFINED.
const Untriaged = "UNTRIAGED"

// severityRank orders severity words, most severe first; unrated words rank last.
func severityRank(w string) int {
	switch w {
	case "CRITICAL":
		return 0
	case "HIGH":
		return 1
	case "MEDIUM":
		return 2
	case "LOW":
		return 3
	case "INFORMATIONAL":
		return 4
	}
	return 5
}

// InspectorSeverity is a stored severity as Inspector (and ECR's enhanced findings) say it.
func InspectorSeverity(stored string) string {
	if stored == "UNDEFINED" || stored == "" {
		return Untriaged
	}
	return stored
}

func mergeSorted(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

func firstNonEmpty(xs ...string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}
