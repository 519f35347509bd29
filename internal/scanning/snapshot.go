package scanning

import (
	"time"

	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/store"
)

// Snapshot turns the findings of a one-off scan (no stored history, as `lading scan` runs) into
// the stored shape the API renders, all ACTIVE and first observed now.
func Snapshot(origin events.Origin, repo, dgst, scanType string, fs []match.Finding, info ImageInfo, now time.Time) ([]store.Finding, error) {
	writes, _, err := diffFindings(store.ScanTarget{Repository: repo, Digest: dgst, ScanType: scanType}, nil, fs, info, origin, now)
	return writes, err
}
