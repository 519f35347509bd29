// Package match turns an image inventory and the advisory database into findings. It is pure:
// no I/O, no clock. The same code serves `lading scan`, the scans of the registry and the
// continuous re-evaluation after an advisory change.
package match

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/inventory/installed"
)

// Advisories is what matching needs from the advisory database; *advisory.Index has it.
type Advisories interface {
	Affecting(ecosystem, name, version string) ([]*advisory.Vulnerability, error)
}

// VulnerablePackage is one installed package a vulnerability affects, where it was found and
// how to fix it.
type VulnerablePackage struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	Epoch          int    `json:"epoch,omitempty"`
	Release        string `json:"release,omitempty"`
	Arch           string `json:"arch,omitempty"`
	Ecosystem      string `json:"ecosystem"`
	PackageManager string `json:"packageManager"`
	SourceName     string `json:"sourceName,omitempty"`
	SourceVersion  string `json:"sourceVersion,omitempty"`
	PURL           string `json:"purl,omitempty"`
	FilePath       string `json:"filePath"`
	Layer          string `json:"sourceLayerHash"`
	// CreatedBy is the image history entry of the layer: the Dockerfile step to change.
	CreatedBy      string `json:"createdBy,omitempty"`
	FixedInVersion string `json:"fixedInVersion,omitempty"`
	Remediation    string `json:"remediation,omitempty"`
	// Reachability is, for a Go package, whether the advisory's vulnerable symbols are in the
	// binary: ReachPresent, ReachAbsent or ReachUnknown; "" for other packages. A Lading
	// member: clients of ECR's shape ignore it.
	Reachability string `json:"reachability,omitempty"`
	// LanguagePackages are, for an OS package, the language packages whose metadata it
	// installed, reported as this package (a Lading member).
	LanguagePackages []installed.LanguagePackage `json:"languagePackages,omitempty"`
}

// Label is the package's name, with the language packages it installed: "python3-requests
// (PyPI requests 2.28.1)".
func (p VulnerablePackage) Label() string {
	if len(p.LanguagePackages) == 0 {
		return p.Name
	}
	langs := make([]string, len(p.LanguagePackages))
	for i, l := range p.LanguagePackages {
		langs[i] = l.Ecosystem + " " + l.Name + " " + l.Version
	}
	return p.Name + " (" + strings.Join(langs, ", ") + ")"
}

// InstalledVersion is the package's version as installed, whole ("1:3.0.11-1~deb12u1"): for
// OS packages Version is only the upstream part, shown beside Epoch and Release as ECR does.
func (p VulnerablePackage) InstalledVersion() string {
	if p.PackageManager != installed.ManagerOS {
		return p.Version
	}
	v := p.Version
	if p.Release != "" {
		v += "-" + p.Release
	}
	if p.Epoch != 0 {
		v = strconv.Itoa(p.Epoch) + ":" + v
	}
	return v
}

// Finding is one vulnerability in an image with every package it affects.
type Finding struct {
	VulnerabilityID string              `json:"vulnerabilityId"`
	Aliases         []string            `json:"aliases,omitempty"`
	AdvisoryIDs     []string            `json:"advisoryIds,omitempty"`
	Title           string              `json:"title"`
	Description     string              `json:"description,omitempty"`
	Severity        string              `json:"severity"`
	Score           *float64            `json:"score,omitempty"`
	CVSSVector      string              `json:"cvssVector,omitempty"`
	CVSSVersion     string              `json:"cvssVersion,omitempty"`
	CVSSSource      string              `json:"cvssSource,omitempty"`
	CVSS            []advisory.CVSS     `json:"cvss,omitempty"`
	VendorSeverity  string              `json:"vendorSeverity,omitempty"`
	Source          string              `json:"source,omitempty"`
	SourceURL       string              `json:"sourceUrl,omitempty"`
	ReferenceURLs   []string            `json:"referenceUrls,omitempty"`
	Related         []string            `json:"related,omitempty"`
	Published       time.Time           `json:"published,omitzero"`
	Modified        time.Time           `json:"modified,omitzero"`
	Packages        []VulnerablePackage `json:"vulnerablePackages"`
}

// Fix availability, as Inspector reports it.
const (
	FixYes     = "YES"
	FixNo      = "NO"
	FixPartial = "PARTIAL"
)

// FixAvailable says whether every, some or none of the affected packages has a fixed version.
func (f Finding) FixAvailable() string {
	fixed := 0
	for _, p := range f.Packages {
		if p.FixedInVersion != "" {
			fixed++
		}
	}
	switch {
	case fixed == 0:
		return FixNo
	case fixed == len(f.Packages):
		return FixYes
	}
	return FixPartial
}

// Severities in ECR's order, most severe first.
var severityOrder = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"}

// SeverityRank orders ECR severities: CRITICAL is 0, UNDEFINED (or unknown) the highest.
func SeverityRank(s string) int {
	if i := slices.Index(severityOrder, s); i >= 0 {
		return i
	}
	return len(severityOrder) - 1
}

// Severities lists ECR's severities, most severe first.
func Severities() []string { return slices.Clone(severityOrder) }

// NotEvaluated is a package, or one advisory of a package, that matching could not decide:
// the package's version is not valid in its ecosystem (it was matched only against what needs
// no ordering), or an advisory's range could not be evaluated. The scan cannot say the package
// is unaffected, so it reports these rather than staying silent.
type NotEvaluated struct {
	Ecosystem string `json:"ecosystem"`
	Package   string `json:"package"`
	// Version is the installed version, whole (epoch and release included).
	Version        string `json:"version"`
	SourceName     string `json:"sourceName,omitempty"`
	PackageManager string `json:"packageManager"`
	PURL           string `json:"purl,omitempty"`
	FilePath       string `json:"filePath"`
	Layer          string `json:"sourceLayerHash,omitempty"`
	// AdvisoryID is the advisory that could not be evaluated, or "" when the package's
	// version is the cause (then no ordered range of any advisory was evaluated).
	AdvisoryID string `json:"advisoryId,omitempty"`
	Reason     string `json:"reason"`
}

// Key is the advisory key of the entry's package: what a change of advisories must touch
// for the entry to change.
func (n NotEvaluated) Key() advisory.PackageKey {
	return Key(installed.Package{Ecosystem: n.Ecosystem, Name: n.Package, SourceName: n.SourceName, PackageManager: n.PackageManager})
}

// NotEvaluatedPackages counts the distinct packages of entries (a package may have several,
// one per advisory).
func NotEvaluatedPackages(ns []NotEvaluated) int {
	type pkg struct{ eco, name, version, path, layer string }
	seen := make(map[pkg]bool, len(ns))
	for _, n := range ns {
		seen[pkg{n.Ecosystem, n.Package, n.Version, n.FilePath, n.Layer}] = true
	}
	return len(seen)
}

// notEvaluated turns Affecting's error for a package into entries.
func notEvaluated(p installed.Package, version string, err error) []NotEvaluated {
	base := NotEvaluated{Ecosystem: p.Ecosystem, Package: p.Name, Version: p.Version, SourceName: p.SourceName,
		PackageManager: p.PackageManager, PURL: p.PURL, FilePath: p.Path, Layer: p.Layer}
	var out []NotEvaluated
	var ue *advisory.UnevaluatedError
	if errors.As(err, &ue) {
		for _, u := range ue.Advisories {
			n := base
			n.AdvisoryID, n.Reason = u.AdvisoryID, u.Reason
			out = append(out, n)
		}
	}
	if errors.Is(err, advisory.ErrInvalidVersion) || out == nil {
		n := base
		n.Reason = fmt.Sprintf("version %q could not be compared with the advisories' versions: %v", version, versionError(err))
		out = append(out, n)
	}
	return out
}

// versionError is err without the advisories it also names (they get entries of their own).
func versionError(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if _, isUE := e.(*advisory.UnevaluatedError); !isUE {
				return e
			}
		}
	}
	return err
}

// lookupName and lookupVersion are what a package is matched by: distributions publish
// advisories against source packages, so OS packages use their source name and version.
func lookup(p installed.Package) (name, version string) {
	if p.PackageManager == installed.ManagerOS {
		name, version = p.Name, p.Version
		if p.SourceName != "" {
			name = p.SourceName
		}
		if p.SourceVersion != "" {
			version = p.SourceVersion
		}
		return name, version
	}
	return p.Name, p.Version
}

// Key is the (ecosystem, name) a package is looked up by, as the advisory database keys it.
func Key(p installed.Package) advisory.PackageKey {
	name, _ := lookup(p)
	return advisory.MakeKey(p.Ecosystem, name)
}

// Image matches every package of an image. history maps a layer digest to the created_by of
// its history entry. Packages whose version cannot be ordered still match what needs no
// ordering; they, and the advisories whose ranges could not be evaluated, are returned as
// not evaluated beside the findings.
func Image(pkgs []installed.Package, adv Advisories, history map[string]string) ([]Finding, []NotEvaluated) {
	byID := map[string]*Finding{}
	var order []string
	var unknown []NotEvaluated
	for _, p := range pkgs {
		if p.Ecosystem == "" {
			continue // an OS package of an image whose release is unknown
		}
		name, version := lookup(p)
		vulns, err := adv.Affecting(p.Ecosystem, name, version)
		if err != nil {
			unknown = append(unknown, notEvaluated(p, version, err)...)
		}
		for _, v := range vulns {
			f, ok := byID[v.VulnerabilityID]
			if !ok {
				f = newFinding(v)
				byID[v.VulnerabilityID] = f
				order = append(order, v.VulnerabilityID)
			} else {
				f.mergeSeverity(v)
			}
			f.Packages = append(f.Packages, vulnerablePackage(p, v, history))
		}
	}
	out := make([]Finding, 0, len(order))
	for _, id := range order {
		f := byID[id]
		slices.SortFunc(f.Packages, comparePackages)
		f.Packages = slices.CompactFunc(f.Packages, func(a, b VulnerablePackage) bool { return comparePackages(a, b) == 0 })
		f.Title = title(f)
		out = append(out, *f)
	}
	Sort(out)
	return out, unknown
}

// Sort orders findings most severe first, then by score, then by id. It sorts their
// positions and moves each finding once: a Finding is some 400 bytes, which a stable sort
// would copy at every comparison and swap (a tenth of matching an image).
func Sort(fs []Finding) {
	order := make([]int, len(fs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		a, b := &fs[i], &fs[j]
		if c := SeverityRank(a.Severity) - SeverityRank(b.Severity); c != 0 {
			return c
		}
		as, bs := scoreOf(a), scoreOf(b)
		if as != bs {
			if as > bs {
				return -1
			}
			return 1
		}
		return strings.Compare(a.VulnerabilityID, b.VulnerabilityID)
	})
	sorted := make([]Finding, len(fs))
	for k, i := range order {
		sorted[k] = fs[i]
	}
	copy(fs, sorted)
}

func scoreOf(f *Finding) float64 {
	if f.Score == nil {
		return -1
	}
	return *f.Score
}

func comparePackages(a, b VulnerablePackage) int {
	for _, c := range []int{
		strings.Compare(a.Name, b.Name), strings.Compare(a.Version, b.Version),
		strings.Compare(a.FilePath, b.FilePath), strings.Compare(a.Layer, b.Layer),
	} {
		if c != 0 {
			return c
		}
	}
	return 0
}

func newFinding(v *advisory.Vulnerability) *Finding {
	f := &Finding{
		VulnerabilityID: v.VulnerabilityID,
		AdvisoryIDs:     slices.Clone(v.AdvisoryIDs),
		Description:     strings.TrimSpace(v.Details),
		Published:       v.Published,
		Modified:        v.Modified,
		Related:         slices.Clone(v.Related),
		Source:          sourceOf(v),
	}
	if f.Description == "" {
		f.Description = v.Summary
	}
	for _, a := range v.Aliases {
		if a != v.VulnerabilityID {
			f.Aliases = append(f.Aliases, a)
		}
	}
	if v.ID != v.VulnerabilityID && !slices.Contains(f.Aliases, v.ID) {
		f.Aliases = append(f.Aliases, v.ID)
	}
	for _, r := range v.References {
		if !slices.Contains(f.ReferenceURLs, r.URL) {
			f.ReferenceURLs = append(f.ReferenceURLs, r.URL)
		}
	}
	f.SourceURL = sourceURL(v)
	f.setSeverity(v)
	return f
}

func (f *Finding) setSeverity(v *advisory.Vulnerability) {
	f.Severity = string(v.Severity)
	if f.Severity == "" {
		f.Severity = "UNDEFINED"
	}
	f.Score = v.CVSSScore
	f.CVSSVector, f.CVSSVersion = v.CVSSVector, v.CVSSVersion
	f.CVSSSource = string(v.SeverityDetail.Source)
	f.CVSS = slices.Clone(v.CVSS)
	f.VendorSeverity = v.SeverityDetail.Raw
}

// mergeSeverity keeps the most severe rating when packages of one vulnerability come with
// different records (a distribution's and a language registry's, say).
func (f *Finding) mergeSeverity(v *advisory.Vulnerability) {
	if SeverityRank(string(v.Severity)) < SeverityRank(f.Severity) {
		f.setSeverity(v)
	}
}

func vulnerablePackage(p installed.Package, v *advisory.Vulnerability, history map[string]string) VulnerablePackage {
	vp := VulnerablePackage{
		Name: p.Name, Version: p.Version, Epoch: p.Epoch, Release: p.Release, Arch: p.Arch,
		Ecosystem: p.Ecosystem, PackageManager: p.PackageManager, PURL: p.PURL,
		FilePath: p.Path, Layer: p.Layer, CreatedBy: history[p.Layer], FixedInVersion: v.FixedIn(),
		Reachability: reachability(p, v),
	}
	if p.PackageManager == installed.ManagerOS {
		vp.Version = p.UpstreamVersion()
		vp.SourceName, vp.SourceVersion = p.SourceName, p.SourceVersion
		vp.LanguagePackages = p.LanguagePackages
	}
	if vp.FixedInVersion != "" {
		vp.Remediation = "Upgrade " + p.Name + " to " + vp.FixedInVersion + " or later."
	}
	return vp
}

// title is Inspector's "<id> - <package>, <package>".
func title(f *Finding) string {
	var names []string
	for _, p := range f.Packages {
		if !slices.Contains(names, p.Name) {
			names = append(names, p.Name)
		}
	}
	return f.VulnerabilityID + " - " + strings.Join(names, ", ")
}

// sourceOf names the database a vulnerability comes from, as Inspector's "source" does.
func sourceOf(v *advisory.Vulnerability) string {
	id := v.ID
	if len(v.AdvisoryIDs) > 0 {
		id = v.AdvisoryIDs[0]
	}
	prefix, _, _ := strings.Cut(strings.TrimPrefix(id, "x_"), "-")
	switch prefix {
	case "CVE":
		return "NVD"
	case "":
		return "OSV"
	}
	return prefix
}

func sourceURL(v *advisory.Vulnerability) string {
	if strings.HasPrefix(v.VulnerabilityID, "CVE-") {
		return "https://nvd.nist.gov/vuln/detail/" + v.VulnerabilityID
	}
	id := v.ID
	if len(v.AdvisoryIDs) > 0 {
		id = v.AdvisoryIDs[0]
	}
	if strings.HasPrefix(id, "x_") {
		return ""
	}
	return "https://osv.dev/vulnerability/" + id
}

// Counts tallies findings by severity, leaving out severities with none (as ECR does).
func Counts(fs []Finding) map[string]int {
	out := map[string]int{}
	for _, f := range fs {
		out[f.Severity]++
	}
	return out
}

// FormatScore renders a CVSS score as ECR's attribute values do ("9.8").
func FormatScore(s float64) string { return strconv.FormatFloat(s, 'f', 1, 64) }
