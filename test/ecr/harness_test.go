// Package ecr_test drives Lading's ECR API end to end: the AWS SDK for Go and the AWS CLI as
// clients, skopeo and crane against the registry face, all on one live server.
package ecr_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/smithy-go"

	"github.com/lading-registry/lading/internal/app"
	"github.com/lading-registry/lading/internal/testserver"
)

const (
	// The harness's admin key, so that in-process and process servers take the same credentials.
	adminKey    = testserver.AccessKeyID
	adminSecret = testserver.SecretAccessKey
	registryID  = "123456789012"
)

// server is a live Lading on a loopback port with a fresh data directory.
type server struct {
	URL  string // http://127.0.0.1:PORT
	Host string // 127.0.0.1:PORT
}

func startServer(t *testing.T) *server {
	t.Helper()
	if testserver.ClusterSize(t) > 0 {
		// $LADING_TEST_CLUSTER: the same tests against nodes on PostgreSQL + S3 behind a
		// round-robin front.
		ts := testserver.Serve(t, ladingBin, "--registry-id", registryID, "--region", "us-east-1")
		return &server{URL: ts.URL(), Host: ts.Addr}
	}
	a, err := app.Open(context.Background(), app.Config{
		DataDir: t.TempDir(), Region: "us-east-1", RegistryID: registryID, CreateOnPush: true,
		AdminAccessKeyID: adminKey, AdminSecretAccessKey: adminSecret,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = a.Close()
	})
	return &server{URL: srv.URL, Host: strings.TrimPrefix(srv.URL, "http://")}
}

func staticCreds(id, secret string) aws.CredentialsProviderFunc {
	return func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, Source: "test"}, nil
	}
}

// client is an ECR SDK client for the server, signing for region with the given key.
func (s *server) client(region, id, secret string) *ecr.Client {
	return ecr.New(ecr.Options{
		Region:       region,
		BaseEndpoint: aws.String(s.URL),
		Credentials:  staticCreds(id, secret),
		Retryer:      testserver.SDKRetryer(),
	})
}

func (s *server) admin() *ecr.Client { return s.client("us-west-2", adminKey, adminSecret) }

// wantAPIError asserts err is the ECR error code (the __type) and returns its message.
func wantAPIError(t *testing.T, err error, code string) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got error %v, want %s", err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("got %s (%s), want %s", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
	if ae.ErrorMessage() == "" {
		t.Fatalf("%s without a message", code)
	}
	return ae.ErrorMessage()
}

// rawCall sends a JSON 1.1 request, signed at signedAt with the given key (unsigned when id is
// empty), and returns the status and decoded error body.
func (s *server) rawCall(t *testing.T, op, body, id, secret string, signedAt time.Time) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921."+op)
	if id != "" {
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ecr", "eu-west-1", signedAt); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: body %q is not JSON: %v", op, b, err)
	}
	return resp.StatusCode, out
}

// tool finds a client program: the first existing candidate path, else on PATH or in
// GOPATH/bin, failing (not skipping) when it is missing: CI installs them (.ci/install-tools).
func tool(t *testing.T, name string, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	return testserver.Tool(t, name)
}

// ladingBin is the lading command, built once for the package by TestMain.
var ladingBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lading-ecr-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ladingBin, err = testserver.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// startBinary runs `lading serve` as a process, through the project's test harness.
func startBinary(t *testing.T) *server {
	t.Helper()
	ts := testserver.Start(t, ladingBin, "--registry-id", registryID, "--region", "us-east-1")
	return &server{URL: ts.URL(), Host: ts.Addr}
}

// run runs a command with env added to a minimal environment, returning stdout; stdin may be nil.
func run(t *testing.T, env []string, stdin []byte, name string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.Bytes(), errors.New(err.Error() + ": " + stderr.String())
	}
	return stdout.Bytes(), nil
}
