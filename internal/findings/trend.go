package findings

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DayCount is how many findings were first observed (Opened) and closed (Closed) on one UTC day.
type DayCount struct {
	Day            time.Time
	Opened, Closed int
}

// TrendStore is what Trend needs of the store.
type TrendStore interface {
	// FindingDays returns the ENHANCED findings opened and closed on each UTC day from the
	// day of from, for days days (days with none included, in order).
	FindingDays(ctx context.Context, from time.Time, days int) ([]DayCount, error)
}

// Trend returns, for each UTC day of days days from the day of from, the findings first observed
// that day and the findings closed that day (a CLOSED finding's updatedAt is when it closed):
// what ListFindings filtered by firstObservedAt, and by status CLOSED and updatedAt, counts.
func (s *Service) Trend(ctx context.Context, from time.Time, days int) ([]DayCount, error) {
	st, ok := s.store.(TrendStore)
	if !ok {
		return nil, errors.New("finding trend: the store keeps no daily counts")
	}
	if days <= 0 {
		return nil, nil
	}
	out, err := st.FindingDays(ctx, from, days)
	if err != nil {
		return nil, fmt.Errorf("finding trend: %w", err)
	}
	return out, nil
}
