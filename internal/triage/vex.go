package triage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/openvex/go-vex/pkg/vex"
)

// ErrInvalidVEX wraps every reason a VEX document is refused.
var ErrInvalidVEX = errors.New("invalid VEX document")

// VEX is the statements of one or more VEX documents, OpenVEX and CycloneDX alike, as
// OpenVEX statements (CycloneDX analyses are converted).
type VEX struct {
	statements []statement
}

// statement is a VEX statement with the time it was known at (its own timestamp, else its
// document's) and its place, which order statements about one vulnerability and product.
type statement struct {
	vex.Statement
	at    time.Time
	order int
	// source names the document, for the justification shown.
	source string
}

// maxVEXStatements bounds what a document may hold.
const maxVEXStatements = 100_000

// ParseVEX reads an OpenVEX 0.2 JSON document or a CycloneDX JSON BOM carrying
// vulnerabilities with analyses (CycloneDX VEX). name names the document in justifications.
func ParseVEX(name string, data []byte) (*VEX, error) {
	var head struct {
		Context   string `json:"@context"`
		BOMFormat string `json:"bomFormat"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%w: %s: not JSON: %w", ErrInvalidVEX, name, err)
	}
	var v VEX
	switch {
	case strings.HasPrefix(head.Context, vex.Context+"/v0.2."):
		if err := v.addOpenVEX(name, data); err != nil {
			return nil, err
		}
	case strings.HasPrefix(head.Context, vex.Context):
		return nil, fmt.Errorf("%w: %s: OpenVEX %q: only v0.2 documents are read", ErrInvalidVEX, name, head.Context)
	case head.BOMFormat == cdx.BOMFormat:
		if err := v.addCycloneDX(name, data); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: %s: neither OpenVEX (@context %s/v0.2.0) nor CycloneDX (bomFormat CycloneDX)", ErrInvalidVEX, name, vex.Context)
	}
	return &v, nil
}

// Merge adds the statements of o.
func (v *VEX) Merge(o *VEX) {
	n := len(v.statements)
	for _, s := range o.statements {
		s.order += n
		v.statements = append(v.statements, s)
	}
}

func (v *VEX) addOpenVEX(name string, data []byte) error {
	doc, err := vex.Parse(data)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidVEX, name, err)
	}
	if len(doc.Statements) > maxVEXStatements {
		return fmt.Errorf("%w: %s: more than %d statements", ErrInvalidVEX, name, maxVEXStatements)
	}
	var docTime time.Time
	if doc.Timestamp != nil {
		docTime = *doc.Timestamp
	}
	for i, st := range doc.Statements {
		if err := st.Validate(); err != nil {
			return fmt.Errorf("%w: %s: statement %d: %w", ErrInvalidVEX, name, i+1, err)
		}
		if st.Vulnerability.Name == "" && st.Vulnerability.ID == "" {
			return fmt.Errorf("%w: %s: statement %d names no vulnerability", ErrInvalidVEX, name, i+1)
		}
		at := docTime
		if st.Timestamp != nil {
			at = *st.Timestamp
		}
		v.statements = append(v.statements, statement{Statement: st, at: at, order: len(v.statements), source: name})
	}
	return nil
}

// cdxStatus maps a CycloneDX analysis state to OpenVEX's status, as Trivy reads them.
func cdxStatus(s cdx.ImpactAnalysisState) (vex.Status, bool) {
	switch s {
	case cdx.IASNotAffected, cdx.IASFalsePositive:
		return vex.StatusNotAffected, true
	case cdx.IASResolved, cdx.IASResolvedWithPedigree:
		return vex.StatusFixed, true
	case cdx.IASExploitable:
		return vex.StatusAffected, true
	case cdx.IASInTriage:
		return vex.StatusUnderInvestigation, true
	}
	return "", false
}

func (v *VEX) addCycloneDX(name string, data []byte) error {
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidVEX, name, err)
	}
	if bom.Vulnerabilities == nil {
		return nil
	}
	// A reference names a component of the document (by bom-ref, whose purl then identifies
	// it), the document's subject (the image), or, in a BOM-Link, one of another document's.
	purls := map[string]string{}
	if bom.Components != nil {
		for _, c := range *bom.Components {
			if c.BOMRef != "" && c.PackageURL != "" {
				purls[c.BOMRef] = c.PackageURL
			}
		}
	}
	var subject *cdx.Component
	if bom.Metadata != nil {
		subject = bom.Metadata.Component
	}
	var docTime time.Time
	if bom.Metadata != nil && bom.Metadata.Timestamp != "" {
		if t, err := time.Parse(time.RFC3339, bom.Metadata.Timestamp); err == nil {
			docTime = t
		}
	}
	if len(*bom.Vulnerabilities) > maxVEXStatements {
		return fmt.Errorf("%w: %s: more than %d vulnerabilities", ErrInvalidVEX, name, maxVEXStatements)
	}
	for i, cv := range *bom.Vulnerabilities {
		if cv.Analysis == nil || cv.Affects == nil {
			continue // a finding, not a statement about one
		}
		status, ok := cdxStatus(cv.Analysis.State)
		if !ok {
			return fmt.Errorf("%w: %s: vulnerability %d: unknown analysis state %q", ErrInvalidVEX, name, i+1, cv.Analysis.State)
		}
		if cv.ID == "" {
			return fmt.Errorf("%w: %s: vulnerability %d has no id", ErrInvalidVEX, name, i+1)
		}
		st := vex.Statement{Vulnerability: vex.Vulnerability{Name: vex.VulnerabilityID(cv.ID)}, Status: status,
			ImpactStatement: cv.Analysis.Detail}
		if cv.References != nil {
			for _, r := range *cv.References {
				if r.ID != "" {
					st.Vulnerability.Aliases = append(st.Vulnerability.Aliases, vex.VulnerabilityID(r.ID))
				}
			}
		}
		// CycloneDX's justifications are its own words, kept as given.
		st.Justification = vex.Justification(cv.Analysis.Justification)
		for _, a := range *cv.Affects {
			st.Products = append(st.Products, cdxProduct(a.Ref, purls, subject))
		}
		at := docTime
		if cv.Updated != "" {
			if t, err := time.Parse(time.RFC3339, cv.Updated); err == nil {
				at = t
			}
		}
		v.statements = append(v.statements, statement{Statement: st, at: at, order: len(v.statements), source: name})
	}
	return nil
}

// cdxProduct is the OpenVEX product a CycloneDX reference names.
func cdxProduct(ref string, purls map[string]string, subject *cdx.Component) vex.Product {
	if _, frag, ok := strings.Cut(ref, "#"); ok && strings.HasPrefix(ref, "urn:cdx:") {
		ref = frag // a BOM-Link: the bom-ref in the other document
	}
	if subject != nil && subject.BOMRef != "" && ref == subject.BOMRef {
		c := vex.Component{ID: ref}
		if subject.PackageURL != "" {
			c.Identifiers = map[vex.IdentifierType]string{vex.PURL: subject.PackageURL}
		}
		return vex.Product{Component: c}
	}
	if p, ok := purls[ref]; ok {
		return vex.Product{Component: vex.Component{ID: p}}
	}
	// Lading's own SBOMs name a package "<purl>?file=<path>".
	if i := strings.LastIndex(ref, "?file="); i > 0 && strings.HasPrefix(ref, "pkg:") {
		ref = ref[:i]
	}
	return vex.Product{Component: vex.Component{ID: ref}}
}

// Subject identifies what statements are matched against: the image (by any of its names:
// purl, digest, reference) and one of its packages (by purl).
type Subject struct {
	Image   []string
	Package string
}

// Decision is the statement that applies to a vulnerability of a package.
type Decision struct {
	Status vex.Status
	// Justification says why, as the statement gives it (justification, impact statement,
	// notes), with the document it comes from.
	Justification string
}

// Suppresses reports whether the decision takes the finding out: not_affected and fixed do.
func (d Decision) Suppresses() bool {
	return d.Status == vex.StatusNotAffected || d.Status == vex.StatusFixed
}

// Decide returns the latest statement about one of ids (a vulnerability's id and aliases)
// for the subject: one naming the package (by purl), or naming the image, without
// subcomponents or with one naming the package. false when none applies.
func (v *VEX) Decide(ids []string, s Subject) (Decision, bool) {
	var best *statement
	for i := range v.statements {
		st := &v.statements[i]
		if !slices.ContainsFunc(ids, st.Vulnerability.Matches) || !applies(st, s) {
			continue
		}
		if best == nil || st.at.After(best.at) || (st.at.Equal(best.at) && st.order > best.order) {
			best = st
		}
	}
	if best == nil {
		return Decision{}, false
	}
	return Decision{Status: best.Status, Justification: best.justification()}, true
}

// justification says why a statement says what it says: its status, justification, impact
// statement and notes, and the document it comes from.
func (st *statement) justification() string {
	var why []string
	for _, w := range []string{string(st.Justification), st.ImpactStatement, st.StatusNotes} {
		if w != "" && !slices.Contains(why, w) {
			why = append(why, w)
		}
	}
	j := string(st.Status)
	if len(why) > 0 {
		j += ": " + strings.Join(why, "; ")
	}
	return j + " (" + st.source + ")"
}

// Statement is a VEX statement as other packages read it (`lading vex import` makes
// suppression rules of them).
type Statement struct {
	// Vulnerability is the statement's vulnerability id (its name, else its @id); Aliases
	// are its other ids.
	Vulnerability string
	Aliases       []string
	Status        vex.Status
	// Justification is what Decide says of the statement: status, justification, impact
	// statement and notes, and the document.
	Justification string
	Products      []Product
	At            time.Time
}

// Product is what a statement is about: an identifier (a purl, a digest, a name) and the
// identifiers it also goes by, and the packages within it the statement is limited to.
type Product struct {
	ID            string
	Identifiers   []string
	Subcomponents []string
}

// Statements returns the statements read, oldest first (ties in document order).
func (v *VEX) Statements() []Statement {
	sts := slices.Clone(v.statements)
	slices.SortStableFunc(sts, func(a, b statement) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.order - b.order
	})
	out := make([]Statement, 0, len(sts))
	for i := range sts {
		st := &sts[i]
		s := Statement{Vulnerability: string(st.Vulnerability.Name), Status: st.Status, Justification: st.justification(), At: st.at}
		if s.Vulnerability == "" {
			s.Vulnerability = st.Vulnerability.ID
		}
		for _, a := range st.Vulnerability.Aliases {
			s.Aliases = append(s.Aliases, string(a))
		}
		for _, p := range st.Products {
			s.Products = append(s.Products, product(p.Component, p.Subcomponents))
		}
		out = append(out, s)
	}
	return out
}

func product(c vex.Component, subs []vex.Subcomponent) Product {
	p := Product{ID: c.ID}
	for _, t := range slices.Sorted(maps.Keys(c.Identifiers)) {
		p.Identifiers = append(p.Identifiers, c.Identifiers[t])
	}
	for _, sc := range subs {
		id := sc.ID
		if id == "" {
			id = sc.Identifiers[vex.PURL]
		}
		p.Subcomponents = append(p.Subcomponents, id)
	}
	return p
}

func applies(st *statement, s Subject) bool {
	for i := range st.Products {
		p := &st.Products[i]
		if s.Package != "" && p.Component.Matches(s.Package) {
			return true
		}
		if !slices.ContainsFunc(s.Image, func(id string) bool { return id != "" && p.Component.Matches(id) }) {
			continue
		}
		if len(p.Subcomponents) == 0 {
			return true
		}
		if s.Package != "" && slices.ContainsFunc(p.Subcomponents, func(sc vex.Subcomponent) bool { return sc.Matches(s.Package) }) {
			return true
		}
	}
	return false
}
