package scanning

import (
	"fmt"
	"time"

	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/store"
)

// Snapshot turns the findings of a one-off scan (no stored history, as `lading scan` runs) into
// the stored shape the API renders, all ACTIVE and first observed now.
func Snapshot(origin events.Origin, repo, dgst, scanType string, fs []match.Finding, info ImageInfo, now time.Time) ([]store.Finding, error) {
	writes, _, err := SnapshotDetails(origin, repo, dgst, scanType, fs, info, now)
	return writes, err
}

// SnapshotDetails is Snapshot with the detail it built for each finding, in the same order:
// what DecodeDetail gives back from each finding's stored detail, for a caller that renders
// them at once (`lading scan`'s report) without that round trip through JSON.
func SnapshotDetails(origin events.Origin, repo, dgst, scanType string, fs []match.Finding, info ImageInfo, now time.Time) ([]store.Finding, []*Detail, error) {
	writes, changed, err := diffFindings(store.ScanTarget{Repository: repo, Digest: dgst, ScanType: scanType}, nil, fs, info, origin, now)
	if err != nil {
		return nil, nil, err
	}
	// Without stored findings every one written is new, and changed lists them in order.
	if len(changed) != len(writes) {
		return nil, nil, fmt.Errorf("snapshot: %d findings written, %d details built", len(writes), len(changed))
	}
	details := make([]*Detail, len(changed))
	for i, c := range changed {
		if c.built == nil || c.Finding.VulnerabilityID != writes[i].VulnerabilityID {
			return nil, nil, fmt.Errorf("snapshot: no detail built for finding %s", writes[i].VulnerabilityID)
		}
		details[i] = c.built
	}
	return writes, details, nil
}
