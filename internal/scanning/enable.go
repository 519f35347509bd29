package scanning

import (
	"context"
	"errors"
	"fmt"

	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// StatusFindingsUnavailable is the ENHANCED scan status of an image once enhanced scanning was
// disabled (ECR's FINDINGS_UNAVAILABLE): its findings are closed.
const (
	StatusFindingsUnavailable = "FINDINGS_UNAVAILABLE"
	DescFindingsUnavailable   = "Enhanced scanning was disabled: the image's findings were closed."
)

// PolicyStore is what enabling and disabling enhanced scanning needs beyond Store.
type PolicyStore interface {
	PutScanningPolicy(ctx context.Context, p policy.Policy) error
}

// Enhanced reports whether the registry scans with ENHANCED scanning (Inspector's ECR scanning
// "enabled").
func (s *Service) Enhanced(ctx context.Context) (bool, error) {
	pol, err := s.store.ScanningPolicy(ctx)
	if err != nil {
		return false, err
	}
	return pol.ScanType == policy.ScanTypeEnhanced, nil
}

// SetEnhanced switches the registry between ENHANCED and BASIC scanning, as enabling and
// disabling Inspector's ECR scanning does. Enabling keeps the rules and brings the images the
// rules scan continuously into coverage. Disabling keeps the rules basic scanning has (a
// continuous rule scans on push; a manual one goes), and closes every ACTIVE enhanced
// finding, with events: their images' enhanced scans say FINDINGS_UNAVAILABLE.
func (s *Service) SetEnhanced(ctx context.Context, on bool) error {
	ps, ok := s.store.(PolicyStore)
	if !ok {
		return errors.New("the store cannot change the scanning configuration")
	}
	pol, err := s.store.ScanningPolicy(ctx)
	if err != nil {
		return err
	}
	if (pol.ScanType == policy.ScanTypeEnhanced) == on {
		return nil
	}
	if on {
		pol.ScanType = policy.ScanTypeEnhanced
		if err := ps.PutScanningPolicy(ctx, pol); err != nil {
			return err
		}
		return s.PolicyChanged(ctx)
	}
	basic := policy.Policy{ScanType: policy.ScanTypeBasic, Rules: []policy.Rule{}}
	for _, r := range pol.Rules {
		switch r.Frequency {
		case policy.FrequencyContinuous, policy.FrequencyScanOnPush:
			basic.Rules = append(basic.Rules, policy.Rule{Frequency: policy.FrequencyScanOnPush, Filters: r.Filters})
		}
	}
	if err := ps.PutScanningPolicy(ctx, basic); err != nil {
		return err
	}
	es, ok := s.store.(ExpiryStore)
	if !ok {
		return errors.New("the store cannot list enhanced scans")
	}
	images, err := es.EnhancedScans(ctx)
	if err != nil {
		return err
	}
	targets := make([]store.ScanTarget, 0, len(images))
	for _, im := range images {
		if im.Status != StatusFindingsUnavailable {
			targets = append(targets, store.ScanTarget{Repository: im.Repository, Digest: im.Digest, ScanType: policy.ScanTypeEnhanced})
		}
	}
	if err := s.closeScans(ctx, targets, StatusFindingsUnavailable, DescFindingsUnavailable); err != nil {
		return fmt.Errorf("close enhanced findings: %w", err)
	}
	return nil
}
