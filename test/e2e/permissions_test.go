package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-registry/lading/internal/testserver"
)

const permRegistryID = "123456789012"

// identity is an access key as the clients use it.
type identity struct {
	name, id, secret string
}

// permServer is a server with an audit log, the clients, and keys made with `lading admin`
// against its data directory while it runs.
type permServer struct {
	t        *testing.T
	srv      *testserver.Server
	auditLog string
	crane    string
	skopeo   string
	oras     string
	aws      string
	home     string
	clients  map[string]*ecr.Client
}

// with is ps for a subtest: failures go to t.
func (ps *permServer) with(t *testing.T) *permServer {
	c := *ps
	c.t = t
	return &c
}

func startPermServer(t *testing.T, extra ...string) *permServer {
	t.Helper()
	ps := &permServer{t: t, clients: map[string]*ecr.Client{}, auditLog: filepath.Join(t.TempDir(), "audit.jsonl"), home: t.TempDir(),
		crane: testserver.Tool(t, "crane"), skopeo: testserver.Tool(t, "skopeo"), oras: testserver.Tool(t, "oras")}
	ps.aws = "/usr/bin/aws" // Debian's AWS CLI v2; an older v1 may come first on PATH
	if _, err := os.Stat(ps.aws); err != nil {
		ps.aws = testserver.Tool(t, "aws")
	}
	ps.srv = testserver.Start(t, ladingBin, append([]string{"--registry-id", permRegistryID, "--audit-log", ps.auditLog}, extra...)...)
	return ps
}

func (ps *permServer) admin() identity {
	return identity{name: "admin", id: testserver.AccessKeyID, secret: testserver.SecretAccessKey}
}

// createKey runs `lading admin access-key create --json` beside the running server.
func (ps *permServer) createKey(name string, args ...string) identity {
	ps.t.Helper()
	out := testserver.Run(ps.t, ladingBin, append([]string{"admin", "access-key", "create", "--data-dir", ps.srv.DataDir, "--name", name, "--json"}, args...)...)
	var k struct{ AccessKeyID, SecretAccessKey string }
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.AccessKeyID == "" || k.SecretAccessKey == "" {
		ps.t.Fatalf("access-key create --json printed %q (%v)", out, err)
	}
	return identity{name: name, id: k.AccessKeyID, secret: k.SecretAccessKey}
}

func (ps *permServer) policyFile(doc string) string {
	ps.t.Helper()
	p := filepath.Join(ps.t.TempDir(), "policy.json")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		ps.t.Fatal(err)
	}
	return p
}

// dockerConfig writes a docker config.json with user:password for the server (none when user is
// empty), for crane (DOCKER_CONFIG) and skopeo and oras (the file).
func (ps *permServer) dockerConfig(user, password string) string {
	ps.t.Helper()
	dir := ps.t.TempDir()
	body := `{"auths":{}}`
	if user != "" {
		body = fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, ps.srv.Addr, base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(body), 0o600); err != nil {
		ps.t.Fatal(err)
	}
	return dir
}

// try runs a client, returning its output and error (with stderr) without failing.
func (ps *permServer) try(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + ps.home, "XDG_RUNTIME_DIR=" + ps.home, "TMPDIR=" + os.TempDir()}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

func (ps *permServer) awsEnv(k identity) []string {
	return []string{"AWS_ACCESS_KEY_ID=" + k.id, "AWS_SECRET_ACCESS_KEY=" + k.secret, "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true"}
}

func (ps *permServer) awsCLI(k identity, args ...string) (string, error) {
	return ps.try(ps.awsEnv(k), ps.aws, append([]string{"--endpoint-url", ps.srv.URL(), "--output", "json", "ecr"}, args...)...)
}

func (ps *permServer) sdk(k identity) *ecr.Client {
	if c, ok := ps.clients[k.id]; ok {
		return c
	}
	c := ecr.New(ecr.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(ps.srv.URL()), Retryer: testserver.SDKRetryer(),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: k.id, SecretAccessKey: k.secret, Source: "test"}, nil
		}),
	})
	ps.clients[k.id] = c
	return c
}

func repoARN(name string) string {
	return "arn:aws:ecr:us-east-1:" + permRegistryID + ":repository/" + name
}

func userARN(name string) string { return "arn:aws:iam::" + permRegistryID + ":user/" + name }

// image returns a small random image and an OCI layout holding it.
func (ps *permServer) image() (v1.Image, string) {
	ps.t.Helper()
	img, err := random.Image(1024, 1)
	if err != nil {
		ps.t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return img, singleLayout(ps.t, img, nil)
}

// digest is what a tag names now, read as the admin.
func (ps *permServer) digest(ref string) string {
	ps.t.Helper()
	out, err := ps.try([]string{"DOCKER_CONFIG=" + ps.dockerConfig(testserver.AccessKeyID, testserver.SecretAccessKey)}, ps.crane, "digest", "--insecure", ps.srv.Addr+"/"+ref)
	if err != nil {
		return ""
	}
	return out
}

// repositories lists every repository, as the admin sees them. Pages stay small: the SDK's
// transport can close its connection while the body is read when the server answers before the
// client's write loop sees its request body end (aws-sdk-go-v2 issue #2737: the default retryer
// retries net.ErrClosed; these clients retry only that, testserver.SDKRetryer). Reproduced against the old code too; a
// plain client reading the same answers 300 times never failed.
func (ps *permServer) repositories() []string {
	ps.t.Helper()
	var names []string
	pages := ecr.NewDescribeRepositoriesPaginator(ps.sdk(ps.admin()), &ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(8)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(context.Background())
		if err != nil {
			ps.t.Fatal(err)
		}
		for _, r := range out.Repositories {
			names = append(names, aws.ToString(r.RepositoryName))
		}
	}
	return names
}

// uploadsInProgress reads the open upload sessions from /metrics.
func (ps *permServer) uploadsInProgress() int {
	ps.t.Helper()
	resp, err := http.Get(ps.srv.URL() + "/metrics")
	if err != nil {
		ps.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "lading_uploads_in_progress "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	ps.t.Fatal("no lading_uploads_in_progress in /metrics")
	return 0
}

// auditLines returns the audit log's lines.
func (ps *permServer) auditLines() []map[string]any {
	ps.t.Helper()
	b, err := os.ReadFile(ps.auditLog)
	if err != nil {
		ps.t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			ps.t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// operation is one thing a client does on a repository; it returns the client's error.
type operation struct {
	name   string
	write  bool   // changes the repository
	action string // what a refusal names
	do     func(ps *permServer, k identity, cfg, repo string) error
}

func permissionOperations() []operation {
	cranePull := func(ps *permServer, _ identity, cfg, repo string) error {
		_, err := ps.try([]string{"DOCKER_CONFIG=" + cfg}, ps.crane, "pull", "--insecure", "--format=oci", ps.srv.Addr+"/"+repo+":v1", filepath.Join(ps.t.TempDir(), "out"))
		return err
	}
	return []operation{
		{"crane pull", false, "ecr:BatchGetImage", cranePull},
		{"crane ls", false, "ecr:ListImages", func(ps *permServer, _ identity, cfg, repo string) error {
			_, err := ps.try([]string{"DOCKER_CONFIG=" + cfg}, ps.crane, "ls", "--insecure", ps.srv.Addr+"/"+repo)
			return err
		}},
		{"skopeo inspect", false, "ecr:BatchGetImage", func(ps *permServer, _ identity, cfg, repo string) error {
			_, err := ps.try(nil, ps.skopeo, "inspect", "--raw", "--tls-verify=false", "--authfile", filepath.Join(cfg, "config.json"), "docker://"+ps.srv.Addr+"/"+repo+":v1")
			return err
		}},
		{"oras pull", false, "ecr:BatchGetImage", func(ps *permServer, _ identity, cfg, repo string) error {
			_, err := ps.try(nil, ps.oras, "manifest", "fetch", "--registry-config", filepath.Join(cfg, "config.json"), "--plain-http", ps.srv.Addr+"/"+repo+":v1")
			return err
		}},
		{"aws ecr list-images", false, "ecr:ListImages", func(ps *permServer, k identity, _, repo string) error {
			_, err := ps.awsCLI(k, "list-images", "--repository-name", repo)
			return err
		}},
		{"sdk BatchGetImage", false, "ecr:BatchGetImage", func(ps *permServer, k identity, _, repo string) error {
			_, err := ps.sdk(k).BatchGetImage(context.Background(), &ecr.BatchGetImageInput{RepositoryName: aws.String(repo),
				ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("v1")}}})
			return err
		}},
		{"crane push (moves v1)", true, "ecr:InitiateLayerUpload", func(ps *permServer, _ identity, cfg, repo string) error {
			_, layout := ps.image()
			_, err := ps.try([]string{"DOCKER_CONFIG=" + cfg}, ps.crane, "push", "--insecure", layout, ps.srv.Addr+"/"+repo+":v1")
			return err
		}},
		{"skopeo copy (moves v1)", true, "ecr:InitiateLayerUpload", func(ps *permServer, _ identity, cfg, repo string) error {
			_, layout := ps.image()
			_, err := ps.try(nil, ps.skopeo, "copy", "--dest-tls-verify=false", "--dest-authfile", filepath.Join(cfg, "config.json"),
				"oci:"+layout, "docker://"+ps.srv.Addr+"/"+repo+":v1")
			return err
		}},
		{"oras push (new repository)", true, "ecr:InitiateLayerUpload", func(ps *permServer, _ identity, cfg, repo string) error {
			work := ps.t.TempDir()
			if err := os.WriteFile(filepath.Join(work, "a.txt"), []byte("artifact"), 0o600); err != nil {
				return err
			}
			cmd := exec.Command(ps.oras, "push", "--registry-config", filepath.Join(cfg, "config.json"), "--plain-http",
				ps.srv.Addr+"/"+repo+"-new:v1", "a.txt:text/plain")
			cmd.Dir = work
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%w: %s", err, out)
			}
			return nil
		}},
		{"sdk PutImage (moves v1)", true, "ecr:PutImage", func(ps *permServer, k identity, _, repo string) error {
			// The manifest of the other tag, put under v1.
			got, err := ps.sdk(ps.admin()).BatchGetImage(context.Background(), &ecr.BatchGetImageInput{RepositoryName: aws.String(repo),
				ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("v0")}}})
			if err != nil || len(got.Images) != 1 {
				return fmt.Errorf("setup: %v", err)
			}
			_, err = ps.sdk(k).PutImage(context.Background(), &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageTag: aws.String("v1"),
				ImageManifest: got.Images[0].ImageManifest, ImageManifestMediaType: got.Images[0].ImageManifestMediaType})
			return err
		}},
		{"aws ecr batch-delete-image", true, "ecr:BatchDeleteImage", func(ps *permServer, k identity, _, repo string) error {
			_, err := ps.awsCLI(k, "batch-delete-image", "--repository-name", repo, "--image-ids", "imageTag=v1")
			return err
		}},
		{"crane delete", true, "ecr:BatchDeleteImage", func(ps *permServer, _ identity, cfg, repo string) error {
			d := ps.digest(repo + ":v0")
			_, err := ps.try([]string{"DOCKER_CONFIG=" + cfg}, ps.crane, "delete", "--insecure", ps.srv.Addr+"/"+repo+"@"+d)
			return err
		}},
		{"sdk CreateRepository", true, "ecr:CreateRepository", func(ps *permServer, k identity, _, repo string) error {
			_, err := ps.sdk(k).CreateRepository(context.Background(), &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo + "-created")})
			return err
		}},
	}
}

// refusal checks that err is the refusal of action on repo for k, as its client reports it.
func refusal(t *testing.T, op operation, k identity, repo string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s by %s on %s was allowed", op.name, k.name, repo)
	}
	msg := err.Error()
	var ae smithy.APIError
	switch {
	case errors.As(err, &ae):
		if ae.ErrorCode() != "AccessDeniedException" || !strings.Contains(ae.ErrorMessage(), "User: "+userARN(k.name)+" is not authorized to perform: ") {
			t.Fatalf("%s by %s on %s: %v", op.name, k.name, repo, err)
		}
		return
	case strings.Contains(msg, "aws --endpoint-url"):
		if !strings.Contains(msg, "AccessDeniedException") {
			t.Fatalf("%s by %s on %s: %v", op.name, k.name, repo, err)
		}
	case !strings.Contains(msg, "DENIED") && !strings.Contains(msg, "403") && !strings.Contains(strings.ToLower(msg), "denied"):
		t.Fatalf("%s by %s on %s: not refused as denied: %v", op.name, k.name, repo, err)
	}
	if !strings.Contains(msg, "not authorized to perform: ecr:") && !strings.Contains(msg, "403") {
		t.Fatalf("%s by %s on %s: the refusal names no action: %v", op.name, k.name, repo, err)
	}
}

// TestPermissionMatrix runs every face's operations with keys of each kind, through real
// clients, on a repository the key may use and one it may not: what is allowed works, what is
// not is refused with the action and resource named and leaves no trace (no upload session,
// no repository created, no tag moved).
func TestPermissionMatrix(t *testing.T) {
	// The unknown key fails to authenticate often: the login throttle must not slow down the
	// other keys, which come from the same address.
	ps := startPermServer(t, "--auth-free-failures", "100000")
	pushTeamA := ps.policyFile(`{"Version":"2012-10-17","Statement":[
		{"Sid":"Push","Effect":"Allow","Action":["ecr:InitiateLayerUpload","ecr:UploadLayerPart","ecr:CompleteLayerUpload","ecr:PutImage",
			"ecr:BatchCheckLayerAvailability","ecr:CreateRepository"],"Resource":"arn:aws:ecr:*:123456789012:repository/team-a/*"},
		{"Sid":"Login","Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"}]}`)
	keys := map[string]identity{
		"admin":     ps.admin(),
		"read-only": ps.createKey("read-only", "--preset", "AmazonEC2ContainerRegistryReadOnly"),
		"push-a":    ps.createKey("push-a", "--policy", pushTeamA),
		"inspector": ps.createKey("inspector", "--preset", "AmazonInspector2ReadOnlyAccess"),
		"unknown":   {name: "unknown", id: "LAKUNKNOWN0000000000", secret: "not-a-secret-0000000000000000000000000000"},
	}
	// allowed says what each key may do on a repository.
	allowed := map[string]func(op operation, repo string) bool{
		"admin":     func(operation, string) bool { return true },
		"read-only": func(op operation, _ string) bool { return !op.write },
		"push-a": func(op operation, repo string) bool {
			return op.write && strings.HasPrefix(repo, "team-a/") && !strings.Contains(op.name, "delete")
		},
		"inspector": func(operation, string) bool { return false },
		"unknown":   func(operation, string) bool { return false },
	}
	adminCfg := ps.dockerConfig(testserver.AccessKeyID, testserver.SecretAccessKey)
	for _, name := range []string{"admin", "read-only", "push-a", "inspector", "unknown"} {
		k := keys[name]
		cfg := ps.dockerConfig(k.id, k.secret)
		for _, repo := range []string{"team-a/" + name, "team-b/" + name} {
			// Each key works on repositories of its own, holding v0 and v1.
			for _, tag := range []string{"v0", "v1"} {
				_, layout := ps.image()
				run(t, []string{"DOCKER_CONFIG=" + adminCfg}, ps.crane, "push", "--insecure", layout, ps.srv.Addr+"/"+repo+":"+tag)
			}
			for _, op := range permissionOperations() {
				t.Run(name+"/"+op.name+"/"+repo, func(t *testing.T) {
					ps := ps.with(t)
					before, repos := ps.digest(repo+":v1"), ps.repositories()
					err := op.do(ps, k, cfg, repo)
					if allowed[name](op, repo) {
						if err != nil {
							t.Fatalf("%s by %s on %s: %v", op.name, name, repo, err)
						}
						return
					}
					if name == "unknown" {
						if err == nil || !(strings.Contains(err.Error(), "UNAUTHORIZED") || strings.Contains(err.Error(), "401") ||
							strings.Contains(err.Error(), "UnrecognizedClient") || strings.Contains(err.Error(), "nauthorized")) {
							t.Fatalf("%s by an unknown key: %v", op.name, err)
						}
					} else {
						refusal(t, op, k, repo, err)
					}
					if after := ps.digest(repo + ":v1"); after != before {
						t.Errorf("a refused %s moved %s:v1 from %s to %s", op.name, repo, before, after)
					}
					if got := ps.repositories(); strings.Join(got, ",") != strings.Join(repos, ",") {
						t.Errorf("a refused %s changed the repositories: %v -> %v", op.name, repos, got)
					}
					if n := ps.uploadsInProgress(); n != 0 {
						t.Errorf("a refused %s left %d upload sessions", op.name, n)
					}
				})
			}
		}
	}

	// The catalog shows each key what it may list: all to the read-only key, nothing to the
	// keys that may not list.
	for _, tc := range []struct {
		key  string
		want string // a repository the catalog must show, "" for a refusal
	}{{"admin", "team-b/admin"}, {"read-only", "team-b/admin"}, {"push-a", ""}, {"inspector", ""}} {
		k := keys[tc.key]
		out, err := ps.try([]string{"DOCKER_CONFIG=" + ps.dockerConfig(k.id, k.secret)}, ps.crane, "catalog", "--insecure", ps.srv.Addr)
		switch {
		case tc.want == "" && (err == nil || !strings.Contains(err.Error(), "ecr:DescribeRepositories")):
			t.Errorf("catalog for %s: %q, %v; want a refusal naming ecr:DescribeRepositories", tc.key, out, err)
		case tc.want != "" && (err != nil || !strings.Contains(out, tc.want)):
			t.Errorf("catalog for %s: %q, %v", tc.key, out, err)
		}
	}
	// GetAuthorizationToken: the Inspector key may not log in to the registry.
	if _, err := ps.awsCLI(keys["inspector"], "get-login-password"); err == nil || !strings.Contains(err.Error(), "ecr:GetAuthorizationToken") {
		t.Errorf("get-login-password for the Inspector key: %v", err)
	}
	if _, err := ps.awsCLI(keys["push-a"], "get-login-password"); err != nil {
		t.Errorf("get-login-password for the push key: %v", err)
	}
}

// TestRepositoryPolicyAnonymousPull grants anonymous pulls of one repository with a repository
// policy: crane pulls it without credentials, and nothing else.
func TestRepositoryPolicyAnonymousPull(t *testing.T) {
	ps := startPermServer(t)
	adminCfg := ps.dockerConfig(testserver.AccessKeyID, testserver.SecretAccessKey)
	for _, repo := range []string{"public/app", "private/app"} {
		_, layout := ps.image()
		run(t, []string{"DOCKER_CONFIG=" + adminCfg}, ps.crane, "push", "--insecure", layout, ps.srv.Addr+"/"+repo+":v1")
	}
	policy := `{"Version":"2012-10-17","Statement":[{"Sid":"AnonymousPull","Effect":"Allow","Principal":"*",
		"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}`
	if _, err := ps.awsCLI(ps.admin(), "set-repository-policy", "--repository-name", "public/app", "--policy-text", policy); err != nil {
		t.Fatal(err)
	}
	got, err := ps.awsCLI(ps.admin(), "get-repository-policy", "--repository-name", "public/app")
	if err != nil || !strings.Contains(got, "AnonymousPull") {
		t.Fatalf("get-repository-policy: %s %v", got, err)
	}
	anon := []string{"DOCKER_CONFIG=" + ps.dockerConfig("", "")}
	if _, err := ps.try(anon, ps.crane, "pull", "--insecure", ps.srv.Addr+"/public/app:v1", filepath.Join(t.TempDir(), "img.tar")); err != nil {
		t.Fatalf("anonymous pull of the public repository: %v", err)
	}
	for _, args := range [][]string{
		{"pull", "--insecure", ps.srv.Addr + "/private/app:v1", filepath.Join(t.TempDir(), "img.tar")},
		{"ls", "--insecure", ps.srv.Addr + "/public/app"},
		{"catalog", "--insecure", ps.srv.Addr},
	} {
		if out, err := ps.try(anon, ps.crane, args...); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
			t.Errorf("anonymous crane %s: %q, %v; want UNAUTHORIZED", args[0], out, err)
		}
	}
	_, layout := ps.image()
	if _, err := ps.try(anon, ps.crane, "push", "--insecure", layout, ps.srv.Addr+"/public/app:v2"); err == nil {
		t.Error("an anonymous push to the public repository worked")
	}
	if n := ps.uploadsInProgress(); n != 0 {
		t.Errorf("the refused anonymous push left %d upload sessions", n)
	}
	// Without the policy, the repository is private again.
	if _, err := ps.awsCLI(ps.admin(), "delete-repository-policy", "--repository-name", "public/app"); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.try(anon, ps.crane, "pull", "--insecure", ps.srv.Addr+"/public/app:v1", filepath.Join(t.TempDir(), "img.tar")); err == nil {
		t.Fatal("anonymous pull after the policy was deleted")
	}
	if _, err := ps.awsCLI(ps.admin(), "get-repository-policy", "--repository-name", "public/app"); err == nil ||
		!strings.Contains(err.Error(), "RepositoryPolicyNotFoundException") {
		t.Fatalf("get-repository-policy after delete: %v", err)
	}
}

// TestExplicitDenyOverridesAllow checks that a Deny wins over an Allow, in the key's own policy
// and in a repository policy naming the key.
func TestExplicitDenyOverridesAllow(t *testing.T) {
	ps := startPermServer(t)
	adminCfg := ps.dockerConfig(testserver.AccessKeyID, testserver.SecretAccessKey)
	for _, repo := range []string{"open/app", "secret/app"} {
		_, layout := ps.image()
		run(t, []string{"DOCKER_CONFIG=" + adminCfg}, ps.crane, "push", "--insecure", layout, ps.srv.Addr+"/"+repo+":v1")
	}
	k := ps.createKey("dev", "--policy", ps.policyFile(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"ecr:*","Resource":"*"},
		{"Effect":"Deny","Action":"ecr:BatchGetImage","Resource":"arn:aws:ecr:us-east-1:123456789012:repository/secret/*"}]}`))
	cfg := []string{"DOCKER_CONFIG=" + ps.dockerConfig(k.id, k.secret)}
	if _, err := ps.try(cfg, ps.crane, "manifest", "--insecure", ps.srv.Addr+"/open/app:v1"); err != nil {
		t.Fatalf("allowed pull: %v", err)
	}
	_, err := ps.try(cfg, ps.crane, "manifest", "--insecure", ps.srv.Addr+"/secret/app:v1")
	if err == nil || !strings.Contains(err.Error(), "ecr:BatchGetImage on resource: "+repoARN("secret/app")+" with an explicit deny in an identity-based policy") {
		t.Fatalf("denied pull: %v", err)
	}
	// A repository policy denying the key wins over its own Allow.
	if _, err := ps.sdk(ps.admin()).SetRepositoryPolicy(context.Background(), &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("open/app"),
		PolicyText: aws.String(`{"Statement":[{"Effect":"Deny","Principal":{"AWS":"` + userARN("dev") + `"},"Action":"ecr:ListImages"}]}`)}); err != nil {
		t.Fatal(err)
	}
	_, err = ps.sdk(k).ListImages(context.Background(), &ecr.ListImagesInput{RepositoryName: aws.String("open/app")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" ||
		ae.ErrorMessage() != "User: "+userARN("dev")+" is not authorized to perform: ecr:ListImages on resource: "+repoARN("open/app")+" with an explicit deny in a resource-based policy" {
		t.Fatalf("ListImages under a denying repository policy: %v", err)
	}
	// A policy Lading cannot enforce as written is refused when it is set.
	_, err = ps.sdk(ps.admin()).SetRepositoryPolicy(context.Background(), &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("open/app"),
		PolicyText: aws.String(`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`)})
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterException" || !strings.Contains(ae.ErrorMessage(), "Condition is not supported") {
		t.Fatalf("a policy with a Condition: %v", err)
	}
	// A registry policy denying the key everything refuses it on every repository, admin's
	// grant notwithstanding; deleted, the key's own policy applies again.
	admin := ps.sdk(ps.admin())
	regPolicy := `{"Version":"2012-10-17","Statement":[{"Sid":"NoDev","Effect":"Deny","Principal":{"AWS":["` + userARN("dev") + `"]},"Action":"ecr:*","Resource":"*"}]}`
	if _, err := admin.PutRegistryPolicy(context.Background(), &ecr.PutRegistryPolicyInput{PolicyText: aws.String(regPolicy)}); err != nil {
		t.Fatal(err)
	}
	if got, err := admin.GetRegistryPolicy(context.Background(), &ecr.GetRegistryPolicyInput{}); err != nil ||
		aws.ToString(got.PolicyText) != regPolicy || aws.ToString(got.RegistryId) != permRegistryID {
		t.Fatalf("GetRegistryPolicy: %+v %v", got, err)
	}
	if _, err := ps.try(cfg, ps.crane, "manifest", "--insecure", ps.srv.Addr+"/open/app:v1"); err == nil ||
		!strings.Contains(err.Error(), "with an explicit deny in a resource-based policy") {
		t.Fatalf("pull under a denying registry policy: %v", err)
	}
	if _, err := admin.DeleteRegistryPolicy(context.Background(), &ecr.DeleteRegistryPolicyInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.GetRegistryPolicy(context.Background(), &ecr.GetRegistryPolicyInput{}); !errors.As(err, &ae) || ae.ErrorCode() != "RegistryPolicyNotFoundException" {
		t.Fatalf("GetRegistryPolicy after delete: %v", err)
	}
	if _, err := ps.try(cfg, ps.crane, "manifest", "--insecure", ps.srv.Addr+"/open/app:v1"); err != nil {
		t.Fatalf("pull after the registry policy was deleted: %v", err)
	}
	// A repository policy that would lock its author out needs force, as on ECR.
	lockout := aws.String(`{"Statement":[{"Effect":"Deny","Principal":{"AWS":"` + userARN("admin") + `"},"Action":"ecr:SetRepositoryPolicy"}]}`)
	_, err = admin.SetRepositoryPolicy(context.Background(), &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("secret/app"), PolicyText: lockout})
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterException" || !strings.Contains(ae.ErrorMessage(), "force") {
		t.Fatalf("a lock-out policy without force: %v", err)
	}
	if _, err := admin.SetRepositoryPolicy(context.Background(), &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("secret/app"), PolicyText: lockout, Force: true}); err != nil {
		t.Fatalf("with force: %v", err)
	}
	if _, err := testserver.RunErr(ladingBin, "admin", "access-key", "create", "--data-dir", ps.srv.DataDir, "--name", "c",
		"--policy", ps.policyFile(`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}]}`)); err == nil ||
		!strings.Contains(err.Error(), "Condition is not supported") {
		t.Fatalf("access-key create with a Condition: %v", err)
	}
}

// TestNarrowedKeyIsRefusedAtOnce narrows a key while its registry token is outstanding: the
// token's next request is decided under the new policy.
func TestNarrowedKeyIsRefusedAtOnce(t *testing.T) {
	ps := startPermServer(t)
	adminCfg := ps.dockerConfig(testserver.AccessKeyID, testserver.SecretAccessKey)
	_, layout := ps.image()
	run(t, []string{"DOCKER_CONFIG=" + adminCfg}, ps.crane, "push", "--insecure", layout, ps.srv.Addr+"/app:v1")
	k := ps.createKey("ci", "--preset", "AmazonEC2ContainerRegistryPowerUser")
	token, err := ps.awsCLI(k, "get-login-password")
	if err != nil {
		t.Fatal(err)
	}
	cfg := []string{"DOCKER_CONFIG=" + ps.dockerConfig("AWS", strings.TrimSpace(token))}
	pull := func() error {
		_, err := ps.try(cfg, ps.crane, "pull", "--insecure", ps.srv.Addr+"/app:v1", filepath.Join(t.TempDir(), "img.tar"))
		return err
	}
	if err := pull(); err != nil {
		t.Fatalf("pull with the token: %v", err)
	}
	testserver.Run(t, ladingBin, "admin", "access-key", "set-policy", "--data-dir", ps.srv.DataDir, "ci", "--preset", "AmazonInspector2ReadOnlyAccess")
	if err := pull(); err == nil || !strings.Contains(err.Error(), "User: "+userARN("ci")+" is not authorized to perform: ecr:BatchGetImage") {
		t.Fatalf("pull with the token of a narrowed key: %v", err)
	}
	list := testserver.Run(t, ladingBin, "admin", "access-key", "list", "--data-dir", ps.srv.DataDir)
	if !regexp.MustCompile(`(?m)^`+k.id+`\s+ci\s+AmazonInspector2ReadOnlyAccess\s`).MatchString(list) ||
		!regexp.MustCompile(`(?m)^`+testserver.AccessKeyID+`\s+admin\s+AdministratorAccess\s`).MatchString(list) {
		t.Fatalf("access-key list:\n%s", list)
	}
	testserver.Run(t, ladingBin, "admin", "access-key", "delete", "--data-dir", ps.srv.DataDir, "ci")
	if err := pull(); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Fatalf("pull with the token of a deleted key: %v", err)
	}
}

// hook is a webhook receiver that keeps the events it is sent.
type hook struct {
	mu     sync.Mutex
	events []map[string]any
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev map[string]any
	if err := json.NewDecoder(r.Body).Decode(&ev); err == nil {
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *hook) received() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events)
}

// field reads a dotted path from decoded JSON.
func field(m map[string]any, path string) any {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// TestAuditLog makes mutating calls and refused ones on both faces: the audit log holds one
// line for each, with who, from where, on which face, what, on what and how it ended, and
// nothing for reads; a webhook that asks for "AWS API Call via CloudTrail" receives them in
// CloudTrail's shape, a webhook that does not ask receives none.
func TestAuditLog(t *testing.T) {
	trail, plain := &hook{}, &hook{}
	trailSrv, plainSrv := httptest.NewServer(trail), httptest.NewServer(plain)
	defer trailSrv.Close()
	defer plainSrv.Close()
	cfgFile := filepath.Join(t.TempDir(), "events.yaml")
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf("webhooks:\n  - url: %s\n    name: trail\n    detail_types: [\"AWS API Call via CloudTrail\"]\n  - url: %s\n    name: plain\n",
		trailSrv.URL, plainSrv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	ps := startPermServer(t, "--events-config", cfgFile)
	ctx := context.Background()
	admin := ps.sdk(ps.admin())
	ci := ps.createKey("ci", "--preset", "AmazonEC2ContainerRegistryPowerUser")

	if _, err := admin.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("audited")}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{}); err != nil { // a read: not audited
		t.Fatal(err)
	}
	if _, err := ps.sdk(ci).CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("nope")}); err == nil {
		t.Fatal("the power user created a repository")
	}
	if _, err := ps.sdk(ci).PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("audited"), ImageManifest: aws.String("{not json")}); err == nil {
		t.Fatal("an invalid manifest was put")
	}
	reg := &client{t: t, base: ps.srv.URL(), user: ci.id, pass: ci.secret}
	reg.expect(reg.do("GET", "/v2/audited/tags/list", nil, nil), http.StatusOK) // a read: not audited
	reg.expect(reg.do("DELETE", "/v2/audited/manifests/sha256:"+strings.Repeat("0", 64), nil, nil), http.StatusForbidden)
	wrong := &client{t: t, base: ps.srv.URL(), user: ci.id, pass: "wrong-secret-000000000000000000000000000"}
	wrong.expect(wrong.do("GET", "/v2/", nil, nil), http.StatusUnauthorized)

	type want struct {
		keyID, name, face, action, resource, outcome, errorCode string
		status                                                  int
	}
	wants := []want{
		{testserver.AccessKeyID, "admin", "ecr", "ecr:CreateRepository", repoARN("audited"), "allowed", "", 200},
		{ci.id, "ci", "ecr", "ecr:CreateRepository", repoARN("nope"), "denied", "AccessDeniedException", 400},
		{ci.id, "ci", "ecr", "ecr:PutImage", repoARN("audited"), "error", "InvalidParameterException", 400},
		{ci.id, "ci", "registry", "ecr:BatchDeleteImage", repoARN("audited"), "denied", "DENIED", 403},
		{ci.id, "", "registry", "", "", "denied", "", 401},
	}
	lines := ps.auditLines()
	if len(lines) != len(wants) {
		t.Fatalf("%d audit lines, want %d: %v", len(lines), len(wants), lines)
	}
	for i, w := range wants {
		l := lines[i]
		got := want{str(field(l, "identity.accessKeyId")), str(field(l, "identity.name")), str(l["face"]), str(l["action"]), str(l["resource"]),
			str(l["outcome"]), str(l["errorCode"]), int(num(l["httpStatus"]))}
		if got != w || l["sourceIPAddress"] != "127.0.0.1" || str(l["time"]) == "" {
			t.Errorf("audit line %d: %v\nwant %+v", i, l, w)
		}
	}
	if msg := str(lines[1]["errorMessage"]); !strings.Contains(msg, "User: "+userARN("ci")+" is not authorized to perform: ecr:CreateRepository on resource: "+repoARN("nope")) {
		t.Errorf("the refusal's message: %q", msg)
	}

	// The CloudTrail-shaped events: every audited call that was authorized or refused (the failed
	// login named no action).
	var got []map[string]any
	for range 100 {
		if got = trail.received(); len(got) >= 4 {
			break
		}
		time.Sleep(100 * time.Millisecond) // delivery is asynchronous; polled, bounded
	}
	if len(got) != 4 {
		t.Fatalf("the trail webhook received %d events, want 4: %v", len(got), got)
	}
	for i, w := range wants[:4] {
		ev := got[i]
		_, name, _ := strings.Cut(w.action, ":")
		errorCode := map[string]string{"allowed": "", "denied": "AccessDenied", "error": w.errorCode}[w.outcome]
		for path, v := range map[string]any{
			"detail-type": "AWS API Call via CloudTrail", "source": "aws.ecr", "account": permRegistryID,
			"detail.eventSource": "ecr.amazonaws.com", "detail.eventName": name, "detail.sourceIPAddress": "127.0.0.1",
			"detail.userIdentity.type": "IAMUser", "detail.userIdentity.accessKeyId": w.keyID, "detail.userIdentity.userName": w.name,
			"detail.userIdentity.arn": userARN(w.name), "detail.requestParameters.repositoryName": strings.TrimPrefix(w.resource, repoARN("")),
			"detail.errorCode": orNil(errorCode), "detail.readOnly": false,
		} {
			if fv := field(ev, path); fv != v {
				t.Errorf("event %d: %s = %v, want %v", i, path, fv, v)
			}
		}
	}
	if n := len(plain.received()); n != 0 {
		t.Errorf("a webhook that did not ask for CloudTrail events received %d", n)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

// orNil is nil for "", as a member left out of JSON reads.
func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}
