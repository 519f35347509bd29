package policy

import (
	"fmt"
	"slices"
	"time"
)

// Rescan is Inspector's ECR rescan configuration (its ecrConfiguration): how long after its
// push, or after its last pull, an image stays in continuous coverage.
type Rescan struct {
	// Duration is the push-date window: LIFETIME, or DAYS_n.
	Duration string `json:"rescanDuration"`
	// PullDateDuration is the pull-date window: DAYS_n.
	PullDateDuration string `json:"pullDateRescanDuration"`
	// PullDateMode is LAST_PULL_DATE or LAST_IN_USE_AT (Lading knows pulls only: both read
	// the image's last pull).
	PullDateMode string    `json:"pullDateRescanMode"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// Rescan values, as Inspector's model enumerates them.
const (
	RescanLifetime      = "LIFETIME"
	PullModeLastPull    = "LAST_PULL_DATE"
	PullModeLastInUse   = "LAST_IN_USE_AT"
	rescanDefaultDays   = "DAYS_14"
	rescanDefaultWindow = 14 * 24 * time.Hour
)

// RescanDurations lists the push-date windows of the model; PullDateRescanDurations the
// pull-date ones; PullDateRescanModes the modes.
func RescanDurations() []string {
	return []string{RescanLifetime, "DAYS_30", "DAYS_180", "DAYS_14", "DAYS_60", "DAYS_90"}
}

// PullDateRescanDurations lists the model's pull-date windows.
func PullDateRescanDurations() []string {
	return []string{"DAYS_14", "DAYS_30", "DAYS_60", "DAYS_90", "DAYS_180"}
}

// PullDateRescanModes lists the model's pull-date modes.
func PullDateRescanModes() []string { return []string{PullModeLastPull, PullModeLastInUse} }

// days returns the window of a DAYS_n value (0 for LIFETIME).
func days(v string) time.Duration {
	var n int
	if _, err := fmt.Sscanf(v, "DAYS_%d", &n); err != nil {
		return 0
	}
	return time.Duration(n) * 24 * time.Hour
}

// RescanFromDuration is the configuration a --rescan-duration flag stands for: both windows
// the model's value nearest to d (at least d, so the flag's images stay covered; LIFETIME
// beyond 180 days).
func RescanFromDuration(d time.Duration) Rescan {
	if d <= 0 {
		d = rescanDefaultWindow
	}
	pick := func(values []string, lifetime bool) string {
		best := ""
		for _, v := range values {
			w := days(v)
			if w >= d && (best == "" || w < days(best)) {
				best = v
			}
		}
		if best == "" {
			if lifetime {
				return RescanLifetime
			}
			return "DAYS_180"
		}
		return best
	}
	return Rescan{Duration: pick(slices.DeleteFunc(RescanDurations(), func(v string) bool { return v == RescanLifetime }), true),
		PullDateDuration: pick(PullDateRescanDurations(), false), PullDateMode: PullModeLastInUse}
}

// ValidateRescan names the first member of r that is not one of the model's values ("" when
// all are).
func ValidateRescan(r Rescan) (member string, allowed []string) {
	switch {
	case !slices.Contains(RescanDurations(), r.Duration):
		return "rescanDuration", RescanDurations()
	case r.PullDateDuration != "" && !slices.Contains(PullDateRescanDurations(), r.PullDateDuration):
		return "pullDateRescanDuration", PullDateRescanDurations()
	case r.PullDateMode != "" && !slices.Contains(PullDateRescanModes(), r.PullDateMode):
		return "pullDateRescanMode", PullDateRescanModes()
	}
	return "", nil
}

// Window is the rescan configuration as times: an image is in continuous coverage while it
// was pushed within Push (0: for its lifetime) or pulled within Pull.
type Window struct {
	Push, Pull time.Duration
}

// Window returns r's windows; a member not set is the model's default (14 days).
func (r Rescan) Window() Window {
	w := Window{Push: rescanDefaultWindow, Pull: rescanDefaultWindow}
	if r.Duration == RescanLifetime {
		w.Push = 0
	} else if d := days(r.Duration); d > 0 {
		w.Push = d
	}
	if d := days(r.PullDateDuration); d > 0 {
		w.Pull = d
	}
	return w
}

// Covers reports whether an image pushed and last pulled (zero: never) at these times is in
// the window at now.
func (w Window) Covers(pushed, pulled, now time.Time) bool {
	if w.Push == 0 || now.Sub(pushed) <= w.Push {
		return true
	}
	return !pulled.IsZero() && now.Sub(pulled) <= w.Pull
}
