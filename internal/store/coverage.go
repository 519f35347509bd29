package store

import "time"

// ScannedImage is an image with an ENHANCED scan, as the rescan-window sweep reads it.
type ScannedImage struct {
	Repository   string
	Digest       string
	Status       string
	PushedAt     time.Time
	LastPulledAt time.Time
	// ScanOnPush is the repository's own flag (policy.Evaluate reads it).
	ScanOnPush bool
}
