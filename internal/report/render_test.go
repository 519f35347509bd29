package report

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/inventory/installed"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/testfiles"
)

// TestRenderFromBuiltDetailsAsFromStored: `lading scan`'s report renders each finding from
// the detail the snapshot built, not from its JSON decoded again as the API does; the two
// render the same bytes, for every finding the osv-mini records give packages at and around
// their boundary versions (every ecosystem, severities from vectors, words and none, aliases,
// fixed versions or none, withdrawn records), in both scan types.
func TestRenderFromBuiltDetailsAsFromStored(t *testing.T) {
	var advs []*advisory.Advisory
	for _, raw := range testfiles.OSVMini(t) {
		a, err := advisory.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		advs = append(advs, a)
	}
	ix := advisory.BuildIndex(1, advs)
	var pkgs []installed.Package
	seen := map[advisory.PackageKey]bool{}
	for _, a := range advs {
		for _, k := range a.Keys() {
			if seen[k] {
				continue
			}
			seen[k] = true
			for _, b := range ix.BoundaryVersions(k) {
				for _, v := range []string{b, b + ".1", "0.0.1"} {
					pkgs = append(pkgs, installed.Package{Ecosystem: k.Ecosystem, Name: k.Name, Version: v, Path: "/p/" + k.Name, Layer: "sha256:11"})
				}
			}
		}
	}
	findings, _ := match.Image(pkgs, ix, map[string]string{"sha256:11": "COPY . /"})
	if len(findings) < 20 {
		t.Fatalf("only %d findings: the comparison says little", len(findings))
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	info := scanning.ImageInfo{Architecture: "amd64", Platform: "DEBIAN_12"}
	m := store.Manifest{Repository: "corpus/mini", Digest: "sha256:22", Tags: []string{"1.0"}, PushedAt: now.Add(-time.Hour)}
	for _, scanType := range []string{policy.ScanTypeEnhanced, policy.ScanTypeBasic} {
		stored, details, err := scanning.SnapshotDetails(events.Origin{Account: "123456789012", Region: "eu-west-1"}, m.Repository, m.Digest, scanType, findings, info, now)
		if err != nil {
			t.Fatal(err)
		}
		scan := store.ImageScan{Repository: m.Repository, Digest: m.Digest, ScanType: scanType, Status: scanning.StatusComplete, CompletedAt: now, SourceUpdatedAt: now}
		fromStored, err := RenderFindingsWith("123456789012", "eu-west-1", scan, stored, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		fromBuilt, err := renderFindings("123456789012", "eu-west-1", scan, stored, details, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(fromStored)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(fromBuilt)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			i := 0
			for i < len(got) && i < len(want) && got[i] == want[i] {
				i++
			}
			lo := max(0, i-200)
			t.Fatalf("%s: rendered from the built details differs at byte %d:\n%s\nfrom the stored:\n%s", scanType, i, got[lo:min(len(got), i+200)], want[lo:min(len(want), i+200)])
		}
	}
}
