package events_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lading-registry/lading/internal/events"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

var origin = events.Origin{Account: "123456789012", Region: "us-east-1"}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fast keeps retries and polling short so that tests take milliseconds, not minutes.
func fast() events.Options {
	return events.Options{
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		PollInterval: 20 * time.Millisecond, RequestTimeout: 5 * time.Second, Logger: quiet(),
	}
}

// statusHang makes the receiver hold the request open until the client gives up or the test ends.
const statusHang = -1

type request struct {
	id     string
	body   []byte
	header http.Header
	status int
	at     time.Time
}

// receiver is a webhook endpoint that checks what it is sent and records it.
type receiver struct {
	t       *testing.T
	secret  string
	srv     *httptest.Server
	respond func(attempt int, h http.Header) int
	release chan struct{}
	hung    chan struct{} // closed at the first hanging request
	hungOne sync.Once

	mu   sync.Mutex
	reqs []request
}

func newReceiver(t *testing.T, secret string, respond func(attempt int, h http.Header) int) *receiver {
	t.Helper()
	r := &receiver{t: t, secret: secret, respond: respond, release: make(chan struct{}), hung: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	// Cleanups run last-in first-out: release hanging requests, then close the server.
	t.Cleanup(r.srv.Close)
	t.Cleanup(func() { close(r.release) })
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
		r.t.Errorf("%s with Content-Type %q, want a JSON POST", req.Method, req.Header.Get("Content-Type"))
	}
	var env struct {
		ID         string `json:"id"`
		DetailType string `json:"detail-type"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		r.t.Errorf("body is not JSON: %v", err)
	}
	if got := req.Header.Get(events.EventIDHeader); got != env.ID {
		r.t.Errorf("%s = %q, body id %q", events.EventIDHeader, got, env.ID)
	}
	if got := req.Header.Get(events.EventTypeHeader); got != env.DetailType {
		r.t.Errorf("%s = %q, body detail-type %q", events.EventTypeHeader, got, env.DetailType)
	}
	sig := req.Header.Get(events.SignatureHeader)
	if r.secret == "" && sig != "" {
		r.t.Errorf("signature %q from a webhook without a secret", sig)
	}
	if r.secret != "" && !events.Verify(r.secret, body, sig) {
		r.t.Errorf("signature %q does not verify with this webhook's secret", sig)
	}
	r.mu.Lock()
	attempt := len(r.reqs) + 1
	r.mu.Unlock()
	status := http.StatusOK
	if r.respond != nil {
		status = r.respond(attempt, w.Header())
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, request{id: env.ID, body: body, header: req.Header.Clone(), status: status, at: time.Now()})
	r.mu.Unlock()
	if status == statusHang {
		r.hungOne.Do(func() { close(r.hung) })
		select {
		case <-req.Context().Done():
		case <-r.release:
		}
		status = http.StatusServiceUnavailable
	}
	w.WriteHeader(status)
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// accepted lists the ids of the events it answered with a 2xx, in order.
func (r *receiver) accepted() []string {
	var ids []string
	for _, q := range r.requests() {
		if q.status >= 200 && q.status < 300 {
			ids = append(ids, q.id)
		}
	}
	return ids
}

func (r *receiver) hook(name string) events.Webhook {
	return events.Webhook{Name: name, URL: r.srv.URL + "/hook", Secret: r.secret}
}

func openDB(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// start runs a dispatcher until the returned stop is called (or the test ends).
func start(t *testing.T, db events.Store, hooks []events.Webhook, opts events.Options) (*events.Dispatcher, func()) {
	t.Helper()
	d, err := events.NewDispatcher(context.Background(), db, hooks, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return d, stop
}

func pushEvent(t *testing.T, i int) store.OutboxEvent {
	t.Helper()
	ev, err := origin.ImageAction(events.ImageAction{Action: events.ActionPush, Repository: "app",
		Digest: fmt.Sprintf("sha256:%064x", i), Tag: "v" + strconv.Itoa(i)})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// appendPushes writes n events, one transaction each, and returns their ids in order.
func appendPushes(t *testing.T, db *sqlite.DB, d *events.Dispatcher, from, n int) []string {
	t.Helper()
	var ids []string
	for i := from; i < from+n; i++ {
		ev := pushEvent(t, i)
		if err := db.AppendOutbox(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		d.Notify()
		ids = append(ids, ev.ID)
	}
	return ids
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeliversSignedEnvelopesToEveryWebhook(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "meta.db"))
	a := newReceiver(t, "secret-a", nil)
	b := newReceiver(t, "secret-b", nil)
	unsigned := newReceiver(t, "", nil)
	d, _ := start(t, db, []events.Webhook{a.hook("a"), b.hook("b"), unsigned.hook("unsigned")}, fast())

	now := time.Now()
	var evs []store.OutboxEvent
	add := func(ev store.OutboxEvent, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	digest := fmt.Sprintf("sha256:%064x", 42)
	add(origin.ImageAction(events.ImageAction{Action: events.ActionPush, Repository: "app", Digest: digest, Tag: "latest"}))
	add(origin.ImageScan(events.ScanCompleted{Repository: "app", Digest: digest, SeverityCounts: map[string]int{"HIGH": 2}}))
	add(origin.InspectorScan(events.ScanCompleted{Repository: "app", Digest: digest, Tags: []string{"latest"}}))
	add(origin.InspectorFinding(events.Finding{ARN: "arn:aws:inspector2:us-east-1:123456789012:finding/0123456789abcdef0123456789abcdef",
		Severity: "HIGH", Status: "ACTIVE", FirstObservedAt: now, LastObservedAt: now,
		Vulnerability: events.Vulnerability{ID: "CVE-2024-0001", Source: "NVD"}, Image: events.Image{Repository: "app", Digest: digest}}))
	add(origin.ImageAction(events.ImageAction{Action: events.ActionDelete, Repository: "app", Digest: digest}))
	if err := db.AppendOutbox(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
	d.Notify()

	stored, err := db.ReadOutbox(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*receiver{a, b, unsigned} {
		waitFor(t, "every event at every webhook", func() bool { return len(r.accepted()) >= len(evs) })
		reqs := r.requests()
		if len(reqs) != len(evs) {
			t.Fatalf("%d requests, want %d", len(reqs), len(evs))
		}
		for i, q := range reqs {
			want, err := events.MarshalEnvelope(stored[i])
			if err != nil {
				t.Fatal(err)
			}
			if q.id != evs[i].ID || string(q.body) != string(want) {
				t.Errorf("request %d: id %s body\n%s\nwant id %s body\n%s", i, q.id, q.body, evs[i].ID, want)
			}
		}
	}
	// Each webhook signs with its own secret.
	q := a.requests()[0]
	if events.Verify("secret-b", q.body, q.header.Get(events.SignatureHeader)) {
		t.Error("webhook a's request verifies with webhook b's secret")
	}
}

func TestRetriesWithBackoffUntilAccepted(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "meta.db"))
	r := newReceiver(t, "s", func(attempt int, _ http.Header) int {
		if attempt <= 3 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	opts := fast()
	opts.MinBackoff, opts.MaxBackoff = 40*time.Millisecond, time.Second
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	d, _ := start(t, db, []events.Webhook{r.hook("r")}, opts)
	ids := appendPushes(t, db, d, 0, 2)
	waitFor(t, "both events accepted", func() bool { return len(r.accepted()) == 2 })

	reqs := r.requests()
	if len(reqs) != 5 {
		t.Fatalf("%d requests, want 3 failures, the retry that succeeds, then the second event", len(reqs))
	}
	for i := range 4 {
		if reqs[i].id != ids[0] {
			t.Fatalf("request %d was for %s: the second event went before the first was accepted", i, reqs[i].id)
		}
	}
	if reqs[4].id != ids[1] {
		t.Fatalf("last request for %s, want the second event", reqs[4].id)
	}
	for name, want := range map[string]float64{
		"lading_events_delivered_total":              2,
		"lading_events_delivery_failures_total":      3,
		"lading_events_webhook_consecutive_failures": 0,
	} {
		if got := metricValue(t, reg, name, "r"); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// The console's view of the same: recovered, three failures, the last one's error.
	if st := d.Webhooks(); len(st) != 1 || st[0].Name != "r" || st[0].Failing != 0 || st[0].Failures != 3 || st[0].LastError == "" ||
		st[0].LastErrorAt.IsZero() || !strings.HasPrefix(st[0].Endpoint, "http://127.0.0.1:") {
		t.Errorf("webhook state %+v", st)
	}
	// Waits double from 40 ms; jitter keeps at least half of each.
	for i, floor := range []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond} {
		if gap := reqs[i+1].at.Sub(reqs[i].at); gap < floor {
			t.Errorf("retry %d came after %v, want at least %v", i+1, gap, floor)
		}
	}
}

func metricValue(t *testing.T, g prometheus.Gatherer, name, webhook string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "webhook" && l.GetValue() == webhook {
					if c := m.GetCounter(); c != nil {
						return c.GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no metric %s{webhook=%q}", name, webhook)
	return 0
}

func TestHonoursRetryAfter(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "meta.db"))
	r := newReceiver(t, "s", func(attempt int, h http.Header) int {
		if attempt == 1 {
			h.Set("Retry-After", "1")
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	})
	opts := fast()
	opts.MaxBackoff = 5 * time.Second
	d, _ := start(t, db, []events.Webhook{r.hook("r")}, opts)
	appendPushes(t, db, d, 0, 1)
	waitFor(t, "the retry", func() bool { return len(r.accepted()) == 1 })
	reqs := r.requests()
	if gap := reqs[1].at.Sub(reqs[0].at); gap < time.Second {
		t.Errorf("retried after %v despite Retry-After: 1", gap)
	}
}

func TestDeadWebhooksDoNotDelayHealthyOnes(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "meta.db"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "http://" + ln.Addr().String() + "/hook"
	_ = ln.Close()
	failing := newReceiver(t, "s", func(int, http.Header) int { return http.StatusInternalServerError })
	hanging := newReceiver(t, "s", func(int, http.Header) int { return statusHang })
	healthy := newReceiver(t, "s", nil)

	opts := fast()
	opts.RequestTimeout = time.Minute // a hanging webhook really hangs for the whole test
	d, _ := start(t, db, []events.Webhook{
		{Name: "refused", URL: refusedURL, Secret: "s"},
		failing.hook("failing"), hanging.hook("hanging"), healthy.hook("healthy"),
	}, opts)
	ids := appendPushes(t, db, d, 0, 20)
	waitFor(t, "the healthy webhook to get every event", func() bool { return len(healthy.accepted()) == len(ids) })
	if got := healthy.accepted(); !slices.Equal(got, ids) {
		t.Errorf("healthy webhook got %v, want %v in order", got, ids)
	}
	// The hanging webhook's one request may reach its handler after the healthy webhook is
	// done: wait for it, then check no second one followed while the first is open.
	select {
	case <-hanging.hung:
	case <-time.After(10 * time.Second):
		t.Fatal("the hanging webhook was never sent its request")
	}
	if n := len(hanging.requests()); n != 1 {
		t.Errorf("hanging webhook saw %d requests, want the 1 still open", n)
	}
	waitFor(t, "the failing webhook to be retried", func() bool { return len(failing.requests()) >= 3 })
	for _, q := range failing.requests() {
		if q.id != ids[0] {
			t.Fatalf("failing webhook was sent %s before accepting the first event", q.id)
		}
	}
}

// Stopping the dispatcher and closing the database mid-way loses nothing: the next start
// resumes where the cursor stopped.
func TestResumesAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	var acceptAll atomic.Bool
	var ok atomic.Int32
	r := newReceiver(t, "s", func(int, http.Header) int {
		if acceptAll.Load() || ok.Add(1) <= 5 {
			return http.StatusOK
		}
		return http.StatusBadGateway
	})
	db1, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	d1, stop1 := start(t, db1, []events.Webhook{r.hook("r")}, fast())
	ids := appendPushes(t, db1, d1, 0, 10)
	waitFor(t, "five deliveries and a failure", func() bool { return len(r.accepted()) == 5 && len(r.requests()) > 5 })
	stop1()
	if err := db1.Close(); err != nil {
		t.Fatal(err)
	}
	before := r.accepted()

	acceptAll.Store(true)
	db2 := openDB(t, path)
	start(t, db2, []events.Webhook{r.hook("r")}, fast())
	waitFor(t, "the rest after the restart", func() bool { return len(r.accepted()) >= len(ids) })
	if !slices.Equal(before, ids[:5]) {
		t.Errorf("before the restart: %v, want %v", before, ids[:5])
	}
	if got := r.accepted(); !slices.Equal(got, ids) {
		t.Errorf("accepted overall %v, want each event once, in order: %v", got, ids)
	}
}

func TestNewWebhookStartsFromNowAndRemovedOneIsForgotten(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	db := openDB(t, path)
	for i := range 3 {
		if err := db.AppendOutbox(ctx, pushEvent(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	old := newReceiver(t, "s", nil)
	d, stop := start(t, db, []events.Webhook{old.hook("old")}, fast())
	fresh := appendPushes(t, db, d, 3, 1)
	waitFor(t, "the new event", func() bool { return len(old.accepted()) == 1 })
	if got := old.accepted(); got[0] != fresh[0] {
		t.Fatalf("a new webhook was sent %s first, want only events after it was added (%s)", got[0], fresh[0])
	}
	stop()

	replacement := newReceiver(t, "s", nil)
	d2, _ := start(t, db, []events.Webhook{replacement.hook("replacement")}, fast())
	later := appendPushes(t, db, d2, 4, 1)
	waitFor(t, "the replacement's event", func() bool { return len(replacement.accepted()) == 1 })
	if got := replacement.accepted(); got[0] != later[0] {
		t.Fatalf("replacement was sent %s, want %s", got[0], later[0])
	}
	positions, _, err := db.WebhookCursors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := positions["old"]; ok || len(positions) != 1 {
		t.Errorf("cursors %v: want only the configured webhook", positions)
	}
}

// emptyReads counts the reads of the outbox that found nothing, once they have returned.
type emptyReads struct {
	events.Store
	n atomic.Int64
}

func (e *emptyReads) ReadOutbox(ctx context.Context, afterSeq int64, limit int) ([]store.OutboxEvent, error) {
	evs, err := e.Store.ReadOutbox(ctx, afterSeq, limit)
	if err == nil && len(evs) == 0 {
		e.n.Add(1)
	}
	return evs, err
}

func TestNotifyWakesAnIdleDispatcher(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "meta.db"))
	r := newReceiver(t, "s", nil)
	opts := fast()
	opts.PollInterval = time.Hour // only Notify can wake it in time
	counted := &emptyReads{Store: db}
	d, _ := start(t, counted, []events.Webhook{r.hook("r")}, opts)
	// Idle: the worker found the outbox empty, and its next step is to wait for a wake-up.
	waitFor(t, "an empty read of the outbox", func() bool { return counted.n.Load() > 0 })
	ids := appendPushes(t, db, d, 0, 3)
	waitFor(t, "delivery after Notify", func() bool { return len(r.accepted()) == 3 })
	if !slices.Equal(r.accepted(), ids) {
		t.Errorf("got %v, want %v", r.accepted(), ids)
	}
	var nilDispatcher *events.Dispatcher
	nilDispatcher.Notify() // events not configured: a no-op, not a panic
}

func TestPollFindsEventsWrittenByAnotherWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	db := openDB(t, path)
	other := openDB(t, path) // another process's connection to the same database
	r := newReceiver(t, "s", nil)
	start(t, db, []events.Webhook{r.hook("r")}, fast())
	ev := pushEvent(t, 1)
	if err := other.AppendOutbox(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the poll to find it", func() bool { return len(r.accepted()) == 1 })
	if r.accepted()[0] != ev.ID {
		t.Errorf("got %s, want %s", r.accepted()[0], ev.ID)
	}
}

func TestDetailTypeFilter(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "meta.db"))
	r := newReceiver(t, "s", nil)
	hook := r.hook("findings-only")
	hook.DetailTypes = []string{events.DetailTypeInspectorScan}
	d, _ := start(t, db, []events.Webhook{hook}, fast())
	scan, err := origin.InspectorScan(events.ScanCompleted{Repository: "app", Digest: fmt.Sprintf("sha256:%064x", 7)})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AppendOutbox(ctx, pushEvent(t, 1), scan, pushEvent(t, 2)); err != nil {
		t.Fatal(err)
	}
	d.Notify()
	stored, _ := db.ReadOutbox(ctx, 0, 10)
	last := stored[len(stored)-1].Seq
	waitFor(t, "the cursor to pass the skipped events", func() bool {
		positions, _, err := db.WebhookCursors(ctx)
		return err == nil && positions["findings-only"] == last
	})
	if got := r.accepted(); !slices.Equal(got, []string{scan.ID}) {
		t.Errorf("got %v, want only the Inspector2 Scan event %s", got, scan.ID)
	}
}

func TestRedirectIsAFailedDelivery(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "meta.db"))
	target := newReceiver(t, "s", nil)
	moved := newReceiver(t, "s", func(_ int, h http.Header) int {
		h.Set("Location", target.srv.URL+"/hook")
		return http.StatusTemporaryRedirect
	})
	d, _ := start(t, db, []events.Webhook{moved.hook("moved")}, fast())
	appendPushes(t, db, d, 0, 1)
	waitFor(t, "a retry", func() bool { return len(moved.requests()) >= 2 })
	if n := len(target.requests()); n != 0 {
		t.Errorf("the redirect was followed: the target got %d requests", n)
	}
}

func TestPrunesDeliveredEvents(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "meta.db"))
	r := newReceiver(t, "s", nil)
	opts := fast()
	opts.Retention, opts.PruneInterval = time.Nanosecond, 10*time.Millisecond
	d, _ := start(t, db, []events.Webhook{r.hook("r")}, opts)
	appendPushes(t, db, d, 0, 5)
	waitFor(t, "delivery", func() bool { return len(r.accepted()) == 5 })
	waitFor(t, "the outbox to be pruned", func() bool {
		evs, err := db.ReadOutbox(ctx, 0, 10)
		return err == nil && len(evs) == 0
	})
}

func TestNewDispatcherRejectsBadWebhooks(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "meta.db"))
	for _, hooks := range [][]events.Webhook{
		{{Name: "a", URL: "http://127.0.0.1:1/"}, {Name: "a", URL: "http://127.0.0.1:2/"}},
		{{Name: "", URL: "http://127.0.0.1:1/"}},
		{{Name: "a", URL: "unix:///run/hook.sock"}},
		{{Name: "a", URL: "http://127.0.0.1:1/", DetailTypes: []string{"ECR Image Pull"}}},
	} {
		if _, err := events.NewDispatcher(context.Background(), db, hooks, fast()); !errors.Is(err, events.ErrConfig) {
			t.Errorf("%+v: got %v, want ErrConfig", hooks, err)
		}
	}
}

// The crash test: a child process writes events and is killed with SIGKILL while a delivery
// is in flight; a new dispatcher on the same database then delivers every event.

const (
	crashChildEnv = "LADING_EVENTS_CRASH_CHILD"
	crashDBEnv    = "LADING_EVENTS_CRASH_DB"
	crashURLEnv   = "LADING_EVENTS_CRASH_URL"
	crashEvents   = 12
	crashAccepted = 3 // the receiver accepts this many, then hangs
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(crashChild())
	}
	os.Exit(m.Run())
}

// crashChild runs in the child process: it starts a dispatcher, writes the events, says so,
// and waits to be killed.
func crashChild() int {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, os.Getenv(crashDBEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	opts := events.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, PollInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	d, err := events.NewDispatcher(ctx, db, []events.Webhook{{Name: "crash", URL: os.Getenv(crashURLEnv), Secret: "s"}}, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	go func() { _ = d.Run(ctx) }()
	for i := range crashEvents {
		ev, err := origin.ImageAction(events.ImageAction{Action: events.ActionPush, Repository: "crash", Digest: fmt.Sprintf("sha256:%064x", i)})
		if err == nil {
			err = db.AppendOutbox(ctx, ev)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		d.Notify()
	}
	fmt.Println("appended")
	time.Sleep(time.Minute) // the parent kills us well before this
	return 3
}

func TestCrashWithEventsUndeliveredLosesNone(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "meta.db")
	var afterCrash atomic.Bool
	var ok atomic.Int32
	r := newReceiver(t, "s", func(int, http.Header) int {
		if afterCrash.Load() || ok.Add(1) <= crashAccepted {
			return http.StatusOK
		}
		return statusHang
	})

	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"=1", crashDBEnv+"="+path, crashURLEnv+"="+r.srv.URL+"/hook")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if s != "appended\n" {
			t.Fatalf("child said %q", s)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("child did not write its events")
	}
	select {
	case <-r.hung:
	case <-time.After(20 * time.Second):
		t.Fatal("child never got to the hanging delivery")
	}
	// kill -9 while a delivery is in flight.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL", err)
	}
	before := r.accepted()

	afterCrash.Store(true)
	db := openDB(t, path)
	stored, err := db.ReadOutbox(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != crashEvents {
		t.Fatalf("%d events survived the crash, want %d", len(stored), crashEvents)
	}
	var ids []string
	for _, ev := range stored {
		ids = append(ids, ev.ID)
	}
	start(t, db, []events.Webhook{{Name: "crash", URL: r.srv.URL + "/hook", Secret: "s"}}, fast())
	waitFor(t, "every event after the restart", func() bool { return len(r.accepted()) >= crashEvents })
	if !slices.Equal(before, ids[:crashAccepted]) {
		t.Errorf("accepted before the crash %v, want %v", before, ids[:crashAccepted])
	}
	// The cursor survived the crash: what was accepted is not sent again, and the event in
	// flight at the crash comes first after it.
	if got := r.accepted(); !slices.Equal(got, ids) {
		t.Errorf("accepted overall %v, want %v", got, ids)
	}
}

// BenchmarkDeliver measures end-to-end throughput: events written to the outbox, delivered
// signed to a local webhook, cursor saved after each.
func BenchmarkDeliver(b *testing.B) {
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "meta.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	defer srv.Close()
	d, err := events.NewDispatcher(context.Background(), db, []events.Webhook{{Name: "bench", URL: srv.URL, Secret: "s"}}, fast())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	evs := make([]store.OutboxEvent, b.N)
	for i := range evs {
		evs[i], err = origin.ImageAction(events.ImageAction{Action: events.ActionPush, Repository: "bench", Digest: fmt.Sprintf("sha256:%064x", i)})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < len(evs); i += 100 {
		if err := db.AppendOutbox(context.Background(), evs[i:min(i+100, len(evs))]...); err != nil {
			b.Fatal(err)
		}
		d.Notify()
	}
	for got.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
