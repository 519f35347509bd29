package triage

import (
	"slices"
	"strings"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/lading-registry/lading/internal/match"
)

// Options are what Apply applies.
type Options struct {
	Ignore *IgnoreList // nil: nothing ignored
	VEX    *VEX        // nil: no statements
	// Image are the image's identifiers, for statements that name the image (ImageIDs).
	Image []string
	Now   time.Time
}

// Suppressed is a finding, or the packages of a finding, that a VEX statement says the
// vulnerability does not affect (not_affected) or no longer affects (fixed).
type Suppressed struct {
	// Finding holds only the packages the statement covers.
	Finding       match.Finding
	Status        string
	Justification string
}

// Ignored is a finding an ignore rule left out.
type Ignored struct {
	Finding match.Finding
	Rule    IgnoreRule
}

// Result is the findings that stand, and what was taken out and why.
type Result struct {
	Findings   []match.Finding
	Suppressed []Suppressed
	Ignored    []Ignored
	// Expired are the rules that name a finding but have expired, so no longer ignore it.
	Expired []IgnoreRule
}

// Apply takes out of findings what the ignore list and the VEX statements say to: an ignored
// finding is left out whole; a VEX statement takes out the packages it covers, and the
// finding with them once none is left.
func Apply(findings []match.Finding, o Options) Result {
	var r Result
	for _, f := range findings {
		if o.Ignore != nil {
			if rule, ok := o.Ignore.Match(f, o.Now); ok {
				if !rule.Expired(o.Now) {
					r.Ignored = append(r.Ignored, Ignored{Finding: f, Rule: rule})
					continue
				}
				if !slices.Contains(r.Expired, rule) {
					r.Expired = append(r.Expired, rule)
				}
			}
		}
		if o.VEX == nil {
			r.Findings = append(r.Findings, f)
			continue
		}
		ids := append(append([]string{f.VulnerabilityID}, f.Aliases...), f.AdvisoryIDs...)
		kept := f
		kept.Packages = nil
		var out []Suppressed // by decision, in order
		for _, p := range f.Packages {
			d, ok := o.VEX.Decide(ids, Subject{Image: o.Image, Package: p.PURL})
			if !ok || !d.Suppresses() {
				kept.Packages = append(kept.Packages, p)
				continue
			}
			i := slices.IndexFunc(out, func(s Suppressed) bool { return s.Status == string(d.Status) && s.Justification == d.Justification })
			if i < 0 {
				s := Suppressed{Finding: f, Status: string(d.Status), Justification: d.Justification}
				s.Finding.Packages = nil
				out = append(out, s)
				i = len(out) - 1
			}
			out[i].Finding.Packages = append(out[i].Finding.Packages, p)
		}
		for i := range out {
			out[i].Finding.Title = title(out[i].Finding)
		}
		r.Suppressed = append(r.Suppressed, out...)
		if len(kept.Packages) > 0 {
			if len(out) > 0 {
				kept.Title = title(kept)
			}
			r.Findings = append(r.Findings, kept)
		}
	}
	return r
}

// title is Inspector's "<id> - <package>, <package>" for the packages left.
func title(f match.Finding) string {
	var names []string
	for _, p := range f.Packages {
		if !slices.Contains(names, p.Name) {
			names = append(names, p.Name)
		}
	}
	return f.VulnerabilityID + " - " + strings.Join(names, ", ")
}

// ImageIDs are the names a VEX statement may give an image: its digest (whole and as a bare
// hash), the name it was picked by, and its OCI package URL (with and without the
// repository_url of a registry reference).
func ImageIDs(name, digest string) []string {
	ids := []string{digest}
	if _, hex, ok := strings.Cut(digest, ":"); ok {
		ids = append(ids, hex)
	}
	if name != "" {
		ids = append(ids, name)
	}
	repo := name
	if i := strings.LastIndex(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	last := repo[strings.LastIndex(repo, "/")+1:]
	if last == "" || digest == "" {
		return ids
	}
	ids = append(ids, packageurl.NewPackageURL(packageurl.TypeOCI, "", strings.ToLower(last), digest, nil, "").ToString())
	if strings.Contains(repo, "/") {
		q := packageurl.Qualifiers{{Key: "repository_url", Value: strings.ToLower(repo)}}
		ids = append(ids, packageurl.NewPackageURL(packageurl.TypeOCI, "", strings.ToLower(last), digest, q, "").ToString())
	}
	return ids
}
