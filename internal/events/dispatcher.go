package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lading-registry/lading/internal/store"
)

// Store is the outbox as the dispatcher needs it; store/sqlite implements it.
type Store interface {
	// ReadOutbox returns up to limit events with a sequence number above afterSeq, in order.
	ReadOutbox(ctx context.Context, afterSeq int64, limit int) ([]store.OutboxEvent, error)
	// InitWebhookCursors makes the set of webhook cursors exactly names, new ones at the end
	// of the outbox, and returns each one's position.
	InitWebhookCursors(ctx context.Context, names []string) (map[string]int64, error)
	// AdvanceWebhookCursor records that webhook has received every event up to seq.
	AdvanceWebhookCursor(ctx context.Context, webhook string, seq int64) error
	// PruneOutbox deletes events written before the time that every webhook has received.
	PruneOutbox(ctx context.Context, before time.Time) (int64, error)
	// WebhookCursors returns every webhook's position and the outbox's last sequence number.
	WebhookCursors(ctx context.Context) (positions map[string]int64, end int64, err error)
}

// LeaseRunner runs work only while this node holds the lease name, cancelling it when the
// lease is lost (internal/lease).
type LeaseRunner interface {
	Run(ctx context.Context, name string, work func(ctx context.Context))
}

// Options tune a Dispatcher; zero values take the defaults shown.
type Options struct {
	// Client sends the requests. Default: a client that does not follow redirects (a 3xx is a
	// failed delivery, as a webhook that moved should be reconfigured, not guessed at).
	Client *http.Client
	// RequestTimeout bounds one delivery attempt, response included. Default 10 s.
	RequestTimeout time.Duration
	// PollInterval is how often an idle webhook looks for events that Notify did not announce
	// (written by another process or node). Default 1 s.
	PollInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts at one event: it doubles from
	// MinBackoff up to MaxBackoff, with jitter. Defaults 1 s and 5 min.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// BatchSize is how many events a webhook reads from the outbox at a time. Default 100.
	BatchSize int
	// Retention is how long a delivered event stays in the outbox. Default 24 h.
	Retention time.Duration
	// PruneInterval is how often delivered events past Retention are deleted. Default 10 min.
	PruneInterval time.Duration
	// Registerer, when set, receives the dispatcher's metrics.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	UserAgent  string // default "lading-events/1"
	// Leases, when set, has each webhook served by one node at a time among the nodes that
	// share the store (a lease per webhook): in steady state a webhook gets each event once,
	// and when the node serving it dies another takes over from the stored cursor. Nil: this
	// process is the only one delivering.
	Leases LeaseRunner
}

func (o *Options) defaults() {
	if o.Client == nil {
		o.Client = &http.Client{
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	setDefault(&o.RequestTimeout, 10*time.Second)
	setDefault(&o.PollInterval, time.Second)
	setDefault(&o.MinBackoff, time.Second)
	setDefault(&o.MaxBackoff, 5*time.Minute)
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	setDefault(&o.Retention, 24*time.Hour)
	setDefault(&o.PruneInterval, 10*time.Minute)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.UserAgent == "" {
		o.UserAgent = "lading-events/1"
	}
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Dispatcher delivers the outbox to webhooks; see the package documentation.
type Dispatcher struct {
	st      Store
	opts    Options
	log     *slog.Logger
	workers []*worker
	metrics *metrics
	running atomic.Bool
}

// NewDispatcher checks the webhooks and records a delivery cursor for each one not seen
// before (at the end of the outbox), forgetting those no longer configured. Call it before
// the registry starts taking changes, so that a new webhook misses none of them. With no
// webhook, the dispatcher only prunes the outbox.
func NewDispatcher(ctx context.Context, st Store, hooks []Webhook, opts Options) (*Dispatcher, error) {
	if err := checkWebhooks(hooks); err != nil {
		return nil, err
	}
	opts.defaults()
	names := make([]string, len(hooks))
	for i, h := range hooks {
		names[i] = h.Name
	}
	positions, err := st.InitWebhookCursors(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	d := &Dispatcher{st: st, opts: opts, log: opts.Logger, metrics: newMetrics(opts.Registerer)}
	for _, h := range hooks {
		d.metrics.delivered.WithLabelValues(h.Name)
		d.metrics.failures.WithLabelValues(h.Name)
		d.metrics.failing.WithLabelValues(h.Name).Set(0)
		if h.Secret == "" {
			d.log.Warn("event webhook has no secret: its requests are not signed", "webhook", h.Name)
		}
		d.workers = append(d.workers, &worker{
			d:    d,
			hook: h,
			pos:  positions[h.Name],
			wake: make(chan struct{}, 1),
		})
	}
	return d, nil
}

// Notify tells the dispatcher that events were written; it never blocks. A nil Dispatcher
// ignores it, so callers need not check whether events are configured.
func (d *Dispatcher) Notify() {
	if d == nil {
		return
	}
	for _, w := range d.workers {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Run delivers events until ctx ends, then returns nil once every webhook's goroutine has
// stopped. An interrupted delivery is made again on the next start.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("events: dispatcher already running")
	}
	defer d.running.Store(false)
	var wg sync.WaitGroup
	for _, w := range d.workers {
		wg.Go(func() { w.run(ctx) })
	}
	wg.Go(func() { d.prune(ctx) })
	wg.Wait()
	return nil
}

func (d *Dispatcher) prune(ctx context.Context) {
	t := time.NewTicker(d.opts.PruneInterval)
	defer t.Stop()
	for {
		n, err := d.st.PruneOutbox(ctx, time.Now().Add(-d.opts.Retention))
		switch {
		case err != nil && ctx.Err() == nil:
			d.log.Warn("prune event outbox", "err", err)
		case n > 0:
			d.log.Debug("pruned delivered events", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// worker delivers to one webhook, in outbox order.
type worker struct {
	d     *Dispatcher
	hook  Webhook
	pos   int64 // the last event delivered (or skipped by the filter)
	wake  chan struct{}
	state deliveryState
}

func (w *worker) run(ctx context.Context) {
	if w.d.opts.Leases == nil {
		w.deliverAll(ctx)
		return
	}
	w.d.opts.Leases.Run(ctx, "webhook/"+w.hook.Name, func(ctx context.Context) {
		// Another node may have delivered since this one last held the lease.
		positions, _, err := w.d.st.WebhookCursors(ctx)
		if err != nil {
			if ctx.Err() == nil {
				w.d.log.Warn("read event webhook cursor", "webhook", w.hook.Name, "err", err)
			}
			return // tried again when the lease is next renewed
		}
		w.pos = max(w.pos, positions[w.hook.Name])
		w.deliverAll(ctx)
	})
}

// deliverAll delivers the outbox's events in order until ctx ends.
func (w *worker) deliverAll(ctx context.Context) {
	opts := &w.d.opts
	poll := time.NewTicker(opts.PollInterval)
	defer poll.Stop()
	for ctx.Err() == nil {
		evs, err := w.d.st.ReadOutbox(ctx, w.pos, opts.BatchSize)
		if err != nil {
			if ctx.Err() == nil {
				w.d.log.Warn("read event outbox", "webhook", w.hook.Name, "err", err)
			}
			evs = nil
		}
		if len(evs) == 0 {
			select {
			case <-ctx.Done():
			case <-w.wake:
			case <-poll.C:
			}
			continue
		}
		saved := w.pos
		for _, ev := range evs {
			if !w.hook.Wants(ev.DetailType) {
				w.pos = ev.Seq
				continue
			}
			if !w.deliver(ctx, ev) {
				break
			}
			w.pos = ev.Seq
			w.save(ctx)
			saved = w.pos
		}
		if w.pos != saved {
			w.save(ctx) // events the filter skipped
		}
	}
}

// save stores the cursor, even while shutting down, so that what was delivered is not sent
// again. A failure is only logged: the worst it costs is a second delivery after a restart,
// which at-least-once allows.
func (w *worker) save(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := w.d.st.AdvanceWebhookCursor(ctx, w.hook.Name, w.pos); err != nil {
		w.d.log.Warn("save event webhook cursor", "webhook", w.hook.Name, "seq", w.pos, "err", err)
	}
}

// deliver posts ev until the webhook accepts it, and reports false if ctx ended first.
func (w *worker) deliver(ctx context.Context, ev store.OutboxEvent) bool {
	body, err := MarshalEnvelope(ev)
	if err != nil {
		// The store checked the event when it was written, so this cannot happen; retrying
		// would not help, and holding the queue for it would stop every later event.
		w.d.log.Error("cannot encode event; not delivered", "webhook", w.hook.Name, "seq", ev.Seq, "id", ev.ID, "err", err)
		return true
	}
	m := w.d.metrics
	for attempt := 1; ; attempt++ {
		retryAfter, err := w.post(ctx, ev, body)
		if err == nil {
			m.delivered.WithLabelValues(w.hook.Name).Inc()
			m.failing.WithLabelValues(w.hook.Name).Set(0)
			w.state.ok()
			if attempt > 1 {
				w.d.log.Info("event webhook recovered", "webhook", w.hook.Name, "id", ev.ID, "attempts", attempt)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		m.failures.WithLabelValues(w.hook.Name).Inc()
		m.failing.WithLabelValues(w.hook.Name).Set(float64(attempt))
		w.state.failed(attempt, err, time.Now())
		wait := jitter(backoff(attempt, w.d.opts.MinBackoff, w.d.opts.MaxBackoff))
		if retryAfter > wait {
			wait = min(retryAfter, w.d.opts.MaxBackoff)
		}
		w.d.log.Warn("event delivery failed; will retry", "webhook", w.hook.Name, "id", ev.ID,
			"detail_type", ev.DetailType, "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// errRejected is a response other than 2xx.
var errRejected = errors.New("webhook rejected the event")

func (w *worker) post(ctx context.Context, ev store.OutboxEvent, body []byte) (retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, w.d.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.hook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.d.opts.UserAgent)
	req.Header.Set(EventIDHeader, ev.ID)
	req.Header.Set(EventTypeHeader, ev.DetailType)
	if w.hook.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(w.hook.Secret, body))
	}
	resp, err := w.d.opts.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// Drain a little so the connection can be reused; the answer itself is not needed.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	return parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), fmt.Errorf("%w: HTTP %d", errRejected, resp.StatusCode)
}

// backoff is the wait before retry number attempt (1-based): min doubling up to max.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// jitter spreads d over [d/2, d], so that webhooks failing together do not retry together.
func jitter(d time.Duration) time.Duration {
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date; 0 if absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

type metrics struct {
	delivered *prometheus.CounterVec
	failures  *prometheus.CounterVec
	failing   *prometheus.GaugeVec
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lading_events_delivered_total", Help: "Events a webhook accepted.",
		}, []string{"webhook"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lading_events_delivery_failures_total", Help: "Failed attempts to deliver an event to a webhook.",
		}, []string{"webhook"}),
		failing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lading_events_webhook_consecutive_failures", Help: "Failed attempts in a row at a webhook's current event; 0 when healthy.",
		}, []string{"webhook"}),
	}
	if r != nil {
		r.MustRegister(m.delivered, m.failures, m.failing)
	}
	return m
}
