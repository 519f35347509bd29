package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/testserver"
)

// TestFailedLoginsAreThrottled guesses the admin's secret 30 times: after the free failures the
// server answers 429 with Retry-After without checking credentials (the right secret is
// refused too), accepts the right secret once Retry-After has passed, and logs the key id of
// failed and successful requests, never a secret.
func TestFailedLoginsAreThrottled(t *testing.T) {
	const free = 5
	srv := testserver.Start(t, ladingBin, "--log-level", "info",
		"--auth-free-failures", strconv.Itoa(free), "--auth-backoff-base", "1s", "--auth-backoff-max", "2s")
	const wrongSecret = "wrong-secret-0123456789abcdef0123456789"
	guesser := &client{t: t, base: srv.URL(), user: testserver.AccessKeyID, pass: wrongSecret}
	anon := &client{t: t, base: srv.URL()}
	// The anonymous probe every docker client makes first is not a failure.
	for range 2 * free {
		anon.expect(anon.do("GET", "/v2/", nil, nil), http.StatusUnauthorized)
	}
	var statuses []int
	retryAfter := 0
	for range 30 {
		resp := guesser.do("GET", "/v2/", nil, nil)
		body := guesser.expect(resp, resp.StatusCode)
		statuses = append(statuses, resp.StatusCode)
		switch resp.StatusCode {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			n, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || n < 1 || n > 2 {
				t.Fatalf("429 with Retry-After %q", resp.Header.Get("Retry-After"))
			}
			if !strings.Contains(string(body), `"code":"TOOMANYREQUESTS"`) {
				t.Fatalf("429 body %s", body)
			}
			retryAfter = n
		default:
			t.Fatalf("wrong secret answered %d: %s", resp.StatusCode, body)
		}
	}
	for i, s := range statuses[:free] {
		if s != http.StatusUnauthorized {
			t.Fatalf("free failure %d answered %d", i+1, s)
		}
	}
	if retryAfter == 0 {
		t.Fatalf("no 429 in %v", statuses)
	}
	// Throttled, the right secret is not even checked.
	admin := newClient(t, srv)
	resp := admin.do("GET", "/v2/", nil, nil)
	admin.expect(resp, http.StatusTooManyRequests)
	n, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	// Waiting as told is the protocol under test, not synchronisation: the server's clock decides.
	time.Sleep(time.Duration(n) * time.Second)
	admin.expect(admin.do("GET", "/v2/", nil, nil), http.StatusOK)

	logs := srv.Logs()
	for _, want := range []string{
		"access_key_id=" + testserver.AccessKeyID + " auth=failed",
		"access_key_id=" + testserver.AccessKeyID + " auth=throttled",
		"access_key_id=" + testserver.AccessKeyID + " auth=ok",
		"auth=anonymous",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	for _, secret := range []string{wrongSecret, testserver.SecretAccessKey} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds a secret")
		}
	}
	failures, throttled := 0, 1 // the right secret was throttled once
	for _, s := range statuses {
		if s == http.StatusUnauthorized {
			failures++
		} else {
			throttled++
		}
	}
	metrics := string(admin.expect(admin.do("GET", "/metrics", nil, nil), http.StatusOK))
	for _, want := range []string{
		`lading_auth_failures_total{face="registry"} ` + strconv.Itoa(failures) + "\n",
		`lading_auth_throttled_total{face="registry"} ` + strconv.Itoa(throttled) + "\n",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
