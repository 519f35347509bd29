package events

import (
	"net/url"
	"sync"
	"time"
)

// WebhookState is what this node knows of a webhook's deliveries, for the console: how its
// current event is going and the last error. (What is pending is in the store, shared by the
// nodes: its cursor against the end of the outbox.)
type WebhookState struct {
	Name string
	// Endpoint is the URL's scheme and host only: a path or query may hold a token.
	Endpoint string
	// Failing is how many attempts at the current event have failed in a row (0: delivering).
	Failing int
	// Failures counts every failed attempt since this node started.
	Failures    int64
	LastError   string
	LastErrorAt time.Time
}

// deliveryState is a worker's WebhookState, written by the worker and read by the console.
type deliveryState struct {
	mu sync.Mutex
	s  WebhookState
}

func (d *deliveryState) ok() {
	d.mu.Lock()
	d.s.Failing = 0
	d.mu.Unlock()
}

func (d *deliveryState) failed(attempt int, err error, at time.Time) {
	d.mu.Lock()
	d.s.Failing, d.s.LastError, d.s.LastErrorAt = attempt, err.Error(), at
	d.s.Failures++
	d.mu.Unlock()
}

// Webhooks returns the delivery state of each configured webhook on this node; nil for a nil
// Dispatcher (no events configured).
func (d *Dispatcher) Webhooks() []WebhookState {
	if d == nil {
		return nil
	}
	out := make([]WebhookState, len(d.workers))
	for i, w := range d.workers {
		w.state.mu.Lock()
		out[i] = w.state.s
		w.state.mu.Unlock()
		out[i].Name = w.hook.Name
		if u, err := url.Parse(w.hook.URL); err == nil {
			out[i].Endpoint = u.Scheme + "://" + u.Host
		}
	}
	return out
}
