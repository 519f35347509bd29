package scanning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// rescanSetting holds the ECR rescan configuration set through Inspector's
// UpdateConfiguration (policy.Rescan as JSON); without it, --rescan-duration decides.
const rescanSetting = "scanning.ecr_rescan"

// StatusExpired is the scan status of an image whose rescan window lapsed (ECR's enhanced
// scan status and Inspector's coverage reason): its findings are closed, continuous scanning
// no longer re-evaluates it.
const (
	StatusExpired = "SCAN_ELIGIBILITY_EXPIRED"
	DescExpired   = "The image is no longer within the rescan duration: continuous scanning stopped and its findings were closed."
)

// expiryInterval is how often images are checked against the rescan window.
const expiryInterval = time.Hour

// ExpiryStore is what the rescan-window sweep needs beyond Store.
type ExpiryStore interface {
	// EnhancedScans lists the images with an ENHANCED scan, with their push and pull times.
	EnhancedScans(ctx context.Context) ([]store.ScannedImage, error)
}

// Rescan returns the ECR rescan configuration in force and its window: the one set through
// the API, else the --rescan-duration default (its exact window; the configuration names the
// model's value nearest to it).
func (s *Service) Rescan(ctx context.Context) (policy.Rescan, policy.Window, error) {
	v, err := s.store.Setting(ctx, rescanSetting)
	if errors.Is(err, store.ErrNotFound) {
		return policy.RescanFromDuration(s.cfg.RescanDuration), policy.Window{Push: s.cfg.RescanDuration, Pull: s.cfg.RescanDuration}, nil
	}
	if err != nil {
		return policy.Rescan{}, policy.Window{}, fmt.Errorf("read rescan configuration: %w", err)
	}
	var r policy.Rescan
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return policy.Rescan{}, policy.Window{}, fmt.Errorf("decode rescan configuration: %w", err)
	}
	return r, r.Window(), nil
}

// SetRescan stores the ECR rescan configuration (members not set keep their value), then
// expires the images the new window leaves out.
func (s *Service) SetRescan(ctx context.Context, r policy.Rescan) error {
	cur, _, err := s.Rescan(ctx)
	if err != nil {
		return err
	}
	if r.PullDateDuration == "" {
		r.PullDateDuration = cur.PullDateDuration
	}
	if r.PullDateMode == "" {
		r.PullDateMode = cur.PullDateMode
	}
	r.UpdatedAt = s.cfg.Now().UTC()
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.store.PutSetting(ctx, rescanSetting, string(b)); err != nil {
		return fmt.Errorf("store rescan configuration: %w", err)
	}
	if _, err := s.ExpireImages(ctx); err != nil {
		return fmt.Errorf("expire images out of the new window: %w", err)
	}
	return nil
}

// expiry checks the images against the rescan window every expiryInterval.
func (s *Service) expiry(ctx context.Context) {
	t := time.NewTicker(expiryInterval)
	defer t.Stop()
	for {
		if n, err := s.ExpireImages(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("rescan window: expiring images failed", "err", err)
		} else if n > 0 {
			s.cfg.Logger.Info("rescan window: images left continuous scanning", "images", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ExpireImages ends continuous scanning of the images that left the rescan window, as
// Inspector does: their scan status becomes SCAN_ELIGIBILITY_EXPIRED and their ACTIVE findings
// are closed, each with its "Inspector2 Finding" event. It returns how many images expired.
func (s *Service) ExpireImages(ctx context.Context) (int, error) {
	pol, err := s.store.ScanningPolicy(ctx)
	if err != nil {
		return 0, err
	}
	if pol.ScanType != policy.ScanTypeEnhanced {
		return 0, nil
	}
	_, window, err := s.Rescan(ctx)
	if err != nil {
		return 0, err
	}
	es, ok := s.store.(ExpiryStore)
	if !ok {
		return 0, errors.New("the store cannot list enhanced scans")
	}
	images, err := es.EnhancedScans(ctx)
	if err != nil {
		return 0, err
	}
	now := s.cfg.Now()
	var targets []store.ScanTarget
	for _, im := range images {
		if im.Status == StatusExpired || im.Status == StatusPending || im.Status == StatusInProgress {
			continue
		}
		if policy.Evaluate(pol, im.Repository, im.ScanOnPush).Frequency != policy.FrequencyContinuous {
			continue // scanned once (on push): there is no continuous coverage to end
		}
		if window.Covers(im.PushedAt, im.LastPulledAt, now) {
			continue
		}
		targets = append(targets, store.ScanTarget{Repository: im.Repository, Digest: im.Digest, ScanType: policy.ScanTypeEnhanced})
	}
	return len(targets), s.closeScans(ctx, targets, StatusExpired, DescExpired)
}

// closeScans closes every ACTIVE finding of the targets, with events, and gives their scans
// status and desc.
func (s *Service) closeScans(ctx context.Context, targets []store.ScanTarget, status, desc string) error {
	now := s.cfg.Now()
	for start := 0; start < len(targets); start += reevaluateBatch {
		batch := targets[start:min(start+reevaluateBatch, len(targets))]
		err := s.store.ApplyScans(ctx, batch, func(st store.ScanState) (store.ScanUpdate, error) {
			if st.Scan == nil || st.Scan.Status == status {
				return store.ScanUpdate{}, nil // deleted meanwhile, or closed by another node
			}
			if err := closingDetails(ctx, &st, nil, nil); err != nil {
				return store.ScanUpdate{}, err
			}
			info, err := imageFacts(ctx, &st, nil)
			if err != nil {
				return store.ScanUpdate{}, err
			}
			writes, closed, err := diffFindings(st.Target, st.Findings, nil, info, s.cfg.Origin, now)
			if err != nil {
				return store.ScanUpdate{}, err
			}
			scan := *st.Scan
			scan.Status, scan.Description, scan.UpdatedAt = status, desc, now
			up := store.ScanUpdate{Scan: &scan, Findings: writes}
			for _, f := range closed {
				ev, err := f.event(s.cfg.Origin, st.Manifest)
				if err != nil {
					return up, err
				}
				up.Events = append(up.Events, ev)
			}
			return up, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
