package report

import (
	"io"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"

	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/match"
)

func packageRef(p inventory.Package) string {
	if p.PURL != "" {
		return p.PURL + "?file=" + p.Path
	}
	return p.Ecosystem + "/" + p.Name + "@" + p.Version + "?file=" + p.Path
}

// CycloneDX writes a CycloneDX JSON BOM (1.6 unless o.CycloneDXVersion says otherwise): the
// image, its packages, and the vulnerabilities that affect them.
func CycloneDX(w io.Writer, s *Scan, o Options) error {
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + uuid.NewString()
	bom.Metadata = &cdx.Metadata{
		Timestamp: o.now().Format(time.RFC3339),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "lading", Version: o.ToolVersion}}},
		Component: &cdx.Component{Type: cdx.ComponentTypeContainer, BOMRef: s.Image.ManifestDigest, Name: firstNonEmpty(s.Image.Name, s.Image.ManifestDigest), Version: s.Image.ManifestDigest},
	}
	components := make([]cdx.Component, 0, len(s.Inventory.Packages))
	for _, p := range s.Inventory.Packages {
		props := []cdx.Property{{Name: "lading:path", Value: p.Path}, {Name: "lading:layer", Value: p.Layer}, {Name: "lading:ecosystem", Value: p.Ecosystem}}
		if p.SourceName != "" {
			props = append(props, cdx.Property{Name: "lading:sourceName", Value: p.SourceName})
		}
		components = append(components, cdx.Component{Type: cdx.ComponentTypeLibrary, BOMRef: packageRef(p), Name: p.Name,
			Version: p.Version, PackageURL: p.PURL, Properties: &props})
	}
	bom.Components = &components
	var vulns []cdx.Vulnerability
	for _, f := range s.Findings {
		v := cdx.Vulnerability{BOMRef: f.VulnerabilityID, ID: f.VulnerabilityID, Description: f.Title, Detail: f.Description,
			Published: timeString(f.Published), Updated: timeString(f.Modified)}
		if f.SourceURL != "" {
			v.Source = &cdx.Source{Name: f.Source, URL: f.SourceURL}
		}
		rating := cdx.VulnerabilityRating{Severity: cdx.Severity(strings.ToLower(f.Severity)), Vector: f.CVSSVector, Score: f.Score}
		switch {
		case strings.HasPrefix(f.CVSSVersion, "4"):
			rating.Method = cdx.ScoringMethodCVSSv4
		case f.CVSSVersion == "3.1":
			rating.Method = cdx.ScoringMethodCVSSv31
		case strings.HasPrefix(f.CVSSVersion, "3"):
			rating.Method = cdx.ScoringMethodCVSSv3
		case strings.HasPrefix(f.CVSSVersion, "2"):
			rating.Method = cdx.ScoringMethodCVSSv2
		}
		if rating.Severity == "undefined" {
			rating.Severity = cdx.SeverityUnknown
		}
		if rating.Severity == "informational" {
			rating.Severity = cdx.SeverityInfo
		}
		v.Ratings = &[]cdx.VulnerabilityRating{rating}
		var refs []cdx.VulnerabilityReference
		for _, a := range f.Aliases {
			refs = append(refs, cdx.VulnerabilityReference{ID: a})
		}
		if refs != nil {
			v.References = &refs
		}
		var affects []cdx.Affects
		for _, p := range f.Packages {
			affects = append(affects, cdx.Affects{Ref: packageRef(inventory.Package{PURL: p.PURL, Ecosystem: p.Ecosystem, Name: p.Name, Version: p.Version, Path: p.FilePath})})
		}
		v.Affects = &affects
		if fix := remediationOf(f); fix != "" {
			v.Recommendation = fix
		}
		vulns = append(vulns, v)
	}
	if len(vulns) > 0 {
		bom.Vulnerabilities = &vulns
	}
	version := o.CycloneDXVersion
	if version == 0 {
		version = cdx.SpecVersion1_6
	}
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	return enc.EncodeVersion(bom, version)
}

func remediationOf(f match.Finding) string {
	for _, p := range f.Packages {
		if p.Remediation != "" {
			return p.Remediation
		}
	}
	return ""
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
