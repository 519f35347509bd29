package scanning

import (
	"context"

	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// ResultStore is what reading scan results needs.
type ResultStore interface {
	Findings(ctx context.Context, repo, digest, scanType string) ([]store.Finding, error)
	ImageScans(ctx context.Context, repo string, digests []string) (map[string][]store.ImageScan, error)
}

// Summary is an image's current scan and its listed findings counted by severity.
type Summary struct {
	Scan   store.ImageScan
	Counts map[string]int
}

// currentScanType is the scan type whose results the registry shows: switching between basic
// and enhanced scanning hides the other type's scans, as on ECR.
func (s *Service) currentScanType(ctx context.Context) (string, error) {
	pol, err := s.store.ScanningPolicy(ctx)
	if err != nil {
		return "", err
	}
	return policyScanType(pol), nil
}

// CurrentScanType is the scan type whose results the registry shows (the pull gate reads
// those findings).
func (s *Service) CurrentScanType(ctx context.Context) (string, error) { return s.currentScanType(ctx) }

// Results returns an image's current scan and findings, or store.ErrNotFound.
func (s *Service) Results(ctx context.Context, repo, dgst string) (store.ImageScan, []store.Finding, error) {
	st, err := s.currentScanType(ctx)
	if err != nil {
		return store.ImageScan{}, nil, err
	}
	scan, err := s.store.ImageScan(ctx, repo, dgst, st)
	if err != nil {
		return scan, nil, err
	}
	fs, err := s.results.Findings(ctx, repo, dgst, st)
	return scan, fs, err
}

// Summaries returns the current scan of each digest with its ACTIVE findings counted by
// severity, as the findings would be listed (per package for basic scans).
func (s *Service) Summaries(ctx context.Context, repo string, digests []string) (map[string]Summary, error) {
	st, err := s.currentScanType(ctx)
	if err != nil {
		return nil, err
	}
	scans, err := s.results.ImageScans(ctx, repo, digests)
	if err != nil {
		return nil, err
	}
	out := map[string]Summary{}
	for dgst, list := range scans {
		for _, sc := range list {
			if sc.ScanType != st {
				continue
			}
			fs, err := s.results.Findings(ctx, repo, dgst, st)
			if err != nil {
				return nil, err
			}
			counts, err := listedCounts(st, fs)
			if err != nil {
				return nil, err
			}
			out[dgst] = Summary{Scan: sc, Counts: counts}
		}
	}
	return out, nil
}

func listedCounts(scanType string, fs []store.Finding) (map[string]int, error) {
	if scanType == policy.ScanTypeEnhanced {
		counts := severityCounts(fs)
		// Enhanced findings say Inspector's word for an unrated finding, as
		// DescribeImageScanFindings does (report.Enhanced).
		if n, ok := counts["UNDEFINED"]; ok {
			delete(counts, "UNDEFINED")
			counts["UNTRIAGED"] += n
		}
		return counts, nil
	}
	out := map[string]int{}
	for _, f := range fs {
		if f.Status != FindingActive {
			continue
		}
		d, err := DecodeDetail(f)
		if err != nil {
			return nil, err
		}
		out[f.Severity] += len(d.Finding.Packages)
	}
	return out, nil
}
