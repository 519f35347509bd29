package ecr

import (
	"context"
	"errors"
	"fmt"

	"github.com/lading-registry/lading/internal/report"
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
	errScanNotFound         = "ScanNotFoundException"
	errUnsupportedImageType = "UnsupportedImageTypeException"
	defaultFindingsPageSize = 100
)

type imageScanStatus = report.ImageScanStatus

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
	out := report.ScanFindingsOutput{
		RegistryID: h.cfg.RegistryID, RepositoryName: repo,
		ImageID:         imageID{ImageDigest: strPtr(dgst), ImageTag: in.ImageID.ImageTag},
		ImageScanStatus: imageScanStatus{Status: scan.Status, Description: scan.Description},
	}
	if scan.Status == scanning.StatusInProgress || scan.Status == scanning.StatusPending || scan.CompletedAt.IsZero() {
		return out, nil
	}
	full, err := report.RenderFindingsWith(h.cfg.RegistryID, h.cfg.Region, scan, findings, m, h.cfg.Exploits)
	if err != nil {
		return nil, err
	}
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
