package triage

import (
	"errors"
	"strings"
	"testing"
)

const imageDigest = "sha256:6b3a43b8a8a0e6a7c5e5d1f7e1b2f0b5d5d7a0b9c1e3f5a7b9d1e3f5a7b9d1e3"

// openVEXDoc: a package statement (by purl, any version), an image statement narrowed to one
// subcomponent, an image statement for all of it, a later statement that overrides an earlier
// one, and an affected statement.
const openVEXDoc = `{
  "@context": "https://openvex.dev/ns/v0.2.0",
  "@id": "https://example.com/vex/1",
  "author": "Security Team",
  "timestamp": "2026-01-01T00:00:00Z",
  "version": 1,
  "statements": [
    {"vulnerability": {"name": "CVE-2023-5363"}, "products": [{"@id": "pkg:deb/debian/libssl3"}],
     "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"},
    {"vulnerability": {"name": "CVE-2099-0002", "aliases": ["GHSA-aaaa-bbbb-cccc"]},
     "products": [{"@id": "pkg:oci/app@` + imageDigest + `", "subcomponents": [{"@id": "pkg:npm/lodash@4.17.15"}]}],
     "status": "fixed"},
    {"vulnerability": {"name": "CVE-2099-0003"}, "products": [{"@id": "` + imageDigest + `"}],
     "status": "not_affected", "impact_statement": "the image never runs the parser"},
    {"vulnerability": {"name": "CVE-2099-0004"}, "products": [{"@id": "pkg:npm/minimist"}],
     "status": "not_affected", "justification": "component_not_present", "timestamp": "2026-01-02T00:00:00Z"},
    {"vulnerability": {"name": "CVE-2099-0004"}, "products": [{"@id": "pkg:npm/minimist"}],
     "status": "affected", "action_statement": "upgrade", "timestamp": "2026-02-01T00:00:00Z"},
    {"vulnerability": {"name": "CVE-2099-0005"}, "products": [{"@id": "pkg:npm/express@4.17.1"}],
     "status": "affected", "action_statement": "upgrade"}
  ]
}`

// cycloneDXVEX: a not_affected analysis of a component by bom-ref, a resolved one through a
// BOM-Link to Lading's own SBOM reference, and one of the subject (the image).
const cycloneDXVEX = `{
  "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
  "metadata": {"timestamp": "2026-01-01T00:00:00Z", "component": {"type": "container", "bom-ref": "` + imageDigest + `", "name": "app"}},
  "components": [{"type": "library", "bom-ref": "lib-1", "name": "libssl3", "purl": "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?arch=amd64&distro=debian-12"}],
  "vulnerabilities": [
    {"id": "CVE-2023-5363", "analysis": {"state": "not_affected", "justification": "code_not_reachable", "detail": "no TLS"},
     "affects": [{"ref": "lib-1"}]},
    {"id": "CVE-2099-0002", "analysis": {"state": "resolved"},
     "affects": [{"ref": "urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1#pkg:npm/lodash@4.17.15?file=/app/node_modules/lodash/package.json"}]},
    {"id": "CVE-2099-0003", "analysis": {"state": "false_positive"}, "affects": [{"ref": "` + imageDigest + `"}]},
    {"id": "CVE-2099-0005", "analysis": {"state": "exploitable"}, "affects": [{"ref": "lib-1"}]},
    {"id": "CVE-2099-0006", "ratings": [{"severity": "high"}]}
  ]
}`

func TestParseVEXRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"not JSON":             `{`,
		"neither format":       `{"statements":[]}`,
		"old OpenVEX":          `{"@context":"https://openvex.dev/ns","statements":[]}`,
		"bad status":           `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":{"name":"CVE-1"},"status":"gone"}]}`,
		"unjustified":          `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":{"name":"CVE-1"},"status":"not_affected"}]}`,
		"no vulnerability":     `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"status":"fixed"}]}`,
		"unknown cdx state":    `{"bomFormat":"CycloneDX","specVersion":"1.6","vulnerabilities":[{"id":"CVE-1","analysis":{"state":"maybe"},"affects":[{"ref":"x"}]}]}`,
		"cdx vulnerability id": `{"bomFormat":"CycloneDX","specVersion":"1.6","vulnerabilities":[{"analysis":{"state":"resolved"},"affects":[{"ref":"x"}]}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseVEX("doc.json", []byte(doc)); !errors.Is(err, ErrInvalidVEX) {
				t.Errorf("err %v, want ErrInvalidVEX", err)
			}
		})
	}
}

func TestVEXDecide(t *testing.T) {
	image := ImageIDs("registry.example.com/team/app:1.0", imageDigest)
	libssl := "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?arch=amd64&distro=debian-12"
	lodash := "pkg:npm/lodash@4.17.15"
	tests := []struct {
		name    string
		ids     []string
		pkg     string
		want    string // status, "" for no decision
		wantWhy string
	}{
		{"package purl, any version", []string{"CVE-2023-5363"}, libssl, "not_affected", "vulnerable_code_not_in_execute_path"},
		{"another package", []string{"CVE-2023-5363"}, "pkg:deb/debian/openssl@3.0.11-1~deb12u1", "", ""},
		{"image with its subcomponent, by alias", []string{"CVE-9", "GHSA-aaaa-bbbb-cccc"}, lodash, "fixed", "fixed"},
		{"image with another subcomponent", []string{"CVE-2099-0002"}, "pkg:npm/lodash@4.17.21", "", ""},
		{"image without subcomponents covers every package", []string{"CVE-2099-0003"}, "", "not_affected", "the image never runs the parser"},
		{"the latest statement wins", []string{"CVE-2099-0004"}, "pkg:npm/minimist@1.2.5", "affected", ""},
		{"affected does not suppress", []string{"CVE-2099-0005"}, "pkg:npm/express@4.17.1", "affected", ""},
	}
	docs := map[string]string{"openvex.json": openVEXDoc, "cyclonedx.json": cycloneDXVEX}
	for name, doc := range docs {
		v, err := ParseVEX(name, []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range tests {
			if name == "cyclonedx.json" && (strings.Contains(tc.name, "latest") || strings.Contains(tc.name, "by alias") || strings.Contains(tc.name, "affected does not")) {
				continue // stated in the OpenVEX document only
			}
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				d, ok := v.Decide(tc.ids, Subject{Image: image, Package: tc.pkg})
				if got := string(d.Status); got != tc.want || ok != (tc.want != "") {
					t.Fatalf("decision %+v %v, want %q", d, ok, tc.want)
				}
				if ok && (!strings.Contains(d.Justification, "("+name+")") || name == "openvex.json" && !strings.Contains(d.Justification, tc.wantWhy)) {
					t.Errorf("justification %q, want %q from %s", d.Justification, tc.wantWhy, name)
				}
				if ok && d.Suppresses() != (tc.want == "not_affected" || tc.want == "fixed") {
					t.Errorf("suppresses %v for %s", d.Suppresses(), tc.want)
				}
			})
		}
	}
	// CycloneDX: the exploitable analysis is kept as affected, and a BOM-Link to Lading's own
	// SBOM reference resolves to the package's purl.
	v, _ := ParseVEX("cyclonedx.json", []byte(cycloneDXVEX))
	if d, ok := v.Decide([]string{"CVE-2099-0005"}, Subject{Image: image, Package: libssl}); !ok || d.Suppresses() {
		t.Errorf("exploitable: %+v %v", d, ok)
	}
	if d, ok := v.Decide([]string{"CVE-2099-0002"}, Subject{Image: image, Package: lodash}); !ok || d.Status != "fixed" {
		t.Errorf("BOM-Link: %+v %v", d, ok)
	}
	if d, ok := v.Decide([]string{"CVE-2023-5363"}, Subject{Image: image, Package: libssl}); !ok || !strings.Contains(d.Justification, "code_not_reachable; no TLS") {
		t.Errorf("CycloneDX justification: %+v", d)
	}
}

func TestImageIDs(t *testing.T) {
	ids := ImageIDs("registry.example.com/team/app:1.0", imageDigest)
	for _, want := range []string{imageDigest, imageDigest[len("sha256:"):], "registry.example.com/team/app:1.0",
		"pkg:oci/app@" + imageDigest, "pkg:oci/app@" + imageDigest + "?repository_url=registry.example.com%2Fteam%2Fapp"} {
		found := false
		for _, id := range ids {
			found = found || id == want
		}
		if !found {
			t.Errorf("ImageIDs lacks %q: %q", want, ids)
		}
	}
}
