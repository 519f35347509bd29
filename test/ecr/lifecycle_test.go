package ecr_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/lading-registry/lading/internal/app"
)

// testClock is the server's injected clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// startClockedServer is startServer with an injected clock, returning the app too.
func startClockedServer(t *testing.T, clk *testClock) (*server, *app.App) {
	t.Helper()
	a, err := app.Open(context.Background(), app.Config{
		DataDir: t.TempDir(), Region: "us-east-1", RegistryID: registryID, CreateOnPush: true,
		AdminAccessKeyID: adminKey, AdminSecretAccessKey: adminSecret,
		Logger: slog.New(slog.DiscardHandler), Now: clk.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = a.Close()
	})
	return &server{URL: srv.URL, Host: strings.TrimPrefix(srv.URL, "http://")}, a
}

// The AWS CLI against a live server: put-lifecycle-policy from a file, a preview, the
// scheduled run, and what is left. The policy combines the user guide's rules: untagged
// images older than 14 days, and only the newest image tagged prod-*.
func TestLifecyclePolicyAWSCLI(t *testing.T) {
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	clk := &testClock{t: start}
	s, a := startClockedServer(t, clk)
	c := newClients(t, s)
	sdk := s.admin()
	createRepo(t, sdk, "lc")
	day := 24 * time.Hour
	pushAt := func(d time.Duration, tag string) string {
		clk.set(start.Add(d))
		return pushImage(t, sdk, "lc", tag, 512+int(d/time.Hour)).digest
	}
	untaggedOld := pushAt(0, "")
	prod1 := pushAt(1*day, "prod-1")
	prod2 := pushAt(2*day, "prod-2")
	prod3 := pushAt(3*day, "prod-3")
	untaggedNew := pushAt(20*day, "")
	clk.set(start.Add(21 * day))

	policyFile := filepath.Join(t.TempDir(), "policy.json")
	policy := `{
  "rules": [
    {"rulePriority": 1, "description": "Expire untagged images older than 14 days",
     "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
     "action": {"type": "expire"}},
    {"rulePriority": 2, "description": "Keep only the newest prod image",
     "selection": {"tagStatus": "tagged", "tagPatternList": ["prod-*"], "countType": "imageCountMoreThan", "countNumber": 1},
     "action": {"type": "expire"}}
  ]
}`
	if err := os.WriteFile(policyFile, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	out := c.cli(t, s, "put-lifecycle-policy", "--repository-name", "lc", "--lifecycle-policy-text", "file://"+policyFile)
	wantField(t, out, "lc", "repositoryName")
	wantField(t, out, registryID, "registryId")
	if text := path(t, out, "lifecyclePolicyText").(string); !strings.Contains(text, `"tagPatternList":["prod-*"]`) {
		t.Fatalf("policy echoed as %s", text)
	}
	out = c.cli(t, s, "get-lifecycle-policy", "--repository-name", "lc")
	wantField(t, out, "lc", "repositoryName")

	out = c.cli(t, s, "start-lifecycle-policy-preview", "--repository-name", "lc")
	wantField(t, out, "COMPLETE", "status")
	out = c.cli(t, s, "get-lifecycle-policy-preview", "--repository-name", "lc")
	wantField(t, out, "COMPLETE", "status")
	wantField(t, out, 3, "summary", "expiringImageTotalCount")
	got := map[string]float64{}
	for _, r := range path(t, out, "previewResults").([]any) {
		got[path(t, r, "imageDigest").(string)] = path(t, r, "appliedRulePriority").(float64)
		wantField(t, r, "EXPIRE", "action", "type")
	}
	want := map[string]float64{untaggedOld: 1, prod1: 2, prod2: 2}
	if len(got) != len(want) {
		t.Fatalf("preview %v, want %v", got, want)
	}
	for d, p := range want {
		if got[d] != p {
			t.Fatalf("preview %v, want %v", got, want)
		}
	}
	// The preview expired nothing; the run does.
	listed := func() []string {
		var ds []string
		for _, id := range path(t, c.cli(t, s, "list-images", "--repository-name", "lc"), "imageIds").([]any) {
			ds = append(ds, path(t, id, "imageDigest").(string))
		}
		slices.Sort(ds)
		return slices.Compact(ds)
	}
	if n := len(listed()); n != 5 {
		t.Fatalf("%d images after the preview, want 5", n)
	}
	if err := a.RunLifecycle(context.Background()); err != nil {
		t.Fatal(err)
	}
	left := []string{prod3, untaggedNew}
	slices.Sort(left)
	if got := listed(); !slices.Equal(got, left) {
		t.Fatalf("after the run: %v, want %v", got, left)
	}
	out = c.cli(t, s, "get-lifecycle-policy", "--repository-name", "lc")
	evaluated, err := time.Parse(time.RFC3339, path(t, out, "lastEvaluatedAt").(string))
	if err != nil || !evaluated.Equal(start.Add(21*day)) {
		t.Fatalf("lastEvaluatedAt %v (%v)", path(t, out, "lastEvaluatedAt"), err)
	}
	c.cli(t, s, "delete-lifecycle-policy", "--repository-name", "lc")
	if _, err := run(t, c.env, nil, c.aws, "--endpoint-url", s.URL, "ecr", "get-lifecycle-policy", "--repository-name", "lc"); err == nil ||
		!strings.Contains(err.Error(), "LifecyclePolicyNotFoundException") {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestLifecyclePolicyErrors(t *testing.T) {
	ctx := context.Background()
	s := startServer(t)
	c := s.admin()
	createRepo(t, c, "lc")
	valid := `{"rules":[{"rulePriority":1,"description":"keep ten","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}}]}`
	tests := []struct {
		name string
		call func() error
		code string
		msg  string
	}{
		{"any rule not last", func() error {
			_, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("lc"), LifecyclePolicyText: aws.String(
				`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},` +
					`{"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)})
			return err
		}, "InvalidParameterException", "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: "},
		{"missing countUnit", func() error {
			_, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("lc"), LifecyclePolicyText: aws.String(
				`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countNumber":14},"action":{"type":"expire"}}]}`)})
			return err
		}, "InvalidParameterException", "instance failed to match exactly one schema (matched 0 out of 2)"},
		{"too short for the model", func() error {
			_, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("lc"), LifecyclePolicyText: aws.String(`{"rules":[]}`)})
			return err
		}, "ValidationException", "lifecyclePolicyText"},
		{"no such repository", func() error {
			_, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("nope"), LifecyclePolicyText: aws.String(valid)})
			return err
		}, "RepositoryNotFoundException", "nope"},
		{"get without a policy", func() error {
			_, err := c.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String("lc")})
			return err
		}, "LifecyclePolicyNotFoundException", "lc"},
		{"delete without a policy", func() error {
			_, err := c.DeleteLifecyclePolicy(ctx, &ecr.DeleteLifecyclePolicyInput{RepositoryName: aws.String("lc")})
			return err
		}, "LifecyclePolicyNotFoundException", "lc"},
		{"preview without a policy", func() error {
			_, err := c.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: aws.String("lc")})
			return err
		}, "LifecyclePolicyNotFoundException", "lc"},
		{"results without a preview", func() error {
			_, err := c.GetLifecyclePolicyPreview(ctx, &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: aws.String("lc")})
			return err
		}, "LifecyclePolicyPreviewNotFoundException", "lc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if msg := wantAPIError(t, tc.call(), tc.code); !strings.Contains(msg, tc.msg) {
				t.Fatalf("message %q, want it to contain %q", msg, tc.msg)
			}
		})
	}
	// A valid policy round-trips through the SDK, and a preview of it pages.
	if _, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("lc"), LifecyclePolicyText: aws.String(valid)}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String("lc")})
	if err != nil || aws.ToString(got.LifecyclePolicyText) != valid || got.LastEvaluatedAt == nil || got.LastEvaluatedAt.Unix() != 0 {
		t.Fatalf("get: %+v %v", got, err)
	}
	for i := range 3 {
		pushImage(t, c, "lc", "", 100+i)
	}
	text := strings.Replace(valid, `"countNumber":10`, `"countNumber":0`, 1)
	if _, err := c.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: aws.String("lc"), LifecyclePolicyText: aws.String(text)}); err == nil {
		t.Fatal("a preview of an invalid policy started")
	}
	text = strings.Replace(valid, `"countNumber":10`, `"countNumber":1`, 1)
	if _, err := c.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: aws.String("lc"), LifecyclePolicyText: aws.String(text)}); err != nil {
		t.Fatal(err)
	}
	var digests []string
	p := ecr.NewGetLifecyclePolicyPreviewPaginator(c, &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: aws.String("lc"), MaxResults: aws.Int32(1)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt32(page.Summary.ExpiringImageTotalCount) != 2 || len(page.PreviewResults) > 1 {
			t.Fatalf("page %+v", page)
		}
		for _, r := range page.PreviewResults {
			digests = append(digests, aws.ToString(r.ImageDigest))
		}
	}
	if len(digests) != 2 || digests[0] == digests[1] {
		t.Fatalf("paged %v", digests)
	}
}
