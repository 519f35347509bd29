package app

import (
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lading-registry/lading/internal/auth"
)

// metrics are the HTTP figures /metrics exposes.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	bytesIn  *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
	// Refused authentications and requests throttled for them, by face ("registry", "ecr").
	authFailures  *prometheus.CounterVec
	authThrottled *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lading_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lading_http_request_duration_seconds", Help: "HTTP request latency by route and status.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"route", "method", "status"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lading_http_request_bytes_total", Help: "Request body bytes received, by route.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lading_http_response_bytes_total", Help: "Response body bytes sent, by route.",
		}, []string{"route"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lading_auth_failures_total", Help: "Requests whose credentials were refused, by face.",
		}, []string{"face"}),
		authThrottled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lading_auth_throttled_total", Help: "Requests refused unchecked after too many failed authentications from their source or for their key, by face.",
		}, []string{"face"}),
	}
	reg.MustRegister(m.requests, m.latency, m.bytesIn, m.bytesOut, m.authFailures, m.authThrottled)
	return m
}

// recorder captures the status and size of a response. It forwards ReadFrom so that blob
// writes that read from a file keep their fast path, and Flush for streaming.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err := rf.ReadFrom(src)
		r.bytes += n
		return n, err
	}
	return io.Copy(struct{ io.Writer }{r}, src)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

// observe wraps a handler with metrics and a structured request log line, which names the
// access key a request authenticated as, or claimed, how its authentication ended and what it
// was authorized for, and hands the request's Attempt to the audit.
func observe(m *metrics, log *slog.Logger, route func(*http.Request) string, audit func(*http.Request, int, *auth.Attempt), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		body := &countingBody{ReadCloser: r.Body}
		r.Body = body
		att := &auth.Attempt{}
		r = r.WithContext(auth.WithAttempt(r.Context(), att))
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		elapsed := time.Since(start)
		name := route(r)
		status := strconv.Itoa(rec.status)
		m.requests.WithLabelValues(name, r.Method, status).Inc()
		m.latency.WithLabelValues(name, r.Method, status).Observe(elapsed.Seconds())
		m.bytesIn.WithLabelValues(name).Add(float64(body.n))
		m.bytesOut.WithLabelValues(name).Add(float64(rec.bytes))
		switch att.Result {
		case auth.ResultFailed:
			m.authFailures.WithLabelValues(att.Face).Inc()
		case auth.ResultThrottled:
			m.authThrottled.WithLabelValues(att.Face).Inc()
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", name),
			slog.Int("status", rec.status), slog.Int64("bytes_in", body.n), slog.Int64("bytes_out", rec.bytes),
			slog.Duration("duration", elapsed), slog.String("remote", r.RemoteAddr),
		}
		if att.AccessKeyID != "" {
			attrs = append(attrs, slog.String("access_key_id", att.AccessKeyID))
		}
		if att.Result != "" {
			attrs = append(attrs, slog.String("auth", string(att.Result)))
		}
		if att.Authz != "" {
			attrs = append(attrs, slog.String("action", att.Action), slog.String("authz", att.Authz))
		}
		log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
		audit(r, rec.status, att)
	})
}
