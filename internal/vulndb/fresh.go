package vulndb

import (
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
// seen current advisories: it must hold some, and its newest must be at most maxAge old at now
// (maxAge <= 0 skips the age check).
func (s *Status) CheckFresh(now time.Time, maxAge time.Duration) error {
	if s == nil || s.Records-s.Withdrawn <= 0 {
		return fmt.Errorf("%w: import or sync advisories first (lading db import|update)", ErrNoAdvisories)
	}
	newest := s.Newest()
	if age := now.Sub(newest); maxAge > 0 && age > maxAge {
		return fmt.Errorf("%w: its newest advisory was modified %s, %s ago (allowed: %s); sync it (lading db update)",
			ErrStale, newest.Format(time.RFC3339), age.Round(time.Hour), maxAge)
	}
	return nil
}
