package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/lading-registry/lading/internal/vulndb"
)

// dbHealth says whether the advisory database can vouch for clean scans, for /readyz and
// /metrics. Reading the database's status scans every record, too much for a probe every
// second, so it is read again only when the watcher has seen a new version.
type dbHealth struct {
	db      *vulndb.DB
	version func() int64 // the version of the node's index
	maxAge  time.Duration

	mu      sync.Mutex
	read    bool
	of      int64 // the version status was read at
	status  *vulndb.Status
	readErr error
}

func (h *dbHealth) current(ctx context.Context) (*vulndb.Status, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.version()
	if h.read && h.readErr == nil && h.of == v {
		return h.status, nil
	}
	h.status, h.readErr = h.db.Status(ctx)
	h.read, h.of = true, v
	return h.status, h.readErr
}

// detail is the line /readyz adds: "advisories: ok ..." or why scans may miss vulnerabilities.
func (h *dbHealth) detail(ctx context.Context) string {
	st, err := h.current(ctx)
	if err != nil {
		return fmt.Sprintf("advisories: unknown: %v", err)
	}
	if err := st.CheckFresh(time.Now(), h.maxAge); err != nil {
		return fmt.Sprintf("advisories: not current: %v; scans may report images clean that are not", err)
	}
	return fmt.Sprintf("advisories: ok: version %d, %d records, newest modified %s", st.Version, st.Records, st.Newest().Format(time.RFC3339))
}

// age is the age in seconds of the newest advisory, or -1 when there is none.
func (h *dbHealth) age(ctx context.Context) float64 {
	st, err := h.current(ctx)
	if err != nil || st.Records == 0 {
		return -1
	}
	return time.Since(st.Newest()).Seconds()
}
