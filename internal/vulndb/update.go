package vulndb

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/lading-registry/lading/internal/advisory"
)

// DefaultSource is OSV's public bucket, the default mirror of `lading db update`.
const DefaultSource = "https://osv-vulnerabilities.storage.googleapis.com"

// NoSource turns syncing off (`--db-source none`).
const NoSource = "none"

const (
	// maxDownload bounds one all.zip download.
	maxDownload = 8 << 30
	// maxListing bounds modified_id.csv and ecosystems.txt.
	maxListing = 512 << 20
	// fetchWorkers is how many records an incremental update fetches at once.
	fetchWorkers = 8
	// incrementalMax is how many changed records an update fetches one by one before it
	// prefers downloading all.zip (unless they are under a fifth of the ecosystem).
	incrementalMax = 2000
)

// ErrNotFound means the mirror has no such file.
var ErrNotFound = errors.New("not found on the mirror")

// Update syncs the database from a mirror in OSV's bucket layout (`<Ecosystem>/all.zip`,
// `<Ecosystem>/modified_id.csv`, `<Ecosystem>/<ID>.json`, `ecosystems.txt`), served over
// HTTP(S) or in a folder; source "" is OSV's public bucket. ecosystems picks a subset;
// none means every ecosystem the mirror lists. Where the mirror has modified_id.csv and
// the database already holds the ecosystem, only changed records are fetched. Everything
// is applied as one batch: an update that fails or is interrupted leaves the previous
// version in place, and a partly downloaded all.zip is resumed by the next update (with
// Options.CacheDir set).
func (d *DB) Update(ctx context.Context, source string, ecosystems []string) (*Result, error) {
	if source == "" {
		source = DefaultSource
	}
	if source == NoSource {
		return nil, errors.New("update: the advisory source is \"none\"")
	}
	m, err := d.openMirror(source)
	if err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	if len(ecosystems) == 0 {
		if ecosystems, err = m.ecosystems(ctx); err != nil {
			return nil, fmt.Errorf("update from %s: %w", source, err)
		}
	}
	for _, e := range ecosystems {
		if err := checkEcosystemName(e); err != nil {
			return nil, fmt.Errorf("update: %w", err)
		}
	}
	return d.runBatch(ctx, "update", source, false, func(a *applier) error {
		for _, eco := range ecosystems {
			if err := a.syncEcosystem(ctx, m, eco); err != nil {
				return fmt.Errorf("%s: %w", eco, err)
			}
		}
		return nil
	})
}

func checkEcosystemName(e string) error {
	if e == "" || e == "." || e == ".." || strings.ContainsAny(e, `/\`) || strings.IndexFunc(e, unicode.IsControl) >= 0 {
		return fmt.Errorf("bad ecosystem name %q", e)
	}
	return nil
}

// syncEcosystem brings one ecosystem up to date within the batch.
func (a *applier) syncEcosystem(ctx context.Context, m mirror, eco string) error {
	ids := a.snapshot(eco)
	held := 0
	for _, d := range a.current {
		for _, k := range d.Keys {
			if advisory.BaseEcosystem(k.Ecosystem) == eco {
				held++
				break
			}
		}
	}
	if held > 0 {
		done, err := a.syncChanged(ctx, m, eco, ids)
		if err != nil || done {
			return err
		}
	}
	path, release, err := m.zip(ctx, eco, a.db.opts.Progress)
	if err != nil {
		return err
	}
	defer release()
	err = a.addSource(ctx, source{path: path, kind: zipSource, snapshot: eco})
	if _, isHTTP := m.(*httpMirror); err != nil && isHTTP {
		err = fmt.Errorf("%s/%s/all.zip (downloaded): %w", m.name(), eco, err)
	}
	return err
}

// syncChanged fetches only the records modified_id.csv shows as new or changed. It
// reports false when the mirror has no modified_id.csv or too much changed, for the
// caller to download all.zip instead.
func (a *applier) syncChanged(ctx context.Context, m mirror, eco string, ids map[string]bool) (bool, error) {
	rc, err := m.get(ctx, eco+"/modified_id.csv", maxListing)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	entries, err := parseModifiedIDs(rc)
	_ = rc.Close()
	if err != nil {
		return false, fmt.Errorf("modified_id.csv: %w", err)
	}
	if len(entries) == 0 {
		return false, nil // an empty listing for an ecosystem we hold: trust only all.zip
	}
	var fetch []string
	for _, e := range entries {
		if cur, ok := a.current[e.id]; !ok || e.modified.After(cur.Modified) {
			fetch = append(fetch, e.id)
		}
	}
	if len(fetch) > incrementalMax && len(fetch) > len(entries)/5 {
		return false, nil
	}
	for _, e := range entries {
		ids[e.id] = true
	}
	if len(fetch) == 0 {
		return true, nil
	}
	p := a.db.opts.Progress
	p.Begin("fetch "+eco+" changed records", "records", int64(len(fetch)))
	defer p.End()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type fetched struct {
		id  string
		raw []byte
		err error
	}
	jobs := make(chan string)
	results := make(chan fetched)
	var wg sync.WaitGroup
	for range min(fetchWorkers, len(fetch)) {
		wg.Go(func() {
			for id := range jobs {
				raw, err := readAllFrom(m.get(ctx, eco+"/"+id+".json", advisory.MaxRecordSize))
				select {
				case results <- fetched{id, raw, err}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() {
		defer close(jobs)
		for _, id := range fetch {
			select {
			case jobs <- id:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	for r := range results {
		where := m.name() + "/" + eco + "/" + r.id + ".json"
		if errors.Is(r.err, ErrNotFound) {
			// The listing is ahead of the records (the mirror is being written): take the
			// whole ecosystem instead. What was added so far is valid and stays.
			a.db.opts.Logger.Info("vulndb: a listed record is missing on the mirror; downloading all.zip", "record", where)
			return false, nil
		}
		if r.err != nil {
			return false, fmt.Errorf("%s: %w", where, r.err)
		}
		adv, err := advisory.Parse(r.raw)
		if err == nil && adv.ID != r.id {
			err = fmt.Errorf("%w: file of %s holds %s", advisory.ErrInvalidRecord, r.id, adv.ID)
		}
		if err != nil {
			if !a.db.opts.SkipInvalid {
				return false, fmt.Errorf("%s: %w", where, err)
			}
			a.skipped++
			a.db.opts.Logger.Warn("vulndb: skipping invalid record", "where", where, "err", err)
			continue
		}
		if err := a.add(ctx, where, r.raw, ids); err != nil {
			return false, err
		}
		p.Advance(1)
	}
	return true, ctx.Err()
}

func readAllFrom(rc io.ReadCloser, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

type modifiedID struct {
	modified time.Time
	id       string
}

// parseModifiedIDs reads OSV's modified_id.csv: one "<RFC 3339 time>,<id>" per line,
// newest first. A header line is tolerated.
func parseModifiedIDs(r io.Reader) ([]modifiedID, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	var out []modifiedID
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		ts, id, ok := strings.Cut(line, ",")
		if !ok {
			return nil, fmt.Errorf("line %d: want <modified>,<id>", n)
		}
		ts, id = strings.TrimSpace(ts), strings.TrimSpace(id)
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			if n == 1 && strings.EqualFold(ts, "modified") {
				continue
			}
			return nil, fmt.Errorf("line %d: modified time %q is not RFC 3339", n, ts)
		}
		// The top-level listing writes <Ecosystem>/<id>; a per-ecosystem one just <id>.
		if i := strings.LastIndexByte(id, '/'); i >= 0 {
			id = id[i+1:]
		}
		if err := advisory.CheckID(id); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, modifiedID{t.UTC(), id})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// mirror is a copy of OSV's bucket.
type mirror interface {
	name() string
	// get opens a file of the mirror, at most limit bytes, or fails with ErrNotFound.
	get(ctx context.Context, rel string, limit int64) (io.ReadCloser, error)
	// zip makes <eco>/all.zip available as a local file; release removes what it downloaded.
	zip(ctx context.Context, eco string, p Progress) (path string, release func(), err error)
	// ecosystems lists the mirror's ecosystems.
	ecosystems(ctx context.Context) ([]string, error)
}

func (d *DB) openMirror(source string) (mirror, error) {
	u, err := url.Parse(source)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return &httpMirror{base: strings.TrimSuffix(source, "/"), client: d.opts.HTTPClient, cacheDir: d.opts.CacheDir,
			userAgent: d.opts.UserAgent, stall: d.opts.StallTimeout}, nil
	}
	if err == nil && u.Scheme == "file" {
		source = u.Path
	}
	fi, err := os.Stat(source)
	if err != nil {
		return nil, fmt.Errorf("advisory source: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("advisory source %s: not a folder or an http(s) URL", source)
	}
	return folderMirror(source), nil
}

// folderMirror is a mirror in a local folder.
type folderMirror string

func (f folderMirror) name() string { return string(f) }

func (f folderMirror) path(rel string) string {
	return filepath.Join(string(f), filepath.FromSlash(rel))
}

func (f folderMirror) get(_ context.Context, rel string, limit int64) (io.ReadCloser, error) {
	file, err := os.Open(f.path(rel))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", rel, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return limitedReadCloser(file, limit, rel), nil
}

func (f folderMirror) zip(_ context.Context, eco string, _ Progress) (string, func(), error) {
	p := f.path(eco + "/all.zip")
	if !isFile(p) {
		return "", nil, fmt.Errorf("%s: %w", p, ErrNotFound)
	}
	return p, func() {}, nil
}

func (f folderMirror) ecosystems(ctx context.Context) ([]string, error) {
	if rc, err := f.get(ctx, "ecosystems.txt", maxListing); err == nil {
		defer rc.Close()
		return parseEcosystems(rc)
	}
	entries, err := os.ReadDir(string(f))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && isFile(f.path(e.Name()+"/all.zip")) {
			out = append(out, e.Name())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no <Ecosystem>/all.zip", f)
	}
	return out, nil
}

func parseEcosystems(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	var out []string
	for sc.Scan() {
		if e := strings.TrimSpace(sc.Text()); e != "" && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ecosystems.txt: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("ecosystems.txt lists no ecosystem")
	}
	return out, nil
}

type limitedRC struct {
	io.Reader
	io.Closer
}

// limitedReadCloser fails reads past limit rather than truncating silently.
func limitedReadCloser(rc io.ReadCloser, limit int64, name string) io.ReadCloser {
	return limitedRC{&limitReader{r: rc, n: limit, name: name}, rc}
}

type limitReader struct {
	r    io.Reader
	n    int64
	name string
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, fmt.Errorf("%s: larger than allowed", l.name)
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, fmt.Errorf("%s: larger than allowed", l.name)
	}
	return n, err
}

// httpMirror is a mirror served over HTTP(S).
type httpMirror struct {
	base      string
	client    *http.Client
	cacheDir  string
	userAgent string
	stall     time.Duration
}

// errStalled ends a transfer that sent nothing for the stall timeout.
var errStalled = errors.New("the transfer stalled")

// do sends a GET whose body fails with errStalled when no byte arrives for h.stall. The
// returned cancel must be called once the body is done with.
func (h *httpMirror) do(ctx context.Context, rel string, header http.Header) (*http.Response, *http.Request, context.CancelFunc, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(h.stall, func() { cancel(errStalled) })
	done := func() {
		timer.Stop()
		cancel(nil)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url(rel), nil)
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	req.Header.Set("User-Agent", h.userAgent)
	maps.Copy(req.Header, header)
	resp, err := h.client.Do(req)
	if err != nil {
		if c := context.Cause(ctx); errors.Is(c, errStalled) {
			err = c
		}
		done()
		return nil, nil, nil, fmt.Errorf("GET %s: %w", req.URL, err)
	}
	resp.Body = &stallBody{ReadCloser: resp.Body, ctx: ctx, timer: timer, d: h.stall}
	return resp, req, done, nil
}

type stallBody struct {
	io.ReadCloser
	ctx   context.Context
	timer *time.Timer
	d     time.Duration
}

func (b *stallBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.timer.Reset(b.d)
	}
	if err != nil && err != io.EOF {
		if c := context.Cause(b.ctx); errors.Is(c, errStalled) {
			err = fmt.Errorf("%w: nothing received for %s", c, b.d)
		}
	}
	return n, err
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func (h *httpMirror) name() string { return h.base }

func (h *httpMirror) url(rel string) string {
	parts := strings.Split(rel, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return h.base + "/" + strings.Join(parts, "/")
}

func (h *httpMirror) get(ctx context.Context, rel string, limit int64) (io.ReadCloser, error) {
	resp, req, cancel, err := h.do(ctx, rel, nil)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		_ = resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET %s: %w", req.URL, ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		_ = resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	return cancelOnClose{limitedReadCloser(resp.Body, limit, req.URL.String()), cancel}, nil
}

func (h *httpMirror) ecosystems(ctx context.Context) ([]string, error) {
	rc, err := h.get(ctx, "ecosystems.txt", maxListing)
	if err != nil {
		return nil, fmt.Errorf("%w (name the ecosystems to sync)", err)
	}
	defer rc.Close()
	return parseEcosystems(rc)
}

// zip downloads <eco>/all.zip into the cache. A download cut short is kept as
// all.zip.part with the server's validator, and the next call resumes it with a Range
// request (If-Range makes the server send everything again if the file changed).
func (h *httpMirror) zip(ctx context.Context, eco string, p Progress) (string, func(), error) {
	dir := h.cacheDir
	temp := dir == ""
	if temp {
		var err error
		if dir, err = os.MkdirTemp("", "lading-vulndb-"); err != nil {
			return "", nil, err
		}
	}
	cleanupTemp := func() {
		if temp {
			_ = os.RemoveAll(dir)
		}
	}
	sum := sha256.Sum256([]byte(h.base))
	dir = filepath.Join(dir, "osv-"+hex.EncodeToString(sum[:6]), eco)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		cleanupTemp()
		return "", nil, err
	}
	part, validatorFile, final := filepath.Join(dir, "all.zip.part"), filepath.Join(dir, "all.zip.validator"), filepath.Join(dir, "all.zip")
	if err := h.download(ctx, eco+"/all.zip", part, validatorFile, p); err != nil {
		if temp {
			cleanupTemp()
		}
		return "", nil, err
	}
	if err := os.Rename(part, final); err != nil {
		cleanupTemp()
		return "", nil, err
	}
	_ = os.Remove(validatorFile)
	return final, func() {
		_ = os.Remove(final)
		cleanupTemp()
	}, nil
}

func (h *httpMirror) download(ctx context.Context, rel, part, validatorFile string, p Progress) error {
	var have int64
	header := http.Header{}
	if fi, err := os.Stat(part); err == nil && fi.Size() > 0 {
		if v, err := os.ReadFile(validatorFile); err == nil && len(v) > 0 {
			have = fi.Size()
			header.Set("Range", fmt.Sprintf("bytes=%d-", have))
			header.Set("If-Range", string(v))
		}
	}
	resp, req, cancel, err := h.do(ctx, rel, header)
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", have)) {
			return fmt.Errorf("GET %s: unexpected Content-Range %q", req.URL, resp.Header.Get("Content-Range"))
		}
		flags = os.O_WRONLY | os.O_APPEND
	case http.StatusOK:
		have = 0
	case http.StatusNotFound:
		return fmt.Errorf("GET %s: %w", req.URL, ErrNotFound)
	case http.StatusRequestedRangeNotSatisfiable:
		_ = os.Remove(part)
		_ = os.Remove(validatorFile)
		return fmt.Errorf("GET %s: the partial download no longer fits the file; it was dropped, update again", req.URL)
	default:
		return fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	validator := resp.Header.Get("ETag")
	if validator == "" || strings.HasPrefix(validator, "W/") {
		validator = resp.Header.Get("Last-Modified")
	}
	if validator != "" {
		if err := os.WriteFile(validatorFile, []byte(validator), 0o600); err != nil {
			return err
		}
	} else {
		_ = os.Remove(validatorFile)
	}
	f, err := os.OpenFile(part, flags, 0o600)
	if err != nil {
		return err
	}
	total := int64(-1)
	if resp.ContentLength >= 0 {
		total = have + resp.ContentLength
	}
	if total > maxDownload {
		_ = f.Close()
		return fmt.Errorf("GET %s: %d bytes, more than the %d allowed", req.URL, total, int64(maxDownload))
	}
	p.Begin("download "+rel, "bytes", max(total, 0))
	p.Advance(have)
	n, copyErr := io.Copy(f, io.TeeReader(io.LimitReader(resp.Body, maxDownload-have+1), progressWriter{p}))
	p.End()
	closeErr := f.Close()
	got := have + n
	switch {
	case copyErr != nil || (total >= 0 && got < total):
		if copyErr == nil {
			copyErr = io.ErrUnexpectedEOF
		}
		resume := "the next update resumes it"
		if validator == "" {
			resume = "the server gives no validator, so the next update starts over"
		}
		return fmt.Errorf("download %s: %w after %d of %d bytes; %s", req.URL, copyErr, got, total, resume)
	case got > maxDownload:
		return fmt.Errorf("GET %s: more than the %d bytes allowed", req.URL, int64(maxDownload))
	}
	return closeErr
}

type progressWriter struct{ p Progress }

func (w progressWriter) Write(b []byte) (int, error) {
	w.p.Advance(int64(len(b)))
	return len(b), nil
}
