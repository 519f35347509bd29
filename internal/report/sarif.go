package report

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
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
	type suppression struct {
		Kind          string `json:"kind"`
		Status        string `json:"status"`
		Justification string `json:"justification,omitempty"`
	}
	type result struct {
		RuleID       string         `json:"ruleId"`
		Level        string         `json:"level"`
		Message      message        `json:"message"`
		Locations    []location     `json:"locations"`
		Suppressions []suppression  `json:"suppressions,omitempty"`
		Properties   map[string]any `json:"properties,omitempty"`
	}
	at := func(path string) []location {
		var loc location
		loc.PhysicalLocation.ArtifactLocation.URI = strings.TrimPrefix(path, "/")
		return []location{loc}
	}
	var rules []rule
	var results []result
	addRule := func(f match.Finding) {
		if slices.ContainsFunc(rules, func(r rule) bool { return r.ID == f.VulnerabilityID }) {
			return
		}
		props := map[string]any{"tags": []string{"vulnerability", "security", f.Severity}}
		if f.Score != nil {
			props["security-severity"] = match.FormatScore(*f.Score)
		}
		rules = append(rules, rule{ID: f.VulnerabilityID, Name: f.VulnerabilityID, ShortDescription: message{f.Title},
			FullDescription: message{firstNonEmpty(f.Description, f.Title)}, HelpURI: f.SourceURL, Properties: props,
			DefaultConfig: map[string]string{"level": sarifLevel(f.Severity)}})
	}
	packageResult := func(f match.Finding, p match.VulnerablePackage) result {
		text := fmt.Sprintf("%s %s (%s) is affected by %s", p.Label(), p.InstalledVersion(), p.Ecosystem, f.VulnerabilityID)
		if p.FixedInVersion != "" {
			text += "; fixed in " + p.FixedInVersion
		}
		props := map[string]any{"layer": p.Layer, "createdBy": p.CreatedBy, "purl": p.PURL}
		if p.Reachability != "" {
			props["reachability"] = p.Reachability
		}
		if len(p.LanguagePackages) > 0 {
			props["languagePackages"] = p.LanguagePackages
		}
		return result{RuleID: f.VulnerabilityID, Level: sarifLevel(f.Severity), Message: message{text},
			Locations: at(p.FilePath), Properties: props}
	}
	for _, f := range s.Findings {
		addRule(f)
		for _, p := range f.Packages {
			results = append(results, packageResult(f, p))
		}
	}
	// Suppressed findings stay in the log, marked so (code-scanning dashboards show them as
	// dismissed with the justification).
	for _, sp := range s.Suppressed {
		addRule(sp.Finding)
		for _, p := range sp.Finding.Packages {
			r := packageResult(sp.Finding, p)
			r.Suppressions = []suppression{{Kind: "external", Status: "accepted", Justification: sp.Justification}}
			results = append(results, r)
		}
	}
	// What the scan could not evaluate is a result of its own rule, at warning level: the
	// dashboards that show results show it, where a notification would go unseen.
	if len(s.NotEvaluated) > 0 {
		rules = append(rules, rule{ID: notEvaluatedRule, Name: "PackageNotEvaluated",
			ShortDescription: message{"A package could not be evaluated against the advisories"},
			FullDescription:  message{"The package's version could not be compared with an advisory's versions, or an advisory's range could not be evaluated: the scan cannot say the package is unaffected."},
			Properties:       map[string]any{"tags": []string{"security", "not-evaluated"}}, DefaultConfig: map[string]string{"level": "warning"}})
		for _, n := range s.NotEvaluated {
			text := fmt.Sprintf("%s %s (%s) was not evaluated", n.Package, n.Version, n.Ecosystem)
			if n.AdvisoryID != "" {
				text += " against " + n.AdvisoryID
			}
			results = append(results, result{RuleID: notEvaluatedRule, Level: "warning", Message: message{text + ": " + n.Reason},
				Locations: at(n.FilePath), Properties: map[string]any{"layer": n.Layer, "purl": n.PURL, "advisoryId": n.AdvisoryID}})
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

// notEvaluatedRule is the rule of the results that say what the scan could not evaluate.
const notEvaluatedRule = "LADING-NOT-EVALUATED"

func sarifLevel(sev string) string {
	switch sev {
	case "CRITICAL", "HIGH":
		return "error"
	case "MEDIUM":
		return "warning"
	}
	return "note"
}
