package auth

import (
	"container/list"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// ErrThrottled is matched (errors.Is) by a *ThrottledError.
var ErrThrottled = errors.New("too many failed authentications")

// ThrottledError refuses a request, without checking its credentials, because its source or its
// access key failed to authenticate too often of late.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%v: retry after %v", ErrThrottled, e.RetryAfter)
}

func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// RetryAfterSeconds is RetryAfter for a Retry-After header: whole seconds, rounded up, at least 1.
func (e *ThrottledError) RetryAfterSeconds() int {
	return max(1, int((e.RetryAfter+time.Second-1)/time.Second))
}

// ThrottleConfig tunes how failed authentication is slowed down. Zero fields take the defaults.
type ThrottleConfig struct {
	// FreeFailures is how many failures a source or a key may have within Window before backoff
	// starts (default 5).
	FreeFailures int
	// Window is how long a source or key is remembered after its last failure (default 15
	// minutes; never shorter than MaxBackoff, so that waiting out a backoff does not forgive).
	Window time.Duration
	// BaseBackoff is the wait after the first failure beyond the free ones, doubling with each
	// further failure (default 1 s), up to MaxBackoff (default 5 minutes).
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// MaxSubjects bounds how many sources, and how many keys, are remembered (default 10,000
	// each); beyond it the one whose last failure is oldest is forgotten.
	MaxSubjects int
}

func (c ThrottleConfig) withDefaults() ThrottleConfig {
	if c.FreeFailures <= 0 {
		c.FreeFailures = 5
	}
	if c.BaseBackoff <= 0 {
		c.BaseBackoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	c.MaxBackoff = max(c.MaxBackoff, c.BaseBackoff)
	if c.Window <= 0 {
		c.Window = 15 * time.Minute
	}
	c.Window = max(c.Window, c.MaxBackoff)
	if c.MaxSubjects <= 0 {
		c.MaxSubjects = 10000
	}
	return c
}

// backoff is the wait imposed by the over-th failure beyond the free ones.
func (c ThrottleConfig) backoff(over int) time.Duration {
	d := c.BaseBackoff
	for i := 1; i < over && d < c.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, c.MaxBackoff)
}

// limiter remembers recent authentication failures per source (client address) and per access
// key id, and says how long each must wait. Keys are tracked apart from sources so that a
// guesser spraying key ids cannot push the sources out of memory, and the other way round.
type limiter struct {
	cfg ThrottleConfig
	now func() time.Time

	mu      sync.Mutex
	sources subjects
	keys    subjects
}

func newLimiter(cfg ThrottleConfig, now func() time.Time) *limiter {
	cfg = cfg.withDefaults()
	return &limiter{cfg: cfg, now: now, sources: newSubjects(), keys: newSubjects()}
}

// wait returns how long requests from source, or for key, must wait; zero when they may proceed.
// Either may be empty (unknown).
func (l *limiter) wait(source, key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	return max(l.sources.wait(source, now, l.cfg.Window), l.keys.wait(key, now, l.cfg.Window))
}

// failure records a failed authentication from source claiming key.
func (l *limiter) failure(source, key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.sources.fail(source, now, l.cfg)
	l.keys.fail(key, now, l.cfg)
}

// success forgets the failures of key: its owner has shown the secret. The source's stay, so
// that one valid key does not buy a guesser fresh attempts at others.
func (l *limiter) success(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keys.forget(key)
}

type subject struct {
	name     string
	failures int
	last     time.Time // of the last failure
	until    time.Time // requests are refused until then
}

// subjects is a bounded set of subjects, most recent failure first, so that the back holds
// both the expired ones and the one to evict.
type subjects struct {
	byName map[string]*list.Element
	order  *list.List
}

func newSubjects() subjects {
	return subjects{byName: map[string]*list.Element{}, order: list.New()}
}

func (s *subjects) wait(name string, now time.Time, window time.Duration) time.Duration {
	e, ok := s.byName[name]
	if name == "" || !ok {
		return 0
	}
	sub := e.Value.(*subject)
	if now.Sub(sub.last) >= window {
		s.remove(e)
		return 0
	}
	return max(0, sub.until.Sub(now))
}

func (s *subjects) fail(name string, now time.Time, cfg ThrottleConfig) {
	if name == "" {
		return
	}
	for e := s.order.Back(); e != nil && now.Sub(e.Value.(*subject).last) >= cfg.Window; e = s.order.Back() {
		s.remove(e)
	}
	var sub *subject
	if e, ok := s.byName[name]; ok {
		sub = e.Value.(*subject)
		s.order.MoveToFront(e)
	} else {
		for s.order.Len() >= cfg.MaxSubjects {
			s.remove(s.order.Back())
		}
		sub = &subject{name: name}
		s.byName[name] = s.order.PushFront(sub)
	}
	sub.failures++
	sub.last = now
	if over := sub.failures - cfg.FreeFailures; over > 0 {
		sub.until = now.Add(cfg.backoff(over))
	}
}

func (s *subjects) forget(name string) {
	if e, ok := s.byName[name]; ok {
		s.remove(e)
	}
}

func (s *subjects) remove(e *list.Element) {
	delete(s.byName, e.Value.(*subject).name)
	s.order.Remove(e)
}

func (s *subjects) len() int { return s.order.Len() }

// maxSubjectName bounds what a client-chosen name (a claimed key id) costs in memory and logs;
// AWS key ids are at most 128 characters.
const maxSubjectName = 128

// clientSource is the source a request is throttled under: the peer's IP address (proxies'
// X-Forwarded-For is not trusted), with IPv6 addresses grouped by /64, the block one host
// usually holds.
func clientSource(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return truncate(host, maxSubjectName)
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.WithZone("").Prefix(64)
		return p.String()
	}
	return addr.String()
}
