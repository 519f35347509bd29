package ecr_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/lading-registry/lading/internal/testserver"
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

// TestFailedSignaturesAreThrottled signs ECR calls with a wrong secret through the SDK: after the
// free failures they end in ThrottlingException (HTTP 400 with Retry-After, as AWS's JSON
// protocol answers), the right secret included, until Retry-After has passed. The request log
// names the key of failed and successful calls, never a secret.
func TestFailedSignaturesAreThrottled(t *testing.T) {
	const free = 5
	ts := testserver.Start(t, ladingBin, "--registry-id", registryID, "--log-level", "info",
		"--auth-free-failures", strconv.Itoa(free), "--auth-backoff-base", "1s", "--auth-backoff-max", "2s")
	s := &server{URL: ts.URL(), Host: ts.Addr}
	ctx := context.Background()
	const wrongSecret = "wrongwrongwrongwrongwrongwrongwrong12345"
	guesser := s.client("us-east-1", adminKey, wrongSecret)
	// retryAfter returns the status and Retry-After of a failed call's response.
	retryAfter := func(err error) (int, int) {
		t.Helper()
		var re *awshttp.ResponseError
		if !errors.As(err, &re) {
			t.Fatalf("%v has no HTTP response", err)
		}
		n, _ := strconv.Atoi(re.Response.Header.Get("Retry-After"))
		return re.HTTPStatusCode(), n
	}
	throttled := false
	for i := range 30 {
		_, err := guesser.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{})
		var ae interface{ ErrorCode() string }
		if !errors.As(err, &ae) {
			t.Fatalf("call %d: %v", i+1, err)
		}
		switch code := ae.ErrorCode(); {
		case code == "InvalidSignatureException" && !throttled:
		case code == "ThrottlingException" && i >= free:
			throttled = true
			if status, n := retryAfter(err); status != http.StatusBadRequest || n < 1 || n > 2 {
				t.Fatalf("ThrottlingException with status %d, Retry-After %d", status, n)
			}
			wantAPIError(t, err, "ThrottlingException")
		default:
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	if !throttled {
		t.Fatal("30 wrong signatures were never throttled")
	}
	// Throttled, the right secret is not even checked.
	_, err := s.admin().DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{})
	wantAPIError(t, err, "ThrottlingException")
	_, n := retryAfter(err)
	// Waiting as told is the protocol under test, not synchronisation: the server's clock decides.
	time.Sleep(time.Duration(n) * time.Second)
	if _, err := s.admin().DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{}); err != nil {
		t.Fatalf("after Retry-After: %v", err)
	}

	logs := ts.Logs()
	for _, want := range []string{
		"route=ecr_DescribeRepositories status=400",
		"access_key_id=" + adminKey + " auth=failed",
		"access_key_id=" + adminKey + " auth=throttled",
		"access_key_id=" + adminKey + " auth=ok",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	for _, secret := range []string{wrongSecret, adminSecret} {
		if strings.Contains(logs, secret) {
			t.Error("the log holds a secret")
		}
	}
}
