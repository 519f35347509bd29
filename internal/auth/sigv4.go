package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lading-registry/lading/internal/store"
)

// SigV4 error codes, as AWS's JSON services name them.
const (
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	CodeIncompleteSignature        = "IncompleteSignatureException"
	CodeInvalidSignature           = "InvalidSignatureException"
	CodeUnrecognizedClient         = "UnrecognizedClientException"
)

// SigV4Error is a refused SigV4 request: Code is the error name AWS returns (the faces put it in
// __type) and Message its text.
type SigV4Error struct {
	Code    string
	Message string
}

func (e *SigV4Error) Error() string { return e.Code + ": " + e.Message }

func sigErr(code, format string, args ...any) error {
	return &SigV4Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	amzDateFormat  = "20060102T150405Z"
	// MaxClockSkew is how far a request's timestamp may be from the server's clock, as on AWS.
	MaxClockSkew = 15 * time.Minute
)

// Authorization is a parsed SigV4 Authorization header.
type Authorization struct {
	AccessKeyID   string
	Date          string // yyyymmdd of the credential scope
	Region        string
	Service       string
	SignedHeaders []string // lower case, in the order given
	Signature     string   // lower-case hex
}

// Scope is the credential scope: date/region/service/aws4_request.
func (a Authorization) Scope() string {
	return a.Date + "/" + a.Region + "/" + a.Service + "/aws4_request"
}

// ParseAuthorization parses "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
// Errors are *SigV4Error with AWS's codes.
func ParseAuthorization(header string) (Authorization, error) {
	var a Authorization
	alg, rest, _ := strings.Cut(strings.TrimSpace(header), " ")
	if alg != sigV4Algorithm {
		return a, sigErr(CodeIncompleteSignature, "Unsupported AWS 'algorithm': '%s'", truncate(alg, 64))
	}
	params := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, sigErr(CodeIncompleteSignature, "Authorization header requires each component to be of the form key=value")
		}
		if _, dup := params[k]; dup {
			return a, sigErr(CodeIncompleteSignature, "Authorization header has a duplicate '%s' parameter", truncate(k, 64))
		}
		params[k] = v
	}
	var missing []string
	for _, k := range []string{"Credential", "Signature", "SignedHeaders"} {
		if params[k] == "" {
			missing = append(missing, "Authorization header requires '"+k+"' parameter.")
		}
	}
	if len(missing) > 0 {
		return a, sigErr(CodeIncompleteSignature, "%s", strings.Join(missing, " "))
	}
	cred := strings.Split(params["Credential"], "/")
	if len(cred) != 5 || cred[4] != "aws4_request" || cred[0] == "" || cred[2] == "" || cred[3] == "" {
		return a, sigErr(CodeIncompleteSignature, "Credential should be of the form <access key id>/<date>/<region>/<service>/aws4_request")
	}
	if _, err := time.Parse("20060102", cred[1]); err != nil {
		return a, sigErr(CodeIncompleteSignature, "Credential should be scoped to a valid date: '%s'", truncate(cred[1], 16))
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = cred[0], cred[1], cred[2], cred[3]
	sig := params["Signature"]
	if len(sig) != 64 {
		return a, sigErr(CodeIncompleteSignature, "Signature should be 64 hexadecimal characters")
	}
	if _, err := hex.DecodeString(sig); err != nil {
		return a, sigErr(CodeIncompleteSignature, "Signature should be 64 hexadecimal characters")
	}
	a.Signature = strings.ToLower(sig)
	hasHost := false
	for h := range strings.SplitSeq(params["SignedHeaders"], ";") {
		if h == "" || h != strings.ToLower(h) {
			return a, sigErr(CodeIncompleteSignature, "SignedHeaders should be a list of lower-case header names separated by ';'")
		}
		hasHost = hasHost || h == "host"
		a.SignedHeaders = append(a.SignedHeaders, h)
	}
	if !hasHost {
		return a, sigErr(CodeIncompleteSignature, "'Host' must be a 'SignedHeader' in the AWS Authorization.")
	}
	return a, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// SigV4Result is an authenticated SigV4 request.
type SigV4Result struct {
	Principal Principal
	// Region is the region the client signed for; any region is accepted.
	Region   string
	SignedAt time.Time
}

// SigV4Policy is what a face's protocol requires of a SigV4 request beyond a valid signature.
// Host and the header the request is dated with (X-Amz-Date, else Date) must always be signed;
// the policy names the headers that carry the rest of the request's meaning, which an
// attacker could otherwise change under a valid signature.
type SigV4Policy struct {
	// Service is the signing name the credential scope must carry ("ecr", "inspector2").
	Service string
	// SignedHeaders must be signed in every request (lower case).
	SignedHeaders []string
	// SignedHeadersWithBody must also be signed when the request has a body (lower case).
	SignedHeadersWithBody []string
}

// AWSJSONPolicy is the policy of AWS's JSON 1.0 and 1.1 protocols: the operation travels in
// X-Amz-Target and the protocol in Content-Type, so both must be signed, as the AWS SDKs and
// CLI do.
func AWSJSONPolicy(service string) SigV4Policy {
	return SigV4Policy{Service: service, SignedHeaders: []string{"x-amz-target", "content-type"}}
}

// RESTJSONPolicy is the policy of AWS's restJson1 protocol: the operation is the method and
// path, which every signature covers, so only a body's Content-Type must be signed besides.
func RESTJSONPolicy(service string) SigV4Policy {
	return SigV4Policy{Service: service, SignedHeadersWithBody: []string{"content-type"}}
}

// checkSignedHeaders refuses a request that leaves unsigned a header its policy, or its use of
// X-Amz-Date or Date, requires to be signed. The first such header is named, in AWS's words.
func (p SigV4Policy) checkSignedHeaders(r *http.Request, signed []string) error {
	dateHeader := "x-amz-date"
	if r.Header.Get("X-Amz-Date") == "" {
		dateHeader = "date"
	}
	required := append([]string{dateHeader}, p.SignedHeaders...)
	if r.ContentLength != 0 { // -1, a body of unknown length, is a body too
		required = append(required, p.SignedHeadersWithBody...)
	}
	for _, h := range required {
		if !slices.Contains(signed, h) {
			return sigErr(CodeIncompleteSignature, "'%s' must be a 'SignedHeader' in the AWS Authorization.", http.CanonicalHeaderKey(h))
		}
	}
	return nil
}

// sigV4Request is a request whose SigV4 header, dates, scope and key checked out; only the
// signature itself, which needs the body, remains to be verified.
type sigV4Request struct {
	auth     Authorization
	amzDate  string
	signedAt time.Time
	key      store.AccessKey
}

// CheckSigV4Header does every check of VerifySigV4 that needs no body: the Authorization header
// and the headers it signs, the timestamp and its skew, the scope's service and the access key.
// Calling it first lets a face refuse a request before reading a large body.
func (a *Authenticator) CheckSigV4Header(r *http.Request, policy SigV4Policy) error {
	_, err := a.prepareSigV4(r, policy)
	return err
}

// prepareSigV4 checks all but the signature, throttles the request's source and key, and counts
// an unknown key as a failure. A malformed or stale request guesses no secret, so it is refused
// without being counted.
func (a *Authenticator) prepareSigV4(r *http.Request, policy SigV4Policy) (sigV4Request, error) {
	att := attemptFrom(r.Context())
	header := r.Header.Get("Authorization")
	if header == "" {
		att.set(policy.Service, "", ResultAnonymous)
		return sigV4Request{}, sigErr(CodeMissingAuthenticationToken, "Missing Authentication Token")
	}
	auth, err := ParseAuthorization(header)
	claimed := truncate(auth.AccessKeyID, maxSubjectName)
	source := clientSource(r)
	if wait := a.limiter.wait(source, claimed); wait > 0 {
		att.set(policy.Service, claimed, ResultThrottled)
		return sigV4Request{}, &ThrottledError{RetryAfter: wait}
	}
	req, err := a.checkSigV4Form(r, policy, auth, err)
	if err != nil {
		att.set(policy.Service, claimed, ResultFailed)
		return req, err
	}
	req.key, err = a.key(r.Context(), auth.AccessKeyID)
	if errors.Is(err, ErrBadCredentials) {
		a.limiter.failure(source, claimed)
		att.set(policy.Service, claimed, ResultFailed)
		return req, sigErr(CodeUnrecognizedClient, "The security token included in the request is invalid.")
	}
	if err != nil {
		att.set(policy.Service, claimed, ResultError)
		return req, err
	}
	att.set(policy.Service, claimed, "")
	return req, nil
}

// checkSigV4Form checks what needs neither the body nor the key: the parsed header (parseErr is
// ParseAuthorization's), the signed headers, the timestamp and the scope.
func (a *Authenticator) checkSigV4Form(r *http.Request, policy SigV4Policy, auth Authorization, parseErr error) (sigV4Request, error) {
	var req sigV4Request
	if parseErr != nil {
		return req, parseErr
	}
	if r.Header.Get("X-Amz-Security-Token") != "" {
		// Lading issues no temporary credentials, so no session token can be valid.
		return req, sigErr(CodeUnrecognizedClient, "The security token included in the request is invalid.")
	}
	amzDate, signedAt, err := requestTime(r)
	if err != nil {
		return req, err
	}
	if err := policy.checkSignedHeaders(r, auth.SignedHeaders); err != nil {
		return req, err
	}
	if auth.Date != amzDate[:8] {
		return req, sigErr(CodeInvalidSignature, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			auth.Date, amzDate[:8], amzDate)
	}
	if auth.Service != policy.Service {
		return req, sigErr(CodeInvalidSignature, "Credential should be scoped to correct service: '%s'. ", policy.Service)
	}
	now := a.now().UTC()
	if signedAt.Before(now.Add(-MaxClockSkew)) {
		return req, sigErr(CodeInvalidSignature, "Signature expired: %s is now earlier than %s (%s - 15 min.)",
			amzDate, now.Add(-MaxClockSkew).Format(amzDateFormat), now.Format(amzDateFormat))
	}
	if signedAt.After(now.Add(MaxClockSkew)) {
		return req, sigErr(CodeInvalidSignature, "Signature not yet current: %s is still later than %s (%s + 15 min.)",
			amzDate, now.Add(MaxClockSkew).Format(amzDateFormat), now.Format(amzDateFormat))
	}
	return sigV4Request{auth: auth, amzDate: amzDate, signedAt: signedAt}, nil
}

// VerifySigV4 checks a request's SigV4 signature under policy, over body (the request body,
// already read). The signature is recomputed with the secret of the claimed access key and
// compared in constant time. Refusals are *SigV4Error, or *ThrottledError while the request's
// source or key is throttled; other errors are failures of the key store. A wrong signature
// counts as a failed authentication, a right one clears the key's failures.
func (a *Authenticator) VerifySigV4(r *http.Request, body []byte, policy SigV4Policy) (SigV4Result, error) {
	req, err := a.prepareSigV4(r, policy)
	if err != nil {
		return SigV4Result{}, err
	}
	att := attemptFrom(r.Context())
	keyID := req.auth.AccessKeyID
	payloadHash := sha256.Sum256(body)
	if claimed := r.Header.Get("X-Amz-Content-Sha256"); claimed != "" && claimed != "UNSIGNED-PAYLOAD" &&
		!strings.EqualFold(claimed, hex.EncodeToString(payloadHash[:])) {
		att.set(policy.Service, keyID, ResultFailed)
		return SigV4Result{}, sigErr(CodeInvalidSignature, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	want := Signature(req.key.Secret, req.auth, req.amzDate, CanonicalRequest(r, req.auth.SignedHeaders, hex.EncodeToString(payloadHash[:])))
	if !hmac.Equal([]byte(want), []byte(req.auth.Signature)) {
		a.limiter.failure(clientSource(r), keyID)
		att.set(policy.Service, keyID, ResultFailed)
		return SigV4Result{}, sigErr(CodeInvalidSignature, "The request signature we calculated does not match the signature you provided. "+
			"Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	a.limiter.success(keyID)
	att.set(policy.Service, keyID, ResultOK)
	return SigV4Result{Principal: principalOf(req.key), Region: req.auth.Region, SignedAt: req.signedAt}, nil
}

// requestTime returns the request's signing time from X-Amz-Date or, failing that, Date.
func requestTime(r *http.Request) (string, time.Time, error) {
	if v := r.Header.Get("X-Amz-Date"); v != "" {
		t, err := time.Parse(amzDateFormat, v)
		if err != nil {
			return "", t, sigErr(CodeIncompleteSignature, "Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", truncate(v, 64))
		}
		return v, t, nil
	}
	if v := r.Header.Get("Date"); v != "" {
		t, err := http.ParseTime(v)
		if err != nil {
			return "", t, sigErr(CodeIncompleteSignature, "Date header is not a valid HTTP date: '%s'", truncate(v, 64))
		}
		t = t.UTC()
		return t.Format(amzDateFormat), t, nil
	}
	return "", time.Time{}, sigErr(CodeIncompleteSignature, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
}

// Signature computes the hex SigV4 signature of a canonical request.
func Signature(secret string, auth Authorization, amzDate, canonicalRequest string) string {
	h := sha256.Sum256([]byte(canonicalRequest))
	stringToSign := sigV4Algorithm + "\n" + amzDate + "\n" + auth.Scope() + "\n" + hex.EncodeToString(h[:])
	key := hmacSHA256([]byte("AWS4"+secret), auth.Date)
	key = hmacSHA256(key, auth.Region)
	key = hmacSHA256(key, auth.Service)
	key = hmacSHA256(key, "aws4_request")
	return hex.EncodeToString(hmacSHA256(key, stringToSign))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// CanonicalRequest builds SigV4's canonical request for r as received, over the given signed
// headers. Host is the Host header as sent; the path is escaped once more, as SigV4 does for
// every service but S3.
func CanonicalRequest(r *http.Request, signedHeaders []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b.WriteString(escape(path, false))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery))
	b.WriteByte('\n')
	for _, h := range signedHeaders {
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(canonicalHeaderValue(r, h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

func canonicalHeaderValue(r *http.Request, name string) string {
	var values []string
	switch name {
	case "host":
		values = []string{r.Host}
	case "content-length":
		values = r.Header.Values("Content-Length")
		if len(values) == 0 && r.ContentLength >= 0 {
			values = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	default:
		values = r.Header.Values(name)
	}
	for i, v := range values {
		values[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(values, ",")
}

func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	type kv struct{ k, v string }
	var pairs []kv
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		// Undecodable escapes are signed as sent, which then simply fails to match.
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		pairs = append(pairs, kv{escape(k, true), escape(v, true)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// escape percent-encodes every byte but RFC 3986's unreserved characters (and '/' unless
// encodeSlash).
func escape(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !encodeSlash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}
