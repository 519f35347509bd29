package report

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// This file is the one definition of ECR's DescribeImageScanFindings response: the API (the
// ECR face) answers with it, and `lading scan --format json` prints it.

const findingTypePackageVulner = "PACKAGE_VULNERABILITY"

// Epoch is a timestamp on ECR's wire: epoch seconds, as a JSON number.
type Epoch time.Time

// MarshalJSON writes the seconds, with milliseconds as a fraction.
func (e Epoch) MarshalJSON() ([]byte, error) {
	t := time.Time(e)
	return []byte(strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)), nil
}

// EpochOf is t on the wire, or nil (left out) for the zero time.
func EpochOf(t time.Time) *Epoch {
	if t.IsZero() {
		return nil
	}
	e := Epoch(t)
	return &e
}

// ImageID is ECR's ImageIdentifier.
type ImageID struct {
	ImageDigest *string `json:"imageDigest,omitempty"`
	ImageTag    *string `json:"imageTag,omitempty"`
}

// ImageScanStatus is ECR's ImageScanStatus.
type ImageScanStatus struct {
	Status      string `json:"status"`
	Description string `json:"description,omitempty"`
}

// ScanFindingsOutput is DescribeImageScanFindings' response.
type ScanFindingsOutput struct {
	RegistryID        string             `json:"registryId"`
	RepositoryName    string             `json:"repositoryName"`
	ImageID           ImageID            `json:"imageId"`
	ImageScanStatus   ImageScanStatus    `json:"imageScanStatus"`
	ImageScanFindings *ImageScanFindings `json:"imageScanFindings,omitempty"`
	NextToken         *string            `json:"nextToken,omitempty"`
}

// ImageScanFindings is ECR's imageScanFindings member.
type ImageScanFindings struct {
	ImageScanCompletedAt         *Epoch            `json:"imageScanCompletedAt,omitempty"`
	VulnerabilitySourceUpdatedAt *Epoch            `json:"vulnerabilitySourceUpdatedAt,omitempty"`
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
	FirstObservedAt             *Epoch                      `json:"firstObservedAt,omitempty"`
	LastObservedAt              *Epoch                      `json:"lastObservedAt,omitempty"`
	UpdatedAt                   *Epoch                      `json:"updatedAt,omitempty"`
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
	VendorCreatedAt        *Epoch              `json:"vendorCreatedAt,omitempty"`
	VendorSeverity         string              `json:"vendorSeverity,omitempty"`
	VendorUpdatedAt        *Epoch              `json:"vendorUpdatedAt,omitempty"`
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
	// Reachability is Lading's, for Go packages (match.ReachPresent, ...): a member ECR's
	// SDKs do not know and ignore.
	Reachability string `json:"reachability,omitempty"`
	// LanguagePackages are Lading's too: the language packages an OS package installed.
	LanguagePackages []inventory.LanguagePackage `json:"languagePackages,omitempty"`
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
	PushedAt       *Epoch   `json:"pushedAt,omitempty"`
	LastInUseAt    *Epoch   `json:"lastInUseAt,omitempty"`
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

// Exploits tells which vulnerabilities are known to be exploited (the KEV catalogue): their
// enhanced findings say exploitAvailable YES.
type Exploits interface {
	Exploited(ids ...string) bool
}

// RenderFindings turns a scan and its stored findings into ECR's imageScanFindings, in the shape
// of the scan type: BASIC lists one finding per vulnerable package (ACTIVE ones only), ENHANCED
// lists every finding with its status. A finding whose stored detail does not decode is an
// error naming it (scanning.ErrCorrupt), never left out. No vulnerability is known to be
// exploited.
func RenderFindings(registryID, region string, scan store.ImageScan, findings []store.Finding, m store.Manifest) (ImageScanFindings, error) {
	return RenderFindingsWith(registryID, region, scan, findings, m, nil)
}

// RenderFindingsWith is RenderFindings knowing the exploited vulnerabilities (x may be nil).
func RenderFindingsWith(registryID, region string, scan store.ImageScan, findings []store.Finding, m store.Manifest, x Exploits) (ImageScanFindings, error) {
	return renderFindings(registryID, region, scan, findings, nil, m, x)
}

// renderFindings is RenderFindingsWith; details, when not nil, are the findings' details as
// built (scanning.SnapshotDetails, one for each finding, in order), used instead of decoding
// each finding's stored detail.
func renderFindings(registryID, region string, scan store.ImageScan, findings []store.Finding, details []*scanning.Detail, m store.Manifest, x Exploits) (ImageScanFindings, error) {
	out := ImageScanFindings{ImageScanCompletedAt: EpochOf(scan.CompletedAt), VulnerabilitySourceUpdatedAt: EpochOf(scan.SourceUpdatedAt),
		FindingSeverityCounts: map[string]int{}}
	type entry struct {
		f store.Finding
		d *scanning.Detail
	}
	sorted := make([]entry, len(findings))
	for i, f := range findings {
		sorted[i].f = f
		if details != nil {
			sorted[i].d = details[i]
		}
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i].f, sorted[j].f
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
	for _, e := range sorted {
		f := e.f
		var d scanning.Detail
		if e.d != nil {
			d = *e.d
		} else {
			var err error
			if d, err = scanning.DecodeDetail(f); err != nil {
				return ImageScanFindings{}, err
			}
		}
		if scan.ScanType == policy.ScanTypeEnhanced {
			if scanning.InspectorStatus(f) == scanning.FindingSuppressed {
				continue // Inspector leaves suppressed findings out of ECR's findings and counts
			}
			ef := Enhanced(registryID, region, f, d, m, x)
			out.EnhancedFindings = append(out.EnhancedFindings, ef)
			if f.Status == scanning.FindingActive {
				out.FindingSeverityCounts[ef.Severity]++
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
	return out, nil
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

// Enhanced is one stored finding as ECR's EnhancedImageScanFinding: the one definition of an
// enhanced finding's fields, which Inspector's face shows in its own shape. Severities are
// Inspector's words (a finding no source rated is UNTRIAGED; basic findings keep UNDEFINED).
func Enhanced(registryID, region string, f store.Finding, d scanning.Detail, m store.Manifest, x Exploits) EnhancedFinding {
	mf := d.Finding
	severity := f.Severity
	if severity == "UNDEFINED" || severity == "" {
		severity = "UNTRIAGED"
	}
	exploit := "NO"
	if x != nil && x.Exploited(append([]string{mf.VulnerabilityID}, mf.Aliases...)...) {
		exploit = "YES"
	}
	ef := EnhancedFinding{
		AWSAccountID: registryID, Description: mf.Description, FindingARN: f.ARN,
		FirstObservedAt: EpochOf(f.FirstObservedAt), LastObservedAt: EpochOf(f.LastObservedAt), UpdatedAt: EpochOf(f.UpdatedAt),
		Score: f.Score, Severity: severity, Status: scanning.InspectorStatus(f), Title: mf.Title, Type: findingTypePackageVulner,
		FixAvailable: mf.FixAvailable(), ExploitAvailable: exploit,
		Remediation: remediation{Recommendation: recommendation{Text: scanning.RemediationText(mf)}},
		PackageVulnerabilityDetails: packageVulnerabilityDetails{
			ReferenceURLs: mf.ReferenceURLs, RelatedVulnerabilities: mf.Related, Source: mf.Source, SourceURL: mf.SourceURL,
			VendorCreatedAt: EpochOf(mf.Published), VendorSeverity: mf.VendorSeverity, VendorUpdatedAt: EpochOf(mf.Modified),
			VulnerabilityID: mf.VulnerabilityID, VulnerablePackages: []vulnerablePackage{},
		},
		Resources: []resource{{
			ID:   fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s/%s", region, registryID, m.Repository, m.Digest),
			Type: "AWS_ECR_CONTAINER_IMAGE",
			Details: resourceDetails{AWSECRContainerImage: ecrContainerImage{
				Architecture: d.Image.Architecture, Author: d.Image.Author, ImageHash: m.Digest, ImageTags: m.Tags,
				Platform: d.Image.Platform, PushedAt: EpochOf(m.PushedAt), LastInUseAt: EpochOf(m.LastPulledAt),
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
			PackageManager: p.PackageManager, Release: p.Release, SourceLayerHash: p.Layer, Version: p.Version, Reachability: p.Reachability,
			LanguagePackages: p.LanguagePackages})
	}
	return ef
}

// newScanFindingsOutput builds DescribeImageScanFindings' response for one image, for callers
// outside the API (`lading scan --format json`).
func newScanFindingsOutput(registryID, repo, dgst, tag string, scan store.ImageScan, findings ImageScanFindings) ScanFindingsOutput {
	id := ImageID{ImageDigest: &dgst}
	if tag != "" {
		id.ImageTag = &tag
	}
	return ScanFindingsOutput{RegistryID: registryID, RepositoryName: repo, ImageID: id,
		ImageScanStatus: ImageScanStatus{Status: scan.Status, Description: scan.Description}, ImageScanFindings: &findings}
}

// scanReport is `lading scan --format json`: DescribeImageScanFindings' response, with Lading's
// members beside it (clients of the ECR shape ignore them).
type scanReport struct {
	ScanFindingsOutput
	// NotEvaluated is always present, empty when the scan evaluated everything.
	NotEvaluated []match.NotEvaluated `json:"notEvaluated"`
	Suppressed   []suppressedFinding  `json:"suppressed,omitempty"`
	Ignored      int                  `json:"ignored,omitempty"`
	// Unreachable counts the findings --reachable-only left out.
	Unreachable int `json:"unreachableHidden,omitempty"`
}

type suppressedFinding struct {
	VulnerabilityID string              `json:"vulnerabilityId"`
	Severity        string              `json:"severity"`
	Status          string              `json:"status"`
	Justification   string              `json:"justification"`
	Packages        []suppressedPackage `json:"packages"`
}

type suppressedPackage struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	PURL     string `json:"purl,omitempty"`
	FilePath string `json:"filePath,omitempty"`
}

// JSON writes what ECR's DescribeImageScanFindings returns for the image (every finding ACTIVE
// and first observed now, as a one-off scan has no history), with what the scan could not
// evaluate and what was suppressed or ignored beside it.
func JSON(w io.Writer, s *Scan, o Options) error {
	now := o.now()
	repo := s.Image.repository()
	info := scanning.ImageInfo{Architecture: s.Image.Architecture, Author: s.Image.Author, Platform: scanning.PlatformName(s.Inventory.OS)}
	stored, details, err := scanning.SnapshotDetails(events.Origin{Account: o.RegistryID, Region: o.Region}, repo, s.Image.ManifestDigest, s.ScanType, s.Findings, info, now)
	if err != nil {
		return err
	}
	scan := store.ImageScan{Repository: repo, Digest: s.Image.ManifestDigest, ScanType: s.ScanType, Status: scanning.StatusComplete,
		Description: scanning.DescribeNotEvaluated(scanning.StatusComplete, match.NotEvaluatedPackages(s.NotEvaluated)), CompletedAt: now, SourceUpdatedAt: now}
	m := store.Manifest{Repository: repo, Digest: s.Image.ManifestDigest, PushedAt: s.Image.Created}
	if t := s.Image.tag(); t != "" {
		m.Tags = []string{t}
	}
	rendered, err := renderFindings(o.RegistryID, o.Region, scan, stored, details, m, nil)
	if err != nil {
		return err
	}
	out := scanReport{ScanFindingsOutput: newScanFindingsOutput(o.RegistryID, repo, s.Image.ManifestDigest, s.Image.tag(), scan, rendered),
		NotEvaluated: nonNil(s.NotEvaluated), Ignored: s.Ignored, Unreachable: s.Unreachable}
	for _, sp := range s.Suppressed {
		so := suppressedFinding{VulnerabilityID: sp.Finding.VulnerabilityID, Severity: sp.Finding.Severity, Status: sp.Status, Justification: sp.Justification}
		for _, p := range sp.Finding.Packages {
			so.Packages = append(so.Packages, suppressedPackage{Name: p.Name, Version: p.InstalledVersion(), PURL: p.PURL, FilePath: p.FilePath})
		}
		out.Suppressed = append(out.Suppressed, so)
	}
	isf := out.ImageScanFindings
	if len(isf.Findings) > len(isf.EnhancedFindings) {
		return encodeListStreamed(w, out, isf.Findings, func(l []BasicFinding) { isf.Findings = l })
	}
	return encodeListStreamed(w, out, isf.EnhancedFindings, func(l []EnhancedFinding) { isf.EnhancedFindings = l })
}
