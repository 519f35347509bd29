package scanning

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/scanning/policy"
)

// TestRescanWindowExpiry: images leaving the rescan window expire (findings closed, with
// events); a wider window later does not revive them, and a change of advisories leaves them
// alone.
func TestRescanWindowExpiry(t *testing.T) {
	ctx := context.Background()
	deb12 := continuousImages()[2] // go/api: openssl and Go findings
	record := func(modified string) map[string]any {
		return map[string]any{"id": "DSA-0003-1", "modified": modified, "upstream": []string{"CVE-2099-0003"},
			"affected": []any{map[string]any{"package": map[string]any{"ecosystem": "Debian:12", "name": "openssl"},
				"ranges": []any{map[string]any{"type": "ECOSYSTEM", "events": []any{map[string]any{"introduced": "0"}, map[string]any{"fixed": "3.0.99-1"}}}}}}}
	}
	clock := time.Now().UTC().Truncate(time.Millisecond)
	r := newTestRegistry(t, []testImage{deb12}, &clock)
	if _, err := r.svc.Reevaluate(ctx, r.importRecords(t, record("2024-01-01T00:00:00Z"))); err != nil {
		t.Fatal(err)
	}
	count := func(status string) int {
		n := 0
		for _, f := range r.findings(t) {
			if f.status == status {
				n++
			}
		}
		return n
	}
	if count(FindingActive) != 1 {
		t.Fatalf("findings %+v", r.findings(t))
	}
	_, seq := r.events(t, 0)

	// Inside the window nothing expires; 20 days on, a 14-day window has lapsed.
	if n, err := r.svc.ExpireImages(ctx); err != nil || n != 0 {
		t.Fatalf("expired %d %v", n, err)
	}
	clock = clock.Add(20 * 24 * time.Hour)
	if n, err := r.svc.ExpireImages(ctx); err != nil || n != 1 {
		t.Fatalf("expired %d %v", n, err)
	}
	if count(FindingActive) != 0 || count(FindingClosed) != 1 {
		t.Errorf("after expiry: %+v", r.findings(t))
	}
	evs, _ := r.events(t, seq)
	if len(evs) != 1 || !strings.HasPrefix(evs[0], "Inspector2 Finding") || !strings.Contains(evs[0], `"status":"CLOSED"`) {
		t.Errorf("events %v", evs)
	}
	sc, err := r.db.ImageScan(ctx, "go/api", r.findings(t)[0].digest, policy.ScanTypeEnhanced)
	if err != nil || sc.Status != StatusExpired {
		t.Errorf("scan %+v %v", sc, err)
	}
	if n, err := r.svc.ExpireImages(ctx); err != nil || n != 0 {
		t.Errorf("expired twice: %d %v", n, err)
	}

	// A lifetime window, then an advisory change: the expired image stays as it is.
	if err := r.svc.SetRescan(ctx, policy.Rescan{Duration: policy.RescanLifetime}); err != nil {
		t.Fatal(err)
	}
	got, _, err := r.svc.Rescan(ctx)
	if err != nil || got.Duration != policy.RescanLifetime || got.PullDateDuration != "DAYS_14" {
		t.Errorf("rescan configuration %+v %v", got, err)
	}
	if _, err := r.svc.Reevaluate(ctx, r.importRecords(t, record("2024-02-01T00:00:00Z"))); err != nil {
		t.Fatal(err)
	}
	if count(FindingActive) != 0 {
		t.Errorf("an expired image was re-evaluated: %+v", r.findings(t))
	}
}
