package inspector

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/lading-registry/lading/internal/findings"
)

type cvssWire struct {
	BaseScore     float64 `json:"baseScore"`
	ScoringVector string  `json:"scoringVector,omitempty"`
}

// vulnerabilityWire is Inspector's Vulnerability; severity and affectedPackages are Lading's
// additions (clients ignore members they do not know).
type vulnerabilityWire struct {
	ID                     string            `json:"id"`
	CisaData               *cisaData         `json:"cisaData,omitempty"`
	CVSS2                  *cvssWire         `json:"cvss2,omitempty"`
	CVSS3                  *cvssWire         `json:"cvss3,omitempty"`
	CVSS4                  *cvssWire         `json:"cvss4,omitempty"`
	CWEs                   []string          `json:"cwes,omitempty"`
	Description            string            `json:"description,omitempty"`
	ReferenceURLs          []string          `json:"referenceUrls,omitempty"`
	RelatedVulnerabilities []string          `json:"relatedVulnerabilities,omitempty"`
	Source                 string            `json:"source,omitempty"`
	SourceURL              string            `json:"sourceUrl,omitempty"`
	VendorCreatedAt        *epoch            `json:"vendorCreatedAt,omitempty"`
	VendorSeverity         string            `json:"vendorSeverity,omitempty"`
	VendorUpdatedAt        *epoch            `json:"vendorUpdatedAt,omitempty"`
	Severity               string            `json:"severity"`
	AffectedPackages       []affectedPackage `json:"affectedPackages,omitempty"`
}

type affectedPackage struct {
	Ecosystem     string   `json:"ecosystem"`
	Name          string   `json:"name"`
	FixedVersions []string `json:"fixedVersions"`
}

func (h *Handler) searchVulnerabilities(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		FilterCriteria json.RawMessage `json:"filterCriteria"`
		NextToken      *string         `json:"nextToken"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.FilterCriteria) == 0 || string(in.FilterCriteria) == "null" {
		return nil, findings.Invalid(findings.ReasonFieldValidationFailed, "filterCriteria", "is required")
	}
	var fc struct {
		VulnerabilityIDs []string `json:"vulnerabilityIds"`
	}
	if err := strict(in.FilterCriteria, "filterCriteria", &fc); err != nil {
		return nil, err
	}
	if in.NextToken != nil && *in.NextToken != "" {
		// Every answer fits one page: no token is ever issued.
		return nil, findings.Invalid(findings.ReasonFieldValidationFailed, "nextToken", "the token is not one this listing issued")
	}
	vs, err := h.findings.SearchVulnerabilities(ctx, fc.VulnerabilityIDs)
	if err != nil {
		return nil, err
	}
	out := struct {
		Vulnerabilities []vulnerabilityWire `json:"vulnerabilities"`
	}{Vulnerabilities: []vulnerabilityWire{}}
	for _, v := range vs {
		w := vulnerabilityWire{ID: v.ID, CisaData: cisaOf(v.Exploit), CWEs: v.CWEs, Description: v.Description, ReferenceURLs: v.ReferenceURLs,
			RelatedVulnerabilities: v.Related, SourceURL: v.SourceURL, VendorCreatedAt: epochOf(v.Published), VendorUpdatedAt: epochOf(v.Modified),
			VendorSeverity: v.VendorSeverity, Severity: v.Severity}
		if strings.HasPrefix(v.ID, "CVE-") {
			w.Source = "NVD" // the model's only VulnerabilitySource: the CVE namespace
		}
		for _, c := range v.CVSS {
			cw := &cvssWire{BaseScore: c.BaseScore, ScoringVector: c.Vector}
			switch {
			case c.Version == "2.0" && w.CVSS2 == nil:
				w.CVSS2 = cw
			case strings.HasPrefix(c.Version, "3") && w.CVSS3 == nil:
				w.CVSS3 = cw
			case c.Version == "4.0" && w.CVSS4 == nil:
				w.CVSS4 = cw
			}
		}
		for _, a := range v.Affected {
			fixed := a.FixedVersions
			if fixed == nil {
				fixed = []string{}
			}
			w.AffectedPackages = append(w.AffectedPackages, affectedPackage{Ecosystem: a.Ecosystem, Name: a.Name, FixedVersions: fixed})
		}
		out.Vulnerabilities = append(out.Vulnerabilities, w)
	}
	return out, nil
}
