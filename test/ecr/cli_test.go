package ecr_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/opencontainers/go-digest"
)

// clients holds the external programs and an isolated environment for them: a temporary HOME
// and auth files, so nothing touches the user's configuration.
type clients struct {
	aws, skopeo, crane string
	env                []string
	authFile           string
}

func newClients(t *testing.T, s *server) *clients {
	t.Helper()
	home := t.TempDir()
	dockerConfig := filepath.Join(home, "docker")
	if err := os.MkdirAll(dockerConfig, 0o700); err != nil {
		t.Fatal(err)
	}
	c := &clients{
		aws:      tool(t, "aws", "/usr/bin/aws"), // Debian's AWS CLI v2; an older v1 may come first on PATH
		skopeo:   tool(t, "skopeo"),
		crane:    tool(t, "crane"),
		authFile: filepath.Join(home, "auth.json"),
	}
	c.env = []string{
		"HOME=" + home, "AWS_ACCESS_KEY_ID=" + adminKey, "AWS_SECRET_ACCESS_KEY=" + adminSecret,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true",
		// skopeo logs in to REGISTRY_AUTH_FILE; crane reads it when DOCKER_CONFIG holds no config.json.
		"REGISTRY_AUTH_FILE=" + c.authFile, "DOCKER_CONFIG=" + dockerConfig,
		"XDG_RUNTIME_DIR=" + home, "TMPDIR=" + os.TempDir(),
	}
	return c
}

// cli runs `aws ecr ...` against the server and decodes its JSON output.
func (c *clients) cli(t *testing.T, s *server, args ...string) map[string]any {
	t.Helper()
	out, err := run(t, c.env, nil, c.aws, append([]string{"--endpoint-url", s.URL, "--output", "json", "ecr"}, args...)...)
	if err != nil {
		t.Fatalf("aws ecr %s: %v", strings.Join(args, " "), err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("aws ecr %s: output %q: %v", strings.Join(args, " "), out, err)
	}
	return m
}

// path walks decoded JSON: keys for objects, integers for arrays.
func path(t *testing.T, v any, steps ...any) any {
	t.Helper()
	for _, s := range steps {
		switch k := s.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: %v is not an object", steps, v)
			}
			v, ok = m[k]
			if !ok {
				t.Fatalf("missing %q in %v", k, m)
			}
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("at %v: %v has no element %d", steps, v, k)
			}
			v = a[k]
		}
	}
	return v
}

func wantField(t *testing.T, v any, want any, steps ...any) {
	t.Helper()
	if got := path(t, v, steps...); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%v = %v, want %v", steps, got, want)
	}
}

func TestAWSCLI(t *testing.T) {
	s := startBinary(t)
	c := newClients(t, s)

	for _, name := range []string{"scanrepo-prod", "scanrepo-test"} {
		out := c.cli(t, s, "create-repository", "--repository-name", name)
		wantField(t, out, name, "repository", "repositoryName")
		wantField(t, out, "arn:aws:ecr:us-east-1:"+registryID+":repository/"+name, "repository", "repositoryArn")
		wantField(t, out, registryID, "repository", "registryId")
		wantField(t, out, s.Host+"/"+name, "repository", "repositoryUri")
		wantField(t, out, "MUTABLE", "repository", "imageTagMutability")
		wantField(t, out, false, "repository", "imageScanningConfiguration", "scanOnPush")
		wantField(t, out, "AES256", "repository", "encryptionConfiguration", "encryptionType")
		created, err := time.Parse(time.RFC3339, path(t, out, "repository", "createdAt").(string))
		if err != nil || time.Since(created) > time.Minute {
			t.Fatalf("createdAt %v (%v)", created, err)
		}
	}

	out := c.cli(t, s, "put-registry-scanning-configuration", "--scan-type", "ENHANCED", "--rules",
		`[{"repositoryFilters" : [{"filter":"prod","filterType" : "WILDCARD"}],"scanFrequency" : "CONTINUOUS_SCAN"}]`, "--region", "us-west-2")
	wantField(t, out, "ENHANCED", "registryScanningConfiguration", "scanType")
	wantField(t, out, "CONTINUOUS_SCAN", "registryScanningConfiguration", "rules", 0, "scanFrequency")
	wantField(t, out, "prod", "registryScanningConfiguration", "rules", 0, "repositoryFilters", 0, "filter")
	wantField(t, out, "WILDCARD", "registryScanningConfiguration", "rules", 0, "repositoryFilters", 0, "filterType")

	out = c.cli(t, s, "get-registry-scanning-configuration")
	wantField(t, out, registryID, "registryId")
	wantField(t, out, "ENHANCED", "scanningConfiguration", "scanType")
	wantField(t, out, "CONTINUOUS_SCAN", "scanningConfiguration", "rules", 0, "scanFrequency")
	wantField(t, out, "prod", "scanningConfiguration", "rules", 0, "repositoryFilters", 0, "filter")
	wantField(t, out, "WILDCARD", "scanningConfiguration", "rules", 0, "repositoryFilters", 0, "filterType")

	out = c.cli(t, s, "batch-get-repository-scanning-configuration", "--repository-names", "scanrepo-prod", "scanrepo-test")
	wantField(t, out, "scanrepo-prod", "scanningConfigurations", 0, "repositoryName")
	wantField(t, out, "arn:aws:ecr:us-east-1:"+registryID+":repository/scanrepo-prod", "scanningConfigurations", 0, "repositoryArn")
	wantField(t, out, "CONTINUOUS_SCAN", "scanningConfigurations", 0, "scanFrequency")
	wantField(t, out, true, "scanningConfigurations", 0, "scanOnPush")
	wantField(t, out, "prod", "scanningConfigurations", 0, "appliedScanFilters", 0, "filter")
	wantField(t, out, "WILDCARD", "scanningConfigurations", 0, "appliedScanFilters", 0, "filterType")
	wantField(t, out, "scanrepo-test", "scanningConfigurations", 1, "repositoryName")
	wantField(t, out, "MANUAL", "scanningConfigurations", 1, "scanFrequency")
	wantField(t, out, false, "scanningConfigurations", 1, "scanOnPush")
	if n := len(path(t, out, "scanningConfigurations", 1, "appliedScanFilters").([]any)); n != 0 {
		t.Fatalf("scanrepo-test has %d applied filters", n)
	}
	if n := len(path(t, out, "failures").([]any)); n != 0 {
		t.Fatalf("failures: %v", path(t, out, "failures"))
	}

	// get-login-password | skopeo login, then pushes with crane and skopeo on that login.
	password, err := run(t, c.env, nil, c.aws, "--endpoint-url", s.URL, "ecr", "get-login-password", "--region", "us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, c.env, password, c.skopeo, "login", "--tls-verify=false", "--username", "AWS", "--password-stdin", s.Host); err != nil {
		t.Fatal(err)
	}
	auth, err := os.ReadFile(c.authFile)
	if err != nil || !strings.Contains(string(auth), base64.StdEncoding.EncodeToString([]byte("AWS:"+strings.TrimSpace(string(password))))) {
		t.Fatalf("skopeo did not store the AWS login: %s %v", auth, err)
	}
	work := t.TempDir()
	layer := layerTar(t, "hello.txt", 4096)
	if err := os.WriteFile(filepath.Join(work, "layer.tar"), layer, 0o644); err != nil {
		t.Fatal(err)
	}
	prodRef := s.Host + "/scanrepo-prod:v1"
	if _, err := run(t, c.env, nil, c.crane, "append", "--insecure", "--oci-empty-base", "-f", filepath.Join(work, "layer.tar"), "-t", prodRef); err != nil {
		t.Fatal(err)
	}
	manifest, err := run(t, c.env, nil, c.crane, "manifest", "--insecure", prodRef)
	if err != nil {
		t.Fatal(err)
	}
	prodDigest := digest.FromBytes(manifest).String()
	var parsed struct {
		MediaType string `json:"mediaType"`
		Config    struct {
			MediaType string `json:"mediaType"`
			Size      int64  `json:"size"`
		} `json:"config"`
		Layers []struct {
			Size int64 `json:"size"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(manifest, &parsed); err != nil || len(parsed.Layers) != 1 {
		t.Fatalf("manifest %s: %v", manifest, err)
	}
	if _, err := run(t, c.env, nil, c.crane, "pull", "--insecure", "--format=oci", prodRef, filepath.Join(work, "oci")); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, c.env, nil, c.skopeo, "copy", "--dest-tls-verify=false", "oci:"+filepath.Join(work, "oci"), "docker://"+s.Host+"/scanrepo-test:v2"); err != nil {
		t.Fatal(err)
	}

	out = c.cli(t, s, "describe-images", "--repository-name", "scanrepo-prod")
	detail := path(t, out, "imageDetails", 0)
	wantField(t, detail, registryID, "registryId")
	wantField(t, detail, "scanrepo-prod", "repositoryName")
	wantField(t, detail, prodDigest, "imageDigest")
	wantField(t, detail, "[v1]", "imageTags")
	wantField(t, detail, parsed.Config.Size+parsed.Layers[0].Size, "imageSizeInBytes")
	wantField(t, detail, parsed.MediaType, "imageManifestMediaType")
	wantField(t, detail, parsed.Config.MediaType, "artifactMediaType")
	pushed, err := time.Parse(time.RFC3339, path(t, detail, "imagePushedAt").(string))
	if err != nil || time.Since(pushed) > time.Minute {
		t.Fatalf("imagePushedAt %v (%v)", pushed, err)
	}
	// crane pulled the manifest, so a pull time is on record.
	if _, err := time.Parse(time.RFC3339, path(t, detail, "lastRecordedPullTime").(string)); err != nil {
		t.Fatalf("lastRecordedPullTime: %v", err)
	}
	if n := len(path(t, out, "imageDetails").([]any)); n != 1 {
		t.Fatalf("%d image details", n)
	}

	out = c.cli(t, s, "list-images", "--repository-name", "scanrepo-test")
	wantField(t, out, "v2", "imageIds", 0, "imageTag")
	if d := path(t, out, "imageIds", 0, "imageDigest").(string); !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("imageDigest %q", d)
	}
	out = c.cli(t, s, "list-images", "--repository-name", "scanrepo-prod")
	wantField(t, out, prodDigest, "imageIds", 0, "imageDigest")
	wantField(t, out, "v1", "imageIds", 0, "imageTag")

	out = c.cli(t, s, "batch-get-image", "--repository-name", "scanrepo-prod", "--image-ids", "imageTag=v1")
	wantField(t, out, string(manifest), "images", 0, "imageManifest")
	wantField(t, out, parsed.MediaType, "images", 0, "imageManifestMediaType")
	wantField(t, out, prodDigest, "images", 0, "imageId", "imageDigest")
	wantField(t, out, "v1", "images", 0, "imageId", "imageTag")
	wantField(t, out, registryID, "images", 0, "registryId")
	wantField(t, out, "[]", "failures")

	out = c.cli(t, s, "batch-delete-image", "--repository-name", "scanrepo-prod", "--image-ids", "imageTag=v1", "imageTag=nope")
	wantField(t, out, prodDigest, "imageIds", 0, "imageDigest")
	wantField(t, out, "v1", "imageIds", 0, "imageTag")
	wantField(t, out, "nope", "failures", 0, "imageId", "imageTag")
	wantField(t, out, "ImageNotFound", "failures", 0, "failureCode")
	if n := len(path(t, out, "imageIds").([]any)); n != 1 {
		t.Fatalf("%d images deleted", n)
	}
	out = c.cli(t, s, "list-images", "--repository-name", "scanrepo-prod")
	if n := len(path(t, out, "imageIds").([]any)); n != 0 {
		t.Fatalf("scanrepo-prod still lists %v", path(t, out, "imageIds"))
	}

	out = c.cli(t, s, "describe-repositories")
	wantField(t, out, "scanrepo-prod", "repositories", 0, "repositoryName")
	wantField(t, out, "scanrepo-test", "repositories", 1, "repositoryName")
	wantField(t, out, s.Host+"/scanrepo-test", "repositories", 1, "repositoryUri")
	if n := len(path(t, out, "repositories").([]any)); n != 2 {
		t.Fatalf("%d repositories", n)
	}

	out = c.cli(t, s, "delete-repository", "--repository-name", "scanrepo-test", "--force")
	wantField(t, out, "scanrepo-test", "repository", "repositoryName")
	wantField(t, out, "arn:aws:ecr:us-east-1:"+registryID+":repository/scanrepo-test", "repository", "repositoryArn")

	// Service errors: exit status 254 and ECR's error name.
	_, err = run(t, c.env, nil, c.aws, "--endpoint-url", s.URL, "ecr", "describe-images", "--repository-name", "scanrepo-test")
	if err == nil || !strings.Contains(err.Error(), "exit status 254") ||
		!strings.Contains(err.Error(), "An error occurred (RepositoryNotFoundException) when calling the DescribeImages operation") {
		t.Fatalf("describe-images on a deleted repository: %v", err)
	}
	bad := append([]string{}, c.env...)
	bad = append(bad, "AWS_SECRET_ACCESS_KEY=wrongwrongwrongwrongwrongwrongwrongwrong")
	_, err = run(t, bad, nil, c.aws, "--endpoint-url", s.URL, "ecr", "describe-repositories")
	if err == nil || !strings.Contains(err.Error(), "(InvalidSignatureException)") {
		t.Fatalf("wrong secret: %v", err)
	}
}

// TestLayerUploadThenCranePull pushes an image through InitiateLayerUpload, UploadLayerPart,
// CompleteLayerUpload and PutImage, then pulls it with crane (logged in with an
// authorization token) and compares every byte.
func TestLayerUploadThenCranePull(t *testing.T) {
	s := startBinary(t)
	c := newClients(t, s)
	api := s.admin()
	ctx := context.Background()
	createRepo(t, api, "uploaded/app")
	img := pushImage(t, api, "uploaded/app", "1.0", 2<<20+77)

	tok, err := api.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, s.Host, aws.ToString(tok.AuthorizationData[0].AuthorizationToken))
	if err := os.WriteFile(c.authFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ref := s.Host + "/uploaded/app"
	manifest, err := run(t, c.env, nil, c.crane, "manifest", "--insecure", ref+":1.0")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(manifest, img.manifest) {
		t.Fatalf("crane manifest differs:\n%s\nwant\n%s", manifest, img.manifest)
	}
	for _, b := range [][]byte{img.layer, img.config} {
		got, err := run(t, c.env, nil, c.crane, "blob", "--insecure", ref+"@"+digest.FromBytes(b).String())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("blob %s: got %d bytes, want %d", digest.FromBytes(b), len(got), len(b))
		}
	}
	dir := filepath.Join(t.TempDir(), "layout")
	if _, err := run(t, c.env, nil, c.crane, "pull", "--insecure", "--format=oci", ref+":1.0", dir); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{img.layer, img.config, img.manifest} {
		got, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", digest.FromBytes(b).Encoded()))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("pulled layout blob %s differs (%v)", digest.FromBytes(b), err)
		}
	}
}
