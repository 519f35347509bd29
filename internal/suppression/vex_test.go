package suppression

import (
	"slices"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/triage"
)

const dg = "sha256:77241fdad4f9d386d414bf64582da44435c14b77852fc80aedf7bbfa927e7857"

func TestParseProduct(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want Scope
		ok   bool
	}{
		{"pkg:oci/debian@sha256%3A" + dg[7:] + "?repository_url=docker.io/library/debian&arch=amd64&tag=latest", Scope{"library/debian", dg}, true},
		{"pkg:oci/app@" + dg + "?repository_url=localhost:5000/team/app", Scope{"team/app", dg}, true},
		{"pkg:oci/App@" + dg, Scope{"app", dg}, true},
		{"pkg:oci/inspect-prod?repository_url=127.0.0.1:5000/inspect-prod", Scope{"inspect-prod", ""}, true},
		{"pkg:oci/inspect-prod", Scope{"inspect-prod", ""}, true},
		{dg, Scope{"", dg}, true},
		{"registry.example.com/team/app@" + dg, Scope{"team/app", dg}, true},
		{"team/app@" + dg, Scope{"team/app", dg}, true},
		{"localhost:5000/app:1.0@" + dg, Scope{"app", dg}, true},
		{"pkg:docker/team/app@" + dg, Scope{"team/app", dg}, true},
		{"pkg:docker/registry.example.com/team/app@sha256%3A" + dg[7:], Scope{"team/app", dg}, true},
		{"pkg:docker/team/app@1.0", Scope{}, false},
		{"pkg:oci/app@latest", Scope{}, false},
		{"pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", Scope{}, false},
		{"sha256:abc", Scope{}, false},
		{"app", Scope{}, false},
		{"https://example.com/app@" + dg, Scope{}, false},
		{"", Scope{}, false},
	} {
		got, ok := ParseProduct(tc.id)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseProduct(%q) = %+v, %v; want %+v, %v", tc.id, got, ok, tc.want, tc.ok)
		}
	}
}

const openVEX = `{
  "@context": "https://openvex.dev/ns/v0.2.0",
  "@id": "https://example.com/vex/1",
  "author": "Security",
  "timestamp": "2026-11-01T00:00:00Z",
  "version": 1,
  "statements": [
    {"vulnerability": {"name": "CVE-2021-44228", "aliases": ["GHSA-jfh8-c2jp-5v3q"]},
     "products": [{"@id": "pkg:oci/neo4j@sha256%3A77241fdad4f9d386d414bf64582da44435c14b77852fc80aedf7bbfa927e7857?repository_url=localhost:5000/inspect-prod",
                   "subcomponents": [{"@id": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"}]}],
     "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"},
    {"vulnerability": {"name": "CVE-2023-0001"}, "products": [{"@id": "pkg:oci/web"}], "status": "fixed"},
    {"vulnerability": {"name": "CVE-2023-0002"}, "products": [{"@id": "pkg:npm/lodash@4.17.20"}], "status": "not_affected",
     "justification": "component_not_present"},
    {"vulnerability": {"name": "CVE-2023-0001"}, "products": [{"@id": "pkg:oci/web"}], "status": "affected",
     "action_statement": "upgrade", "timestamp": "2026-11-02T00:00:00Z"}
  ]
}`

func TestPlanVEX(t *testing.T) {
	v, err := triage.ParseVEX("doc.json", []byte(openVEX))
	if err != nil {
		t.Fatal(err)
	}
	plan, skipped := PlanVEX(v.Statements())
	if len(skipped) != 1 || !strings.Contains(skipped[0], "pkg:npm/lodash") {
		t.Errorf("skipped %v, want the npm package alone", skipped)
	}
	if len(plan) != 2 {
		t.Fatalf("plan %+v: want one rule and one withdrawal", plan)
	}
	log4j, web := plan[0], plan[1]
	if log4j.Delete || log4j.Input.Action == nil || *log4j.Input.Action != Suppress {
		t.Fatalf("log4j: %+v", log4j)
	}
	c := *log4j.Input.Criteria
	if ids := c.Strings[findings.VulnerabilityID]; len(ids) != 2 || ids[0].Value != "CVE-2021-44228" || ids[1].Value != "GHSA-jfh8-c2jp-5v3q" {
		t.Errorf("vulnerability ids %+v", ids)
	}
	if r := c.Strings[findings.ECRImageRepositoryName]; len(r) != 1 || r[0].Value != "inspect-prod" {
		t.Errorf("repository %+v", r)
	}
	if h := c.Strings[findings.ECRImageHash]; len(h) != 1 || h[0].Value != dg {
		t.Errorf("image hash %+v", h)
	}
	if len(c.Packages) != 1 || c.Packages[0].Name.Value != "org.apache.logging.log4j:log4j-core" || c.Packages[0].Version.Value != "2.14.1" {
		t.Errorf("packages %+v", c.Packages)
	}
	if !strings.Contains(*log4j.Input.Reason, "vulnerable_code_not_in_execute_path") {
		t.Errorf("reason %q", *log4j.Input.Reason)
	}
	if err := (Input{Name: &log4j.Name, Action: log4j.Input.Action, Criteria: log4j.Input.Criteria, Reason: log4j.Input.Reason,
		Description: log4j.Input.Description}).validate(true); err != nil {
		t.Errorf("the planned rule does not validate: %v", err)
	}
	if !web.Delete {
		t.Errorf("the later affected statement about web should withdraw the rule: %+v", web)
	}
	// The same document planned again names the same rules.
	again, _ := PlanVEX(v.Statements())
	if !slices.EqualFunc(plan, again, func(a, b Planned) bool { return a.Name == b.Name }) {
		t.Error("rule names are not stable")
	}
}

const cycloneDXVEX = `{
  "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
  "metadata": {"component": {"bom-ref": "image", "type": "container", "name": "neo4j",
    "purl": "pkg:oci/neo4j@sha256%3A77241fdad4f9d386d414bf64582da44435c14b77852fc80aedf7bbfa927e7857?repository_url=localhost:5000/inspect-prod"}},
  "vulnerabilities": [
    {"id": "CVE-2021-44228", "analysis": {"state": "not_affected", "justification": "code_not_reachable", "detail": "JNDI lookups are disabled"},
     "affects": [{"ref": "image"}]}
  ]
}`

func TestPlanCycloneDX(t *testing.T) {
	v, err := triage.ParseVEX("bom.json", []byte(cycloneDXVEX))
	if err != nil {
		t.Fatal(err)
	}
	plan, skipped := PlanVEX(v.Statements())
	if len(plan) != 1 || len(skipped) != 0 {
		t.Fatalf("plan %+v skipped %v", plan, skipped)
	}
	c := *plan[0].Input.Criteria
	if h := c.Strings[findings.ECRImageHash]; len(h) != 1 || h[0].Value != dg || !strings.Contains(*plan[0].Input.Reason, "JNDI lookups are disabled") {
		t.Errorf("rule %+v reason %q", c, *plan[0].Input.Reason)
	}
}

func FuzzParseProduct(f *testing.F) {
	for _, s := range []string{"pkg:oci/app@" + dg + "?repository_url=localhost:5000/a/b", dg, "a/b@" + dg, "pkg:oci/x", "pkg:maven/a/b@1", "x@y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		sc, ok := ParseProduct(id)
		if !ok {
			return
		}
		if sc.Repository == "" && sc.Digest == "" {
			t.Fatalf("%q: a scope with neither repository nor digest", id)
		}
		if sc.Digest != "" && !digestPattern().MatchString(sc.Digest) {
			t.Fatalf("%q: digest %q", id, sc.Digest)
		}
	})
}

// FuzzPlanVEX checks that whatever a VEX document holds, every rule planned from it is one
// the service accepts.
func FuzzPlanVEX(f *testing.F) {
	f.Add([]byte(openVEX))
	f.Add([]byte(cycloneDXVEX))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := triage.ParseVEX("fuzz.json", data)
		if err != nil {
			return
		}
		plan, _ := PlanVEX(v.Statements())
		for _, pl := range plan {
			if pl.Delete {
				continue
			}
			in := pl.Input
			in.Name = &pl.Name
			if err := in.validate(true); err != nil {
				t.Fatalf("planned rule %s does not validate: %v", pl.Name, err)
			}
		}
	})
}
