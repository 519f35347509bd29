package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/blob"
	blobfs "github.com/lading-registry/lading/internal/blob/fs"
	"github.com/lading-registry/lading/internal/testserver"
)

// countingClient records every request and the bytes each response carried.
type countingClient struct {
	mu   sync.Mutex
	reqs []string // "METHOD path bytes"
	down map[string]int64
	// unsized drops the Content-Length of GET responses, as a server answering in chunks would.
	unsized bool
}

// countedStore is a blob store on a fresh versitygw bucket (query: more of the URL's
// parameters), its driver, and the counter its S3 requests go through.
func countedStore(t *testing.T, query string) (*blob.Store, *Driver, *countingClient) {
	t.Helper()
	d, locks, counter := countedDriver(t, query)
	return blob.NewStore(d, locks, blob.Options{}), d, counter
}

// countedDriver is countedStore's driver, with the locks of the stores that share it.
func countedDriver(t *testing.T, query string) (*Driver, blob.Locker, *countingClient) {
	t.Helper()
	srv := testserver.StartS3(t)
	srv.SetEnv(t)
	cfg, err := ParseURL(srv.URL() + query)
	if err != nil {
		t.Fatal(err)
	}
	counter := &countingClient{down: map[string]int64{}}
	cfg.HTTPClient = counter
	d, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	locks, err := blobfs.NewFileLocker(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d, locks, counter
}

func (c *countingClient) Do(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unsized && r.Method == http.MethodGet {
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
	}
	c.reqs = append(c.reqs, r.Method+" "+r.URL.Path)
	c.down[r.Method+" "+r.URL.Path] += int64(len(b))
	return resp, err
}

func (c *countingClient) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs, c.down = nil, map[string]int64{}
}

// TestCommitDownloadsNothing: committing a chunked upload reads only its small state object
// (the writer's, which holds the hash state): the data is neither downloaded to be hashed nor to be
// moved, which multipart completion and server-side copies do.
func TestCommitDownloadsNothing(t *testing.T) {
	ctx := context.Background()
	s, _, counter := countedStore(t, "&part-size=5242880")
	data := make([]byte, 12<<20+77) // two parts and a pending tail
	_, _ = rand.Read(data)
	id, err := s.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 3 << 20 {
		end := min(off+3<<20, len(data))
		if _, err := s.Append(ctx, id, int64(off), bytes.NewReader(data[off:end])); err != nil {
			t.Fatal(err)
		}
	}
	counter.reset()
	want := digest.FromBytes(data)
	if _, err := s.Commit(ctx, id, want); err != nil {
		t.Fatal(err)
	}
	var total int64
	for req, n := range counter.down {
		if strings.HasPrefix(req, "GET ") {
			total += n
		}
	}
	if total > 4096 {
		t.Errorf("commit downloaded %d bytes: %v", total, counter.down)
	}
	var completed, copied bool
	for _, r := range counter.reqs {
		completed = completed || (strings.HasPrefix(r, "POST ") && strings.HasSuffix(r, "/data"))
		copied = copied || (strings.HasPrefix(r, "PUT ") && strings.Contains(r, "/blobs/sha256/"))
	}
	if !completed || !copied {
		t.Errorf("commit did not complete the multipart upload (%v) and copy it into blobs/ (%v): %v", completed, copied, counter.reqs)
	}
	r, err := s.Open(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	// The count sees what a download carries: reading the blob back counts its bytes.
	counter.mu.Lock()
	defer counter.mu.Unlock()
	if n := counter.down["GET /"+testserver.S3Bucket+"/blobs/sha256/"+want.Encoded()[:2]+"/"+want.Encoded()]; n != int64(len(data)) {
		t.Errorf("reading the blob back counted %d bytes, want %d", n, len(data))
	}
}

// TestSmallCommitCopiesOnce: an upload smaller than a part is committed with one server-side
// copy of its pending bytes straight into blobs/, not a copy to the session's data and a move
// (HEAD, copy, DELETE) from there; the blob reads back whole, and the session is gone.
func TestSmallCommitCopiesOnce(t *testing.T) {
	ctx := context.Background()
	s, d, counter := countedStore(t, "")
	for _, size := range []int{0, 100 << 10} {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		id, err := s.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, id, 0, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		want, reqs := commitCounted(t, s, counter, id, data)
		var toBlobs, toData, heads int
		for _, r := range reqs {
			toBlobs += boolInt(strings.HasPrefix(r, "PUT ") && strings.Contains(r, "/blobs/sha256/"))
			toData += boolInt(strings.HasPrefix(r, "PUT ") && strings.HasSuffix(r, "/uploads/"+id+"/data"))
			heads += boolInt(strings.HasPrefix(r, "HEAD "))
		}
		if toBlobs != 1 || toData != 0 || heads != 0 {
			t.Errorf("%d bytes: commit wrote blobs/ %d times, the session's data %d times, made %d HEADs (want 1, 0, 0): %v",
				size, toBlobs, toData, heads, reqs)
		}
		checkCommitted(t, s, d, want, data)
	}
}

// TestSmallPushRequests: an upload of small chunks (a crane or docker push of a small blob:
// POST, PATCH, PUT) makes the S3 requests it needs and no more: the hash state rides in the
// writer's state object (blob.StateKeeper), so no hashstate object is written, read, listed or
// deleted, and the commit leaves nothing under the session to look for. A second store on
// the same bucket (another node) resumes a session from that state alone.
func TestSmallPushRequests(t *testing.T) {
	ctx := context.Background()
	d, locks, counter := countedDriver(t, "")
	s := blob.NewStore(d, locks, blob.Options{})
	data := make([]byte, 100<<10)
	_, _ = rand.Read(data)
	want := digest.FromBytes(data)
	counter.reset()
	id, err := s.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, id, 0, bytes.NewReader(data[:60<<10])); err != nil {
		t.Fatal(err)
	}
	// The rest through another store on the same bucket and locks, as another node would.
	other := blob.NewStore(d, locks, blob.Options{})
	if _, err := other.Append(ctx, id, 60<<10, bytes.NewReader(data[60<<10:])); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Commit(ctx, id, want); err != nil {
		t.Fatal(err)
	}
	counter.mu.Lock()
	reqs := counter.reqs
	counter.mu.Unlock()
	var ops []string
	for _, r := range reqs {
		if strings.Contains(r, "hashstate") {
			t.Errorf("a hash state object was used: %s", r)
		}
		method, path, _ := strings.Cut(r, " ")
		path = strings.TrimPrefix(path, "/"+testserver.S3Bucket)
		path = strings.ReplaceAll(path, id, "ID")
		path = strings.ReplaceAll(path, want.Encoded()[:2]+"/"+want.Encoded(), "D")
		ops = append(ops, method+" "+path)
	}
	wantOps := []string{
		"PUT /uploads/ID/data.upload", // NewUpload: the writer's state
		// The first chunk: state read, pending bytes and state (with the hash state) written.
		"GET /uploads/ID/data.upload", "PUT /uploads/ID/data.pending.2", "PUT /uploads/ID/data.upload",
		// The second: the pending bytes read back and written as the next generation, the
		// previous one deleted.
		"GET /uploads/ID/data.upload", "GET /uploads/ID/data.pending.2", "PUT /uploads/ID/data.pending.3",
		"PUT /uploads/ID/data.upload", "DELETE /uploads/ID/data.pending.2",
		// The commit: state read, the pending bytes copied into blobs/, the state and pending
		// bytes removed (DeleteObjects, a POST to the bucket); nothing else is left, so the
		// session is not listed to be removed.
		"GET /uploads/ID/data.upload", "PUT /blobs/sha256/D", "POST ",
	}
	if !slices.Equal(ops, wantOps) {
		t.Errorf("requests:\n got  %q\n want %q", ops, wantOps)
	}
	checkCommitted(t, s, d, want, data)

	// A pull, as the registry serves one (its size checked, then read): one GET, no HEAD.
	counter.reset()
	if pull, wantPull := pullCounted(t, other, counter, want, data), []string{"GET /" + testserver.S3Bucket + "/blobs/sha256/" + want.Encoded()[:2] + "/" + want.Encoded()}; !slices.Equal(pull, wantPull) {
		t.Errorf("pull requests:\n got  %q\n want %q", pull, wantPull)
	}
}

// commitCounted commits upload id as the digest of data, returning the digest and the S3
// requests the commit made.
func commitCounted(t *testing.T, s *blob.Store, counter *countingClient, id string, data []byte) (digest.Digest, []string) {
	t.Helper()
	counter.reset()
	want := digest.FromBytes(data)
	if _, err := s.Commit(context.Background(), id, want); err != nil {
		t.Fatal(err)
	}
	counter.mu.Lock()
	defer counter.mu.Unlock()
	return want, slices.Clone(counter.reqs)
}

// checkCommitted checks that blob want reads back as data and that no object is left under
// uploads/.
func checkCommitted(t *testing.T, s *blob.Store, d *Driver, want digest.Digest, data []byte) {
	t.Helper()
	ctx := context.Background()
	r, err := s.Open(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	_ = r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	if err := d.Walk(ctx, "uploads", func(fi blob.FileInfo) error { return fmt.Errorf("left: %s", fi.Path) }); err != nil {
		t.Errorf("objects left under uploads/: %v", err)
	}
}

// keeperless hides the writer's blob.StateKeeper, as a build before it kept hash states in
// hashstate objects.
type keeperless struct{ *Driver }

func (k keeperless) Writer(ctx context.Context, p string, appending bool) (blob.FileWriter, error) {
	w, err := k.Driver.Writer(ctx, p, appending)
	return struct{ blob.FileWriter }{w}, err
}

// TestResumeEarlierHashState: a session whose first chunk was written with its hash state in a
// hashstate object (by a build before the writer kept it) goes on and commits, its hash resumed
// from that object, which the next chunk removes: nothing is left behind, though the commit
// does not list the session.
func TestResumeEarlierHashState(t *testing.T) {
	ctx := context.Background()
	d, locks, counter := countedDriver(t, "")
	before := blob.NewStore(keeperless{d}, locks, blob.Options{})
	data := make([]byte, 50<<10)
	_, _ = rand.Read(data)
	id, err := before.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := before.Append(ctx, id, 0, bytes.NewReader(data[:20<<10])); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetContent(ctx, "uploads/"+id+"/hashstate."+strconv.Itoa(20<<10)); err != nil {
		t.Fatalf("the earlier build's hash state: %v", err)
	}
	s := blob.NewStore(d, locks, blob.Options{})
	if _, err := s.Append(ctx, id, 20<<10, bytes.NewReader(data[20<<10:])); err != nil {
		t.Fatal(err)
	}
	want, reqs := commitCounted(t, s, counter, id, data)
	for _, r := range reqs {
		if strings.HasPrefix(r, "GET ") && strings.Contains(r, ".pending.") {
			t.Errorf("the commit read the data to hash it: %v", reqs)
		}
	}
	checkCommitted(t, s, d, want, data)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestMissingBucketIsUnavailable: a bucket that does not exist is storage that is not there
// (503 and a failing /readyz), never "this blob is unknown".
func TestMissingBucketIsUnavailable(t *testing.T) {
	srv := testserver.StartS3(t)
	srv.SetEnv(t)
	ctx := context.Background()
	cfg, err := ParseURL(strings.Replace(srv.URL(), testserver.S3Bucket, "no-such-bucket", 1))
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	locks, err := blobfs.NewFileLocker(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := blob.NewStore(d, locks, blob.Options{})
	checks := []struct {
		name string
		err  error
	}{
		{"ping", s.Ping(ctx)},
		{"stat", func() error { _, err := s.Stat(ctx, digest.FromString("x")); return err }()},
		{"new upload", func() error { _, err := s.NewUpload(ctx); return err }()},
	}
	for _, c := range checks {
		if !errors.Is(c.err, blob.ErrUnavailable) || errors.Is(c.err, blob.ErrNotFound) {
			t.Errorf("%s: %v, want ErrUnavailable", c.name, c.err)
		}
	}
}

// TestCancelAbortsMultipartUploads: a cancelled session and a dropped idle one leave no
// multipart upload (whose parts S3 would keep, and bill, forever) and no object.
func TestCancelAbortsMultipartUploads(t *testing.T) {
	srv := testserver.StartS3(t)
	srv.SetEnv(t)
	ctx := context.Background()
	cfg, err := ParseURL(srv.URL() + "&part-size=5242880")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Prefix = "cancel/"
	d, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	locks, err := blobfs.NewFileLocker(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := blob.NewStore(d, locks, blob.Options{})
	data := make([]byte, 6<<20) // one part and a pending tail
	for _, end := range []string{"cancel", "drop"} {
		id, err := s.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, id, 0, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		open, err := d.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &d.bucket, Prefix: aws.String("cancel/")})
		if err != nil || len(open.Uploads) != 1 {
			t.Fatalf("%s: multipart uploads before: %v, %v", end, open, err)
		}
		if end == "cancel" {
			err = s.Cancel(ctx, id)
		} else {
			_, err = s.DropIdleUpload(ctx, id, time.Now().Add(time.Hour))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	mpus, err := d.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &d.bucket, Prefix: aws.String("cancel/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(mpus.Uploads) != 0 {
		t.Errorf("%d multipart uploads left", len(mpus.Uploads))
	}
	objs, err := d.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &d.bucket, Prefix: aws.String("cancel/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.Contents) != 0 {
		t.Errorf("%d objects left, the first %s", len(objs.Contents), aws.ToString(objs.Contents[0].Key))
	}
}

// TestOpenWithoutLength: a GET answered without its length (not seen from S3, possible from a
// server that answers in chunks) is closed and the blob opened as before, its size asked with
// a HEAD; its bytes read back whole.
func TestOpenWithoutLength(t *testing.T) {
	ctx := context.Background()
	d, locks, counter := countedDriver(t, "")
	s := blob.NewStore(d, locks, blob.Options{})
	data := make([]byte, 70<<10)
	_, _ = rand.Read(data)
	want := digest.FromBytes(data)
	id, err := s.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, id, 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, id, want); err != nil {
		t.Fatal(err)
	}
	counter.mu.Lock()
	counter.reqs, counter.unsized = nil, true
	counter.mu.Unlock()
	reqs := pullCounted(t, s, counter, want, data)
	key := "/" + testserver.S3Bucket + "/blobs/sha256/" + want.Encoded()[:2] + "/" + want.Encoded()
	if wantReqs := []string{"GET " + key, "HEAD " + key, "GET " + key}; !slices.Equal(reqs, wantReqs) {
		t.Errorf("requests:\n got  %q\n want %q", reqs, wantReqs)
	}
}

// pullCounted reads blob want as the registry serves one (its size checked, then read whole),
// checks it reads back as data, and returns the S3 requests the counter saw since its reset.
func pullCounted(t *testing.T, s *blob.Store, counter *countingClient, want digest.Digest, data []byte) []string {
	t.Helper()
	r, err := s.Open(context.Background(), want)
	if err != nil {
		t.Fatal(err)
	}
	if err := blob.CheckSize(r, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	_ = r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("pull: read %d bytes, %v", len(got), err)
	}
	counter.mu.Lock()
	defer counter.mu.Unlock()
	return slices.Clone(counter.reqs)
}
