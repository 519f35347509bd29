package report_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/report"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/pipeline"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/triage"
)

const (
	log4jLayer = "sha256:77241fdad4f9d386d414bf64582da44435c14b77852fc80aedf7bbfa927e7857"
	baseLayer  = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	digest     = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	log4jPath  = "/var/lib/neo4j/lib/log4j-core-2.14.1.jar"
	toolVer    = "1.2.3"
)

// records: Log4Shell, rated by its CVSS vector, and an unrated Debian advisory of openssl.
var records = []string{
	`{"id":"GHSA-jfh8-c2jp-5v3q","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2021-44228"],"summary":"Remote code injection in Log4j",
	  "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}],
	  "affected":[{"package":{"ecosystem":"Maven","name":"org.apache.logging.log4j:log4j-core"},
	  "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.0"},{"fixed":"2.15.0"}]}]}]}`,
	`{"id":"DSA-9999-1","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2099-0001"],"summary":"openssl flaw",
	  "affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},
	  "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.11-1~deb12u2"}]}]}]}`,
}

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// sample is a scan of a neo4j-like image: Log4Shell in a jar, an unrated OS finding, and a
// package without findings, matched as the pipeline matches.
func sample(t *testing.T, scanType string) *report.Scan {
	t.Helper()
	var advs []*advisory.Advisory
	for _, r := range records {
		a, err := advisory.Parse([]byte(r))
		if err != nil {
			t.Fatal(err)
		}
		advs = append(advs, a)
	}
	inv := &inventory.Image{
		OS: &inventory.OSInfo{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)", Ecosystem: "Debian:12"},
		Packages: []inventory.Package{
			{Ecosystem: "Debian:12", Name: "libssl3", Version: "3.0.11-1~deb12u1", SourceName: "openssl", Release: "1~deb12u1",
				PackageManager: inventory.ManagerOS, Path: "/var/lib/dpkg/status", Layer: baseLayer, PURL: "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?distro=debian-12"},
			{Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1", PackageManager: inventory.ManagerJAR,
				Path: log4jPath, Layer: log4jLayer, PURL: "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"},
			{Ecosystem: "npm", Name: "lodash", Version: "4.17.21", PackageManager: inventory.ManagerNPM, Path: "/app/node_modules/lodash/package.json", Layer: log4jLayer},
		},
		Skipped: []inventory.Skipped{{Path: "/app/huge.jar", Layer: log4jLayer, Reason: "larger than the 1 GiB limit"}},
	}
	history := map[string]string{log4jLayer: "COPY lib/ /var/lib/neo4j/lib/ # a long step that the table cuts short at sixty characters"}
	m := pipeline.Match(inv.Packages, advisory.BuildIndex(1, advs), history)
	if m.NotEvaluated != nil || len(m.Findings) != 2 {
		t.Fatalf("sample: %d findings, %v", len(m.Findings), m.NotEvaluated)
	}
	return &report.Scan{Image: report.Image{Name: "registry.example.com:5000/corpus/neo4j-like:4.4.0", ManifestDigest: digest,
		Architecture: "amd64", Created: now.Add(-time.Hour)}, ScanType: scanType, Inventory: inv, Findings: m.Findings}
}

var opts = report.Options{ToolVersion: toolVer, RegistryID: "123456789012", Region: "eu-west-1", Now: now}

func write(t *testing.T, format string, s *report.Scan) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := report.Write(&buf, format, s, opts); err != nil {
		t.Fatalf("%s: %v", format, err)
	}
	return buf.Bytes()
}

func TestTable(t *testing.T) {
	out := string(write(t, "table", sample(t, policy.ScanTypeEnhanced)))
	for _, want := range []string{
		"registry.example.com:5000/corpus/neo4j-like:4.4.0 (" + digest + "), Debian GNU/Linux 12 (bookworm), 3 packages, 2 findings\n",
		"CRITICAL: 1, UNDEFINED: 1\n",
		"VULNERABILITY", "CREATED BY",
		"1 entries skipped or read in part:", "/app/huge.jar", "larger than the 1 GiB limit",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var row string
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "CVE-2021-44228") {
			row = line
		}
	}
	f := strings.Fields(row)
	// VULNERABILITY SEVERITY SCORE PACKAGE INSTALLED FIXED IN PATH LAYER CREATED BY...
	if len(f) < 9 || f[1] != "CRITICAL" || f[2] != "10.0" || f[4] != "2.14.1" || f[5] != "2.15.0" || f[6] != log4jPath || f[7] != log4jLayer[:7+12] {
		t.Errorf("row %q", row)
	}
	if !strings.HasSuffix(strings.TrimSpace(row), "…") {
		t.Errorf("created_by not cut short: %q", row)
	}
}

func TestJSONIsDescribeImageScanFindings(t *testing.T) {
	type pkg struct {
		Name, Version, FilePath, SourceLayerHash, FixedInVersion, PackageManager string
	}
	type finding struct {
		FindingArn, Severity, Status, Title, Type, FixAvailable string
		Score                                                   float64
		FirstObservedAt                                         float64
		PackageVulnerabilityDetails                             struct {
			VulnerabilityID    string
			VulnerablePackages []pkg
		}
		Resources []struct {
			ID      string
			Details struct {
				AwsEcrContainerImage struct {
					RepositoryName, Platform, Architecture, Registry string
					ImageTags                                        []string
					PushedAt                                         float64
				}
			}
		}
	}
	var got struct {
		RegistryID, RepositoryName string
		ImageID                    struct{ ImageDigest, ImageTag string }
		ImageScanStatus            struct{ Status, Description string }
		ImageScanFindings          struct {
			ImageScanCompletedAt  float64
			FindingSeverityCounts map[string]int
			EnhancedFindings      []finding
			Findings              []struct {
				Name       string
				Severity   string
				Attributes []struct{ Key, Value string }
			}
		}
	}
	raw := write(t, "json", sample(t, policy.ScanTypeEnhanced))
	// Field names decode case-insensitively: the keys are checked as ECR spells them.
	var top struct {
		ImageScanFindings struct {
			EnhancedFindings []map[string]json.RawMessage
		}
	}
	var topKeys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &topKeys); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &top); err != nil || len(top.ImageScanFindings.EnhancedFindings) == 0 {
		t.Fatalf("%v: %s", err, raw)
	}
	for _, tc := range []struct {
		obj  map[string]json.RawMessage
		want []string
	}{
		// ECR's members, and Lading's notEvaluated beside them.
		{topKeys, []string{"imageId", "imageScanFindings", "imageScanStatus", "notEvaluated", "registryId", "repositoryName"}},
		{top.ImageScanFindings.EnhancedFindings[0], []string{"awsAccountId", "description", "exploitAvailable", "findingArn", "firstObservedAt",
			"fixAvailable", "lastObservedAt", "packageVulnerabilityDetails", "remediation", "resources", "score", "scoreDetails", "severity",
			"status", "title", "type", "updatedAt"}},
	} {
		if got := slices.Sorted(maps.Keys(tc.obj)); !slices.Equal(got, tc.want) {
			t.Errorf("keys %v, want %v", got, tc.want)
		}
	}
	if err := decodeLoose(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.RegistryID != "123456789012" || got.RepositoryName != "corpus/neo4j-like" || got.ImageID.ImageDigest != digest || got.ImageID.ImageTag != "4.4.0" {
		t.Errorf("image %+v %q %+v", got.RegistryID, got.RepositoryName, got.ImageID)
	}
	if got.ImageScanStatus.Status != "COMPLETE" || got.ImageScanStatus.Description != "The scan was completed successfully." {
		t.Errorf("status %+v", got.ImageScanStatus)
	}
	fs := got.ImageScanFindings
	if fs.ImageScanCompletedAt != float64(now.Unix()) || fs.FindingSeverityCounts["CRITICAL"] != 1 || fs.FindingSeverityCounts["UNTRIAGED"] != 1 || len(fs.FindingSeverityCounts) != 2 {
		t.Errorf("summary completed %v counts %v", fs.ImageScanCompletedAt, fs.FindingSeverityCounts)
	}
	if len(fs.Findings) != 0 || len(fs.EnhancedFindings) != 2 {
		t.Fatalf("%d basic, %d enhanced findings", len(fs.Findings), len(fs.EnhancedFindings))
	}
	f := fs.EnhancedFindings[0]
	if f.PackageVulnerabilityDetails.VulnerabilityID != "CVE-2021-44228" || f.Severity != "CRITICAL" || f.Status != "ACTIVE" || f.Score != 10 ||
		f.FixAvailable != "YES" || f.Type != "PACKAGE_VULNERABILITY" || f.FirstObservedAt != float64(now.Unix()) ||
		!strings.HasPrefix(f.FindingArn, "arn:aws:inspector2:eu-west-1:123456789012:finding/") {
		t.Errorf("finding %+v", f)
	}
	if want := (pkg{"org.apache.logging.log4j:log4j-core", "2.14.1", log4jPath, log4jLayer, "2.15.0", "JAR"}); !slices.Equal(f.PackageVulnerabilityDetails.VulnerablePackages, []pkg{want}) {
		t.Errorf("packages %+v", f.PackageVulnerabilityDetails.VulnerablePackages)
	}
	if len(f.Resources) != 1 {
		t.Fatalf("resources %+v", f.Resources)
	}
	img := f.Resources[0].Details.AwsEcrContainerImage
	if f.Resources[0].ID != "arn:aws:ecr:eu-west-1:123456789012:repository/corpus/neo4j-like/"+digest || img.RepositoryName != "corpus/neo4j-like" ||
		img.Platform != "DEBIAN_12" || img.Architecture != "amd64" || img.Registry != "123456789012" || !slices.Equal(img.ImageTags, []string{"4.4.0"}) ||
		img.PushedAt != float64(now.Add(-time.Hour).Unix()) {
		t.Errorf("resource %+v", f.Resources[0])
	}

	// Basic scanning: ECR's findings, one per vulnerable package, with package attributes.
	if err := decodeLoose(write(t, "json", sample(t, policy.ScanTypeBasic)), &got); err != nil {
		t.Fatal(err)
	}
	basic := got.ImageScanFindings.Findings
	if len(basic) != 2 || basic[0].Name != "CVE-2021-44228" || !slices.Contains(basic[0].Attributes, struct{ Key, Value string }{"package_name", "org.apache.logging.log4j:log4j-core"}) {
		t.Errorf("basic findings %+v", basic)
	}
}

// decodeLoose decodes into v afresh (fields absent from the document are left zero).
func decodeLoose(raw []byte, v any) error {
	if err := json.Unmarshal([]byte("{}"), v); err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

func TestSARIF(t *testing.T) {
	var doc struct {
		Version string
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name, Version string
					Rules         []struct {
						ID                   string
						DefaultConfiguration struct{ Level string }
						Properties           map[string]any
					}
				}
			}
			Results []struct {
				RuleID, Level string
				Message       struct{ Text string }
				Locations     []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
					}
				}
				Properties map[string]any
			}
		}
	}
	if err := json.Unmarshal(write(t, "sarif", sample(t, policy.ScanTypeEnhanced)), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != "2.1.0" || len(doc.Runs) != 1 {
		t.Fatalf("version %q, %d runs", doc.Version, len(doc.Runs))
	}
	run := doc.Runs[0]
	if run.Tool.Driver.Name != "lading" || run.Tool.Driver.Version != toolVer {
		t.Errorf("driver %+v", run.Tool.Driver)
	}
	var ruleIDs []string
	for _, r := range run.Tool.Driver.Rules {
		ruleIDs = append(ruleIDs, r.ID+"="+r.DefaultConfiguration.Level)
	}
	if want := []string{"CVE-2021-44228=error", "CVE-2099-0001=note"}; !slices.Equal(ruleIDs, want) {
		t.Errorf("rules %v, want %v", ruleIDs, want)
	}
	if s := run.Tool.Driver.Rules[0].Properties["security-severity"]; s != "10.0" {
		t.Errorf("security-severity %v", s)
	}
	type loc struct{ rule, level, uri, layer string }
	var got []loc
	for _, r := range run.Results {
		if len(r.Locations) != 1 {
			t.Fatalf("result %+v", r)
		}
		got = append(got, loc{r.RuleID, r.Level, r.Locations[0].PhysicalLocation.ArtifactLocation.URI, r.Properties["layer"].(string)})
	}
	want := []loc{
		{"CVE-2021-44228", "error", strings.TrimPrefix(log4jPath, "/"), log4jLayer},
		{"CVE-2099-0001", "note", "var/lib/dpkg/status", baseLayer},
	}
	if !slices.Equal(got, want) {
		t.Errorf("results %+v, want %+v", got, want)
	}
	if !strings.Contains(run.Results[0].Message.Text, "fixed in 2.15.0") {
		t.Errorf("message %q", run.Results[0].Message.Text)
	}
}

func TestCycloneDX(t *testing.T) {
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(write(t, "cyclonedx", sample(t, policy.ScanTypeEnhanced))), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 || !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") {
		t.Errorf("spec %v serial %q", bom.SpecVersion, bom.SerialNumber)
	}
	if bom.Metadata == nil || bom.Metadata.Component == nil || bom.Metadata.Component.Version != digest || bom.Metadata.Component.Type != cdx.ComponentTypeContainer ||
		bom.Metadata.Timestamp != now.Format(time.RFC3339) {
		t.Fatalf("metadata %+v", bom.Metadata)
	}
	if bom.Components == nil || len(*bom.Components) != 3 {
		t.Fatalf("components %v", bom.Components)
	}
	refs := map[string]cdx.Component{}
	for _, c := range *bom.Components {
		refs[c.BOMRef] = c
	}
	if bom.Vulnerabilities == nil || len(*bom.Vulnerabilities) != 2 {
		t.Fatalf("vulnerabilities %v", bom.Vulnerabilities)
	}
	type rating struct {
		id       string
		severity cdx.Severity
		method   cdx.ScoringMethod
		affects  string
	}
	var got []rating
	for _, v := range *bom.Vulnerabilities {
		if v.Ratings == nil || len(*v.Ratings) != 1 || v.Affects == nil || len(*v.Affects) != 1 {
			t.Fatalf("vulnerability %+v", v)
		}
		r := (*v.Ratings)[0]
		ref := (*v.Affects)[0].Ref
		c, ok := refs[ref]
		if !ok {
			t.Errorf("%s affects %q, which is no component", v.ID, ref)
		}
		got = append(got, rating{v.ID, r.Severity, r.Method, c.Name})
	}
	want := []rating{
		{"CVE-2021-44228", cdx.SeverityCritical, cdx.ScoringMethodCVSSv31, "org.apache.logging.log4j:log4j-core"},
		// Unrated: cyclonedx-go writes a rating without a method as "other".
		{"CVE-2099-0001", cdx.SeverityUnknown, cdx.ScoringMethodOther, "libssl3"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("vulnerabilities %+v, want %+v", got, want)
	}
	if v := (*bom.Vulnerabilities)[0]; v.Recommendation != "Upgrade org.apache.logging.log4j:log4j-core to 2.15.0 or later." {
		t.Errorf("recommendation %q", v.Recommendation)
	}
}

func TestSPDX(t *testing.T) {
	doc, err := spdxjson.Read(bytes.NewReader(write(t, "spdx", sample(t, policy.ScanTypeEnhanced))))
	if err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.CreationInfo == nil || doc.CreationInfo.Created != now.Format(time.RFC3339) ||
		len(doc.CreationInfo.Creators) != 1 || doc.CreationInfo.Creators[0].Creator != "lading-"+toolVer {
		t.Fatalf("document %q %+v", doc.SPDXVersion, doc.CreationInfo)
	}
	if len(doc.Packages) != 4 || doc.Packages[0].PackageSPDXIdentifier != "Image" || doc.Packages[0].PackageVersion != digest {
		t.Fatalf("packages %+v", doc.Packages)
	}
	var describes, contains int
	for _, r := range doc.Relationships {
		switch {
		case r.Relationship == "DESCRIBES" && r.RefA.ElementRefID == "DOCUMENT" && r.RefB.ElementRefID == "Image":
			describes++
		case r.Relationship == "CONTAINS" && r.RefA.ElementRefID == "Image":
			contains++
		}
	}
	if describes != 1 || contains != 3 {
		t.Errorf("%d DESCRIBES, %d CONTAINS", describes, contains)
	}
	refs := map[string][]string{}
	for _, p := range doc.Packages[1:] {
		for _, r := range p.PackageExternalReferences {
			refs[p.PackageName] = append(refs[p.PackageName], r.Category+" "+r.Locator)
		}
	}
	for name, want := range map[string][]string{
		"org.apache.logging.log4j:log4j-core": {"PACKAGE-MANAGER pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", "SECURITY https://osv.dev/vulnerability/CVE-2021-44228"},
		// An OS package's finding names its upstream version: the advisory still links to it.
		"libssl3": {"PACKAGE-MANAGER pkg:deb/debian/libssl3@3.0.11-1~deb12u1?distro=debian-12", "SECURITY https://osv.dev/vulnerability/CVE-2099-0001"},
		"lodash":  nil,
	} {
		if !slices.Equal(refs[name], want) {
			t.Errorf("%s: references %v, want %v", name, refs[name], want)
		}
	}
}

func TestWriteRefusesUnknownFormat(t *testing.T) {
	err := report.Write(&bytes.Buffer{}, "xml", sample(t, policy.ScanTypeEnhanced), opts)
	if !errors.Is(err, report.ErrUnknownFormat) {
		t.Fatalf("err %v", err)
	}
	for _, f := range report.Formats() {
		if len(write(t, f, sample(t, policy.ScanTypeEnhanced))) == 0 {
			t.Errorf("%s wrote nothing", f)
		}
	}
}

// TestRenderFindingsRefusesCorruptDetail: a stored finding whose detail does not decode fails
// the rendering with an error naming the row, rather than vanishing from the answer.
func TestRenderFindingsRefusesCorruptDetail(t *testing.T) {
	for _, scanType := range []string{policy.ScanTypeBasic, policy.ScanTypeEnhanced} {
		t.Run(scanType, func(t *testing.T) {
			scan := store.ImageScan{Repository: "app", Digest: digest, ScanType: scanType, Status: "COMPLETE", CompletedAt: now}
			fs := []store.Finding{{Repository: "app", Digest: digest, ScanType: scanType, VulnerabilityID: "CVE-2099-0001", Status: "ACTIVE",
				Severity: "HIGH", Detail: []byte("{not json")}}
			_, err := report.RenderFindings("123456789012", "eu-west-1", scan, fs, store.Manifest{Repository: "app", Digest: digest})
			if !errors.Is(err, scanning.ErrCorrupt) {
				t.Fatalf("err %v, want scanning.ErrCorrupt", err)
			}
			for _, want := range []string{"app@" + digest, "CVE-2099-0001", scanType} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
		})
	}
}

// unknownSample is sample with what the scan could not evaluate, a VEX-suppressed finding,
// ignored findings and eight device nodes skipped.
func unknownSample(t *testing.T) *report.Scan {
	s := sample(t, policy.ScanTypeEnhanced)
	s.NotEvaluated = []match.NotEvaluated{
		{Ecosystem: "Debian:12", Package: "zlib1g", Version: "x:1.2.13", SourceName: "zlib", PackageManager: "OS", FilePath: "/var/lib/dpkg/status",
			Layer: baseLayer, Reason: `version "x:1.2.13" could not be compared`},
		{Ecosystem: "Debian:12", Package: "libssl3", Version: "3.0.11-1~deb12u1", SourceName: "openssl", PackageManager: "OS", FilePath: "/var/lib/dpkg/status",
			Layer: baseLayer, AdvisoryID: "DSA-9998-1", Reason: "ECOSYSTEM range event fixed \"x:1\" is not a valid Debian version"},
	}
	// The Debian finding is suppressed by a VEX statement.
	for i, f := range s.Findings {
		if f.Severity == "UNDEFINED" {
			s.Suppressed = []triage.Suppressed{{Finding: f, Status: "not_affected", Justification: "not_affected: vulnerable_code_not_in_execute_path (vex.json)"}}
			s.Findings = slices.Delete(s.Findings, i, i+1)
			break
		}
	}
	s.Ignored = 3
	for i := range 8 {
		s.Inventory.Skipped = append(s.Inventory.Skipped, inventory.Skipped{Path: fmt.Sprintf("/dev/tty%d", i), Layer: baseLayer, Reason: "device node: not read"})
	}
	return s
}

func TestReportsSayWhatWasNotEvaluated(t *testing.T) {
	s := unknownSample(t)
	tests := []struct {
		format string
		want   []string
	}{
		{"table", []string{
			"3 packages, 1 findings, 2 packages not evaluated, 1 suppressed, 3 ignored\n",
			"2 packages not evaluated (the scan cannot say they are unaffected):",
			"zlib1g", "x:1.2.13", "DSA-9998-1",
			"1 suppressed by VEX statements:", "CVE-2099-0001", "not_affected", "vulnerable_code_not_in_execute_path (vex.json)",
			"3.0.11-1~deb12u1", // the full installed version
			"8 device nodes skipped: /dev/tty0, /dev/tty1, /dev/tty2, /dev/tty3, /dev/tty4, /dev/tty5, /dev/tty6, /dev/tty7\n",
			"9 entries skipped or read in part:", "/app/huge.jar",
		}},
		{"json", []string{`"description": "COMPLETE with 2 packages not evaluated"`, `"notEvaluated": [`, `"package": "zlib1g"`,
			`"advisoryId": "DSA-9998-1"`, `"suppressed": [`, `"justification": "not_affected: vulnerable_code_not_in_execute_path (vex.json)"`,
			`"version": "3.0.11-1~deb12u1"`, `"ignored": 3`}},
		{"sarif", []string{`"ruleId": "LADING-NOT-EVALUATED"`, "zlib1g x:1.2.13 (Debian:12) was not evaluated", "was not evaluated against DSA-9998-1",
			`"suppressions": [`, `"justification": "not_affected: vulnerable_code_not_in_execute_path (vex.json)"`}},
	}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			out := string(write(t, tc.format, s))
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("%s lacks %q:\n%s", tc.format, want, out)
				}
			}
		})
	}
	// One line for the device nodes, none of them in the table of single entries.
	if out := string(write(t, "table", s)); strings.Count(out, "/dev/tty3") != 1 {
		t.Errorf("device nodes listed more than once:\n%s", out)
	}
	// A scan that evaluated everything says nothing of it, and keeps ECR's description.
	clean := string(write(t, "json", sample(t, policy.ScanTypeBasic)))
	if !strings.Contains(clean, `"notEvaluated": []`) || !strings.Contains(clean, `"description": "The scan was completed successfully."`) {
		t.Errorf("clean scan:\n%s", clean)
	}
	if table := string(write(t, "table", sample(t, policy.ScanTypeBasic))); strings.Contains(table, "not evaluated") {
		t.Errorf("clean table mentions not evaluated:\n%s", table)
	}
}
