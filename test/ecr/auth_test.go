package ecr_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
)

// TestUnsignedTargetIsRefused replays the attack of a request whose operation is not signed:
// a ListImages signed over host and x-amz-date only, its X-Amz-Target then changed to
// DeleteRepository. The server must refuse it, and the repository must survive.
func TestUnsignedTargetIsRefused(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	createRepo(t, s.admin(), "victim")

	body := `{"repositoryName":"victim"}`
	req, err := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(body))
	// The SDK's signer signs every header present, and content-length when the length is known:
	// with neither, it signs host and x-amz-date only, as the attacker's captured request did.
	req.ContentLength = 0
	creds := aws.Credentials{AccessKeyID: adminKey, SecretAccessKey: adminSecret}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ecr", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	if a := req.Header.Get("Authorization"); !strings.Contains(a, "SignedHeaders=host;x-amz-date,") {
		t.Fatalf("the premise failed: Authorization %q does not sign host and x-amz-date only", a)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.DeleteRepository")

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	if resp.StatusCode != http.StatusBadRequest || out.Type != "IncompleteSignatureException" ||
		out.Message != "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization." {
		t.Fatalf("got %d %s, want 400 IncompleteSignatureException about X-Amz-Target", resp.StatusCode, b)
	}

	repos, err := s.admin().DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"victim"}})
	if err != nil {
		t.Fatalf("the repository is gone: %v", err)
	}
	if len(repos.Repositories) != 1 || aws.ToString(repos.Repositories[0].RepositoryName) != "victim" {
		t.Fatalf("DescribeRepositories = %+v", repos.Repositories)
	}
}
