package events

import (
	"fmt"
	"time"

	"github.com/lading-registry/lading/internal/store"
)

// Finding is one Inspector finding on a container image, as the scanning code knows it when
// it creates, updates or closes it. Zero values are left out of the event where Inspector's
// shape allows it.
type Finding struct {
	ARN         string // arn:aws:inspector2:<region>:<account>:finding/<32 hex>
	Type        string // default PACKAGE_VULNERABILITY
	Title       string // e.g. "CVE-2024-6119 - libssl3t64, openssl"
	Description string
	Severity    string // INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL, UNTRIAGED
	Status      string // ACTIVE, SUPPRESSED, CLOSED

	FirstObservedAt time.Time
	LastObservedAt  time.Time
	UpdatedAt       time.Time

	InspectorScore        float64
	InspectorScoreDetails *AdjustedCVSS
	FixAvailable          string // YES, NO, PARTIAL
	ExploitAvailable      string // YES, NO
	LastKnownExploitAt    time.Time
	EPSS                  *float64 // nil: no EPSS score known

	Remediation   Remediation
	Vulnerability Vulnerability
	Image         Image
}

// Remediation is Inspector's recommendation; an empty text becomes "None Provided".
type Remediation struct {
	Text string
	URL  string
}

// AdjustedCVSS is Inspector's score after its adjustments.
type AdjustedCVSS struct {
	ScoreSource   string
	CVSSSource    string
	Version       string
	Score         float64
	ScoringVector string
	Adjustments   []ScoreAdjustment
}

// ScoreAdjustment is one metric Inspector changed, and why.
type ScoreAdjustment struct {
	Metric string
	Reason string
}

// Vulnerability is the advisory behind a finding and the packages it hits.
type Vulnerability struct {
	ID                     string // CVE-..., GHSA-...
	Source                 string // e.g. NVD, UBUNTU_CVE, GITHUB
	SourceURL              string
	VendorSeverity         string
	VendorCreatedAt        time.Time
	VendorUpdatedAt        time.Time
	CVSS                   []CVSS
	RelatedVulnerabilities []string
	ReferenceURLs          []string
	Packages               []VulnerablePackage
}

// CVSS is one CVSS score of the advisory.
type CVSS struct {
	BaseScore     float64
	ScoringVector string
	Version       string
	Source        string
}

// VulnerablePackage is one installed package the advisory affects.
type VulnerablePackage struct {
	Name            string
	Version         string
	Epoch           int
	Release         string
	Arch            string
	PackageManager  string // OS, NPM, PIP, JAR, GOBINARY, ...
	FilePath        string
	FixedInVersion  string
	Remediation     string // a shell hint, e.g. "apt-get update && apt-get upgrade"
	SourceLayerHash string // the layer that introduced the package
}

// Image is the container image a finding is on.
type Image struct {
	Repository   string
	Digest       string
	Tags         []string
	PushedAt     time.Time
	Author       string
	Architecture string // as in the image config, e.g. arm64
	Platform     string // Inspector's OS name, e.g. UBUNTU_24_04
}

// The wire shape of the detail: Inspector's Finding, with timestamps as strings.
type (
	findingDetail struct {
		AWSAccountID                string                       `json:"awsAccountId"`
		Description                 string                       `json:"description"`
		EPSS                        *epssDetail                  `json:"epss,omitempty"`
		ExploitAvailable            string                       `json:"exploitAvailable,omitempty"`
		ExploitabilityDetails       *exploitabilityDetail        `json:"exploitabilityDetails,omitempty"`
		FindingARN                  string                       `json:"findingArn"`
		FirstObservedAt             string                       `json:"firstObservedAt"`
		FixAvailable                string                       `json:"fixAvailable,omitempty"`
		InspectorScore              float64                      `json:"inspectorScore,omitempty"`
		InspectorScoreDetails       *scoreDetails                `json:"inspectorScoreDetails,omitempty"`
		LastObservedAt              string                       `json:"lastObservedAt"`
		PackageVulnerabilityDetails packageVulnerabilityDetailsW `json:"packageVulnerabilityDetails"`
		Remediation                 remediationW                 `json:"remediation"`
		Resources                   []resourceW                  `json:"resources"`
		Severity                    string                       `json:"severity"`
		Status                      string                       `json:"status"`
		Title                       string                       `json:"title,omitempty"`
		Type                        string                       `json:"type"`
		UpdatedAt                   string                       `json:"updatedAt,omitempty"`
	}
	epssDetail struct {
		Score float64 `json:"score"`
	}
	exploitabilityDetail struct {
		LastKnownExploitAt string `json:"lastKnownExploitAt"`
	}
	scoreDetails struct {
		AdjustedCVSS adjustedCVSSW `json:"adjustedCvss"`
	}
	adjustedCVSSW struct {
		Adjustments   []adjustmentW `json:"adjustments,omitempty"`
		CVSSSource    string        `json:"cvssSource,omitempty"`
		Score         float64       `json:"score"`
		ScoreSource   string        `json:"scoreSource"`
		ScoringVector string        `json:"scoringVector"`
		Version       string        `json:"version"`
	}
	adjustmentW struct {
		Metric string `json:"metric"`
		Reason string `json:"reason"`
	}
	packageVulnerabilityDetailsW struct {
		CVSS                   []cvssW    `json:"cvss,omitempty"`
		ReferenceURLs          []string   `json:"referenceUrls,omitempty"`
		RelatedVulnerabilities []string   `json:"relatedVulnerabilities,omitempty"`
		Source                 string     `json:"source"`
		SourceURL              string     `json:"sourceUrl,omitempty"`
		VendorCreatedAt        string     `json:"vendorCreatedAt,omitempty"`
		VendorSeverity         string     `json:"vendorSeverity,omitempty"`
		VendorUpdatedAt        string     `json:"vendorUpdatedAt,omitempty"`
		VulnerabilityID        string     `json:"vulnerabilityId"`
		VulnerablePackages     []packageW `json:"vulnerablePackages"`
	}
	cvssW struct {
		BaseScore     float64 `json:"baseScore"`
		ScoringVector string  `json:"scoringVector"`
		Source        string  `json:"source"`
		Version       string  `json:"version"`
	}
	packageW struct {
		Arch            string `json:"arch,omitempty"`
		Epoch           int    `json:"epoch"`
		FilePath        string `json:"filePath,omitempty"`
		FixedInVersion  string `json:"fixedInVersion,omitempty"`
		Name            string `json:"name"`
		PackageManager  string `json:"packageManager,omitempty"`
		Release         string `json:"release,omitempty"`
		Remediation     string `json:"remediation,omitempty"`
		SourceLayerHash string `json:"sourceLayerHash,omitempty"`
		Version         string `json:"version"`
	}
	remediationW struct {
		Recommendation recommendationW `json:"recommendation"`
	}
	recommendationW struct {
		Text string `json:"text"`
		URL  string `json:"Url,omitempty"` // capital U, as Inspector spells it
	}
	resourceW struct {
		Details   resourceDetailsW `json:"details"`
		ID        string           `json:"id"`
		Partition string           `json:"partition"`
		Region    string           `json:"region"`
		Type      string           `json:"type"`
	}
	resourceDetailsW struct {
		AWSECRContainerImage ecrImageW `json:"awsEcrContainerImage"`
	}
	ecrImageW struct {
		Architecture   string   `json:"architecture,omitempty"`
		Author         string   `json:"author,omitempty"`
		ImageHash      string   `json:"imageHash"`
		ImageTags      []string `json:"imageTags"`
		Platform       string   `json:"platform,omitempty"`
		PushedAt       string   `json:"pushedAt,omitempty"`
		Registry       string   `json:"registry"`
		RepositoryName string   `json:"repositoryName"`
	}
)

var (
	findingSeverities = map[string]bool{"INFORMATIONAL": true, "LOW": true, "MEDIUM": true, "HIGH": true, "CRITICAL": true, "UNTRIAGED": true}
	findingStatuses   = map[string]bool{"ACTIVE": true, "SUPPRESSED": true, "CLOSED": true}
)

func findingTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(findingTimeLayout)
}

// InspectorFinding builds an "Inspector2 Finding" event (source aws.inspector2, resources the
// image's resource id) for a finding created, updated or closed: the detail is the finding as
// Inspector's EventBridge events show it, timestamps written like "Wed Sep 04 16:55:38.411 UTC 2024".
func (o Origin) InspectorFinding(f Finding) (store.OutboxEvent, error) {
	switch {
	case f.ARN == "":
		return store.OutboxEvent{}, fmt.Errorf("%w: finding needs an ARN", ErrInvalidEvent)
	case !findingSeverities[f.Severity]:
		return store.OutboxEvent{}, fmt.Errorf("%w: finding %s: severity %q", ErrInvalidEvent, f.ARN, f.Severity)
	case !findingStatuses[f.Status]:
		return store.OutboxEvent{}, fmt.Errorf("%w: finding %s: status %q", ErrInvalidEvent, f.ARN, f.Status)
	case f.Vulnerability.ID == "" || f.Vulnerability.Source == "":
		return store.OutboxEvent{}, fmt.Errorf("%w: finding %s needs a vulnerability id and source", ErrInvalidEvent, f.ARN)
	case f.Image.Repository == "" || f.Image.Digest == "":
		return store.OutboxEvent{}, fmt.Errorf("%w: finding %s needs an image repository and digest", ErrInvalidEvent, f.ARN)
	case f.FirstObservedAt.IsZero() || f.LastObservedAt.IsZero():
		return store.OutboxEvent{}, fmt.Errorf("%w: finding %s needs first and last observed times", ErrInvalidEvent, f.ARN)
	}
	typ := f.Type
	if typ == "" {
		typ = "PACKAGE_VULNERABILITY"
	}
	rec := f.Remediation.Text
	if rec == "" {
		rec = "None Provided"
	}
	v := f.Vulnerability
	packages := make([]packageW, 0, len(v.Packages))
	for _, p := range v.Packages {
		packages = append(packages, packageW{
			Arch: p.Arch, Epoch: p.Epoch, FilePath: p.FilePath, FixedInVersion: p.FixedInVersion, Name: p.Name,
			PackageManager: p.PackageManager, Release: p.Release, Remediation: p.Remediation,
			SourceLayerHash: p.SourceLayerHash, Version: p.Version,
		})
	}
	var cvss []cvssW
	for _, c := range v.CVSS {
		cvss = append(cvss, cvssW{BaseScore: c.BaseScore, ScoringVector: c.ScoringVector, Source: c.Source, Version: c.Version})
	}
	resourceID := o.ImageResourceID(f.Image.Repository, f.Image.Digest)
	d := findingDetail{
		AWSAccountID:     o.Account,
		Description:      f.Description,
		ExploitAvailable: f.ExploitAvailable,
		FindingARN:       f.ARN,
		FirstObservedAt:  findingTime(f.FirstObservedAt),
		FixAvailable:     f.FixAvailable,
		InspectorScore:   f.InspectorScore,
		LastObservedAt:   findingTime(f.LastObservedAt),
		PackageVulnerabilityDetails: packageVulnerabilityDetailsW{
			CVSS:                   cvss,
			ReferenceURLs:          v.ReferenceURLs,
			RelatedVulnerabilities: v.RelatedVulnerabilities,
			Source:                 v.Source,
			SourceURL:              v.SourceURL,
			VendorCreatedAt:        findingTime(v.VendorCreatedAt),
			VendorSeverity:         v.VendorSeverity,
			VendorUpdatedAt:        findingTime(v.VendorUpdatedAt),
			VulnerabilityID:        v.ID,
			VulnerablePackages:     packages,
		},
		Remediation: remediationW{Recommendation: recommendationW{Text: rec, URL: f.Remediation.URL}},
		Resources: []resourceW{{
			Details: resourceDetailsW{AWSECRContainerImage: ecrImageW{
				Architecture:   f.Image.Architecture,
				Author:         f.Image.Author,
				ImageHash:      f.Image.Digest,
				ImageTags:      nonNil(f.Image.Tags),
				Platform:       f.Image.Platform,
				PushedAt:       findingTime(f.Image.PushedAt),
				Registry:       o.Account,
				RepositoryName: f.Image.Repository,
			}},
			ID:        resourceID,
			Partition: o.partition(),
			Region:    o.Region,
			Type:      "AWS_ECR_CONTAINER_IMAGE",
		}},
		Severity:  f.Severity,
		Status:    f.Status,
		Title:     f.Title,
		Type:      typ,
		UpdatedAt: findingTime(f.UpdatedAt),
	}
	if f.EPSS != nil {
		d.EPSS = &epssDetail{Score: *f.EPSS}
	}
	if !f.LastKnownExploitAt.IsZero() {
		d.ExploitabilityDetails = &exploitabilityDetail{LastKnownExploitAt: findingTime(f.LastKnownExploitAt)}
	}
	if s := f.InspectorScoreDetails; s != nil {
		adj := make([]adjustmentW, 0, len(s.Adjustments))
		for _, a := range s.Adjustments {
			adj = append(adj, adjustmentW(a))
		}
		d.InspectorScoreDetails = &scoreDetails{AdjustedCVSS: adjustedCVSSW{
			Adjustments: adj, CVSSSource: s.CVSSSource, Score: s.Score, ScoreSource: s.ScoreSource,
			ScoringVector: s.ScoringVector, Version: s.Version,
		}}
	}
	// The envelope's time is when the finding last changed.
	at := f.UpdatedAt
	if at.IsZero() {
		at = f.LastObservedAt
	}
	return o.event(DetailTypeInspectorFinding, SourceInspector2, at, []string{resourceID}, d)
}
