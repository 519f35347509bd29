package triage

import (
	"slices"
	"testing"

	"github.com/lading-registry/lading/internal/match"
)

func TestApply(t *testing.T) {
	ign, err := ParseIgnoreFile([]byte("CVE-2099-0010 # accepted\nCVE-2099-0011 exp:2020-01-01\n"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := ParseVEX("openvex.json", []byte(openVEXDoc))
	if err != nil {
		t.Fatal(err)
	}
	libssl := match.VulnerablePackage{Name: "libssl3", PURL: "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?distro=debian-12"}
	openssl := match.VulnerablePackage{Name: "openssl", PURL: "pkg:deb/debian/openssl@3.0.11-1~deb12u1?distro=debian-12"}
	findings := []match.Finding{
		{VulnerabilityID: "CVE-2023-5363", Title: "CVE-2023-5363 - libssl3, openssl", Packages: []match.VulnerablePackage{libssl, openssl}},
		{VulnerabilityID: "CVE-2099-0003", Packages: []match.VulnerablePackage{openssl}},
		{VulnerabilityID: "CVE-2099-0010", Packages: []match.VulnerablePackage{openssl}},
		{VulnerabilityID: "CVE-2099-0011", Packages: []match.VulnerablePackage{openssl}},
	}
	r := Apply(findings, Options{Ignore: ign, VEX: v, Image: ImageIDs("app:1", imageDigest), Now: date("2026-06-01")})
	var kept []string
	for _, f := range r.Findings {
		kept = append(kept, f.Title)
	}
	if want := []string{"CVE-2023-5363 - openssl", " - openssl"}; len(kept) != 2 || kept[0] != want[0] || r.Findings[1].VulnerabilityID != "CVE-2099-0011" {
		t.Errorf("kept %q", kept)
	}
	if len(r.Suppressed) != 2 || r.Suppressed[0].Finding.Title != "CVE-2023-5363 - libssl3" || r.Suppressed[0].Status != "not_affected" ||
		r.Suppressed[1].Finding.VulnerabilityID != "CVE-2099-0003" {
		t.Errorf("suppressed %+v", r.Suppressed)
	}
	if len(r.Ignored) != 1 || r.Ignored[0].Finding.VulnerabilityID != "CVE-2099-0010" || r.Ignored[0].Rule.Reason != "accepted" {
		t.Errorf("ignored %+v", r.Ignored)
	}
	if len(r.Expired) != 1 || r.Expired[0].ID != "CVE-2099-0011" {
		t.Errorf("expired %+v", r.Expired)
	}
	// Nothing to apply: the findings pass through.
	if r := Apply(findings, Options{}); !slices.EqualFunc(r.Findings, findings, func(a, b match.Finding) bool { return a.VulnerabilityID == b.VulnerabilityID }) {
		t.Errorf("without options: %+v", r)
	}
}
