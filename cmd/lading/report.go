package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"
	spdxjson "github.com/spdx/tools-golang/json"
	spdxcommon "github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/match"
)

// sarif writes SARIF 2.1.0: one rule per vulnerability, one result per vulnerable package,
// located at the file the package was found in.
func (r scanReport) sarif(w io.Writer) error {
	type message struct {
		Text string `json:"text"`
	}
	type rule struct {
		ID               string            `json:"id"`
		Name             string            `json:"name,omitempty"`
		ShortDescription message           `json:"shortDescription"`
		FullDescription  message           `json:"fullDescription"`
		HelpURI          string            `json:"helpUri,omitempty"`
		Properties       map[string]any    `json:"properties,omitempty"`
		DefaultConfig    map[string]string `json:"defaultConfiguration"`
	}
	type location struct {
		PhysicalLocation struct {
			ArtifactLocation struct {
				URI string `json:"uri"`
			} `json:"artifactLocation"`
		} `json:"physicalLocation"`
	}
	type result struct {
		RuleID     string         `json:"ruleId"`
		Level      string         `json:"level"`
		Message    message        `json:"message"`
		Locations  []location     `json:"locations"`
		Properties map[string]any `json:"properties,omitempty"`
	}
	var rules []rule
	var results []result
	for _, f := range r.findings {
		props := map[string]any{"tags": []string{"vulnerability", "security", f.Severity}}
		if f.Score != nil {
			props["security-severity"] = match.FormatScore(*f.Score)
		}
		rules = append(rules, rule{ID: f.VulnerabilityID, Name: f.VulnerabilityID, ShortDescription: message{f.Title},
			FullDescription: message{firstNonEmpty(f.Description, f.Title)}, HelpURI: f.SourceURL, Properties: props,
			DefaultConfig: map[string]string{"level": sarifLevel(f.Severity)}})
		for _, p := range f.Packages {
			var loc location
			loc.PhysicalLocation.ArtifactLocation.URI = strings.TrimPrefix(p.FilePath, "/")
			text := fmt.Sprintf("%s %s (%s) is affected by %s", p.Name, p.Version, p.Ecosystem, f.VulnerabilityID)
			if p.FixedInVersion != "" {
				text += "; fixed in " + p.FixedInVersion
			}
			results = append(results, result{RuleID: f.VulnerabilityID, Level: sarifLevel(f.Severity), Message: message{text},
				Locations: []location{loc}, Properties: map[string]any{"layer": p.Layer, "createdBy": p.CreatedBy, "purl": p.PURL}})
		}
	}
	doc := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name": "lading", "informationUri": "https://github.com/lading-registry/lading", "version": version, "rules": nonNil(rules)}},
			"results":    nonNil(results),
			"properties": map[string]any{"image": r.img.Name, "imageDigest": r.img.ManifestDigest},
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

func sarifLevel(sev string) string {
	switch sev {
	case "CRITICAL", "HIGH":
		return "error"
	case "MEDIUM":
		return "warning"
	}
	return "note"
}

func firstNonEmpty(xs ...string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}

func packageRef(p inventory.Package) string {
	if p.PURL != "" {
		return p.PURL + "?file=" + p.Path
	}
	return p.Ecosystem + "/" + p.Name + "@" + p.Version + "?file=" + p.Path
}

// cyclonedx writes a CycloneDX 1.6 JSON BOM: the image, its packages, and the vulnerabilities
// that affect them.
func (r scanReport) cyclonedx(w io.Writer) error {
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + uuid.NewString()
	bom.Metadata = &cdx.Metadata{
		Timestamp: time.Now().UTC().Format(time.RFC3339),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "lading", Version: version}}},
		Component: &cdx.Component{Type: cdx.ComponentTypeContainer, BOMRef: r.img.ManifestDigest, Name: firstNonEmpty(r.img.Name, r.img.ManifestDigest), Version: r.img.ManifestDigest},
	}
	components := make([]cdx.Component, 0, len(r.inv.Packages))
	for _, p := range r.inv.Packages {
		props := []cdx.Property{{Name: "lading:path", Value: p.Path}, {Name: "lading:layer", Value: p.Layer}, {Name: "lading:ecosystem", Value: p.Ecosystem}}
		if p.SourceName != "" {
			props = append(props, cdx.Property{Name: "lading:sourceName", Value: p.SourceName})
		}
		components = append(components, cdx.Component{Type: cdx.ComponentTypeLibrary, BOMRef: packageRef(p), Name: p.Name,
			Version: p.Version, PackageURL: p.PURL, Properties: &props})
	}
	bom.Components = &components
	var vulns []cdx.Vulnerability
	for _, f := range r.findings {
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
	bom.Vulnerabilities = &vulns
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	return enc.EncodeVersion(bom, cdx.SpecVersion1_6)
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

// spdx writes an SPDX 2.3 JSON document of the image's packages (an SBOM; SPDX 2.3 has no
// vulnerability section, so advisories are linked as SECURITY external references).
func (r scanReport) spdx(w io.Writer) error {
	name := firstNonEmpty(r.img.Name, r.img.ManifestDigest)
	doc := &spdx.Document{
		SPDXVersion: spdx.Version, DataLicense: spdx.DataLicense, SPDXIdentifier: "DOCUMENT",
		DocumentName:      name,
		DocumentNamespace: "https://lading.dev/spdx/" + strings.ReplaceAll(r.img.ManifestDigest, ":", "-") + "-" + uuid.NewString(),
		CreationInfo: &spdx.CreationInfo{Creators: []spdxcommon.Creator{{CreatorType: "Tool", Creator: "lading-" + version}},
			Created: time.Now().UTC().Format(time.RFC3339)},
	}
	image := &spdx.Package{PackageName: name, PackageSPDXIdentifier: "Image", PackageVersion: r.img.ManifestDigest,
		PackageDownloadLocation: "NOASSERTION", PrimaryPackagePurpose: "CONTAINER"}
	doc.Packages = append(doc.Packages, image)
	doc.Relationships = append(doc.Relationships, &spdx.Relationship{RefA: spdxcommon.MakeDocElementID("", "DOCUMENT"),
		RefB: spdxcommon.MakeDocElementID("", "Image"), Relationship: "DESCRIBES"})
	advisories := map[string][]string{}
	for _, f := range r.findings {
		for _, p := range f.Packages {
			k := p.Ecosystem + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.FilePath
			advisories[k] = append(advisories[k], f.VulnerabilityID)
		}
	}
	for i, p := range r.inv.Packages {
		id := spdxcommon.ElementID("Package-" + strconv.Itoa(i+1))
		pkg := &spdx.Package{PackageName: p.Name, PackageSPDXIdentifier: id, PackageVersion: p.Version,
			PackageDownloadLocation: "NOASSERTION", PackageSourceInfo: "found at " + p.Path + " in layer " + p.Layer,
			PrimaryPackagePurpose: "LIBRARY"}
		if p.PURL != "" {
			pkg.PackageExternalReferences = append(pkg.PackageExternalReferences, &spdx.PackageExternalReference{
				Category: "PACKAGE-MANAGER", RefType: "purl", Locator: p.PURL})
		}
		version := p.Version
		if p.PackageManager == inventory.ManagerOS {
			version = p.UpstreamVersion()
		}
		for _, id := range advisories[p.Ecosystem+"\x00"+p.Name+"\x00"+version+"\x00"+p.Path] {
			pkg.PackageExternalReferences = append(pkg.PackageExternalReferences, &spdx.PackageExternalReference{
				Category: "SECURITY", RefType: "advisory", Locator: "https://osv.dev/vulnerability/" + id})
		}
		doc.Packages = append(doc.Packages, pkg)
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{RefA: spdxcommon.MakeDocElementID("", "Image"),
			RefB: spdxcommon.MakeDocElementID("", string(id)), Relationship: "CONTAINS"})
	}
	return spdxjson.Write(doc, w, spdxjson.Indent("  "))
}
