package vulndb

import (
	"errors"
	"testing"
	"time"
)

func TestCheckFresh(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	eco := func(age time.Duration) EcosystemStatus {
		return EcosystemStatus{Ecosystem: "Debian", Records: 1, NewestModified: now.Add(-age)}
	}
	for _, tc := range []struct {
		name   string
		status *Status
		maxAge time.Duration
		want   error
	}{
		{"no status", nil, 0, ErrNoAdvisories},
		{"empty", &Status{}, 7 * 24 * time.Hour, ErrNoAdvisories},
		{"only withdrawn", &Status{Records: 3, Withdrawn: 3, Ecosystems: []EcosystemStatus{eco(time.Hour)}}, 0, ErrNoAdvisories},
		{"fresh", &Status{Records: 2, Ecosystems: []EcosystemStatus{eco(30 * 24 * time.Hour), eco(2 * 24 * time.Hour)}}, 7 * 24 * time.Hour, nil},
		{"stale", &Status{Records: 2, Ecosystems: []EcosystemStatus{eco(30 * 24 * time.Hour), eco(8 * 24 * time.Hour)}}, 7 * 24 * time.Hour, ErrStale},
		{"old but no age limit", &Status{Records: 1, Ecosystems: []EcosystemStatus{eco(400 * 24 * time.Hour)}}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.status.CheckFresh(now, tc.maxAge)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
