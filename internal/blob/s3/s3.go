// Package s3 is the blob driver on an S3 bucket (AWS S3 or any S3-compatible server).
//
// A file being written (an upload session's data) is an S3 multipart upload whose state lives
// in the bucket beside it, so any process or node continues it:
//
//	<key>.upload          the writer's state: the multipart upload id, its parts, the pending
//	                      generation, the caller's kept state (an upload's hash state)
//	<key>.pending.<gen>   the bytes after the last part, fewer than a part (S3 parts but the last are >= 5 MiB)
//
// A chunk appended is added to the pending bytes (read back, at most a part's size) and each
// full part is uploaded as it fills. Committing completes the multipart upload, the pending
// bytes copied in as its last part server-side (UploadPartCopy), and moving a file is a
// server-side copy: no byte of an upload is downloaded again to commit it.
package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/lading-registry/lading/internal/blob"
)

// Config says which bucket to use and how to reach it.
type Config struct {
	Bucket string
	// Prefix is put before every key ("" or a path ending in "/").
	Prefix   string
	Region   string
	Endpoint string // "" for AWS's own
	// PathStyle addresses the bucket in the path rather than the host name (most S3-compatible
	// servers want it; it is the default with an Endpoint).
	PathStyle bool
	// PartSize is the size of each multipart upload part (at least 5 MiB; default 8 MiB).
	PartSize int64
	// HTTPClient, when set, sends the requests (tests count them); nil is the SDK's own.
	HTTPClient aws.HTTPClient
}

// minPartSize is S3's smallest part but the last.
const minPartSize = 5 << 20

// ParseURL reads s3://bucket[/prefix]?endpoint=...&region=...&path-style=true|false&part-size=N.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("blob store URL: %w", err)
	}
	if u.Scheme != "s3" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return Config{}, fmt.Errorf("blob store URL %q: want s3://bucket[/prefix] with endpoint and region parameters", raw)
	}
	c := Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), PartSize: 8 << 20}
	if c.Prefix != "" {
		c.Prefix += "/"
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "path-style", "part-size":
		default:
			return Config{}, fmt.Errorf("blob store URL: unknown parameter %q (endpoint, region, path-style, part-size)", k)
		}
	}
	c.Region = q.Get("region")
	if e := q.Get("endpoint"); e != "" {
		eu, err := url.Parse(e)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
			return Config{}, fmt.Errorf("blob store URL: endpoint %q: want http(s)://host[:port]", e)
		}
		c.Endpoint = e
		c.PathStyle = true
	}
	if v := q.Get("path-style"); v != "" {
		if c.PathStyle, err = strconv.ParseBool(v); err != nil {
			return Config{}, fmt.Errorf("blob store URL: path-style %q: %w", v, err)
		}
	}
	if v := q.Get("part-size"); v != "" {
		if c.PartSize, err = strconv.ParseInt(v, 10, 64); err != nil || c.PartSize < minPartSize || c.PartSize > 5<<30 {
			return Config{}, fmt.Errorf("blob store URL: part-size %q: want bytes from %d to %d", v, minPartSize, int64(5<<30))
		}
	}
	return c, nil
}

// Driver is the blob driver on a bucket.
type Driver struct {
	client   *s3.Client
	presign  *s3.PresignClient
	bucket   string
	prefix   string
	partSize int64
}

// New connects to the bucket with credentials from the standard AWS chain (environment,
// shared config and credentials files, SSO, instance roles). It does not check that the bucket
// answers: Ping does.
func New(ctx context.Context, c Config) (*Driver, error) {
	if c.PartSize == 0 {
		c.PartSize = 8 << 20
	}
	if c.PartSize < minPartSize {
		return nil, fmt.Errorf("s3 part size %d: at least %d", c.PartSize, minPartSize)
	}
	opts := []func(*config.LoadOptions) error{
		// A store that cannot be reached answers 503 soon, rather than after long retries.
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 3; o.MaxBackoff = time.Second })
		}),
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = c.PathStyle
		if c.HTTPClient != nil {
			o.HTTPClient = c.HTTPClient
		}
		// Checksums only when the operation requires them: S3-compatible servers differ in
		// what they accept, and every blob is verified by its digest anyway.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return &Driver{client: client, presign: s3.NewPresignClient(client), bucket: c.Bucket, prefix: c.Prefix, partSize: c.PartSize}, nil
}

func (d *Driver) key(p string) string { return d.prefix + p }

// classify wraps an S3 error: ErrPathNotFound for 404, ErrUnavailable when the server could not
// be reached, failed, refused the credentials, or asked to be tried again (408 request timeout,
// 409 a conflicting operation in progress, 429 too many requests, once the SDK's own retries
// are spent); a cancelled request stays as it is.
func classify(op, key string, err error) error {
	if err == nil {
		return nil
	}
	// A missing bucket is the storage missing, not a blob: the same 503 as an outage.
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket" {
		return fmt.Errorf("%s %s: %w: %w", op, key, blob.ErrUnavailable, err)
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch s := re.HTTPStatusCode(); {
		case s == 404:
			return fmt.Errorf("%s %s: %w: %w", op, key, blob.ErrPathNotFound, err)
		case s == 0 || s >= 500 || s == 401 || s == 403 || s == 408 || s == 409 || s == 429: // 0: no answer (the request was not sent)
			return fmt.Errorf("%s %s: %w: %w", op, key, blob.ErrUnavailable, err)
		}
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	return fmt.Errorf("%s %s: %w: %w", op, key, blob.ErrUnavailable, err)
}

// Ping checks that the bucket answers.
func (d *Driver) Ping(ctx context.Context) error {
	_, err := d.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &d.bucket})
	if err = classify("head bucket", d.bucket, err); err != nil && !errors.Is(err, blob.ErrUnavailable) {
		// HeadBucket's 404 has no body to name it: the bucket is missing.
		return fmt.Errorf("%w: %w", blob.ErrUnavailable, err)
	}
	return err
}

// Stat describes an object, a file being written (from its state) or a prefix holding objects.
func (d *Driver) Stat(ctx context.Context, p string) (blob.FileInfo, error) {
	k := d.key(p)
	out, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.bucket, Key: &k})
	if err == nil {
		return blob.FileInfo{Path: p, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
	}
	if err = classify("stat", k, err); !errors.Is(err, blob.ErrPathNotFound) {
		return blob.FileInfo{}, err
	}
	if st, mod, err := d.loadState(ctx, k); err == nil {
		return blob.FileInfo{Path: p, Size: st.size(), ModTime: mod}, nil
	} else if !errors.Is(err, blob.ErrPathNotFound) {
		return blob.FileInfo{}, err
	}
	var latest time.Time
	found := false
	err = d.list(ctx, k+"/", func(o types.Object) error {
		found = true
		if t := aws.ToTime(o.LastModified); t.After(latest) {
			latest = t
		}
		return nil
	})
	if err != nil {
		return blob.FileInfo{}, err
	}
	if !found {
		return blob.FileInfo{}, fmt.Errorf("stat %s: %w", k, blob.ErrPathNotFound)
	}
	return blob.FileInfo{Path: p, ModTime: latest, IsDir: true}, nil
}

// list calls fn for every object whose key starts with prefix.
func (d *Driver) list(ctx context.Context, prefix string, fn func(types.Object) error) error {
	pages := s3.NewListObjectsV2Paginator(d.client, &s3.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &prefix})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return classify("list", prefix, err)
		}
		for _, o := range page.Contents {
			if err := fn(o); err != nil {
				return err
			}
		}
	}
	return nil
}

// Reader reads an object from offset on (a ranged GET).
func (d *Driver) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	k := d.key(p)
	in := &s3.GetObjectInput{Bucket: &d.bucket, Key: &k}
	if offset > 0 {
		in.Range = aws.String("bytes=" + strconv.FormatInt(offset, 10) + "-")
	}
	out, err := d.client.GetObject(ctx, in)
	if err != nil {
		return nil, classify("get", k, err)
	}
	return out.Body, nil
}

// Get reads an object whole and tells its size (blob.Getter): one GET, where Stat and Reader
// make a HEAD and a GET.
func (d *Driver) Get(ctx context.Context, p string) (io.ReadCloser, int64, error) {
	k := d.key(p)
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &d.bucket, Key: &k})
	if err != nil {
		return nil, 0, classify("get", k, err)
	}
	if out.ContentLength == nil || *out.ContentLength < 0 {
		// A response without its length (not seen from S3): ask for it.
		_ = out.Body.Close()
		fi, err := d.Stat(ctx, p)
		if err != nil {
			return nil, 0, err
		}
		if fi.IsDir {
			return nil, 0, fmt.Errorf("get %s: %w", k, blob.ErrPathNotFound)
		}
		r, err := d.Reader(ctx, p, 0)
		return r, fi.Size, err
	}
	return out.Body, *out.ContentLength, nil
}

// GetContent reads a small object.
func (d *Driver) GetContent(ctx context.Context, p string) ([]byte, error) {
	return d.get(ctx, d.key(p))
}

func (d *Driver) get(ctx context.Context, k string) ([]byte, error) {
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &d.bucket, Key: &k})
	if err != nil {
		return nil, classify("get", k, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, classify("get", k, err)
	}
	return b, nil
}

// PutContent writes a small object.
func (d *Driver) PutContent(ctx context.Context, p string, content []byte) error {
	return d.put(ctx, d.key(p), content)
}

func (d *Driver) put(ctx context.Context, k string, content []byte) error {
	_, err := d.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &d.bucket, Key: &k, Body: bytes.NewReader(content),
		ContentLength: aws.Int64(int64(len(content)))})
	return classify("put", k, err)
}

// maxCopySize is the largest object CopyObject copies; larger ones are copied in parts.
const maxCopySize = 5 << 30

// Move copies src to dst server-side and removes src.
func (d *Driver) Move(ctx context.Context, src, dst string) error {
	from, to := d.key(src), d.key(dst)
	head, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.bucket, Key: &from})
	if err != nil {
		return classify("move", from, err)
	}
	if size := aws.ToInt64(head.ContentLength); size > maxCopySize {
		err = d.copyInParts(ctx, from, to, size)
	} else {
		_, err = d.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &d.bucket, Key: &to, CopySource: d.copySource(from)})
		err = classify("copy", from, err)
	}
	if err != nil {
		return err
	}
	_, err = d.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &d.bucket, Key: &from})
	return classify("delete", from, err)
}

func (d *Driver) copySource(k string) *string {
	return aws.String(d.bucket + "/" + url.PathEscape(k))
}

// copyInParts copies an object beyond CopyObject's limit with UploadPartCopy.
func (d *Driver) copyInParts(ctx context.Context, from, to string, size int64) error {
	mpu, err := d.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &d.bucket, Key: &to})
	if err != nil {
		return classify("copy", from, err)
	}
	var parts []types.CompletedPart
	const step = 1 << 30
	for off, n := int64(0), int32(1); off < size; off, n = off+step, n+1 {
		end := min(off+step, size) - 1
		out, err := d.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &d.bucket, Key: &to, UploadId: mpu.UploadId,
			PartNumber: aws.Int32(n), CopySource: d.copySource(from), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end))})
		if err != nil {
			_, _ = d.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &d.bucket, Key: &to, UploadId: mpu.UploadId})
			return classify("copy", from, err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.CopyPartResult.ETag})
	}
	_, err = d.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &d.bucket, Key: &to, UploadId: mpu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	return classify("copy", from, err)
}

// Delete removes an object with what a writer kept beside it (aborting its multipart upload),
// or every object beneath a prefix.
func (d *Driver) Delete(ctx context.Context, p string) error {
	k := d.key(p)
	var keys []string
	writers := false // a writer's state or a directory: multipart uploads may be there
	err := d.list(ctx, k, func(o types.Object) error {
		ok := aws.ToString(o.Key)
		if ok == k || strings.HasPrefix(ok, k+"/") || ok == k+stateSuffix || strings.HasPrefix(ok, k+pendingInfix) {
			keys = append(keys, ok)
			writers = writers || ok == k+stateSuffix || strings.HasPrefix(ok, k+"/")
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Multipart uploads of files beneath: those in writers' states, and any a crash left
	// before its state was saved (a writer's state exists from its file's creation on).
	uploads := s3.NewListMultipartUploadsPaginator(d.client, &s3.ListMultipartUploadsInput{Bucket: &d.bucket, Prefix: &k})
	for writers && uploads.HasMorePages() {
		page, err := uploads.NextPage(ctx)
		if err != nil {
			return classify("list uploads", k, err)
		}
		for _, u := range page.Uploads {
			if uk := aws.ToString(u.Key); uk == k || strings.HasPrefix(uk, k+"/") {
				_, err := d.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &d.bucket, Key: u.Key, UploadId: u.UploadId})
				if err = classify("abort upload", uk, err); err != nil && !errors.Is(err, blob.ErrPathNotFound) {
					return err
				}
			}
		}
	}
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 1000)]
		keys = keys[len(batch):]
		ids := make([]types.ObjectIdentifier, len(batch))
		for i := range batch {
			ids[i] = types.ObjectIdentifier{Key: aws.String(batch[i])}
		}
		out, err := d.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &d.bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			return classify("delete", k, err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("delete %s: %s: %s", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
		}
	}
	return nil
}

// List names the prefixes directly beneath p, each with the latest change beneath it.
func (d *Driver) List(ctx context.Context, p string) ([]blob.FileInfo, error) {
	base := d.key(p) + "/"
	byName := map[string]*blob.FileInfo{}
	var order []string
	err := d.list(ctx, base, func(o types.Object) error {
		rest := strings.TrimPrefix(aws.ToString(o.Key), base)
		name, _, nested := strings.Cut(rest, "/")
		fi := byName[name]
		if fi == nil {
			fi = &blob.FileInfo{Path: p + "/" + name, IsDir: nested}
			byName[name] = fi
			order = append(order, name)
		}
		if !nested {
			fi.Size = aws.ToInt64(o.Size)
		}
		if t := aws.ToTime(o.LastModified); t.After(fi.ModTime) {
			fi.ModTime = t
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]blob.FileInfo, 0, len(order))
	for _, name := range order {
		out = append(out, *byName[name])
	}
	return out, nil
}

// Walk calls fn for every object beneath p.
func (d *Driver) Walk(ctx context.Context, p string, fn func(blob.FileInfo) error) error {
	return d.list(ctx, d.key(p)+"/", func(o types.Object) error {
		return fn(blob.FileInfo{Path: strings.TrimPrefix(aws.ToString(o.Key), d.prefix), Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
	})
}

// RedirectURL is a presigned GET of the object, valid for ttl.
func (d *Driver) RedirectURL(ctx context.Context, p string, ttl time.Duration) (string, error) {
	k := d.key(p)
	req, err := d.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &d.bucket, Key: &k}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("presign %s: %w", k, err)
	}
	return req.URL, nil
}

// closeTimeout bounds how long a writer's Close may take once its request has ended.
const closeTimeout = 30 * time.Second

const (
	stateSuffix  = ".upload"
	pendingInfix = ".pending."
)

// state is a file being written, as kept in the bucket.
type state struct {
	UploadID string `json:"uploadId,omitempty"`
	Parts    []part `json:"parts,omitempty"`
	Pending  int64  `json:"pending"` // bytes after the last part, in the pending object
	Gen      int64  `json:"gen"`     // the pending object's generation
	// Kept is the caller's state of the bytes written (blob.StateKeeper: the upload's hash
	// state), saved with them.
	Kept []byte `json:"kept,omitempty"`
}

type part struct {
	N    int32  `json:"n"`
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

func (s *state) size() int64 {
	n := s.Pending
	for _, p := range s.Parts {
		n += p.Size
	}
	return n
}

func pendingKey(k string, gen int64) string { return k + pendingInfix + strconv.FormatInt(gen, 10) }

func (d *Driver) loadState(ctx context.Context, k string) (state, time.Time, error) {
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &d.bucket, Key: aws.String(k + stateSuffix)})
	if err != nil {
		return state{}, time.Time{}, classify("get", k+stateSuffix, err)
	}
	defer out.Body.Close()
	var st state
	if err := json.NewDecoder(out.Body).Decode(&st); err != nil {
		return state{}, time.Time{}, fmt.Errorf("writer state of %s: %w", k, err)
	}
	return st, aws.ToTime(out.LastModified), nil
}

// Writer opens a file to write: a new one, or one being written from its state. A file whose
// writer was committed (its object exists, its state is gone) opens at its size, for a commit
// that is retried after the first one failed half way.
func (d *Driver) Writer(ctx context.Context, p string, appending bool) (blob.FileWriter, error) {
	k := d.key(p)
	if !appending {
		return &writer{ctx: ctx, d: d, key: k, dirty: true, loaded: true}, nil
	}
	st, _, err := d.loadState(ctx, k)
	if errors.Is(err, blob.ErrPathNotFound) {
		head, herr := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.bucket, Key: &k})
		if herr != nil {
			return nil, classify("open", k, herr)
		}
		return &writer{ctx: ctx, d: d, key: k, committed: true, st: state{Pending: aws.ToInt64(head.ContentLength)}}, nil
	}
	if err != nil {
		return nil, err
	}
	return &writer{ctx: ctx, d: d, key: k, st: st}, nil
}

type writer struct {
	ctx       context.Context // the request's, for Write and Close
	d         *Driver
	key       string
	st        state
	buf       []byte // the pending bytes, once loaded
	loaded    bool
	dirty     bool
	committed bool
}

// KeptState is the caller's state as the writer's state held it when opened.
func (w *writer) KeptState() []byte { return w.st.Kept }

// KeepState replaces the caller's state; Close saves it with the bytes written.
func (w *writer) KeepState(b []byte) { w.st.Kept = b }

func (w *writer) Size() int64 {
	if w.loaded {
		n := int64(len(w.buf))
		for _, p := range w.st.Parts {
			n += p.Size
		}
		return n
	}
	return w.st.size()
}

// Write adds p to the pending bytes (read back first) and uploads each part that fills. The
// bytes are counted as written even when a part upload fails: they are pending, and Close
// keeps them.
func (w *writer) Write(p []byte) (int, error) {
	if w.committed {
		return 0, errors.New("write to a committed file")
	}
	ctx := w.ctx
	if !w.loaded {
		if w.st.Pending > 0 {
			b, err := w.d.get(ctx, pendingKey(w.key, w.st.Gen))
			if err != nil {
				return 0, err
			}
			if int64(len(b)) != w.st.Pending {
				return 0, fmt.Errorf("pending bytes of %s: %d stored, %d recorded", w.key, len(b), w.st.Pending)
			}
			w.buf = b
		}
		w.loaded = true
	}
	w.buf = append(w.buf, p...)
	w.dirty = true
	for int64(len(w.buf)) >= w.d.partSize {
		if err := w.uploadPart(ctx, w.buf[:w.d.partSize]); err != nil {
			return len(p), err
		}
		w.buf = append(w.buf[:0], w.buf[w.d.partSize:]...)
	}
	return len(p), nil
}

func (w *writer) uploadPart(ctx context.Context, b []byte) error {
	if w.st.UploadID == "" {
		out, err := w.d.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &w.d.bucket, Key: &w.key})
		if err != nil {
			return classify("create upload", w.key, err)
		}
		w.st.UploadID = aws.ToString(out.UploadId)
	}
	n := int32(len(w.st.Parts) + 1)
	out, err := w.d.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: &w.d.bucket, Key: &w.key, UploadId: &w.st.UploadID,
		PartNumber: aws.Int32(n), Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b)))})
	if err != nil {
		return classify("upload part", w.key, err)
	}
	w.st.Parts = append(w.st.Parts, part{N: n, ETag: aws.ToString(out.ETag), Size: int64(len(b))})
	return nil
}

// Close saves the pending bytes under a new generation, then the state naming them: a failure
// in between leaves the previous state, whole. It does so even when the request that wrote
// them has ended (its client went away), within closeTimeout.
func (w *writer) Close() error {
	if !w.dirty || w.committed {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), closeTimeout)
	defer cancel()
	old := w.st.Gen
	hadPending := w.st.Pending > 0
	w.st.Gen++
	w.st.Pending = int64(len(w.buf))
	if len(w.buf) > 0 {
		if err := w.d.put(ctx, pendingKey(w.key, w.st.Gen), w.buf); err != nil {
			return err
		}
	}
	b, err := json.Marshal(w.st)
	if err != nil {
		return err
	}
	if err := w.d.put(ctx, w.key+stateSuffix, b); err != nil {
		return err
	}
	w.dirty = false
	if hadPending {
		_, _ = w.d.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &w.d.bucket, Key: aws.String(pendingKey(w.key, old))})
	}
	return nil
}

// Cancel discards the file: its multipart upload, pending bytes, state and object.
func (w *writer) Cancel(ctx context.Context) error {
	return w.d.Delete(ctx, strings.TrimPrefix(w.key, w.d.prefix))
}

// Commit completes the file as an object: the multipart upload with the pending bytes copied
// in server-side as its last part, or, without parts, the pending object copied to the key.
func (w *writer) Commit(ctx context.Context) error {
	if w.committed {
		return nil
	}
	if w.dirty {
		if err := w.Close(); err != nil {
			return err
		}
	}
	if err := w.complete(ctx); err != nil {
		// A commit retried after completing once finds the object there, of its size.
		head, herr := w.d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &w.d.bucket, Key: &w.key})
		if herr != nil || aws.ToInt64(head.ContentLength) != w.st.size() {
			return err
		}
	}
	w.committed = true
	w.dropState(ctx)
	return nil
}

// CommitTo completes a file without parts straight at dst: its pending bytes copied there, one
// server-side copy where Commit then Move make two. A multipart upload completes only at its
// own key, so a file with parts (or unsaved writes) reports false and is left as it was. On an
// error the writer's state is kept, so the commit can be tried again.
func (w *writer) CommitTo(ctx context.Context, dst string) (bool, error) {
	if w.committed || w.dirty || w.st.UploadID != "" {
		return false, nil
	}
	to := w.d.key(dst)
	if w.st.Pending == 0 {
		if err := w.d.put(ctx, to, nil); err != nil {
			return true, err
		}
	} else {
		_, err := w.d.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &w.d.bucket, Key: &to,
			CopySource: w.d.copySource(pendingKey(w.key, w.st.Gen))})
		if err := classify("commit", to, err); err != nil {
			return true, err
		}
	}
	w.committed = true
	w.dropState(ctx)
	return true, nil
}

// dropState removes what the writer kept once its file is complete; a leftover is removed
// with the session, or as an idle session (blob.Store.PurgeUploads) when the store had no
// reason to remove it (a session with a kept hash state holds nothing else).
func (w *writer) dropState(ctx context.Context) {
	keys := []types.ObjectIdentifier{{Key: aws.String(w.key + stateSuffix)}}
	if w.st.Pending > 0 {
		keys = append(keys, types.ObjectIdentifier{Key: aws.String(pendingKey(w.key, w.st.Gen))})
	}
	_, _ = w.d.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &w.d.bucket, Delete: &types.Delete{Objects: keys, Quiet: aws.Bool(true)}})
}

func (w *writer) complete(ctx context.Context) error {
	switch {
	case w.st.UploadID == "" && w.st.Pending == 0:
		return w.d.put(ctx, w.key, nil)
	case w.st.UploadID == "":
		_, err := w.d.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &w.d.bucket, Key: &w.key,
			CopySource: w.d.copySource(pendingKey(w.key, w.st.Gen))})
		return classify("commit", w.key, err)
	default:
		parts := make([]types.CompletedPart, 0, len(w.st.Parts)+1)
		for _, p := range w.st.Parts {
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(p.N), ETag: aws.String(p.ETag)})
		}
		if w.st.Pending > 0 {
			n := int32(len(w.st.Parts) + 1)
			out, err := w.d.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &w.d.bucket, Key: &w.key, UploadId: &w.st.UploadID,
				PartNumber: aws.Int32(n), CopySource: w.d.copySource(pendingKey(w.key, w.st.Gen))})
			if err != nil {
				return classify("commit", w.key, err)
			}
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.CopyPartResult.ETag})
		}
		_, err := w.d.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &w.d.bucket, Key: &w.key,
			UploadId: &w.st.UploadID, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
		return classify("commit", w.key, err)
	}
}
