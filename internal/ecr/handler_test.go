package ecr

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func TestRouteName(t *testing.T) {
	h := newTestHandler(t)
	for _, tc := range []struct {
		method, target, want string
	}{
		{http.MethodPost, TargetPrefix + "ListImages", "ecr_ListImages"},
		{http.MethodPost, TargetPrefix + "MadeUpOperation", "ecr_unknown"},
		{http.MethodPost, "Other_20200101.ListImages", "ecr_unknown"},
		{http.MethodGet, "", "ecr_layer_download"},
	} {
		r := httptest.NewRequest(tc.method, "/", nil)
		r.Header.Set("X-Amz-Target", tc.target)
		if got := h.RouteName(r); got != tc.want {
			t.Errorf("RouteName(%s %q) = %q, want %q", tc.method, tc.target, got, tc.want)
		}
	}
}

func TestEpochSeconds(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Unix(946684800, 0), "946684800"},
		{time.UnixMilli(1579839105123), "1579839105.123"},
	} {
		b, err := epoch(tc.t).MarshalJSON()
		if err != nil || string(b) != tc.want {
			t.Errorf("epoch(%v) = %s, %v; want %s", tc.t, b, err, tc.want)
		}
	}
}

func TestPageToken(t *testing.T) {
	tok := pageToken{Op: "ListImages", Repo: "a", Filter: "TAGGED", After: "sha256:1", After2: "v1"}.encode()
	got, err := decodePageToken(tok, "ListImages", "a", "TAGGED")
	if err != nil || got.After != "sha256:1" || got.After2 != "v1" {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	for _, tc := range []struct{ op, repo, filter string }{
		{"DescribeImages", "a", "TAGGED"}, {"ListImages", "b", "TAGGED"}, {"ListImages", "a", "ANY"},
	} {
		if _, err := decodePageToken(tok, tc.op, tc.repo, tc.filter); err == nil {
			t.Errorf("token accepted for %+v", tc)
		}
	}
	for _, bad := range []string{"", "!!!", "e30", "bnVsbA"} {
		if _, err := decodePageToken(&bad, "ListImages", "a", "TAGGED"); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
}

// tripwire fails the test when read.
type tripwire struct{ t *testing.T }

func (w tripwire) Read([]byte) (int, error) {
	w.t.Error("the body of a request with an unknown key was read")
	return 0, io.EOF
}

func TestUnknownKeyIsRefusedBeforeTheBody(t *testing.T) {
	h := newTestHandler(t)
	req := httptest.NewRequest(http.MethodPost, "http://lading.test/", tripwire{t})
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", TargetPrefix+"UploadLayerPart")
	creds := aws.Credentials{AccessKeyID: "LAKUNKNOWNUNKNOWNUNK", SecretAccessKey: fuzzSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, strings.Repeat("0", 64), "ecr", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"UnrecognizedClientException"`) {
		t.Fatalf("got %d %s", rec.Code, rec.Body.String())
	}
}
