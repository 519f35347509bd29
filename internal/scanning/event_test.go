package scanning

import (
	"bytes"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning/pipeline"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// A diff's new and changed findings make their events from the detail it built, not from the
// stored JSON decoded again: the events must be the same, byte for byte, as those made from
// the stored detail (what a finding read back from the store makes).
func TestChangedFindingEventAsFromStoredDetail(t *testing.T) {
	clock := time.Date(2026, 12, 7, 9, 30, 0, 123456789, time.UTC)
	images := continuousImages()
	r := newTestRegistry(t, images, &clock)
	var recs []map[string]any
	for _, rec := range osvMini(t) {
		recs = append(recs, rec)
	}
	r.importRecords(t, recs...)
	idx := r.watcher.Index()

	var fresh []match.Finding
	for _, img := range images {
		fresh = append(fresh, pipeline.Match(img.pkgs, idx, map[string]string{img.pkgs[0].Layer: "ADD rootfs /"}).Findings...)
	}
	if len(fresh) < 10 {
		t.Fatalf("the osv-mini records match %d findings in the test images; want at least 10", len(fresh))
	}
	// Shapes the real records may not have: empty lists that are not nil, no score, times in
	// another zone with nanoseconds, characters JSON escapes.
	score := 9.8
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	fresh = append(fresh,
		match.Finding{VulnerabilityID: "CVE-2026-0001", Title: `a <b> & "c"`, Severity: "CRITICAL", Score: &score, Aliases: []string{},
			ReferenceURLs: []string{}, Related: []string{}, Published: time.Date(2026, 1, 2, 3, 4, 5, 6, zone),
			Packages: []match.VulnerablePackage{{Name: "p", Version: "1", Ecosystem: "npm", PackageManager: "NODE", FixedInVersion: "2"}, {Name: "q", Version: "1"}}},
		match.Finding{VulnerabilityID: "CVE-2026-0002", Severity: "UNDEFINED", Packages: []match.VulnerablePackage{}},
	)
	target := store.ScanTarget{Repository: "web/app", Digest: "sha256:" + string(bytes.Repeat([]byte("ab"), 32)), ScanType: policy.ScanTypeEnhanced}
	info := ImageInfo{Architecture: "amd64", Author: "someone <a@example.com>", Platform: "DEBIAN_12"}
	manifest := store.Manifest{Repository: target.Repository, Digest: target.Digest, Tags: []string{"latest", "v1"}, PushedAt: clock.Add(-time.Hour)}
	origin := r.svc.cfg.Origin

	_, changed, err := diffFindings(target, nil, fresh, info, origin, clock)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != len(fresh) {
		t.Fatalf("%d changed findings, want %d (every one new)", len(changed), len(fresh))
	}
	for _, c := range changed {
		if c.built == nil {
			t.Fatalf("new finding %s has no built detail", c.VulnerabilityID)
		}
		for _, suppressed := range []bool{false, true} {
			c.Suppressed = suppressed
			got, err := c.event(origin, manifest)
			if err != nil {
				t.Fatal(err)
			}
			want, err := findingEvent(origin, c.Finding, manifest)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Detail, want.Detail) {
				t.Errorf("event of %s (suppressed %v):\nfrom the built detail  %s\nfrom the stored detail %s", c.VulnerabilityID, suppressed, got.Detail, want.Detail)
			}
		}
	}
}
