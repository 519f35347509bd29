package vulndb

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Reasons a database cannot vouch for a clean scan, for callers to test with errors.Is.
var (
	// ErrNoAdvisories is a database that holds no advisory: every scan against it is clean.
	ErrNoAdvisories = errors.New("the advisory database holds no advisories")
	// ErrStale is a database whose newest advisory is older than the age allowed.
	ErrStale = errors.New("the advisory database is out of date")
)

// Freshness is what a scan needs to know of the database before trusting it: whether it holds
// a live advisory, and how current its data is. It is the part of Status that CheckFresh reads.
type Freshness struct {
	Version int64 `json:"version"`
	// Live is true when some current record is not withdrawn.
	Live bool `json:"live"`
	// Newest is the modification time of the newest current record affecting a package
	// (withdrawn or not): how current the data is, whenever it was imported (an old all.zip
	// imported today is still old). Zero when there is none.
	Newest time.Time `json:"newest,omitzero"`
}

// FreshnessReader is a store that answers Freshness without summarising every record (which
// Status does, too slow for the start of every `lading scan`).
type FreshnessReader interface {
	AdvisoryFreshness(ctx context.Context) (Freshness, error)
}

// Freshness reads what CheckFresh needs: from the store's own cheap query when it has one,
// else from the full Status.
func (d *DB) Freshness(ctx context.Context) (Freshness, error) {
	if fr, ok := d.store.(FreshnessReader); ok {
		return fr.AdvisoryFreshness(ctx)
	}
	st, err := d.Status(ctx)
	if err != nil {
		return Freshness{}, err
	}
	return st.Freshness(), nil
}

// Freshness is the part of s that CheckFresh reads.
func (s *Status) Freshness() Freshness {
	if s == nil {
		return Freshness{}
	}
	return Freshness{Version: s.Version, Live: s.Records-s.Withdrawn > 0, Newest: s.Newest()}
}

// Newest is the modification time of the newest advisory the database holds: how current its
// data is, whenever it was imported (an old all.zip imported today is still old).
func (s *Status) Newest() time.Time {
	var newest time.Time
	for _, e := range s.Ecosystems {
		if e.NewestModified.After(newest) {
			newest = e.NewestModified
		}
	}
	return newest
}

// CheckFresh reports whether a scan against the database s describes may be trusted to have
// seen current advisories (see Freshness.Check).
func (s *Status) CheckFresh(now time.Time, maxAge time.Duration) error {
	return s.Freshness().Check(now, maxAge)
}

// Check reports whether a scan against the database may be trusted to have seen current
// advisories: it must hold some, and its newest must be at most maxAge old at now (maxAge <= 0
// skips the age check).
func (f Freshness) Check(now time.Time, maxAge time.Duration) error {
	if !f.Live {
		return fmt.Errorf("%w: import or sync advisories first (lading db import|update)", ErrNoAdvisories)
	}
	if age := now.Sub(f.Newest); maxAge > 0 && age > maxAge {
		return fmt.Errorf("%w: its newest advisory was modified %s, %s ago (allowed: %s); sync it (lading db update)",
			ErrStale, f.Newest.Format(time.RFC3339), age.Round(time.Hour), maxAge)
	}
	return nil
}
