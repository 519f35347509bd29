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
	// ActiveFindingCounts returns, per digest with any, the image's ACTIVE (not suppressed)
	// findings of scanType by stored severity, kept by the store as the findings are written.
	ActiveFindingCounts(ctx context.Context, repo string, digests []string, scanType string) (map[string]map[string]int, error)
	// RepositoryFindingCounts returns the same counts summed per repository.
	RepositoryFindingCounts(ctx context.Context, scanType string) (map[string]map[string]int, error)
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
	// Enhanced findings are counted by the store (one row an image); basic ones are listed per
	// package, which only their detail says.
	var active map[string]map[string]int
	if st == policy.ScanTypeEnhanced {
		if active, err = s.results.ActiveFindingCounts(ctx, repo, digests, st); err != nil {
			return nil, err
		}
	}
	out := map[string]Summary{}
	for dgst, list := range scans {
		for _, sc := range list {
			if sc.ScanType != st {
				continue
			}
			if active != nil {
				out[dgst] = Summary{Scan: sc, Counts: enhancedCounts(active[dgst])}
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

// RepositoryCounts returns, per repository with any, its images' ACTIVE findings counted by
// severity as Summaries counts them, summed; ok is false under basic scanning, whose findings
// are counted per package (Summaries answers it image by image).
func (s *Service) RepositoryCounts(ctx context.Context) (counts map[string]map[string]int, ok bool, err error) {
	st, err := s.currentScanType(ctx)
	if err != nil || st != policy.ScanTypeEnhanced {
		return nil, false, err
	}
	byRepo, err := s.results.RepositoryFindingCounts(ctx, st)
	if err != nil {
		return nil, false, err
	}
	counts = make(map[string]map[string]int, len(byRepo))
	for repo, c := range byRepo {
		counts[repo] = enhancedCounts(c)
	}
	return counts, true, nil
}

func listedCounts(scanType string, fs []store.Finding) (map[string]int, error) {
	if scanType == policy.ScanTypeEnhanced {
		return enhancedCounts(severityCounts(fs)), nil
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

// enhancedCounts returns ACTIVE enhanced findings counted by stored severity with Inspector's
// word for an unrated finding, as DescribeImageScanFindings says it (report.Enhanced).
func enhancedCounts(bySeverity map[string]int) map[string]int {
	counts := map[string]int{}
	for sev, n := range bySeverity {
		if sev == "UNDEFINED" {
			sev = "UNTRIAGED"
		}
		counts[sev] += n
	}
	return counts
}
