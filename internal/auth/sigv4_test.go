package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/lading-registry/lading/internal/store/sqlite"
)

const (
	testKeyID  = "LAKTESTTESTTESTTEST2"
	testSecret = "testsecrettestsecrettestsecrettestsecre"
)

// newTestAuthenticator opens a real metadata store holding one access key; now is the server clock.
func newTestAuthenticator(t *testing.T, now func() time.Time) *Authenticator {
	t.Helper()
	return newTestAuthenticatorWith(t, Options{Now: now})
}

// newTestAuthenticatorWith is newTestAuthenticator with options.
func newTestAuthenticatorWith(t *testing.T, opts Options) *Authenticator {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := Bootstrap(context.Background(), db, dir, testKeyID, testSecret, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	return NewAuthenticator(db, opts)
}

// sigServer answers with the verification outcome: 200 and the region, or the error code.
func sigServer(t *testing.T, a *Authenticator) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		res, err := a.VerifySigV4(r, body, AWSJSONPolicy("ecr"))
		var se *SigV4Error
		switch {
		case errors.As(err, &se):
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, se.Code)
		case err != nil:
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, err.Error())
		default:
			_, _ = io.WriteString(w, res.Principal.AccessKeyID+" "+res.Region)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

type signOpts struct {
	id, secret, service, region string
	at                          time.Time
	body                        string
	path                        string
	tamper                      func(*http.Request)
}

func send(t *testing.T, srv *httptest.Server, o signOpts) (int, string) {
	t.Helper()
	if o.id == "" {
		o.id = testKeyID
	}
	if o.secret == "" {
		o.secret = testSecret
	}
	if o.service == "" {
		o.service = "ecr"
	}
	if o.region == "" {
		o.region = "us-west-2"
	}
	if o.at.IsZero() {
		o.at = time.Now()
	}
	if o.path == "" {
		o.path = "/"
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+o.path, strings.NewReader(o.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.DescribeRegistry")
	sum := sha256.Sum256([]byte(o.body))
	creds := aws.Credentials{AccessKeyID: o.id, SecretAccessKey: o.secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), o.service, o.region, o.at); err != nil {
		t.Fatal(err)
	}
	if o.tamper != nil {
		o.tamper(req)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestVerifySigV4(t *testing.T) {
	now := time.Now()
	srv := sigServer(t, newTestAuthenticator(t, func() time.Time { return now }))
	for _, tc := range []struct {
		name     string
		opts     signOpts
		wantCode int
		want     string
	}{
		{"valid", signOpts{body: `{}`}, 200, testKeyID + " us-west-2"},
		{"any region is accepted", signOpts{body: `{}`, region: "eu-central-1"}, 200, testKeyID + " eu-central-1"},
		{"escaped path and query", signOpts{body: `{}`, path: "/a%20b/c?x=1&a=b%2Fc&a=a"}, 200, testKeyID + " us-west-2"},
		{"wrong secret", signOpts{body: `{}`, secret: "wrongwrongwrongwrongwrongwrongwrongwrong"}, 400, CodeInvalidSignature},
		{"unknown key", signOpts{body: `{}`, id: "LAKUNKNOWNUNKNOWNUNK"}, 400, CodeUnrecognizedClient},
		{"wrong service", signOpts{body: `{}`, service: "s3"}, 400, CodeInvalidSignature},
		{"16 minutes old", signOpts{body: `{}`, at: now.Add(-16 * time.Minute)}, 400, CodeInvalidSignature},
		{"16 minutes ahead", signOpts{body: `{}`, at: now.Add(16 * time.Minute)}, 400, CodeInvalidSignature},
		{"14 minutes old", signOpts{body: `{}`, at: now.Add(-14 * time.Minute)}, 200, testKeyID + " us-west-2"},
		{"body changed", signOpts{body: `{}`, tamper: func(r *http.Request) {
			r.Body = io.NopCloser(bytes.NewReader([]byte(`{"a":1}`)))
			r.ContentLength = 7
		}}, 400, CodeInvalidSignature},
		{"signed header changed", signOpts{body: `{}`, tamper: func(r *http.Request) {
			r.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.DeleteRepository")
		}}, 400, CodeInvalidSignature},
		{"host changed", signOpts{body: `{}`, tamper: func(r *http.Request) { r.Host = "other.example:80" }}, 400, CodeInvalidSignature},
		{"unsigned", signOpts{body: `{}`, tamper: func(r *http.Request) { r.Header.Del("Authorization") }}, 400, CodeMissingAuthenticationToken},
		{"no date", signOpts{body: `{}`, tamper: func(r *http.Request) { r.Header.Del("X-Amz-Date") }}, 400, CodeIncompleteSignature},
		{"session token", signOpts{body: `{}`, tamper: func(r *http.Request) { r.Header.Set("X-Amz-Security-Token", "x") }}, 400, CodeUnrecognizedClient},
		{"truncated header", signOpts{body: `{}`, tamper: func(r *http.Request) {
			h := r.Header.Get("Authorization")
			r.Header.Set("Authorization", h[:strings.Index(h, ", Signature")])
		}}, 400, CodeIncompleteSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := send(t, srv, tc.opts)
			if code != tc.wantCode || body != tc.want {
				t.Fatalf("got %d %q, want %d %q", code, body, tc.wantCode, tc.want)
			}
		})
	}
}

// signOver signs r (its body is body) with the test key over exactly the given headers, with
// the package's own canonical request, so that the signature is valid whatever the list holds.
func signOver(r *http.Request, body string, at time.Time, signed ...string) {
	amzDate := at.UTC().Format(amzDateFormat)
	auth := Authorization{AccessKeyID: testKeyID, Date: amzDate[:8], Region: "us-east-1", Service: "ecr", SignedHeaders: signed}
	sum := sha256.Sum256([]byte(body))
	auth.Signature = Signature(testSecret, auth, amzDate, CanonicalRequest(r, signed, hex.EncodeToString(sum[:])))
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testKeyID+"/"+auth.Scope()+
		", SignedHeaders="+strings.Join(signed, ";")+", Signature="+auth.Signature)
}

func TestRequiredSignedHeaders(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a := newTestAuthenticator(t, func() time.Time { return now })
	jsonRequest := func(dateHeader string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "http://lading.test/", strings.NewReader(`{}`))
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		r.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.ListImages")
		if dateHeader == "Date" {
			r.Header.Set("Date", now.Format(http.TimeFormat))
		} else {
			r.Header.Set("X-Amz-Date", now.Format(amzDateFormat))
		}
		return r
	}
	restRequest := func(method, body string) *http.Request {
		r := httptest.NewRequest(method, "http://lading.test/findings/list", strings.NewReader(body))
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		r.Header.Set("X-Amz-Date", now.Format(amzDateFormat))
		return r
	}
	for _, tc := range []struct {
		name    string
		policy  SigV4Policy
		req     *http.Request
		signed  []string
		wantErr string // the message of the IncompleteSignatureException; empty: accepted
	}{
		{"JSON: all signed", AWSJSONPolicy("ecr"), jsonRequest("X-Amz-Date"),
			[]string{"content-type", "host", "x-amz-date", "x-amz-target"}, ""},
		{"JSON: more signed", AWSJSONPolicy("ecr"), jsonRequest("X-Amz-Date"),
			[]string{"content-length", "content-type", "host", "x-amz-date", "x-amz-target"}, ""},
		{"JSON: host unsigned", AWSJSONPolicy("ecr"), jsonRequest("X-Amz-Date"),
			[]string{"content-type", "x-amz-date", "x-amz-target"}, "'Host' must be a 'SignedHeader' in the AWS Authorization."},
		{"JSON: x-amz-date unsigned", AWSJSONPolicy("ecr"), jsonRequest("X-Amz-Date"),
			[]string{"content-type", "host", "x-amz-target"}, "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."},
		{"JSON: x-amz-target unsigned", AWSJSONPolicy("ecr"), jsonRequest("X-Amz-Date"),
			[]string{"content-type", "host", "x-amz-date"}, "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."},
		{"JSON: content-type unsigned", AWSJSONPolicy("ecr"), jsonRequest("X-Amz-Date"),
			[]string{"host", "x-amz-date", "x-amz-target"}, "'Content-Type' must be a 'SignedHeader' in the AWS Authorization."},
		{"JSON: dated by Date, signed", AWSJSONPolicy("ecr"), jsonRequest("Date"),
			[]string{"content-type", "date", "host", "x-amz-target"}, ""},
		{"JSON: dated by Date, unsigned", AWSJSONPolicy("ecr"), jsonRequest("Date"),
			[]string{"content-type", "host", "x-amz-target"}, "'Date' must be a 'SignedHeader' in the AWS Authorization."},
		{"REST: GET without body", RESTJSONPolicy("ecr"), restRequest(http.MethodGet, ""),
			[]string{"host", "x-amz-date"}, ""},
		{"REST: body, all signed", RESTJSONPolicy("ecr"), restRequest(http.MethodPost, `{}`),
			[]string{"content-type", "host", "x-amz-date"}, ""},
		{"REST: body, content-type unsigned", RESTJSONPolicy("ecr"), restRequest(http.MethodPost, `{}`),
			[]string{"host", "x-amz-date"}, "'Content-Type' must be a 'SignedHeader' in the AWS Authorization."},
		{"REST: x-amz-date unsigned", RESTJSONPolicy("ecr"), restRequest(http.MethodGet, ""),
			[]string{"host"}, "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := io.ReadAll(tc.req.Body)
			signOver(tc.req, string(body), now, tc.signed...)
			errHeader := a.CheckSigV4Header(tc.req, tc.policy)
			res, err := a.VerifySigV4(tc.req, body, tc.policy)
			if tc.wantErr == "" {
				if errHeader != nil || err != nil || res.Principal.AccessKeyID != testKeyID {
					t.Fatalf("refused: %v, %v", errHeader, err)
				}
				return
			}
			for _, err := range []error{errHeader, err} {
				var se *SigV4Error
				if !errors.As(err, &se) || se.Code != CodeIncompleteSignature || se.Message != tc.wantErr {
					t.Fatalf("got %v, want %s: %s", err, CodeIncompleteSignature, tc.wantErr)
				}
			}
		})
	}
}

func TestSigV4Throttle(t *testing.T) {
	c := newClock()
	a := newTestAuthenticatorWith(t, Options{Now: c.now, Throttle: testThrottle})
	call := func(remote, id, secret string, tamper func(*http.Request)) (*Attempt, error) {
		r := httptest.NewRequest(http.MethodPost, "http://lading.test/", strings.NewReader(`{}`))
		r.RemoteAddr = remote
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		r.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.ListImages")
		sum := sha256.Sum256([]byte(`{}`))
		creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "ecr", "us-east-1", c.now()); err != nil {
			t.Fatal(err)
		}
		if tamper != nil {
			tamper(r)
		}
		att := &Attempt{}
		r = r.WithContext(WithAttempt(r.Context(), att))
		if err := a.CheckSigV4Header(r, AWSJSONPolicy("ecr")); err != nil {
			return att, err
		}
		_, err := a.VerifySigV4(r, []byte(`{}`), AWSJSONPolicy("ecr"))
		return att, err
	}
	code := func(err error) string {
		var se *SigV4Error
		if errors.As(err, &se) {
			return se.Code
		}
		return fmt.Sprint(err)
	}
	// Malformed, unsigned and stale requests guess no secret: they are not counted.
	for range 10 {
		if _, err := call("192.0.2.1:1", testKeyID, testSecret, func(r *http.Request) { r.Header.Del("Authorization") }); code(err) != CodeMissingAuthenticationToken {
			t.Fatal(err)
		}
		if _, err := call("192.0.2.1:1", testKeyID, testSecret, func(r *http.Request) {
			r.Header.Set("X-Amz-Date", c.now().Add(-20*time.Minute).Format(amzDateFormat))
		}); code(err) != CodeInvalidSignature {
			t.Fatal(err)
		}
		if _, err := call("192.0.2.1:1", testKeyID, testSecret, func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "x-amz-target", "x-amz-date", 1))
		}); code(err) != CodeIncompleteSignature {
			t.Fatal(err)
		}
	}
	for i, tc := range []struct {
		id, secret, want string
	}{
		{testKeyID, "wrongwrongwrongwrongwrongwrongwrongwrong", CodeInvalidSignature},
		{"LAKUNKNOWNUNKNOWNUNK", testSecret, CodeUnrecognizedClient},
		{testKeyID, "wrongwrongwrongwrongwrongwrongwrongwrong", CodeInvalidSignature},
		{testKeyID, "wrongwrongwrongwrongwrongwrongwrongwrong", CodeInvalidSignature},
		{testKeyID, testSecret, "throttled"},
	} {
		att, err := call("192.0.2.1:1", tc.id, tc.secret, nil)
		got := code(err)
		if errors.Is(err, ErrThrottled) {
			got = "throttled"
		}
		wantResult := ResultFailed
		if tc.want == "throttled" {
			wantResult = ResultThrottled
		}
		if got != tc.want || att.Result != wantResult || att.AccessKeyID != tc.id || att.Face != "ecr" {
			t.Fatalf("call %d: %s, %+v; want %s", i+1, got, att, tc.want)
		}
	}
	c.advance(time.Second)
	att, err := call("192.0.2.1:1", testKeyID, testSecret, nil)
	if err != nil || att.Result != ResultOK || att.AccessKeyID != testKeyID {
		t.Fatalf("after the wait: %v, %+v", err, att)
	}
}

func TestParseAuthorization(t *testing.T) {
	sig := strings.Repeat("ab", 32)
	good := "AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" + sig
	a, err := ParseAuthorization(good)
	if err != nil {
		t.Fatal(err)
	}
	if a.AccessKeyID != "AKID" || a.Date != "20240102" || a.Region != "us-east-1" || a.Service != "ecr" ||
		strings.Join(a.SignedHeaders, ";") != "content-type;host;x-amz-date" || a.Signature != sig {
		t.Fatalf("parsed %+v", a)
	}
	if a.Scope() != "20240102/us-east-1/ecr/aws4_request" {
		t.Fatalf("scope %q", a.Scope())
	}
	for _, bad := range []string{
		"",
		"Basic dXNlcjpwYXNz",
		"AWS4-HMAC-SHA256",
		"AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws4_request, SignedHeaders=host",
		"AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr, SignedHeaders=host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=AKID/2024-01-02/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws4_request, SignedHeaders=content-type, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws4_request, SignedHeaders=Host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=xyz",
		"AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws4_request, SignedHeaders=host;;x, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=A/20240102/r/ecr/aws4_request, Credential=B/20240102/r/ecr/aws4_request, SignedHeaders=host, Signature=" + sig,
	} {
		_, err := ParseAuthorization(bad)
		var se *SigV4Error
		if !errors.As(err, &se) || se.Code != CodeIncompleteSignature {
			t.Errorf("ParseAuthorization(%q) = %v, want IncompleteSignatureException", bad, err)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	sig := strings.Repeat("0f", 32)
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + sig)
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws4_request,SignedHeaders=host,Signature=" + sig)
	f.Add("AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=;, Signature=")
	f.Add("AWS4-HMAC-SHA256 ,,,===")
	f.Add("")
	f.Fuzz(func(t *testing.T, header string) {
		a, err := ParseAuthorization(header)
		if err != nil {
			var se *SigV4Error
			if !errors.As(err, &se) || se.Code == "" || se.Message == "" {
				t.Fatalf("error %v is not a SigV4Error", err)
			}
			return
		}
		if a.AccessKeyID == "" || a.Region == "" || a.Service == "" || len(a.Signature) != 64 || len(a.SignedHeaders) == 0 {
			t.Fatalf("accepted incomplete %q: %+v", header, a)
		}
		// The canonical request over any parsed header list must be computable.
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		_ = CanonicalRequest(r, a.SignedHeaders, "")
	})
}

func TestSignResource(t *testing.T) {
	now := time.Now()
	a := newTestAuthenticator(t, func() time.Time { return now })
	ctx := context.Background()
	exp := now.Add(time.Hour)
	sig, err := a.SignResource(ctx, "repo\x00sha256:abc", exp)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.VerifyResource(ctx, "repo\x00sha256:abc", exp.Unix(), sig); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	if err := a.VerifyResource(ctx, "repo\x00sha256:abd", exp.Unix(), sig); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("other resource: %v", err)
	}
	if err := a.VerifyResource(ctx, "repo\x00sha256:abc", exp.Unix()+1, sig); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("extended expiry: %v", err)
	}
	now = now.Add(2 * time.Hour)
	if err := a.VerifyResource(ctx, "repo\x00sha256:abc", exp.Unix(), sig); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("expired: %v", err)
	}
}
