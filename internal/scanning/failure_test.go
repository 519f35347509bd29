package scanning

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/scanning/policy"
)

// brokenBlobs answers opens of one blob with open, and serves the others.
type brokenBlobs struct {
	Blobs
	broken digest.Digest
	open   func() (blob.ReadSeekCloser, error)
}

func (b brokenBlobs) Open(ctx context.Context, d digest.Digest) (blob.ReadSeekCloser, error) {
	if d == b.broken {
		return b.open()
	}
	return b.Blobs.Open(ctx, d)
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// logLine is one record of a JSON log.
type logLine map[string]any

func logLines(t *testing.T, buf *bytes.Buffer) []logLine {
	t.Helper()
	var out []logLine
	sc := bufio.NewScanner(buf)
	for sc.Scan() {
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// A failed scan tells API clients a stable description: the image's fault in its words, any
// other error only as an id, which finds the log record that holds the error itself.
func TestFailedScanDescriptions(t *testing.T) {
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux"})
	okLayer := func(t *testing.T) []byte { return gzipTar(t, map[string]string{"etc/os-release": debianRelease}) }
	const secret = "open /srv/lading/blobs/sha256/ab/abcd: input/output error"
	internal := regexp.MustCompile(`^The scan failed: internal error \(id ([0-9a-f]{12})\)$`)
	for _, tc := range []struct {
		name   string
		layer  func(t *testing.T) []byte
		config []byte
		// open, when set, replaces the blob store's open of the layer.
		open     func() (blob.ReadSeekCloser, error)
		want     func(layer digest.Digest) string // nil: the internal error's
		logLevel string
	}{
		{name: "store failure", layer: okLayer, config: cfg,
			open: func() (blob.ReadSeekCloser, error) { return nil, errors.New(secret) }, logLevel: "ERROR"},
		{name: "layer not a tar", layer: func(*testing.T) []byte { return []byte("not a layer at all") }, config: cfg,
			want: func(l digest.Digest) string {
				return "UnsupportedImageError: Layer " + l.String() + " is corrupt or in an unsupported format."
			}, logLevel: "WARN"},
		{name: "layer damaged in storage", layer: okLayer, config: cfg,
			open: func() (blob.ReadSeekCloser, error) { return nopCloser{bytes.NewReader([]byte("short"))}, nil },
			want: func(l digest.Digest) string {
				return "UnsupportedImageError: Layer " + l.String() + " is damaged in the registry's storage; push the image again."
			}, logLevel: "WARN"},
		{name: "config not JSON", layer: okLayer, config: []byte("{not json"),
			want: func(digest.Digest) string { return DescBadConfig }, logLevel: "WARN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			var logs bytes.Buffer
			f.svc.cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
			f.svc.cfg.MaxAttempts = 1 // fail at once rather than retry
			if err := f.db.PutScanningPolicy(f.ctx, policy.Policy{ScanType: policy.ScanTypeEnhanced}); err != nil {
				t.Fatal(err)
			}
			dgst, layer := f.pushRaw(t, "app", tc.layer(t), tc.config)
			if tc.open != nil {
				f.svc.blobs = brokenBlobs{Blobs: f.svc.blobs, broken: layer, open: tc.open}
			}
			job, ok, err := f.db.ClaimScanJob(f.ctx, f.svc.owner, f.clock.Now(), time.Minute)
			if err != nil || !ok {
				t.Fatalf("no job queued by the push: %v", err)
			}
			f.svc.runJob(f.ctx, job)
			scan, err := f.db.ImageScan(f.ctx, "app", dgst, policy.ScanTypeEnhanced)
			if err != nil || scan.Status != StatusFailed {
				t.Fatalf("scan %+v, %v", scan, err)
			}
			var failed []logLine
			for _, l := range logLines(t, &logs) {
				if l["msg"] == "scan failed" {
					failed = append(failed, l)
				}
			}
			if len(failed) != 1 || failed[0]["level"] != tc.logLevel || failed[0]["digest"] != dgst {
				t.Fatalf("log records of the failure %v, want one at %s", failed, tc.logLevel)
			}
			if tc.want != nil {
				if want := tc.want(layer); scan.Description != want {
					t.Errorf("description %q, want %q", scan.Description, want)
				}
				return
			}
			m := internal.FindStringSubmatch(scan.Description)
			if m == nil {
				t.Fatalf("description %q, want the internal error's", scan.Description)
			}
			if strings.Contains(scan.Description, "input/output") {
				t.Errorf("the description gives the internal error away: %q", scan.Description)
			}
			if id, _ := failed[0]["scan_error_id"].(string); id != m[1] {
				t.Errorf("log record has scan_error_id %q, the description %q", id, m[1])
			}
			if e, _ := failed[0]["err"].(string); !strings.Contains(e, secret) {
				t.Errorf("log record's err %q lacks the error %q", e, secret)
			}
		})
	}
}

// Each internal failure gets an id of its own.
func TestErrorIDsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := newErrorID()
		if len(id) != 12 || seen[id] {
			t.Fatalf("id %q (seen: %v)", id, seen[id])
		}
		seen[id] = true
	}
}

func TestDescribeFailureOfKinds(t *testing.T) {
	f := newFixture(t)
	f.svc.cfg.ScanTimeout = 2 * time.Minute
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"timeout", fmt.Errorf("layer sha256:1: %w", context.DeadlineExceeded), "the scan did not finish within 2m0s"},
		{"bad manifest", badImage(DescBadManifest, errors.New("unexpected end of JSON input")), DescBadManifest},
	} {
		if got := f.svc.describeFailure(log, tc.err); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
