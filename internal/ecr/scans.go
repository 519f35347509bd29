package ecr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// Scans is what the ECR face needs from the scanner.
type Scans interface {
	StartImageScan(ctx context.Context, repo, digest string) (store.ImageScan, error)
	// Results returns the scan of the image under the registry's current scan type, with its
	// findings, or store.ErrNotFound when there is none.
	Results(ctx context.Context, repo, digest string) (store.ImageScan, []store.Finding, error)
	// Summaries returns, per digest, the current scan and its ACTIVE findings' severity counts.
	Summaries(ctx context.Context, repo string, digests []string) (map[string]scanning.Summary, error)
	// PolicyChanged is told after the registry scanning configuration changed.
	PolicyChanged(ctx context.Context) error
}

// Additional error types of the scanning operations.
const (
	errScanNotFound          = "ScanNotFoundException"
	errUnsupportedImageType  = "UnsupportedImageTypeException"
	defaultFindingsPageSize  = 100
	findingTypePackageVulner = "PACKAGE_VULNERABILITY"
)

type imageScanStatus struct {
	Status      string `json:"status"`
	Description string `json:"description,omitempty"`
}

type scanFindingsSummary struct {
	ImageScanCompletedAt         *epoch         `json:"imageScanCompletedAt,omitempty"`
	VulnerabilitySourceUpdatedAt *epoch         `json:"vulnerabilitySourceUpdatedAt,omitempty"`
	FindingSeverityCounts        map[string]int `json:"findingSeverityCounts,omitempty"`
}

func (h *Handler) startImageScan(ctx context.Context, _ *call, body []byte) (any, error) {
	var in struct {
		RegistryID     *string  `json:"registryId"`
		RepositoryName *string  `json:"repositoryName"`
		ImageID        *imageID `json:"imageId"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.registryID(in.RegistryID)
	v.repositoryName("repositoryName", in.RepositoryName, true)
	v.required("imageId", in.ImageID != nil)
	if err := v.err(); err != nil {
		return nil, err
	}
	repo, err := h.repository(ctx, in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	dgst, err := h.imageOrNotFound(ctx, repo, *in.ImageID)
	if err != nil {
		return nil, err
	}
	if h.cfg.Scans == nil {
		return nil, newError(errValidation, "Image scanning is not enabled on this registry.")
	}
	scan, err := h.cfg.Scans.StartImageScan(ctx, repo, dgst)
	switch {
	case errors.Is(err, scanning.ErrQuotaExceeded):
		return nil, newError(errLimitExceeded, "The scan quota per image has been exceeded. Wait and try again.")
	case errors.Is(err, scanning.ErrUnsupportedImage):
		return nil, newError(errUnsupportedImageType, "The operating system and/or package manager are not supported.")
	case errors.Is(err, scanning.ErrNotAnImage):
		return nil, newError(errUnsupportedImageType, "The image is a manifest list or an artifact; scan the images it lists.")
	case errors.Is(err, scanning.ErrEnhancedManualScan):
		return nil, newError(errValidation, "Manual scans are not supported when enhanced scanning is configured for the registry.")
	case err != nil:
		return nil, h.storeError(err, repo)
	}
	id := imageID{ImageDigest: strPtr(dgst), ImageTag: in.ImageID.ImageTag}
	return struct {
		RegistryID      string          `json:"registryId"`
		RepositoryName  string          `json:"repositoryName"`
		ImageID         imageID         `json:"imageId"`
		ImageScanStatus imageScanStatus `json:"imageScanStatus"`
	}{h.cfg.RegistryID, repo, id, imageScanStatus{Status: scan.Status, Description: scan.Description}}, nil
}

// imageOrNotFound resolves an image id of an existing repository, answering ECR's errors for a
// missing image.
func (h *Handler) imageOrNotFound(ctx context.Context, repo string, id imageID) (string, error) {
	d, fail, err := h.resolveImage(ctx, repo, id)
	if err != nil {
		return "", err
	}
	if fail != nil {
		if fail.FailureCode == failImageNotFound {
			return "", newError(errImageNotFound, "The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
				deref(id.ImageDigest), deref(id.ImageTag), repo, h.cfg.RegistryID)
		}
		return "", newError(errInvalidParameter, "%s", fail.FailureReason)
	}
	if _, err := h.meta.GetManifest(ctx, repo, d); err != nil {
		if errors.Is(err, store.ErrManifestNotFound) {
			return "", newError(errImageNotFound, "The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
				deref(id.ImageDigest), deref(id.ImageTag), repo, h.cfg.RegistryID)
		}
		return "", err
	}
	return d, nil
}

func (h *Handler) describeImageScanFindings(ctx context.Context, c *call, body []byte) (any, error) {
	var in struct {
		RegistryID     *string  `json:"registryId"`
		RepositoryName *string  `json:"repositoryName"`
		ImageID        *imageID `json:"imageId"`
		NextToken      *string  `json:"nextToken"`
		MaxResults     *int64   `json:"maxResults"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	v := &validator{}
	v.registryID(in.RegistryID)
	v.repositoryName("repositoryName", in.RepositoryName, true)
	v.required("imageId", in.ImageID != nil)
	v.intRange("maxResults", in.MaxResults, false, 1, 1000)
	if err := v.err(); err != nil {
		return nil, err
	}
	repo, err := h.repository(ctx, in.RegistryID, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	dgst, err := h.imageOrNotFound(ctx, repo, *in.ImageID)
	if err != nil {
		return nil, err
	}
	notFound := newError(errScanNotFound, "Image scan does not exist for the image with '{imageDigest:%s, imageTag:%s}' in the repository with name '%s' in the registry with id '%s'",
		dgst, deref(in.ImageID.ImageTag), repo, h.cfg.RegistryID)
	if h.cfg.Scans == nil {
		return nil, notFound
	}
	scan, findings, err := h.cfg.Scans.Results(ctx, repo, dgst)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	m, err := h.meta.GetImage(ctx, repo, dgst)
	if err != nil {
		return nil, err
	}
	tok, err := decodePageToken(in.NextToken, c.op, repo, dgst)
	if err != nil {
		return nil, err
	}
	limit := defaultFindingsPageSize
	if in.MaxResults != nil {
		limit = int(*in.MaxResults)
	}
	out := ScanFindingsOutput{
		RegistryID: h.cfg.RegistryID, RepositoryName: repo,
		ImageID:         imageID{ImageDigest: strPtr(dgst), ImageTag: in.ImageID.ImageTag},
		ImageScanStatus: imageScanStatus{Status: scan.Status, Description: scan.Description},
	}
	if scan.Status == scanning.StatusInProgress || scan.Status == scanning.StatusPending || scan.CompletedAt.IsZero() {
		return out, nil
	}
	full := RenderFindings(h.cfg.RegistryID, h.cfg.Region, scan, findings, m)
	out.ImageScanFindings = &full
	// Page through whichever list this scan type fills.
	page := func(n int) (int, int) {
		start := 0
		if tok.After != "" {
			start, _ = parseIndex(tok.After)
		}
		start = min(start, n)
		end := min(start+limit, n)
		if end < n {
			out.NextToken = pageToken{Op: c.op, Repo: repo, Filter: dgst, After: fmt.Sprint(end)}.encode()
		}
		return start, end
	}
	if scan.ScanType == policy.ScanTypeEnhanced {
		s, e := page(len(full.EnhancedFindings))
		full.EnhancedFindings = full.EnhancedFindings[s:e]
	} else {
		s, e := page(len(full.Findings))
		full.Findings = full.Findings[s:e]
	}
	out.ImageScanFindings = &full
	return out, nil
}

func parseIndex(s string) (int, error) {
	var n int
	_, err := fmt.Sscan(s, &n)
	if n < 0 {
		n = 0
	}
	return n, err
}

// ScanFindingsOutput is DescribeImageScanFindings' response.
type ScanFindingsOutput struct {
	RegistryID        string             `json:"registryId"`
	RepositoryName    string             `json:"repositoryName"`
	ImageID           imageID            `json:"imageId"`
	ImageScanStatus   imageScanStatus    `json:"imageScanStatus"`
	ImageScanFindings *ImageScanFindings `json:"imageScanFindings,omitempty"`
	NextToken         *string            `json:"nextToken,omitempty"`
}

// ImageScanFindings is ECR's imageScanFindings member.
type ImageScanFindings struct {
	ImageScanCompletedAt         *epoch            `json:"imageScanCompletedAt,omitempty"`
	VulnerabilitySourceUpdatedAt *epoch            `json:"vulnerabilitySourceUpdatedAt,omitempty"`
	FindingSeverityCounts        map[string]int    `json:"findingSeverityCounts,omitempty"`
	Findings                     []BasicFinding    `json:"findings,omitempty"`
	EnhancedFindings             []EnhancedFinding `json:"enhancedFindings,omitempty"`
}

// BasicFinding is ECR's ImageScanFinding.
type BasicFinding struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	URI         string      `json:"uri,omitempty"`
	Severity    string      `json:"severity"`
	Attributes  []attribute `json:"attributes"`
}

type attribute struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// EnhancedFinding is ECR's EnhancedImageScanFinding.
type EnhancedFinding struct {
	AWSAccountID                string                      `json:"awsAccountId"`
	Description                 string                      `json:"description,omitempty"`
	FindingARN                  string                      `json:"findingArn"`
	FirstObservedAt             *epoch                      `json:"firstObservedAt,omitempty"`
	LastObservedAt              *epoch                      `json:"lastObservedAt,omitempty"`
	UpdatedAt                   *epoch                      `json:"updatedAt,omitempty"`
	PackageVulnerabilityDetails packageVulnerabilityDetails `json:"packageVulnerabilityDetails"`
	Remediation                 remediation                 `json:"remediation"`
	Resources                   []resource                  `json:"resources"`
	Score                       float64                     `json:"score"`
	ScoreDetails                *scoreDetails               `json:"scoreDetails,omitempty"`
	Severity                    string                      `json:"severity"`
	Status                      string                      `json:"status"`
	Title                       string                      `json:"title"`
	Type                        string                      `json:"type"`
	FixAvailable                string                      `json:"fixAvailable"`
	ExploitAvailable            string                      `json:"exploitAvailable"`
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
	SourceLayerHash string `json:"sourceLayerHash,omitempty"`
	Version         string `json:"version"`
}

type remediation struct {
	Recommendation recommendation `json:"recommendation"`
}

type recommendation struct {
	URL  string `json:"url,omitempty"`
	Text string `json:"text"`
}

type resource struct {
	ID      string            `json:"id"`
	Type    string            `json:"type"`
	Tags    map[string]string `json:"tags,omitempty"`
	Details resourceDetails   `json:"details"`
}

type resourceDetails struct {
	AWSECRContainerImage ecrContainerImage `json:"awsEcrContainerImage"`
}

type ecrContainerImage struct {
	Architecture   string   `json:"architecture,omitempty"`
	Author         string   `json:"author,omitempty"`
	ImageHash      string   `json:"imageHash"`
	ImageTags      []string `json:"imageTags,omitempty"`
	Platform       string   `json:"platform,omitempty"`
	PushedAt       *epoch   `json:"pushedAt,omitempty"`
	LastInUseAt    *epoch   `json:"lastInUseAt,omitempty"`
	Registry       string   `json:"registry"`
	RepositoryName string   `json:"repositoryName"`
}

type scoreDetails struct {
	CVSS cvssScoreDetails `json:"cvss"`
}

type cvssScoreDetails struct {
	Adjustments   []any   `json:"adjustments"`
	Score         float64 `json:"score"`
	ScoreSource   string  `json:"scoreSource"`
	ScoringVector string  `json:"scoringVector"`
	Version       string  `json:"version"`
}

// RenderFindings turns a scan and its stored findings into ECR's imageScanFindings, in the shape
// of the scan type: BASIC lists one finding per vulnerable package (ACTIVE ones only), ENHANCED
// lists every finding with its status.
func RenderFindings(registryID, region string, scan store.ImageScan, findings []store.Finding, m store.Manifest) ImageScanFindings {
	out := ImageScanFindings{ImageScanCompletedAt: epochPtr(scan.CompletedAt), VulnerabilitySourceUpdatedAt: epochPtr(scan.SourceUpdatedAt),
		FindingSeverityCounts: map[string]int{}}
	sorted := append([]store.Finding(nil), findings...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.Status != b.Status {
			return a.Status == scanning.FindingActive
		}
		if ra, rb := match.SeverityRank(a.Severity), match.SeverityRank(b.Severity); ra != rb {
			return ra < rb
		}
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		return a.VulnerabilityID < b.VulnerabilityID
	})
	for _, f := range sorted {
		var d scanning.Detail
		if err := json.Unmarshal(f.Detail, &d); err != nil {
			continue
		}
		if scan.ScanType == policy.ScanTypeEnhanced {
			out.EnhancedFindings = append(out.EnhancedFindings, enhanced(registryID, region, f, d, m))
			if f.Status == scanning.FindingActive {
				out.FindingSeverityCounts[f.Severity]++
			}
			continue
		}
		if f.Status != scanning.FindingActive {
			continue
		}
		for _, bf := range basic(f, d) {
			out.Findings = append(out.Findings, bf)
			out.FindingSeverityCounts[bf.Severity]++
		}
	}
	if scan.ScanType == policy.ScanTypeEnhanced && out.EnhancedFindings == nil {
		out.EnhancedFindings = []EnhancedFinding{}
	}
	if scan.ScanType != policy.ScanTypeEnhanced && out.Findings == nil {
		out.Findings = []BasicFinding{}
	}
	if len(out.FindingSeverityCounts) == 0 {
		out.FindingSeverityCounts = nil
	}
	return out
}

func basic(f store.Finding, d scanning.Detail) []BasicFinding {
	mf := d.Finding
	var out []BasicFinding
	for _, p := range mf.Packages {
		attrs := []attribute{{"package_version", p.Version}, {"package_name", p.Name}}
		if mf.Score != nil && mf.CVSSVector != "" {
			kind := "CVSS3"
			if mf.CVSSVersion == "2.0" {
				kind = "CVSS2"
			}
			attrs = append(attrs, attribute{kind + "_VECTOR", mf.CVSSVector}, attribute{kind + "_SCORE", match.FormatScore(*mf.Score)})
		}
		out = append(out, BasicFinding{Name: mf.VulnerabilityID, Description: mf.Description, URI: mf.SourceURL, Severity: f.Severity, Attributes: attrs})
	}
	return out
}

func enhanced(registryID, region string, f store.Finding, d scanning.Detail, m store.Manifest) EnhancedFinding {
	mf := d.Finding
	ef := EnhancedFinding{
		AWSAccountID: registryID, Description: mf.Description, FindingARN: f.ARN,
		FirstObservedAt: epochPtr(f.FirstObservedAt), LastObservedAt: epochPtr(f.LastObservedAt), UpdatedAt: epochPtr(f.UpdatedAt),
		Score: f.Score, Severity: f.Severity, Status: f.Status, Title: mf.Title, Type: findingTypePackageVulner,
		FixAvailable: mf.FixAvailable(), ExploitAvailable: "NO",
		Remediation: remediation{Recommendation: recommendation{Text: scanning.RemediationText(mf)}},
		PackageVulnerabilityDetails: packageVulnerabilityDetails{
			ReferenceURLs: mf.ReferenceURLs, RelatedVulnerabilities: mf.Related, Source: mf.Source, SourceURL: mf.SourceURL,
			VendorCreatedAt: epochPtr(mf.Published), VendorSeverity: mf.VendorSeverity, VendorUpdatedAt: epochPtr(mf.Modified),
			VulnerabilityID: mf.VulnerabilityID, VulnerablePackages: []vulnerablePackage{},
		},
		Resources: []resource{{
			ID:   fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s/%s", region, registryID, m.Repository, m.Digest),
			Type: "AWS_ECR_CONTAINER_IMAGE",
			Details: resourceDetails{AWSECRContainerImage: ecrContainerImage{
				Architecture: d.Image.Architecture, Author: d.Image.Author, ImageHash: m.Digest, ImageTags: m.Tags,
				Platform: d.Image.Platform, PushedAt: epochPtr(m.PushedAt), LastInUseAt: epochPtr(m.LastPulledAt),
				Registry: registryID, RepositoryName: m.Repository,
			}},
		}},
	}
	if mf.Score != nil && mf.CVSSVector != "" {
		ef.ScoreDetails = &scoreDetails{CVSS: cvssScoreDetails{Adjustments: []any{}, Score: *mf.Score, ScoreSource: mf.Source,
			ScoringVector: mf.CVSSVector, Version: mf.CVSSVersion}}
	}
	for _, c := range mf.CVSS {
		ef.PackageVulnerabilityDetails.CVSS = append(ef.PackageVulnerabilityDetails.CVSS, cvssScore{BaseScore: c.BaseScore, ScoringVector: c.Vector, Source: mf.Source, Version: c.Version})
	}
	for _, p := range mf.Packages {
		ef.PackageVulnerabilityDetails.VulnerablePackages = append(ef.PackageVulnerabilityDetails.VulnerablePackages, vulnerablePackage{
			Arch: p.Arch, Epoch: p.Epoch, FilePath: p.FilePath, FixedInVersion: p.FixedInVersion, Name: p.Name,
			PackageManager: p.PackageManager, Release: p.Release, SourceLayerHash: p.Layer, Version: p.Version})
	}
	return ef
}

// scanDetails adds scan status and summary to DescribeImages' details (ECR leaves them empty
// today; Lading fills them).
func (h *Handler) scanDetails(ctx context.Context, repo string, details []imageDetail) error {
	if h.cfg.Scans == nil || len(details) == 0 {
		return nil
	}
	digests := make([]string, len(details))
	for i, d := range details {
		digests[i] = d.ImageDigest
	}
	sums, err := h.cfg.Scans.Summaries(ctx, repo, digests)
	if err != nil {
		return err
	}
	for i := range details {
		s, ok := sums[details[i].ImageDigest]
		if !ok {
			continue
		}
		details[i].ImageScanStatus = &imageScanStatus{Status: s.Scan.Status, Description: s.Scan.Description}
		if !s.Scan.CompletedAt.IsZero() {
			counts := s.Counts
			if len(counts) == 0 {
				counts = nil
			}
			details[i].ImageScanFindingsSummary = &scanFindingsSummary{ImageScanCompletedAt: epochPtr(s.Scan.CompletedAt),
				VulnerabilitySourceUpdatedAt: epochPtr(s.Scan.SourceUpdatedAt), FindingSeverityCounts: counts}
		}
	}
	return nil
}

// NewScanFindingsOutput builds DescribeImageScanFindings' response for one image, for callers
// outside the API (`lading scan --format json`).
func NewScanFindingsOutput(registryID, repo, dgst, tag string, scan store.ImageScan, findings ImageScanFindings) ScanFindingsOutput {
	id := imageID{ImageDigest: strPtr(dgst)}
	if tag != "" {
		id.ImageTag = strPtr(tag)
	}
	return ScanFindingsOutput{RegistryID: registryID, RepositoryName: repo, ImageID: id,
		ImageScanStatus: imageScanStatus{Status: scan.Status, Description: scan.Description}, ImageScanFindings: &findings}
}
