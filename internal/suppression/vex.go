package suppression

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/openvex/go-vex/pkg/vex"
	"github.com/package-url/packageurl-go"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/triage"
)

// This file turns VEX statements (read by internal/triage, the parser `lading scan --vex`
// uses) into suppression rules: a not_affected or fixed statement about an image or a
// repository suppresses the findings of its vulnerability there, with the statement's
// justification as the rule's reason. A later affected or under_investigation statement about
// the same vulnerability and product removes the rule. Rules are named after what they are
// about, so importing a document again updates them rather than adding more.

// Scope is what a VEX product names in the registry: an image (by digest, in a repository or
// in any), or a whole repository.
type Scope struct {
	Repository string
	Digest     string
}

// Compiled on first use, not at start: every command (`lading scan` too) pays for package
// initialisation, and these serve only some.
var digestPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^sha256:[0-9a-f]{64}$`) })

// ParseProduct reads a VEX product's identifier as an image or a repository of the registry:
//   - an OCI purl, per purl-spec: pkg:oci/<name>@sha256%3A<hex>?repository_url=<host>/<path>
//     (the image; the repository is repository_url's path, else the name), or without a
//     version (the repository);
//   - a digest, sha256:<hex> (the image, in any repository);
//   - a docker purl with a digest, pkg:docker/<namespace>/<name>@sha256%3A<hex> (Docker's tools);
//   - an image reference, [<host>/]<repository>@sha256:<hex>.
//
// A purl of another type names a package, not an image: ok is false, as for anything else.
func ParseProduct(id string) (Scope, bool) {
	id = strings.TrimSpace(id)
	switch {
	case digestPattern().MatchString(id):
		return Scope{Digest: id}, true
	case strings.HasPrefix(id, "pkg:docker/"):
		// purl-spec's docker type: the namespace is the registry and user, the version a tag
		// or a digest. Only a digest names an image (a tag moves).
		p, err := packageurl.FromString(id)
		if err != nil || p.Name == "" || !digestPattern().MatchString(p.Version) {
			return Scope{}, false
		}
		repo := repositoryPath(strings.TrimPrefix(p.Namespace+"/"+p.Name, "/"))
		if u, ok := p.Qualifiers.Map()["repository_url"]; ok && u != "" {
			repo = repositoryPath(u)
		}
		return Scope{Repository: repo, Digest: p.Version}, repo != ""
	case strings.HasPrefix(id, "pkg:"):
		p, err := packageurl.FromString(id)
		if err != nil || p.Type != packageurl.TypeOCI || p.Name == "" {
			return Scope{}, false
		}
		var sc Scope
		if p.Version != "" {
			if !digestPattern().MatchString(p.Version) {
				return Scope{}, false
			}
			sc.Digest = p.Version
		}
		sc.Repository = strings.ToLower(p.Name)
		if u, ok := p.Qualifiers.Map()["repository_url"]; ok && u != "" {
			sc.Repository = repositoryPath(u)
		}
		if sc.Repository == "" {
			return Scope{}, false
		}
		return sc, true
	case strings.Contains(id, "@"):
		ref, dgst, _ := strings.Cut(id, "@")
		if !digestPattern().MatchString(dgst) || strings.Contains(ref, "://") {
			return Scope{}, false
		}
		repo := repositoryPath(ref)
		if repo == "" {
			return Scope{}, false
		}
		return Scope{Repository: repo, Digest: dgst}, true
	}
	return Scope{}, false
}

// repositoryPath is the repository of a location such as "registry.example.com/team/app" or
// "https://localhost:5000/app": the path without the host (a first part with a dot or a
// colon, or localhost, is a host, as docker reads references), lower case.
func repositoryPath(loc string) string {
	if _, rest, ok := strings.Cut(loc, "://"); ok {
		loc = rest
	}
	loc = strings.Trim(loc, "/")
	if first, rest, ok := strings.Cut(loc, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		loc = rest
	}
	if i := strings.LastIndex(loc, ":"); i >= 0 && !strings.Contains(loc[i:], "/") {
		loc = loc[:i] // a tag
	}
	return strings.ToLower(loc)
}

// packageName is a subcomponent's package as Lading names vulnerable packages: Maven's
// group:artifact, Go's and npm's full path, others' name; and its version.
func packageName(purl string) (name, version string, ok bool) {
	p, err := packageurl.FromString(purl)
	if err != nil || p.Name == "" {
		return "", "", false
	}
	name = p.Name
	if p.Namespace != "" {
		switch p.Type {
		case packageurl.TypeMaven:
			name = p.Namespace + ":" + p.Name
		case packageurl.TypeGolang, packageurl.TypeNPM, packageurl.TypeComposer:
			name = p.Namespace + "/" + p.Name
		}
	}
	return name, p.Version, true
}

// Planned is what an import does for one statement and product: create or update the rule
// named Name with Input, or (Delete) remove it.
type Planned struct {
	Name   string
	Input  Input
	Delete bool
	// About says what the rule is about, for the report.
	About string
}

// PlanVEX turns statements (oldest first) into the rules to write, one per vulnerability and
// product, the latest statement deciding; skipped says which products name nothing a rule
// can be about (a package alone, an unknown identifier).
func PlanVEX(sts []triage.Statement) (plan []Planned, skipped []string) {
	byName := map[string]int{}
	for _, st := range sts {
		ids := append([]string{st.Vulnerability}, st.Aliases...)
		slices.Sort(ids)
		ids = slices.Compact(ids)
		ids = slices.DeleteFunc(ids, func(s string) bool { return s == "" || utf8.RuneCountInString(s) > findings.MaxStringValue })
		if len(ids) == 0 {
			skipped = append(skipped, "a statement names no vulnerability")
			continue
		}
		ids = ids[:min(len(ids), findings.MaxFiltersPerCriterion)]
		for _, p := range st.Products {
			sc, ok := productScope(p)
			if !ok {
				skipped = append(skipped, fmt.Sprintf("%s: product %q is not an image or repository of the registry", st.Vulnerability, p.ID))
				continue
			}
			pkgs, ok := subcomponentFilters(p.Subcomponents)
			if !ok {
				skipped = append(skipped, fmt.Sprintf("%s: product %q: a subcomponent is not a package URL", st.Vulnerability, p.ID))
				continue
			}
			about := sc.Repository
			if sc.Digest != "" {
				about = strings.TrimPrefix(about+"@"+sc.Digest, "@")
			}
			if len(p.Subcomponents) > 0 {
				about += " (" + strings.Join(p.Subcomponents, ", ") + ")"
			}
			key := sha256.Sum256([]byte(strings.Join(ids, ",") + "\x00" + sc.Repository + "\x00" + sc.Digest + "\x00" + strings.Join(p.Subcomponents, ",")))
			pl := Planned{Name: "vex-" + hex.EncodeToString(key[:8]), About: st.Vulnerability + " in " + about}
			switch st.Status {
			case vex.StatusNotAffected, vex.StatusFixed:
				pl.Input = vexInput(st, ids, sc, pkgs, pl.About)
			default: // affected, under_investigation: the finding stands
				pl.Delete = true
			}
			if i, ok := byName[pl.Name]; ok {
				plan[i] = pl // a later statement decides
				continue
			}
			byName[pl.Name] = len(plan)
			plan = append(plan, pl)
		}
	}
	return plan, skipped
}

func productScope(p triage.Product) (Scope, bool) {
	for _, id := range append([]string{p.ID}, p.Identifiers...) {
		if sc, ok := ParseProduct(id); ok {
			return sc, true
		}
	}
	return Scope{}, false
}

func subcomponentFilters(subs []string) ([]findings.PackageFilter, bool) {
	if len(subs) > findings.MaxFiltersPerCriterion {
		return nil, false
	}
	var out []findings.PackageFilter
	for _, s := range subs {
		name, version, ok := packageName(s)
		if !ok || utf8.RuneCountInString(name) > findings.MaxStringValue || utf8.RuneCountInString(version) > findings.MaxStringValue {
			return nil, false
		}
		pf := findings.PackageFilter{Name: &findings.StringFilter{Comparison: findings.Equals, Value: name}}
		if version != "" {
			pf.Version = &findings.StringFilter{Comparison: findings.Equals, Value: version}
		}
		out = append(out, pf)
	}
	return out, true
}

func vexInput(st triage.Statement, ids []string, sc Scope, pkgs []findings.PackageFilter, about string) Input {
	c := findings.Criteria{Strings: map[findings.Field][]findings.StringFilter{}}
	for _, id := range ids {
		c.Strings[findings.VulnerabilityID] = append(c.Strings[findings.VulnerabilityID], findings.StringFilter{Comparison: findings.Equals, Value: id})
	}
	if sc.Repository != "" {
		c.Strings[findings.ECRImageRepositoryName] = []findings.StringFilter{{Comparison: findings.Equals, Value: sc.Repository}}
	}
	if sc.Digest != "" {
		c.Strings[findings.ECRImageHash] = []findings.StringFilter{{Comparison: findings.Equals, Value: sc.Digest}}
	}
	c.Packages = pkgs
	action := Suppress
	reason := truncate(st.Justification, MaxReason)
	desc := truncate("VEX "+string(st.Status)+": "+about, MaxDescription)
	return Input{Action: &action, Reason: &reason, Description: &desc, Criteria: &c}
}

// truncate cuts s to n characters at most.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// ImportReport says what an import did.
type ImportReport struct {
	Created, Updated, Deleted []string // "<rule name>: <what it is about>"
	Skipped                   []string
}

// ImportVEX writes the rules the statements call for: new ones created, those of an earlier
// import updated, those a later statement withdraws deleted.
func (s *Service) ImportVEX(ctx context.Context, sts []triage.Statement) (ImportReport, error) {
	plan, skipped := PlanVEX(sts)
	rep := ImportReport{Skipped: skipped}
	existing := map[string]string{} // name -> ARN
	var token *string
	for {
		page, err := s.List(ctx, ListInput{NextToken: token})
		if err != nil {
			return rep, err
		}
		for _, r := range page.Rules {
			existing[r.Name] = r.ARN
		}
		if page.NextToken == "" {
			break
		}
		token = &page.NextToken
	}
	for _, pl := range plan {
		arn, exists := existing[pl.Name]
		line := pl.Name + ": " + pl.About
		switch {
		case pl.Delete && exists:
			if _, err := s.Delete(ctx, arn); err != nil {
				return rep, err
			}
			rep.Deleted = append(rep.Deleted, line)
		case pl.Delete:
		case exists:
			if _, err := s.Update(ctx, arn, pl.Input); err != nil {
				return rep, err
			}
			rep.Updated = append(rep.Updated, line)
		default:
			in := pl.Input
			in.Name = &pl.Name
			if _, err := s.Create(ctx, in); err != nil {
				return rep, err
			}
			rep.Created = append(rep.Created, line)
		}
	}
	return rep, nil
}
