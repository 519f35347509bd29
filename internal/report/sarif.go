package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/lading-registry/lading/internal/match"
)

// SARIF writes SARIF 2.1.0: one rule per vulnerability, one result per vulnerable package,
// located at the file the package was found in.
func SARIF(w io.Writer, s *Scan, o Options) error {
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
	for _, f := range s.Findings {
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
				"name": "lading", "informationUri": "https://github.com/lading-registry/lading", "version": o.ToolVersion, "rules": nonNil(rules)}},
			"results":    nonNil(results),
			"properties": map[string]any{"image": s.Image.Name, "imageDigest": s.Image.ManifestDigest},
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
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
