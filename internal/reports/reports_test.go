package reports

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/findings"
	"github.com/lading-registry/lading/internal/sbom"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

func TestDestinationValidate(t *testing.T) {
	for _, tc := range []struct {
		bucket, prefix string
		want           string // the cleaned prefix; "!" for refused
	}{
		{"reports", "", ""},
		{"my.reports-1", "daily/2026", "daily/2026"},
		{"reports", "daily/", "daily"},
		{"reports", "a b/ü", "a b/ü"},
		{"..", "", "!"},
		{"a..b", "", "!"},
		{"ab", "", "!"},
		{"Reports", "", "!"},
		{"a/b", "", "!"},
		{"-reports", "", "!"},
		{"reports.", "", "!"},
		{strings.Repeat("a", 64), "", "!"},
		{"reports", "/etc", "!"},
		{"reports", "..", "!"},
		{"reports", "a/../b", "!"},
		{"reports", "a/./b", "!"},
		{"reports", "a//b", "!"},
		{"reports", `a\..\b`, "!"},
		{"reports", "a\x00b", "!"},
		{"reports", "a\nb", "!"},
		{"reports", strings.Repeat("a", 513), "!"},
	} {
		d, err := Destination{Bucket: tc.bucket, KeyPrefix: tc.prefix, KMSKeyARN: "k"}.Validate()
		switch {
		case tc.want == "!" && !errors.Is(err, findings.ErrInvalid):
			t.Errorf("%q %q: %v, want refused", tc.bucket, tc.prefix, err)
		case tc.want != "!" && (err != nil || d.KeyPrefix != tc.want):
			t.Errorf("%q %q: %q %v, want %q", tc.bucket, tc.prefix, d.KeyPrefix, err, tc.want)
		}
	}
	if _, err := (Destination{Bucket: "reports"}).Validate(); !errors.Is(err, findings.ErrInvalid) {
		t.Errorf("no KMS key: %v, want refused", err)
	}
}

// FuzzDestination checks that whatever destination is accepted stays inside its bucket's
// directory.
func FuzzDestination(f *testing.F) {
	for _, s := range []string{"", "daily", "a/b/", "../x", "/abs", "a//b", `a\b`, "a/./b", "ü/日本"} {
		f.Add("reports", s)
	}
	f.Add("..", "x")
	f.Fuzz(func(t *testing.T, bucket, prefix string) {
		d, err := Destination{Bucket: bucket, KeyPrefix: prefix, KMSKeyARN: "k"}.Validate()
		if err != nil {
			return
		}
		rel := filepath.Join(d.Bucket, d.key("SBOM", "000000000000", "id", "repo", "sha256_x.json"))
		if !filepath.IsLocal(rel) || !strings.HasPrefix(rel, d.Bucket+string(filepath.Separator)) {
			t.Fatalf("%q %q: accepted, but %q leaves the bucket", bucket, prefix, rel)
		}
	})
}

func TestResourceCriteriaMatch(t *testing.T) {
	im := store.InventoriedImage{Repository: "prod/app", Digest: "sha256:aa", Tags: []string{"1.0", "latest"}}
	eq := func(v ...string) []ResourceFilter {
		var out []ResourceFilter
		for _, x := range v {
			out = append(out, ResourceFilter{Comparison: "EQUALS", Value: x})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		c    ResourceCriteria
		want bool
	}{
		{"none", ResourceCriteria{}, true},
		{"repository", ResourceCriteria{ECRRepositoryName: eq("other", "prod/app")}, true},
		{"other repository", ResourceCriteria{ECRRepositoryName: eq("other")}, false},
		{"tag", ResourceCriteria{ECRImageTags: eq("latest")}, true},
		{"not a tag it has", ResourceCriteria{ECRImageTags: []ResourceFilter{{Comparison: "NOT_EQUALS", Value: "1.0"}}}, false},
		{"not another tag", ResourceCriteria{ECRImageTags: []ResourceFilter{{Comparison: "NOT_EQUALS", Value: "2.0"}}}, true},
		{"resource id", ResourceCriteria{ResourceID: eq("arn:aws:ecr:us-east-1:123456789012:repository/prod/app/sha256:aa")}, true},
		{"resource type", ResourceCriteria{ResourceType: eq("AWS_ECR_CONTAINER_IMAGE")}, true},
		{"lambda resource type", ResourceCriteria{ResourceType: eq("AWS_LAMBDA_FUNCTION")}, false},
		{"account", ResourceCriteria{AccountID: eq("123456789012")}, true},
		{"lambda member", ResourceCriteria{LambdaFunctionName: eq("f")}, false},
		{"AND of members", ResourceCriteria{ECRRepositoryName: eq("prod/app"), ECRImageTags: eq("2.0")}, false},
	} {
		if got := tc.c.matches(im, "123456789012", "us-east-1"); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// blockingFindings blocks every listing until its context ends, saying when one started.
type blockingFindings struct{ started chan struct{} }

func (b blockingFindings) List(ctx context.Context, _ findings.ListInput) (findings.ListOutput, error) {
	b.started <- struct{}{}
	<-ctx.Done()
	return findings.ListOutput{}, ctx.Err()
}

type noEncoder struct{}

func (noEncoder) CSVHeader() []string                         { return []string{"h"} }
func (noEncoder) CSVRecord(findings.Listed) ([]string, error) { return []string{"r"}, nil }
func (noEncoder) JSONFinding(l findings.Listed) (any, error)  { return l.Finding.ARN, nil }

func newTestService(t *testing.T, fs Findings) (*Service, *sqlite.DB, func()) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s := New(db, fs, noEncoder{}, Config{Dir: filepath.Join(t.TempDir(), "reports"), Account: "123456789012", Region: "us-east-1",
		Logger: slog.New(slog.DiscardHandler)})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(runCtx)
	}()
	shutdown := func() { stop(); <-done }
	t.Cleanup(shutdown)
	return s, db, shutdown
}

var testDest = Destination{Bucket: "reports", KMSKeyARN: "k"}

func TestCancelStopsTheJob(t *testing.T) {
	fs := blockingFindings{started: make(chan struct{}, 1)}
	s, _, _ := newTestService(t, fs)
	ctx := context.Background()
	id, err := s.CreateFindingsReport(ctx, FindingsReport{Format: FormatCSV, Destination: testDest})
	if err != nil {
		t.Fatal(err)
	}
	<-fs.started
	if err := s.CancelFindingsReport(ctx, id); err != nil {
		t.Fatal(err)
	}
	j, err := s.FindingsReportStatus(ctx, &id)
	if err != nil || j.Status != StatusCancelled {
		t.Fatalf("%+v %v, want CANCELLED", j, err)
	}
	// Cancelling again changes nothing; another kind's id is not found.
	if err := s.CancelFindingsReport(ctx, id); err != nil {
		t.Errorf("second cancel: %v", err)
	}
	if err := s.CancelSBOMExport(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("cancel as an SBOM export: %v, want ErrNotFound", err)
	}
}

func TestShutdownFailsRunningJobs(t *testing.T) {
	fs := blockingFindings{started: make(chan struct{}, 1)}
	s, db, shutdown := newTestService(t, fs)
	ctx := context.Background()
	id, err := s.CreateFindingsReport(ctx, FindingsReport{Format: FormatJSON, Destination: testDest})
	if err != nil {
		t.Fatal(err)
	}
	<-fs.started
	shutdown() // Run returns once the job has recorded its end
	j, err := db.ReportJob(ctx, store.ReportFindingsReport, id)
	if err != nil || j.Status != StatusFailed || j.ErrorCode != ErrorInternal {
		t.Fatalf("%+v %v, want FAILED INTERNAL_ERROR", j, err)
	}
}

func TestRestartFailsOrphans(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	host, _ := os.Hostname()
	now := time.Now()
	jobs := []store.ReportJob{
		{ID: "0b5c1b4e-1111-4222-8333-000000000001", Owner: host + "/2147483646"}, // a dead process of this host
		{ID: "0b5c1b4e-1111-4222-8333-000000000002", Owner: "elsewhere/1"},        // another node's
		{ID: "0b5c1b4e-1111-4222-8333-000000000003", Owner: host + "/" + "1"},     // a live process (init)
	}
	for _, j := range jobs {
		j.Kind, j.Format, j.Status, j.Bucket, j.CreatedAt, j.UpdatedAt = store.ReportSBOMExport, FormatSPDX23, StatusInProgress, "reports", now, now
		if err := db.CreateReportJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	s := New(db, blockingFindings{}, noEncoder{}, Config{Dir: filepath.Join(dir, "reports"), Logger: slog.New(slog.DiscardHandler)})
	runCtx, stop := context.WithCancel(ctx)
	stop() // Run marks orphans before it waits: with its context over, it returns after that
	s.Run(runCtx)
	for i, want := range []string{StatusFailed, StatusInProgress, StatusInProgress} {
		j, err := s.SBOMExport(ctx, jobs[i].ID)
		if err != nil || j.Status != want {
			t.Errorf("job %d: %+v %v, want %s", i, j, err, want)
		}
	}
}

func TestFileServesOnlyWhatJobsWrote(t *testing.T) {
	s, _, _ := newTestService(t, blockingFindings{started: make(chan struct{}, 1)})
	if err := os.MkdirAll(filepath.Join(s.cfg.Dir, "reports"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.cfg.Dir, "reports", "planted.csv"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"planted.csv", "../reports/planted.csv", "", "a/"} {
		if _, _, err := s.File(context.Background(), "reports", key); !errors.Is(err, ErrNotFound) {
			t.Errorf("%q: %v, want ErrNotFound", key, err)
		}
	}
}

// An image's SBOM (the console's download) is one of the export's formats, of an image with a
// stored inventory.
func TestImageSBOMRefusals(t *testing.T) {
	s, _, _ := newTestService(t, blockingFindings{})
	var out strings.Builder
	var invalid *findings.ValidationError
	if err := s.ImageSBOM(context.Background(), "app", "sha256:00", FormatCSV, &out); !errors.As(err, &invalid) {
		t.Errorf("CSV: %v", err)
	}
	if err := s.ImageSBOM(context.Background(), "app", "sha256:00", FormatSPDX23, &out); !errors.Is(err, sbom.ErrNoInventory) {
		t.Errorf("an image never scanned: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("written: %q", out.String())
	}
}
