package ecr

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/lading-registry/lading/internal/auth"
	blobfs "github.com/lading-registry/lading/internal/blob/fs"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

const (
	fuzzKey    = "LAKFUZZFUZZFUZZFUZZ2"
	fuzzSecret = "fuzzsecretfuzzsecretfuzzsecretfuzzsecret"
)

// newTestHandler builds the face over real stores in a temporary directory, with one
// repository ("fuzz/repo") holding one blob, so requests reach past the not-found paths.
func newTestHandler(tb testing.TB) *Handler {
	tb.Helper()
	dir := tb.TempDir()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	blobs, err := blobfs.New(dir, blobfs.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if err := auth.Bootstrap(ctx, db, dir, fuzzKey, fuzzSecret, log); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.CreateRepository(ctx, store.Repository{Name: "fuzz/repo"}); err != nil {
		tb.Fatal(err)
	}
	if err := db.LinkBlob(ctx, "fuzz/repo", "sha256:"+hex.EncodeToString(make([]byte, 32)), 3, false); err != nil {
		tb.Fatal(err)
	}
	return NewHandler(db, blobs, auth.NewAuthenticator(db, auth.Options{}), Config{RegistryID: "123456789012", Region: "us-east-1", Logger: log})
}

// signedCall sends body to op through ServeHTTP, signed with the fuzz key.
func signedCall(tb testing.TB, h *Handler, op string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "http://lading.test/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", TargetPrefix+op)
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: fuzzKey, SecretAccessKey: fuzzSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ecr", "us-east-1", time.Now()); err != nil {
		tb.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// FuzzRequests feeds arbitrary bodies to every operation. Whatever the body, the answer is a
// JSON document: a result, or a client error with ECR's __type and a message, never a 500.
func FuzzRequests(f *testing.F) {
	h := newTestHandler(f)
	ops := h.Operations()
	sort.Strings(ops)
	index := map[string]uint8{}
	for i, op := range ops {
		index[op] = uint8(i)
	}
	digest := "sha256:" + hex.EncodeToString(make([]byte, 32))
	seeds := map[string][]string{
		"CreateRepository": {`{"repositoryName":"fuzz/other","tags":[{"Key":"k","Value":"v"}],"imageTagMutability":"IMMUTABLE",
			"imageScanningConfiguration":{"scanOnPush":true},"encryptionConfiguration":{"encryptionType":"AES256"}}`,
			`{"repositoryName":"x"}`, `{"repositoryName":"ok-name","tags":[{"Key":null}]}`},
		"DescribeRepositories":                    {`{}`, `{"repositoryNames":["fuzz/repo"]}`, `{"maxResults":1,"nextToken":"e30"}`},
		"DeleteRepository":                        {`{"repositoryName":"fuzz/gone","force":true}`},
		"PutImageTagMutability":                   {`{"repositoryName":"fuzz/repo","imageTagMutability":"MUTABLE"}`},
		"PutImageScanningConfiguration":           {`{"repositoryName":"fuzz/repo","imageScanningConfiguration":{"scanOnPush":true}}`},
		"TagResource":                             {`{"resourceArn":"arn:aws:ecr:us-east-1:123456789012:repository/fuzz/repo","tags":[{"Key":"a","Value":"b"}]}`},
		"UntagResource":                           {`{"resourceArn":"arn:aws:ecr:us-east-1:123456789012:repository/fuzz/repo","tagKeys":["a"]}`},
		"ListTagsForResource":                     {`{"resourceArn":"arn:aws:ecr:eu-west-1:123456789012:repository/fuzz/repo"}`},
		"ListImages":                              {`{"repositoryName":"fuzz/repo","filter":{"tagStatus":"TAGGED"},"maxResults":1000}`},
		"DescribeImages":                          {`{"repositoryName":"fuzz/repo","imageIds":[{"imageTag":"latest"}]}`},
		"BatchGetImage":                           {`{"repositoryName":"fuzz/repo","imageIds":[{"imageDigest":"` + digest + `"}],"acceptedMediaTypes":["a"]}`},
		"BatchDeleteImage":                        {`{"repositoryName":"fuzz/repo","imageIds":[{"imageTag":"x"},{}]}`},
		"PutImage":                                {`{"repositoryName":"fuzz/repo","imageManifest":"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}","imageTag":"t"}`},
		"BatchCheckLayerAvailability":             {`{"repositoryName":"fuzz/repo","layerDigests":["` + digest + `",""]}`},
		"GetDownloadUrlForLayer":                  {`{"repositoryName":"fuzz/repo","layerDigest":"` + digest + `"}`},
		"InitiateLayerUpload":                     {`{"repositoryName":"fuzz/repo"}`},
		"UploadLayerPart":                         {`{"repositoryName":"fuzz/repo","uploadId":"00000000-0000-0000-0000-000000000000","partFirstByte":0,"partLastByte":3,"layerPartBlob":"YmxvYg=="}`},
		"CompleteLayerUpload":                     {`{"repositoryName":"fuzz/repo","uploadId":"00000000-0000-0000-0000-000000000000","layerDigests":["` + digest + `"]}`},
		"GetAuthorizationToken":                   {`{}`, `{"registryIds":["123456789012"]}`},
		"DescribeRegistry":                        {`{}`},
		"PutRegistryScanningConfiguration":        {`{"scanType":"ENHANCED","rules":[{"scanFrequency":"CONTINUOUS_SCAN","repositoryFilters":[{"filter":"*","filterType":"WILDCARD"}]}]}`},
		"GetRegistryScanningConfiguration":        {`{}`},
		"BatchGetRepositoryScanningConfiguration": {`{"repositoryNames":["fuzz/repo","none"]}`},
	}
	for op, bodies := range seeds {
		i, ok := index[op]
		if !ok {
			f.Fatalf("seed for unknown operation %s", op)
		}
		for _, b := range bodies {
			f.Add(i, []byte(b))
		}
		f.Add(i, []byte(`[]`))
		f.Add(i, []byte(`{"repositoryName":null,"registryId":"12"}`))
	}
	f.Fuzz(func(t *testing.T, opIndex uint8, body []byte) {
		op := ops[int(opIndex)%len(ops)]
		rec := signedCall(t, h, op, body)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %q: response %q is not a JSON object", op, body, rec.Body.Bytes())
		}
		switch {
		case rec.Code == http.StatusOK:
		case rec.Code >= 400 && rec.Code < 500:
			if typ, _ := out["__type"].(string); typ == "" || out["message"] == "" {
				t.Fatalf("%s %q: error without __type or message: %s", op, body, rec.Body.Bytes())
			}
		default:
			t.Fatalf("%s %q: status %d: %s", op, body, rec.Code, rec.Body.Bytes())
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/x-amz-json-1.1" {
			t.Fatalf("content type %q", ct)
		}
	})
}
