package ecr_test

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
)

// TestBinaryServesECR builds the lading command, makes an access key with `lading admin
// access-key create`, and signs ECR calls with it against `lading serve`; a deleted key is
// refused at once.
func TestBinaryServesECR(t *testing.T) {
	bin := ladingBin
	data := filepath.Join(t.TempDir(), "data")
	out, err := run(t, nil, nil, bin, "admin", "access-key", "create", "--data-dir", data, "--description", "ci", "--preset", "AdministratorAccess")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`AccessKeyId: (\S+)\nSecretAccessKey: (\S+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("access-key create printed %q", out)
	}
	id, secret := m[1], m[2]

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", data, "--registry-id", registryID, "--region", "eu-west-3")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := regexp.MustCompile(`msg="lading serving" addr=(\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	var s *server
	select {
	case a := <-addr:
		s = &server{URL: "http://" + a, Host: a}
	case <-time.After(30 * time.Second):
		t.Fatal("lading serve did not report its address")
	}

	c := s.client("us-east-2", id, secret)
	repo, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("from-binary")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(repo.Repository.RepositoryArn); got != "arn:aws:ecr:eu-west-3:"+registryID+":repository/from-binary" {
		t.Fatalf("arn %q", got)
	}
	if _, err := c.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{}); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, nil, nil, bin, "admin", "access-key", "list", "--data-dir", data); err != nil || !strings.Contains(string(out), id) {
		t.Fatalf("access-key list: %s %v", out, err)
	}
	if _, err := run(t, nil, nil, bin, "admin", "access-key", "delete", "--data-dir", data, id); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{})
	wantAPIError(t, err, "UnrecognizedClientException")
}
