package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/report"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// roundTripDetails are stored details: the scanner's own (with text that looks like the
// markers the store splits at), and others the store must keep whole.
func roundTripDetails(t testing.TB) map[string][]byte {
	t.Helper()
	score := 9.8
	published := time.Date(2025, 3, 27, 12, 0, 0, 0, time.UTC)
	full := match.Finding{VulnerabilityID: "CVE-2024-0001", Aliases: []string{"GHSA-aaaa-bbbb-cccc"}, AdvisoryIDs: []string{"DSA-1", "DLA-2"},
		Title: "CVE-2024-0001 - openssl", Description: "A \"quoted\" <b>overflow</b> & more: ,\"vulnerablePackages\":[ and },\"image\":{ in text; ünïcødé \u2028",
		Severity: "CRITICAL", Score: &score, CVSSVector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", CVSSVersion: "3.1", CVSSSource: "NVD",
		CVSS:           []advisory.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", BaseScore: 9.8, Rating: "CRITICAL"}},
		VendorSeverity: "high", Source: "DEBIAN_CVE", SourceURL: "https://security-tracker.debian.org/tracker/CVE-2024-0001",
		ReferenceURLs: []string{"https://example.com/a?x=1&y=2"}, Related: []string{"CVE-2024-0002"}, Published: published, Modified: published.Add(time.Hour),
		Packages: []match.VulnerablePackage{
			{Name: "openssl", Version: "3.0.11", Epoch: 1, Release: "1~deb12u1", Arch: "amd64", Ecosystem: "Debian:12", PackageManager: "OS",
				SourceName: "openssl", SourceVersion: "3.0.11-1~deb12u1", PURL: "pkg:deb/debian/openssl@3.0.11-1~deb12u1?arch=amd64",
				FilePath: "var/lib/dpkg/status", Layer: "sha256:bbbb", CreatedBy: "/bin/sh -c apt-get install -y openssl # \"image\":{}",
				FixedInVersion: "3.0.13-1~deb12u1", Remediation: "apt-get upgrade openssl"},
			{Name: "libssl3", Version: "3.0.11", Ecosystem: "Debian:12", PackageManager: "OS", Layer: "sha256:bbbb"},
		}}
	bare := match.Finding{VulnerabilityID: "GHSA-xxxx-yyyy-zzzz", Severity: "UNDEFINED", Packages: []match.VulnerablePackage{}}
	out := map[string][]byte{}
	for name, d := range map[string]scanning.Detail{
		"scanner detail": {Finding: full, Image: scanning.ImageInfo{Architecture: "amd64", Author: "me <me@example.com>", Platform: "DEBIAN_12"}},
		"no image facts": {Finding: full},
		"no packages":    {Finding: bare},
	} {
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	out["other JSON"] = []byte(`{"old":true,"image":{"architecture":"arm64"}}`)
	out["markers in the wrong order"] = []byte(`{"finding":{"x":1},"image":{},"vulnerablePackages":[]}`)
	out["null image"] = []byte(`{"finding":{"vulnerabilityId":"X","vulnerablePackages":[]},"image":null}`)
	return out
}

// noExploits is a KEV catalogue that lists nothing.
type noExploits struct{}

func (noExploits) Exploited(...string) bool { return false }

// rendered is a finding as DescribeImageScanFindings (and, renamed, Inspector's ListFindings)
// shows it, from its stored detail; a detail that does not decode renders as an error.
func rendered(t *testing.T, f store.Finding) string {
	t.Helper()
	d, err := scanning.DecodeDetail(f)
	if err != nil {
		return "error: does not decode"
	}
	m := store.Manifest{Repository: f.Repository, Digest: f.Digest, PushedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b, err := json.Marshal(report.Enhanced("123456789012", "us-east-1", f, d, m, noExploits{}))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFindingDetailRoundTrip checks that a finding's detail reads back byte for byte, and so
// renders the same, whether it was stored before 0032 (and migrated) or written since, through
// every reader of details; and that the vulnerability's text is stored once.
func TestFindingDetailRoundTrip(t *testing.T) {
	ctx := context.Background()
	details := roundTripDetails(t)
	names := make([]string, 0, len(details))
	for name := range details {
		names = append(names, name)
	}
	slices.Sort(names)

	// The store as it was: the details whole, in finding_details (0022).
	w, reopen := storeAt(t, 31)
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	finding := func(repo, dgst string, i int, name string) store.Finding {
		return store.Finding{Repository: repo, Digest: dgst, ScanType: policy.ScanTypeEnhanced, VulnerabilityID: fmt.Sprintf("V-%d", i),
			ARN: fmt.Sprintf("arn:%s:%d", repo, i), Status: "ACTIVE", Severity: "HIGH", Fingerprint: name, Detail: details[name],
			FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now}
	}
	oldDigest, newDigest := fakeDigest("o"), fakeDigest("n")
	var before []string // the rendering of each finding from the detail the scanner wrote
	for i, name := range names {
		f := finding("old", oldDigest, i, name)
		before = append(before, rendered(t, f))
		var id int64
		if err := w.QueryRowContext(ctx, `INSERT INTO findings(repository, image_digest, scan_type, vulnerability_id, arn, status, severity, fingerprint,
			first_observed_at, last_observed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, f.Repository, f.Digest, f.ScanType,
			f.VulnerabilityID, f.ARN, f.Status, f.Severity, f.Fingerprint, now.UnixMilli(), now.UnixMilli(), now.UnixMilli()).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if _, err := w.ExecContext(ctx, "INSERT INTO finding_details(finding_id, detail) VALUES (?, ?)", id, string(f.Detail)); err != nil {
			t.Fatal(err)
		}
	}
	db := reopen()

	// The same findings written since, by the scanning writer, in two more images.
	for _, repo := range []string{"new", "again"} {
		m := store.Manifest{Repository: repo, Digest: newDigest, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 2, Content: []byte("{}")}
		if _, err := db.PutManifest(ctx, m, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
			t.Fatal(err)
		}
		var writes []store.Finding
		for i, name := range names {
			writes = append(writes, finding(repo, newDigest, i, name))
		}
		if err := db.ApplyScans(ctx, []store.ScanTarget{{Repository: repo, Digest: newDigest, ScanType: policy.ScanTypeEnhanced}},
			func(store.ScanState) (store.ScanUpdate, error) {
				return store.ScanUpdate{Scan: &store.ImageScan{Status: "ACTIVE", UpdatedAt: now}, Findings: writes}, nil
			}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.PutManifest(ctx, store.Manifest{Repository: "old", Digest: oldDigest, MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: 2, Content: []byte("{}")}, nil, nil, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}

	for _, img := range []struct{ repo, digest string }{{"old", oldDigest}, {"new", newDigest}, {"again", newDigest}} {
		// DescribeImageScanFindings, reports and events read an image's findings.
		got, err := db.Findings(ctx, img.repo, img.digest, policy.ScanTypeEnhanced)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(names) {
			t.Fatalf("%s: %d findings, want %d", img.repo, len(got), len(names))
		}
		// ListFindings and BatchGetFindingDetails read them by query and by ARN.
		listed, err := db.QueryFindings(ctx, findings.Query{Criteria: strs(findings.ECRImageRepositoryName, sf(findings.Equals, img.repo)),
			Account: testOrigin.Account, Region: testOrigin.Region, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var arns []string
		for _, f := range got {
			arns = append(arns, f.ARN)
		}
		byARN, err := db.FindingsByARN(ctx, arns)
		if err != nil {
			t.Fatal(err)
		}
		if len(listed) != len(names) || len(byARN) != len(names) {
			t.Fatalf("%s: %d listed, %d by ARN, want %d", img.repo, len(listed), len(byARN), len(names))
		}
		byVuln := func(ls []findings.Listed, id string) store.Finding {
			i := slices.IndexFunc(ls, func(l findings.Listed) bool { return l.Finding.VulnerabilityID == id })
			if i < 0 {
				t.Fatalf("%s: %s not read", img.repo, id)
			}
			return ls[i].Finding
		}
		for i, name := range names {
			id := got[i].VulnerabilityID
			for reader, f := range map[string]store.Finding{"Findings": got[i], "QueryFindings": byVuln(listed, id), "FindingsByARN": byVuln(byARN, id)} {
				if string(f.Detail) != string(details[name]) {
					t.Errorf("%s, %s, %s: detail\n%s\nwant\n%s", img.repo, name, reader, f.Detail, details[name])
				}
				f.Repository, f.Digest, f.ARN = "old", oldDigest, fmt.Sprintf("arn:old:%d", i)
				if r := rendered(t, f); r != before[i] {
					t.Errorf("%s, %s, %s: rendered\n%s\nbefore\n%s", img.repo, name, reader, r, before[i])
				}
			}
		}
	}
	// A re-evaluation reads the details it asks for.
	if err := db.ApplyScans(ctx, []store.ScanTarget{{Repository: "new", Digest: newDigest, ScanType: policy.ScanTypeEnhanced}},
		func(st store.ScanState) (store.ScanUpdate, error) {
			ids := []string{}
			for _, f := range st.Findings {
				ids = append(ids, f.VulnerabilityID)
			}
			got, err := st.Details(ctx, ids)
			if err != nil {
				return store.ScanUpdate{}, err
			}
			for i, name := range names {
				if string(got[fmt.Sprintf("V-%d", i)]) != string(details[name]) {
					t.Errorf("Details of %s: %s", name, got[fmt.Sprintf("V-%d", i)])
				}
			}
			return store.ScanUpdate{}, nil
		}); err != nil {
		t.Fatal(err)
	}

	// The scanner's details are split, the others whole; each text is stored once for the
	// three images.
	var split, whole, layered, texts int
	if err := db.Reader().QueryRow(`SELECT count(head_id), count(*) - count(head_id), count(layer_id), (SELECT count(*) FROM finding_texts)
		FROM finding_details`).Scan(&split, &whole, &layered, &texts); err != nil {
		t.Fatal(err)
	}
	// 4 of the 6 details split, in 3 images, the 2 with packages with their layer apart (0046:
	// by the migration in the old image, by the writer in the new ones); texts: 3 heads, 3
	// tails (facts, {}, null) and the one layer.
	if split != 12 || whole != 6 || layered != 6 || texts != 7 {
		t.Errorf("%d details split, %d whole, %d with their layer apart, %d texts; want 12, 6, 6, 7", split, whole, layered, texts)
	}
}

// joinDetail is the detail of its three parts, as finding_detail_view joins them.
func joinDetail(head, packages, tail string) string {
	return detailOpen + head + detailPackages + packages + detailImage + tail + detailClose
}

// FuzzSplitDetail: a detail the store splits joins back to itself.
func FuzzSplitDetail(f *testing.F) {
	for _, d := range roundTripDetails(f) {
		f.Add(d)
	}
	f.Add([]byte(`{"finding":{,"vulnerablePackages":},"image":}`))
	f.Fuzz(func(t *testing.T, detail []byte) {
		head, packages, tail, ok := SplitDetail(detail)
		if ok && joinDetail(head, packages, tail) != string(detail) {
			t.Fatalf("split %q into %q %q %q", detail, head, packages, tail)
		}
		if !ok && (head != "" || packages != "" || tail != "") {
			t.Fatalf("not split, but parts returned")
		}
	})
}

// FuzzSplitDetailLayer: a packages part whose layer the store takes apart reads back whole,
// and the part kept holds the layer nowhere.
func FuzzSplitDetailLayer(f *testing.F) {
	for _, d := range roundTripDetails(f) {
		if _, packages, _, ok := SplitDetail(d); ok {
			f.Add(packages)
		}
	}
	f.Add(`[{"sourceLayerHash":"sha256:a<b>&","createdBy":"x"},{"sourceLayerHash":"sha256:a<b>&","createdBy":"x"}]`)
	f.Add(`[{"sourceLayerHash":"sha256:a"},{"createdBy":"y","sourceLayerHash":"sha256:a"}]`)
	f.Add("[{\"sourceLayerHash\":\"\x01\"}]")
	f.Fuzz(func(t *testing.T, packages string) {
		layer, digest, rest, ok := SplitDetailLayer(packages)
		if !ok {
			if rest != packages {
				t.Fatalf("not split, yet changed: %q -> %q", packages, rest)
			}
			return
		}
		if got := strings.ReplaceAll(rest, layerMark, layer); got != packages {
			t.Fatalf("split %q into %q and %q, which join to %q", packages, layer, rest, got)
		}
		if strings.Contains(rest, layer) || !strings.HasPrefix(layer, `,"sourceLayerHash":`) {
			t.Fatalf("split %q into %q and %q", packages, layer, rest)
		}
		var first struct {
			Layer string `json:"sourceLayerHash"`
		}
		if err := json.Unmarshal([]byte("{"+layer[1:]+"}"), &first); err != nil || first.Layer != digest || digest == "" {
			t.Fatalf("layer %q: digest %q (%v)", layer, digest, err)
		}
	})
}
