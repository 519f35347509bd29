package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/store"
)

const (
	digest7f = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234abcd"
	digest96 = "sha256:965fbcae990b0467ed5657caceaec165018ef44a4d2d46c7cdea80a9dff0d1ea"
	digest84 = "sha256:84f5a1a76a9e7e1d7f0c4e63e5a3e0d6b1d8b0b1f6b5f4e2c7a1d3e8f9a0b1c2"
	layer15  = "sha256:1567e7ea90b6e3d31e08e65c8d32e8e1d1b2c3d4e5f60718293a4b5c6d7e8f90"
)

// diffJSON reports, field by field, where got differs from want (both decoded JSON).
func diffJSON(path string, got, want any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %T %v, want an object", path, got, got)}
		}
		var out []string
		keys := map[string]bool{}
		for k := range w {
			keys[k] = true
		}
		for k := range g {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			gv, gok := g[k]
			wv, wok := w[k]
			switch {
			case !gok:
				out = append(out, fmt.Sprintf("%s.%s: missing, want %v", path, k, wv))
			case !wok:
				out = append(out, fmt.Sprintf("%s.%s: unexpected field = %v", path, k, gv))
			default:
				out = append(out, diffJSON(path+"."+k, gv, wv)...)
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
		}
		var out []string
		for i := range w {
			out = append(out, diffJSON(fmt.Sprintf("%s[%d]", path, i), g[i], w[i])...)
		}
		return out
	default:
		if !reflect.DeepEqual(got, want) {
			return []string{fmt.Sprintf("%s: got %#v, want %#v", path, got, want)}
		}
		return nil
	}
}

// checkEnvelope marshals ev and compares it with want, a reference example in which "$ID"
// stands for the generated event id.
func checkEnvelope(t *testing.T, ev store.OutboxEvent, want string) {
	t.Helper()
	body, err := MarshalEnvelope(ev)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(body, &g); err != nil {
		t.Fatalf("envelope is not JSON: %v\n%s", err, body)
	}
	if err := json.Unmarshal([]byte(strings.ReplaceAll(want, "$ID", ev.ID)), &w); err != nil {
		t.Fatalf("bad expectation: %v", err)
	}
	for _, d := range diffJSON("", g, w) {
		t.Error(d)
	}
	if t.Failed() {
		t.Logf("envelope: %s", body)
	}
}

func TestImageActionEnvelope(t *testing.T) {
	o := Origin{Account: "123456789012", Region: "us-west-2"}
	at := time.Date(2019, 11, 16, 1, 54, 34, 0, time.UTC)
	for _, action := range []string{ActionPush, ActionDelete} {
		t.Run(action, func(t *testing.T) {
			ev, err := o.ImageAction(ImageAction{Action: action, Repository: "my-repository-name", Digest: digest7f, Tag: "latest", At: at})
			if err != nil {
				t.Fatal(err)
			}
			// The reference's example, with the digest written out.
			checkEnvelope(t, ev, `{"version":"0","id":"$ID","detail-type":"ECR Image Action","source":"aws.ecr","account":"123456789012",
				"time":"2019-11-16T01:54:34Z","region":"us-west-2","resources":[],
				"detail":{"result":"SUCCESS","repository-name":"my-repository-name","image-digest":"`+digest7f+`",
				"action-type":"`+action+`","image-tag":"latest"}}`)
		})
	}
	t.Run("by digest with media types", func(t *testing.T) {
		ev, err := o.ImageAction(ImageAction{Action: ActionPush, Repository: "team/app", Digest: digest7f, At: at,
			ManifestMediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactMediaType: "application/vnd.oci.image.config.v1+json"})
		if err != nil {
			t.Fatal(err)
		}
		checkEnvelope(t, ev, `{"version":"0","id":"$ID","detail-type":"ECR Image Action","source":"aws.ecr","account":"123456789012",
			"time":"2019-11-16T01:54:34Z","region":"us-west-2","resources":[],
			"detail":{"result":"SUCCESS","repository-name":"team/app","image-digest":"`+digest7f+`","action-type":"PUSH",
			"manifest-media-type":"application/vnd.oci.image.manifest.v1+json","artifact-media-type":"application/vnd.oci.image.config.v1+json"}}`)
	})
}

func TestImageScanEnvelope(t *testing.T) {
	o := Origin{Account: "123456789012", Region: "us-east-1"}
	ev, err := o.ImageScan(ScanCompleted{
		Repository: "my-repository-name", Digest: digest7f,
		SeverityCounts: map[string]int{"CRITICAL": 10, "HIGH": 0, "MEDIUM": 9, "LOW": 0},
		At:             time.Date(2019, 10, 29, 2, 36, 48, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Only non-zero severities are present, and image-tags is [] rather than null.
	checkEnvelope(t, ev, `{"version":"0","id":"$ID","detail-type":"ECR Image Scan","source":"aws.ecr","account":"123456789012",
		"time":"2019-10-29T02:36:48Z","region":"us-east-1",
		"resources":["arn:aws:ecr:us-east-1:123456789012:repository/my-repository-name"],
		"detail":{"scan-status":"COMPLETE","repository-name":"my-repository-name",
		"finding-severity-counts":{"CRITICAL":10,"MEDIUM":9},"image-digest":"`+digest7f+`","image-tags":[]}}`)

	clean, err := o.ImageScan(ScanCompleted{Repository: "r", Digest: digest7f, Tags: []string{"v1", "latest"}, Status: "FAILED",
		At: time.Date(2019, 10, 29, 2, 36, 48, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	checkEnvelope(t, clean, `{"version":"0","id":"$ID","detail-type":"ECR Image Scan","source":"aws.ecr","account":"123456789012",
		"time":"2019-10-29T02:36:48Z","region":"us-east-1","resources":["arn:aws:ecr:us-east-1:123456789012:repository/r"],
		"detail":{"scan-status":"FAILED","repository-name":"r","finding-severity-counts":{},"image-digest":"`+digest7f+`","image-tags":["v1","latest"]}}`)
}

func TestInspectorScanEnvelope(t *testing.T) {
	o := Origin{Account: "111122223333", Region: "us-east-1"}
	at := time.Date(2023, 1, 20, 22, 52, 7, 0, time.UTC)
	ev, err := o.InspectorScan(ScanCompleted{Repository: "inspector2", Digest: digest96, Tags: []string{"ubuntu22"}, At: at})
	if err != nil {
		t.Fatal(err)
	}
	// The reference's example: repository-name holds the ARN, all four counts always present.
	checkEnvelope(t, ev, `{"version":"0","id":"$ID","detail-type":"Inspector2 Scan","source":"aws.inspector2","account":"111122223333",
		"time":"2023-01-20T22:52:07Z","region":"us-east-1","resources":["arn:aws:ecr:us-east-1:111122223333:repository/inspector2"],
		"detail":{"scan-status":"INITIAL_SCAN_COMPLETE","repository-name":"arn:aws:ecr:us-east-1:111122223333:repository/inspector2",
		"finding-severity-counts":{"CRITICAL":0,"HIGH":0,"MEDIUM":0,"TOTAL":0},
		"image-digest":"`+digest96+`","image-tags":["ubuntu22"],"version":"1.0"}}`)

	counted, err := o.InspectorScan(ScanCompleted{Repository: "inspector2", Digest: digest96, At: at,
		SeverityCounts: map[string]int{"CRITICAL": 1, "HIGH": 2, "MEDIUM": 3, "LOW": 4, "INFORMATIONAL": 5, "UNTRIAGED": 6}})
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Counts map[string]int `json:"finding-severity-counts"`
	}
	if err := json.Unmarshal(counted.Detail, &d); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"CRITICAL": 1, "HIGH": 2, "MEDIUM": 3, "TOTAL": 21}
	if !reflect.DeepEqual(d.Counts, want) {
		t.Errorf("counts %v, want %v (TOTAL counts every severity)", d.Counts, want)
	}
}

func TestInspectorFindingEnvelope(t *testing.T) {
	o := Origin{Account: "123456789012", Region: "eu-central-1"}
	observed := time.Date(2024, 9, 4, 16, 55, 38, 411_000_000, time.UTC)
	epss := 0.00045
	f := Finding{
		ARN:              "arn:aws:inspector2:eu-central-1:123456789012:finding/0a1b2c3d4e5f60718293a4b5c6d7e8f9",
		Title:            "CVE-2024-6119 - libssl3t64, openssl",
		Description:      "Issue summary: Applications performing certificate name checks might attempt to read an invalid memory address.",
		Severity:         "MEDIUM",
		Status:           "ACTIVE",
		FirstObservedAt:  observed,
		LastObservedAt:   observed,
		UpdatedAt:        observed,
		EPSS:             &epss,
		ExploitAvailable: "NO",
		FixAvailable:     "YES",
		Vulnerability: Vulnerability{
			ID: "CVE-2024-6119", Source: "UBUNTU_CVE", VendorSeverity: "medium",
			Packages: []VulnerablePackage{{
				Name: "openssl", Version: "3.0.13", Release: "0ubuntu3.2", Epoch: 0, Arch: "ARM64", PackageManager: "OS",
				FixedInVersion: "0:3.0.13-0ubuntu3.4", Remediation: "apt-get update && apt-get upgrade", SourceLayerHash: layer15,
			}},
		},
		Image: Image{
			Repository: "inspector2", Digest: digest84, Tags: []string{"ubuntu_latest"}, Architecture: "arm64",
			Platform: "UBUNTU_24_04", PushedAt: time.Date(2024, 9, 4, 16, 55, 28, 0, time.UTC),
		},
	}
	ev, err := o.InspectorFinding(f)
	if err != nil {
		t.Fatal(err)
	}
	imageID := "arn:aws:ecr:eu-central-1:123456789012:repository/inspector2/" + digest84
	// The reference's example, abridged parts written out.
	checkEnvelope(t, ev, `{"version":"0","id":"$ID","detail-type":"Inspector2 Finding","source":"aws.inspector2",
		"account":"123456789012","time":"2024-09-04T16:55:38Z","region":"eu-central-1","resources":["`+imageID+`"],
		"detail":{"awsAccountId":"123456789012","findingArn":"`+f.ARN+`",
		"description":"`+f.Description+`",
		"type":"PACKAGE_VULNERABILITY","title":"CVE-2024-6119 - libssl3t64, openssl","severity":"MEDIUM","status":"ACTIVE",
		"epss":{"score":0.00045},"exploitAvailable":"NO","fixAvailable":"YES",
		"firstObservedAt":"Wed Sep 04 16:55:38.411 UTC 2024","lastObservedAt":"Wed Sep 04 16:55:38.411 UTC 2024",
		"updatedAt":"Wed Sep 04 16:55:38.411 UTC 2024",
		"packageVulnerabilityDetails":{"vulnerabilityId":"CVE-2024-6119","source":"UBUNTU_CVE","vendorSeverity":"medium",
		 "vulnerablePackages":[{"name":"openssl","version":"3.0.13","release":"0ubuntu3.2","epoch":0,"arch":"ARM64",
		   "packageManager":"OS","fixedInVersion":"0:3.0.13-0ubuntu3.4","remediation":"apt-get update && apt-get upgrade",
		   "sourceLayerHash":"`+layer15+`"}]},
		"remediation":{"recommendation":{"text":"None Provided"}},
		"resources":[{"type":"AWS_ECR_CONTAINER_IMAGE","id":"`+imageID+`","partition":"aws","region":"eu-central-1",
		 "details":{"awsEcrContainerImage":{"repositoryName":"inspector2","registry":"123456789012","imageHash":"`+digest84+`",
		   "imageTags":["ubuntu_latest"],"architecture":"arm64","platform":"UBUNTU_24_04","pushedAt":"Wed Sep 04 16:55:28.000 UTC 2024"}}}]}}`)
	// The store writes a detail marked compact as is: it must be what json.Compact makes of it.
	var compact bytes.Buffer
	if err := json.Compact(&compact, ev.Detail); err != nil || !ev.DetailCompact || compact.String() != string(ev.Detail) {
		t.Errorf("detail marked compact %v, compacts to itself: %v (err %v)", ev.DetailCompact, compact.String() == string(ev.Detail), err)
	}
	body, _ := MarshalEnvelope(ev)
	if !strings.Contains(string(body), "apt-get update && apt-get upgrade") {
		t.Errorf("remediation is HTML-escaped in %s", body)
	}

	// A closed finding with the optional parts Inspector adds elsewhere.
	closed := f
	closed.Status = "CLOSED"
	closed.UpdatedAt = observed.Add(48 * time.Hour)
	closed.InspectorScore = 5.9
	closed.InspectorScoreDetails = &AdjustedCVSS{ScoreSource: "NVD", CVSSSource: "NVD", Version: "3.1", Score: 5.9,
		ScoringVector: "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H", Adjustments: []ScoreAdjustment{{Metric: "AV", Reason: "network"}}}
	closed.Remediation = Remediation{Text: "Upgrade openssl", URL: "https://ubuntu.com/security/CVE-2024-6119"}
	closed.Vulnerability.CVSS = []CVSS{{BaseScore: 5.9, ScoringVector: "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H", Version: "3.1", Source: "NVD"}}
	ev, err = o.InspectorFinding(closed)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		got  any
		want any
	}{
		{d["status"], "CLOSED"},
		{d["updatedAt"], "Fri Sep 06 16:55:38.411 UTC 2024"},
		{d["inspectorScore"], 5.9},
		{d["remediation"], map[string]any{"recommendation": map[string]any{"text": "Upgrade openssl", "Url": "https://ubuntu.com/security/CVE-2024-6119"}}},
		{d["inspectorScoreDetails"].(map[string]any)["adjustedCvss"].(map[string]any)["adjustments"],
			[]any{map[string]any{"metric": "AV", "reason": "network"}}},
		{d["packageVulnerabilityDetails"].(map[string]any)["cvss"], []any{map[string]any{
			"baseScore": 5.9, "scoringVector": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H", "version": "3.1", "source": "NVD"}}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("closed finding: got %#v, want %#v", c.got, c.want)
		}
	}
	if !ev.Time.Equal(closed.UpdatedAt) {
		t.Errorf("envelope time %v, want the update time %v", ev.Time, closed.UpdatedAt)
	}
}

func TestPartitionFollowsRegion(t *testing.T) {
	for region, want := range map[string]string{
		"us-east-1":     "arn:aws:ecr:us-east-1:123456789012:repository/a/b",
		"cn-north-1":    "arn:aws-cn:ecr:cn-north-1:123456789012:repository/a/b",
		"us-gov-west-1": "arn:aws-us-gov:ecr:us-gov-west-1:123456789012:repository/a/b",
	} {
		if got := (Origin{Account: "123456789012", Region: region}).RepositoryARN("a/b"); got != want {
			t.Errorf("%s: %s, want %s", region, got, want)
		}
	}
}

func TestBuildersRejectBadInput(t *testing.T) {
	o := Origin{Account: "123456789012", Region: "us-east-1"}
	now := time.Now()
	good := Finding{ARN: "arn:x", Severity: "HIGH", Status: "ACTIVE", FirstObservedAt: now, LastObservedAt: now,
		Vulnerability: Vulnerability{ID: "CVE-1", Source: "NVD"}, Image: Image{Repository: "r", Digest: digest7f}}
	if _, err := o.InspectorFinding(good); err != nil {
		t.Fatalf("the valid finding: %v", err)
	}
	mod := func(fn func(*Finding)) Finding { f := good; fn(&f); return f }
	for _, tc := range []struct {
		name string
		call func() (store.OutboxEvent, error)
	}{
		{"action type", func() (store.OutboxEvent, error) {
			return o.ImageAction(ImageAction{Action: "PULL", Repository: "r", Digest: digest7f})
		}},
		{"action without digest", func() (store.OutboxEvent, error) {
			return o.ImageAction(ImageAction{Action: ActionPush, Repository: "r"})
		}},
		{"no origin", func() (store.OutboxEvent, error) {
			return Origin{}.ImageAction(ImageAction{Action: ActionPush, Repository: "r", Digest: digest7f})
		}},
		{"scan without repository", func() (store.OutboxEvent, error) { return o.ImageScan(ScanCompleted{Digest: digest7f}) }},
		{"scan status", func() (store.OutboxEvent, error) {
			return o.ImageScan(ScanCompleted{Repository: "r", Digest: digest7f, Status: "IN_PROGRESS"})
		}},
		{"unknown severity", func() (store.OutboxEvent, error) {
			return o.ImageScan(ScanCompleted{Repository: "r", Digest: digest7f, SeverityCounts: map[string]int{"SEVERE": 1}})
		}},
		{"negative count", func() (store.OutboxEvent, error) {
			return o.InspectorScan(ScanCompleted{Repository: "r", Digest: digest7f, SeverityCounts: map[string]int{"HIGH": -1}})
		}},
		{"finding without ARN", func() (store.OutboxEvent, error) { return o.InspectorFinding(mod(func(f *Finding) { f.ARN = "" })) }},
		{"finding severity", func() (store.OutboxEvent, error) {
			return o.InspectorFinding(mod(func(f *Finding) { f.Severity = "medium" }))
		}},
		{"finding status", func() (store.OutboxEvent, error) {
			return o.InspectorFinding(mod(func(f *Finding) { f.Status = "RESOLVED" }))
		}},
		{"finding without vulnerability", func() (store.OutboxEvent, error) {
			return o.InspectorFinding(mod(func(f *Finding) { f.Vulnerability.ID = "" }))
		}},
		{"finding without image", func() (store.OutboxEvent, error) {
			return o.InspectorFinding(mod(func(f *Finding) { f.Image.Digest = "" }))
		}},
		{"finding without observation times", func() (store.OutboxEvent, error) {
			return o.InspectorFinding(mod(func(f *Finding) { f.FirstObservedAt = time.Time{} }))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.call(); !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("got %v, want ErrInvalidEvent", err)
			}
		})
	}
}

func TestMarshalEnvelopeIsStable(t *testing.T) {
	ev := store.OutboxEvent{ID: "e1", DetailType: "ECR Image Action", Source: "aws.ecr", Account: "123456789012", Region: "us-east-1",
		Time: time.Date(2024, 1, 2, 3, 4, 5, 600_000_000, time.FixedZone("CET", 3600)), Detail: json.RawMessage(`{"a":"<&>"}`)}
	a, err := MarshalEnvelope(ev)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := MarshalEnvelope(ev)
	want := `{"version":"0","id":"e1","detail-type":"ECR Image Action","source":"aws.ecr","account":"123456789012",` +
		`"time":"2024-01-02T02:04:05Z","region":"us-east-1","resources":[],"detail":{"a":"<&>"}}`
	if string(a) != want || string(b) != want {
		t.Errorf("envelope\n%s\nwant\n%s", a, want)
	}
}
