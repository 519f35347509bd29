package inspector

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/kev"
	"github.com/lading-registry/lading/internal/report"
	"github.com/lading-registry/lading/internal/scanning"
)

// epoch is a timestamp on the wire: epoch seconds, as a JSON number (the same as ECR's).
type epoch = report.Epoch

func epochOf(t time.Time) *epoch { return report.EpochOf(t) }

// Finding is Inspector's Finding, for container image findings.
type Finding struct {
	AWSAccountID                string                      `json:"awsAccountId"`
	Description                 string                      `json:"description,omitempty"`
	ExploitAvailable            string                      `json:"exploitAvailable"`
	FindingARN                  string                      `json:"findingArn"`
	FirstObservedAt             *epoch                      `json:"firstObservedAt,omitempty"`
	FixAvailable                string                      `json:"fixAvailable"`
	InspectorScore              float64                     `json:"inspectorScore"`
	InspectorScoreDetails       *inspectorScoreDetails      `json:"inspectorScoreDetails,omitempty"`
	LastObservedAt              *epoch                      `json:"lastObservedAt,omitempty"`
	PackageVulnerabilityDetails packageVulnerabilityDetails `json:"packageVulnerabilityDetails"`
	Remediation                 remediation                 `json:"remediation"`
	Resources                   []resource                  `json:"resources"`
	Severity                    string                      `json:"severity"`
	Status                      string                      `json:"status"`
	Title                       string                      `json:"title"`
	Type                        string                      `json:"type"`
	UpdatedAt                   *epoch                      `json:"updatedAt,omitempty"`
}

type inspectorScoreDetails struct {
	AdjustedCVSS adjustedCVSS `json:"adjustedCvss"`
}

type adjustedCVSS struct {
	Adjustments   []any   `json:"adjustments"`
	CVSSSource    string  `json:"cvssSource,omitempty"`
	Score         float64 `json:"score"`
	ScoreSource   string  `json:"scoreSource"`
	ScoringVector string  `json:"scoringVector"`
	Version       string  `json:"version"`
}

type packageVulnerabilityDetails struct {
	CVSS                   []cvssScore         `json:"cvss,omitempty"`
	ReferenceURLs          []string            `json:"referenceUrls,omitempty"`
	RelatedVulnerabilities []string            `json:"relatedVulnerabilities,omitempty"`
	Source                 string              `json:"source"`
	SourceURL              string              `json:"sourceUrl,omitempty"`
	VendorCreatedAt        *epoch              `json:"vendorCreatedAt,omitempty"`
	VendorSeverity         string              `json:"vendorSeverity,omitempty"`
	VendorUpdatedAt        *epoch              `json:"vendorUpdatedAt,omitempty"`
	VulnerabilityID        string              `json:"vulnerabilityId"`
	VulnerablePackages     []vulnerablePackage `json:"vulnerablePackages"`
}

type cvssScore struct {
	BaseScore     float64 `json:"baseScore"`
	ScoringVector string  `json:"scoringVector"`
	Source        string  `json:"source"`
	Version       string  `json:"version"`
}

type vulnerablePackage struct {
	Arch            string `json:"arch,omitempty"`
	Epoch           int    `json:"epoch"`
	FilePath        string `json:"filePath,omitempty"`
	FixedInVersion  string `json:"fixedInVersion,omitempty"`
	Name            string `json:"name"`
	PackageManager  string `json:"packageManager"`
	Release         string `json:"release,omitempty"`
	Remediation     string `json:"remediation,omitempty"`
	SourceLayerHash string `json:"sourceLayerHash,omitempty"`
	Version         string `json:"version"`
	// Reachability is Lading's, as in DescribeImageScanFindings: whether a Go package's
	// vulnerable symbols are in the binary. SDKs ignore the member.
	Reachability string `json:"reachability,omitempty"`
}

// remediation is Inspector's: its recommendation's URL member is "Url", unlike ECR's "url".
type remediation struct {
	Recommendation recommendation `json:"recommendation"`
}

type recommendation struct {
	Text string `json:"text,omitempty"`
	URL  string `json:"Url,omitempty"`
}

type resource struct {
	Details   resourceDetails   `json:"details"`
	ID        string            `json:"id"`
	Partition string            `json:"partition"`
	Region    string            `json:"region"`
	Tags      map[string]string `json:"tags,omitempty"`
	Type      string            `json:"type"`
}

type resourceDetails struct {
	AWSECRContainerImage ecrContainerImage `json:"awsEcrContainerImage"`
}

type ecrContainerImage struct {
	Architecture   string   `json:"architecture,omitempty"`
	Author         string   `json:"author,omitempty"`
	ImageHash      string   `json:"imageHash"`
	ImageTags      []string `json:"imageTags,omitempty"`
	LastInUseAt    *epoch   `json:"lastInUseAt,omitempty"`
	Platform       string   `json:"platform,omitempty"`
	PushedAt       *epoch   `json:"pushedAt,omitempty"`
	Registry       string   `json:"registry"`
	RepositoryName string   `json:"repositoryName"`
}

// exploits adapts the findings service to report.Exploits.
type exploits struct{ fs Findings }

func (x exploits) Exploited(ids ...string) bool {
	_, ok := x.fs.Exploit(ids...)
	return ok
}

// renderFinding is a listed finding in Inspector's shape: report.Enhanced's fields (the very
// object DescribeImageScanFindings returns), under Inspector's names, with what Inspector
// adds (the resource's partition and region, each package's remediation).
func (h *Handler) renderFinding(l findings.Listed) (Finding, error) {
	var d scanning.Detail
	if err := json.Unmarshal(l.Finding.Detail, &d); err != nil {
		return Finding{}, fmt.Errorf("finding %s: detail: %w", l.Finding.ARN, err)
	}
	e := report.Enhanced(h.cfg.RegistryID, h.cfg.Region, l.Finding, d, l.Manifest, exploits{h.findings})
	f := Finding{
		AWSAccountID: e.AWSAccountID, Description: e.Description, ExploitAvailable: e.ExploitAvailable, FindingARN: e.FindingARN,
		FirstObservedAt: e.FirstObservedAt, FixAvailable: e.FixAvailable, InspectorScore: e.Score, LastObservedAt: e.LastObservedAt,
		Remediation: remediation{Recommendation: recommendation{Text: e.Remediation.Recommendation.Text, URL: e.Remediation.Recommendation.URL}},
		Severity:    e.Severity, Status: e.Status, Title: e.Title, Type: e.Type, UpdatedAt: e.UpdatedAt,
	}
	if sd := e.ScoreDetails; sd != nil {
		f.InspectorScoreDetails = &inspectorScoreDetails{AdjustedCVSS: adjustedCVSS{Adjustments: []any{}, CVSSSource: d.Finding.CVSSSource,
			Score: sd.CVSS.Score, ScoreSource: sd.CVSS.ScoreSource, ScoringVector: sd.CVSS.ScoringVector, Version: sd.CVSS.Version}}
	}
	p := e.PackageVulnerabilityDetails
	f.PackageVulnerabilityDetails = packageVulnerabilityDetails{ReferenceURLs: p.ReferenceURLs, RelatedVulnerabilities: p.RelatedVulnerabilities,
		Source: p.Source, SourceURL: p.SourceURL, VendorCreatedAt: p.VendorCreatedAt, VendorSeverity: p.VendorSeverity, VendorUpdatedAt: p.VendorUpdatedAt,
		VulnerabilityID: p.VulnerabilityID, VulnerablePackages: make([]vulnerablePackage, 0, len(p.VulnerablePackages))}
	for _, c := range p.CVSS {
		f.PackageVulnerabilityDetails.CVSS = append(f.PackageVulnerabilityDetails.CVSS, cvssScore(c))
	}
	for i, vp := range p.VulnerablePackages {
		out := vulnerablePackage{Arch: vp.Arch, Epoch: vp.Epoch, FilePath: vp.FilePath, FixedInVersion: vp.FixedInVersion, Name: vp.Name,
			PackageManager: vp.PackageManager, Release: vp.Release, SourceLayerHash: vp.SourceLayerHash, Version: vp.Version,
			Reachability: vp.Reachability}
		if i < len(d.Finding.Packages) {
			out.Remediation = d.Finding.Packages[i].Remediation
		}
		f.PackageVulnerabilityDetails.VulnerablePackages = append(f.PackageVulnerabilityDetails.VulnerablePackages, out)
	}
	for _, r := range e.Resources {
		img := r.Details.AWSECRContainerImage
		f.Resources = append(f.Resources, resource{ID: r.ID, Type: r.Type, Tags: r.Tags, Partition: "aws", Region: h.cfg.Region,
			Details: resourceDetails{AWSECRContainerImage: ecrContainerImage{Architecture: img.Architecture, Author: img.Author, ImageHash: img.ImageHash,
				ImageTags: img.ImageTags, LastInUseAt: img.LastInUseAt, Platform: img.Platform, PushedAt: img.PushedAt, Registry: img.Registry,
				RepositoryName: img.RepositoryName}}})
	}
	return f, nil
}

type sortCriteriaWire struct {
	Field     *string `json:"field"`
	SortOrder *string `json:"sortOrder"`
}

func (h *Handler) listFindings(ctx context.Context, c *call, body []byte) (any, error) {
	var in struct {
		FilterCriteria json.RawMessage `json:"filterCriteria"`
		MaxResults     *int            `json:"maxResults"`
		NextToken      *string         `json:"nextToken"`
		SortCriteria   json.RawMessage `json:"sortCriteria"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	criteria, err := decodeCriteria(in.FilterCriteria, "filterCriteria")
	if err != nil {
		return nil, err
	}
	li := findings.ListInput{Op: c.op, Criteria: criteria, MaxResults: in.MaxResults, NextToken: in.NextToken}
	if len(in.SortCriteria) > 0 && string(in.SortCriteria) != "null" {
		var sw sortCriteriaWire
		if err := strict(in.SortCriteria, "sortCriteria", &sw); err != nil {
			return nil, err
		}
		if sw.Field == nil || sw.SortOrder == nil {
			return nil, findings.Invalid(findings.ReasonFieldValidationFailed, "sortCriteria", "field and sortOrder are required")
		}
		li.Sort = &findings.Sort{Field: findings.SortField(*sw.Field), Order: findings.Order(*sw.SortOrder)}
	}
	page, err := h.findings.List(ctx, li)
	if err != nil {
		return nil, err
	}
	out := struct {
		Findings  []Finding `json:"findings"`
		NextToken string    `json:"nextToken,omitempty"`
	}{Findings: make([]Finding, 0, len(page.Findings)), NextToken: page.NextToken}
	for _, l := range page.Findings {
		f, err := h.renderFinding(l)
		if err != nil {
			return nil, err
		}
		out.Findings = append(out.Findings, f)
	}
	return out, nil
}

type cisaData struct {
	Action    string `json:"action,omitempty"`
	DateAdded *epoch `json:"dateAdded,omitempty"`
	DateDue   *epoch `json:"dateDue,omitempty"`
}

func cisaOf(e *kev.Entry) *cisaData {
	if e == nil {
		return nil
	}
	return &cisaData{Action: e.RequiredAction, DateAdded: epochOf(e.DateAdded), DateDue: epochOf(e.DueDate)}
}

func (h *Handler) batchGetFindingDetails(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		FindingArns []string `json:"findingArns"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	res, err := h.findings.Details(ctx, in.FindingArns)
	if err != nil {
		return nil, err
	}
	type detail struct {
		FindingARN    string    `json:"findingArn"`
		CisaData      *cisaData `json:"cisaData,omitempty"`
		CWEs          []string  `json:"cwes,omitempty"`
		ReferenceURLs []string  `json:"referenceUrls,omitempty"`
	}
	type failure struct {
		FindingARN   string `json:"findingArn"`
		ErrorCode    string `json:"errorCode"`
		ErrorMessage string `json:"errorMessage"`
	}
	out := struct {
		FindingDetails []detail  `json:"findingDetails"`
		Errors         []failure `json:"errors"`
	}{FindingDetails: []detail{}, Errors: []failure{}}
	for _, d := range res.Details {
		out.FindingDetails = append(out.FindingDetails, detail{FindingARN: d.FindingARN, CisaData: cisaOf(d.Exploit), CWEs: d.CWEs, ReferenceURLs: d.ReferenceURLs})
	}
	for _, arn := range res.NotFound {
		out.Errors = append(out.Errors, failure{FindingARN: arn, ErrorCode: "FINDING_DETAILS_NOT_FOUND", ErrorMessage: "No finding has this ARN"})
	}
	return out, nil
}
