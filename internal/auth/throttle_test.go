package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var testThrottle = ThrottleConfig{FreeFailures: 3, BaseBackoff: time.Second, MaxBackoff: 10 * time.Second, Window: time.Minute}

func TestLimiterBackoff(t *testing.T) {
	c := newClock()
	l := newLimiter(testThrottle, c.now)
	// The wait after each failure: three free, then 1 s doubling up to the 10 s cap.
	for i, want := range []time.Duration{0, 0, 0, 1, 2, 4, 8, 10, 10, 10} {
		l.failure("192.0.2.1", "LAKKEY")
		if got := l.wait("192.0.2.1", "LAKKEY"); got != want*time.Second {
			t.Fatalf("after failure %d: wait %v, want %v", i+1, got, want*time.Second)
		}
	}
	c.advance(4 * time.Second)
	if got := l.wait("192.0.2.1", ""); got != 6*time.Second {
		t.Fatalf("4 s into a 10 s wait: %v left", got)
	}
	c.advance(6 * time.Second)
	if got := l.wait("192.0.2.1", "LAKKEY"); got != 0 {
		t.Fatalf("after the wait: still %v", got)
	}
	// The count survives the wait: the next failure waits the cap again.
	l.failure("192.0.2.1", "LAKKEY")
	if got := l.wait("192.0.2.1", "LAKKEY"); got != 10*time.Second {
		t.Fatalf("a failure right after a wait: %v, want the cap", got)
	}
}

func TestLimiterDecay(t *testing.T) {
	c := newClock()
	l := newLimiter(testThrottle, c.now)
	for range 5 {
		l.failure("192.0.2.1", "LAKKEY")
	}
	if l.wait("192.0.2.1", "") == 0 || l.wait("", "LAKKEY") == 0 {
		t.Fatal("five failures are not throttled")
	}
	c.advance(time.Minute - time.Second)
	l.failure("192.0.2.9", "LAKOTHER") // other subjects' failures do not forgive these
	if l.wait("192.0.2.1", "") != 0 || l.wait("", "LAKKEY") != 0 {
		t.Fatal("the wait outlasted the backoff")
	}
	if l.sources.len() != 2 || l.keys.len() != 2 {
		t.Fatalf("forgotten before the window: %d sources, %d keys", l.sources.len(), l.keys.len())
	}
	c.advance(time.Second)
	// A window after its last failure, the source starts afresh: three more free failures.
	for i := range 3 {
		l.failure("192.0.2.1", "LAKKEY")
		if got := l.wait("192.0.2.1", "LAKKEY"); got != 0 {
			t.Fatalf("failure %d after the window: wait %v", i+1, got)
		}
	}
	l.failure("192.0.2.1", "LAKKEY")
	if got := l.wait("192.0.2.1", "LAKKEY"); got != time.Second {
		t.Fatalf("fourth failure after the window: wait %v, want 1s", got)
	}
}

func TestLimiterWindowCoversTheLongestWait(t *testing.T) {
	c := newClock()
	// A window shorter than the cap would forgive a source while it waits.
	l := newLimiter(ThrottleConfig{FreeFailures: 1, BaseBackoff: time.Minute, MaxBackoff: time.Hour, Window: time.Second}, c.now)
	for range 8 {
		l.failure("192.0.2.1", "")
	}
	c.advance(59 * time.Minute)
	if got := l.wait("192.0.2.1", ""); got != time.Minute {
		t.Fatalf("59 minutes into an hour's wait: %v left, want 1m", got)
	}
}

func TestLimiterSuccessClearsTheKeyOnly(t *testing.T) {
	c := newClock()
	l := newLimiter(testThrottle, c.now)
	for range 4 {
		l.failure("192.0.2.1", "LAKKEY")
	}
	c.advance(time.Second)
	l.success("LAKKEY")
	if got := l.wait("198.51.100.1", "LAKKEY"); got != 0 {
		t.Fatalf("the key still waits %v after a success", got)
	}
	// The source keeps its count: its next failure waits 2 s, not nothing.
	l.failure("192.0.2.1", "LAKOTHER")
	if got := l.wait("192.0.2.1", ""); got != 2*time.Second {
		t.Fatalf("source after a success elsewhere: wait %v, want 2s", got)
	}
	if got := l.wait("", "LAKOTHER"); got != 0 {
		t.Fatalf("a key with one failure waits %v", got)
	}
}

func TestLimiterSourcesAndKeysAreIndependent(t *testing.T) {
	c := newClock()
	l := newLimiter(testThrottle, c.now)
	for range 4 {
		l.failure("192.0.2.1", "LAKKEY")
	}
	for _, tc := range []struct {
		source, key string
		throttled   bool
	}{
		{"192.0.2.1", "LAKKEY", true},
		{"192.0.2.1", "LAKOTHER", true},  // the source guessed too often, at any key
		{"198.51.100.1", "LAKKEY", true}, // the key was guessed too often, from anywhere
		{"198.51.100.1", "LAKOTHER", false},
		{"198.51.100.1", "", false},
	} {
		if got := l.wait(tc.source, tc.key) > 0; got != tc.throttled {
			t.Errorf("wait(%q, %q) > 0 = %v, want %v", tc.source, tc.key, got, tc.throttled)
		}
	}
	// Failures spread over many sources add up on the key they target.
	l2 := newLimiter(testThrottle, c.now)
	for i := range 4 {
		l2.failure(fmt.Sprintf("192.0.2.%d", i), "LAKKEY")
	}
	if l2.wait("203.0.113.1", "LAKKEY") == 0 || l2.wait("192.0.2.0", "") != 0 {
		t.Fatal("a distributed guess at one key is not throttled on the key alone")
	}
}

func TestLimiterMemoryBound(t *testing.T) {
	c := newClock()
	cfg := testThrottle
	cfg.MaxSubjects = 3
	l := newLimiter(cfg, c.now)
	for i := range 10 {
		c.advance(time.Millisecond)
		l.failure(fmt.Sprintf("192.0.2.%d", i), fmt.Sprintf("LAKKEY%d", i))
	}
	if l.sources.len() != 3 || l.keys.len() != 3 || len(l.sources.byName) != 3 || len(l.keys.byName) != 3 {
		t.Fatalf("tracking %d sources and %d keys, want 3 each", l.sources.len(), l.keys.len())
	}
	// The most recent are kept, the oldest evicted.
	for _, k := range []string{"LAKKEY7", "LAKKEY8", "LAKKEY9"} {
		if _, ok := l.keys.byName[k]; !ok {
			t.Errorf("%s was evicted", k)
		}
	}
	// A subject failing again moves to the front and survives the next eviction.
	l.failure("192.0.2.7", "LAKKEY7")
	l.failure("192.0.2.10", "LAKKEY10")
	if _, ok := l.keys.byName["LAKKEY7"]; !ok {
		t.Error("a recently failing key was evicted")
	}
	if _, ok := l.keys.byName["LAKKEY8"]; ok {
		t.Error("the oldest key was kept")
	}
	// Subjects past the window are dropped by the next failure.
	c.advance(time.Minute)
	l.failure("192.0.2.99", "")
	if l.sources.len() != 1 {
		t.Fatalf("%d sources after the window, want 1", l.sources.len())
	}
}

func TestLimiterConcurrentUse(t *testing.T) {
	c := newClock()
	l := newLimiter(ThrottleConfig{FreeFailures: 1000, MaxSubjects: 50}, c.now)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				l.failure("192.0.2.1", "LAKKEY")
				l.failure(fmt.Sprintf("198.51.100.%d", g), fmt.Sprintf("LAK%d-%d", g, i))
				_ = l.wait("192.0.2.1", "LAKKEY")
				l.success(fmt.Sprintf("LAK%d-%d", g, i))
			}
		})
	}
	wg.Wait()
	e := l.sources.byName["192.0.2.1"]
	if e == nil || e.Value.(*subject).failures != 800 {
		t.Fatal("concurrent failures were lost")
	}
	if l.keys.len() > 50 || l.sources.len() > 50 {
		t.Fatalf("%d keys, %d sources: over the bound", l.keys.len(), l.sources.len())
	}
}

func TestThrottledError(t *testing.T) {
	for _, tc := range []struct {
		wait time.Duration
		want int
	}{{time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {5 * time.Minute, 300}} {
		err := error(&ThrottledError{RetryAfter: tc.wait})
		var te *ThrottledError
		if !errors.Is(err, ErrThrottled) || !errors.As(err, &te) || te.RetryAfterSeconds() != tc.want {
			t.Errorf("%v: Retry-After %d, want %d", tc.wait, te.RetryAfterSeconds(), tc.want)
		}
	}
}

func TestClientSource(t *testing.T) {
	for _, tc := range []struct{ remote, want string }{
		{"192.0.2.1:5000", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:5000", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:5000", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:5000", "fe80::/64"},
		{"not-an-address", "not-an-address"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		if got := clientSource(r); got != tc.want {
			t.Errorf("clientSource(%q) = %q, want %q", tc.remote, got, tc.want)
		}
	}
}

// basicRequest is a registry request from remote with Basic credentials (none when user is "").
func basicRequest(t *testing.T, remote, user, pass string) (*http.Request, *Attempt) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "http://lading.test/v2/", nil)
	r.RemoteAddr = remote
	if user != "" {
		r.SetBasicAuth(user, pass)
	}
	att := &Attempt{}
	return r.WithContext(WithAttempt(r.Context(), att)), att
}

func TestRequestThrottle(t *testing.T) {
	c := newClock()
	a := newTestAuthenticatorWith(t, Options{Now: c.now, Throttle: testThrottle})
	const ip = "192.0.2.1:40000"
	// Anonymous probes are neither counted nor throttled.
	for range 20 {
		r, att := basicRequest(t, ip, "", "")
		if _, err := a.Request(r); !errors.Is(err, ErrNoCredentials) || att.Result != ResultAnonymous || att.AccessKeyID != "" {
			t.Fatalf("anonymous: %v, %+v", err, att)
		}
	}
	if a.limiter.sources.len() != 0 {
		t.Fatal("anonymous requests were counted")
	}
	for i := range 4 {
		r, att := basicRequest(t, ip, testKeyID, "wrong")
		if _, err := a.Request(r); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong secret %d: %v", i+1, err)
		}
		if att.Result != ResultFailed || att.AccessKeyID != testKeyID || att.Face != "registry" {
			t.Fatalf("wrong secret %d recorded %+v", i+1, att)
		}
	}
	// Now even the right secret is not checked.
	r, att := basicRequest(t, ip, testKeyID, testSecret)
	_, err := a.Request(r)
	var te *ThrottledError
	if !errors.As(err, &te) || te.RetryAfter != time.Second || att.Result != ResultThrottled || att.AccessKeyID != testKeyID {
		t.Fatalf("throttled: %v, %+v", err, att)
	}
	// From elsewhere, the key is throttled too; anonymous requests still are not.
	r, _ = basicRequest(t, "198.51.100.1:1", testKeyID, testSecret)
	if _, err := a.Request(r); !errors.Is(err, ErrThrottled) {
		t.Fatalf("the key from another source: %v", err)
	}
	r, _ = basicRequest(t, ip, "", "")
	if _, err := a.Request(r); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("anonymous from a throttled source: %v", err)
	}
	c.advance(time.Second)
	r, att = basicRequest(t, ip, testKeyID, testSecret)
	if p, err := a.Request(r); err != nil || p.AccessKeyID != testKeyID || att.Result != ResultOK || att.AccessKeyID != testKeyID {
		t.Fatalf("after the wait: %v, %+v", err, att)
	}
	// The success cleared the key but not the source: one more failure from it waits 2 s.
	r, _ = basicRequest(t, ip, "LAKUNKNOWNUNKNOWNUNK", "x")
	if _, err := a.Request(r); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown key: %v", err)
	}
	if w := a.limiter.wait("192.0.2.1", testKeyID); w != 2*time.Second {
		t.Fatalf("source wait %v, want 2s", w)
	}
	if w := a.limiter.wait("198.51.100.1", testKeyID); w != 0 {
		t.Fatalf("key wait %v after its success, want 0", w)
	}
}

func TestRequestTokens(t *testing.T) {
	c := newClock()
	a := newTestAuthenticatorWith(t, Options{Now: c.now, Throttle: testThrottle})
	tok, _, err := a.IssueToken(t.Context(), Principal{AccessKeyID: testKeyID})
	if err != nil {
		t.Fatal(err)
	}
	r, att := basicRequest(t, "192.0.2.1:1", "AWS", tok)
	if _, err := a.Request(r); err != nil || att.AccessKeyID != testKeyID || att.Result != ResultOK {
		t.Fatalf("token: %v, %+v", err, att)
	}
	// Past its expiry, so that the failures below fall in one window.
	c.advance(TokenTTL)
	for _, tc := range []struct {
		name, token, wantKey string
		want                 error
	}{
		{"expired", tok, testKeyID, ErrTokenExpired},
		{"tampered", tok[:len(tok)-2] + "xx", testKeyID, ErrBadCredentials},
		{"garbage", "not-a-token", "", ErrBadCredentials},
	} {
		r, att := basicRequest(t, "192.0.2.2:1", "AWS", tc.token)
		if _, err := a.Request(r); !errors.Is(err, tc.want) || att.Result != ResultFailed || att.AccessKeyID != tc.wantKey {
			t.Errorf("%s token: %v, %+v", tc.name, err, att)
		}
	}
	if w := a.limiter.wait("192.0.2.2", ""); w != 0 {
		t.Fatalf("three failures wait %v", w)
	}
	r, _ = basicRequest(t, "192.0.2.2:1", "AWS", "x")
	_, _ = a.Request(r)
	if w := a.limiter.wait("192.0.2.2", ""); w != time.Second {
		t.Fatalf("four token failures: wait %v, want 1s", w)
	}
}

func TestRegistryMiddlewareThrottles(t *testing.T) {
	c := newClock()
	a := newTestAuthenticatorWith(t, Options{Now: c.now, Throttle: testThrottle})
	h := RegistryMiddleware(a, false, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	var statuses []int
	var last *httptest.ResponseRecorder
	for range 6 {
		r, _ := basicRequest(t, "192.0.2.1:1", testKeyID, "wrong")
		last = httptest.NewRecorder()
		h.ServeHTTP(last, r)
		statuses = append(statuses, last.Code)
	}
	if fmt.Sprint(statuses) != "[401 401 401 401 429 429]" {
		t.Fatalf("statuses %v", statuses)
	}
	if last.Header().Get("Retry-After") != "1" || last.Header().Get("WWW-Authenticate") != "" ||
		strings.TrimSpace(last.Body.String()) != `{"errors":[{"code":"TOOMANYREQUESTS","message":"Rate exceeded"}]}` {
		t.Fatalf("429 answer: %v %q", last.Header(), last.Body.String())
	}
	c.advance(time.Duration(mustAtoi(t, last.Header().Get("Retry-After"))) * time.Second)
	r, _ := basicRequest(t, "192.0.2.1:1", testKeyID, testSecret)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Fatalf("after Retry-After: %d %s", rec.Code, rec.Body.String())
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
