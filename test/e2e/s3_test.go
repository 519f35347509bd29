package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/testserver"
)

// startOnS3 runs `lading serve --blobs s3://...` on a fresh versitygw.
func startOnS3(t *testing.T, extra ...string) (*testserver.Server, *testserver.S3) {
	t.Helper()
	s3 := testserver.StartS3(t)
	s3.SetEnv(t) // lading reads the standard AWS chain from its environment
	return testserver.Start(t, ladingBin, append([]string{"--blobs", s3.URL()}, extra...)...), s3
}

// filesUnder counts the regular files beneath dir.
func filesUnder(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			n++
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return n
}

func TestOCIConformanceOnS3(t *testing.T) {
	srv, s3 := startOnS3(t)
	runConformance(t, srv)
	if n := filesUnder(t, filepath.Join(s3.Dir, testserver.S3Bucket, "blobs")); n == 0 {
		t.Error("no blob landed in the bucket")
	}
	if n := filesUnder(t, filepath.Join(srv.DataDir, "blobs")); n != 0 {
		t.Errorf("%d blob files in the data directory, with blobs on S3", n)
	}
}

func TestCraneOnS3(t *testing.T) {
	crane := testserver.Tool(t, "crane")
	srv, s3 := startOnS3(t)
	env := []string{"DOCKER_CONFIG=" + srv.DockerConfig(t)}
	_, img, _ := testImages(t)
	ref := srv.Addr + "/s3/img:v1"
	run(t, env, crane, "push", "--insecure", singleLayout(t, img, nil), ref)
	out := filepath.Join(t.TempDir(), "pulled")
	run(t, env, crane, "pull", "--insecure", "--format=oci", ref, out)
	pulled := layoutIndex(t, out)
	gi, err := pulled.Image(firstEntry(t, pulled).Digest)
	if err != nil {
		t.Fatal(err)
	}
	checkPulledImage(t, gi, img)
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		if _, err := os.Stat(filepath.Join(s3.Dir, testserver.S3Bucket, "blobs", "sha256", d.Hex[:2], d.Hex)); err != nil {
			t.Errorf("layer %s is not in the bucket: %v", d, err)
		}
	}
}

// TestS3UploadSurvivesRestart: a chunked upload's state lives in the bucket (and the metadata
// store), not in the process: the server is killed between chunks and the upload goes on.
func TestS3UploadSurvivesRestart(t *testing.T) {
	srv, _ := startOnS3(t)
	c := newClient(t, srv)
	data := randomBytes(13<<20 + 321) // over one S3 part, so that parts and a pending tail are in the bucket
	cut := 9<<20 + 5
	loc := c.startUpload("s3/restart")
	resp := c.do("PATCH", loc, bytes.NewReader(data[:cut]), map[string]string{
		"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("0-%d", cut-1)})
	c.expect(resp, http.StatusAccepted)
	loc = resp.Header.Get("Location")
	srv.Kill()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	status := c.do("GET", loc, nil, nil)
	c.expect(status, http.StatusNoContent)
	if got, want := status.Header.Get("Range"), fmt.Sprintf("0-%d", cut-1); got != want {
		t.Fatalf("upload status after restart: Range %q, want %q", got, want)
	}
	resp = c.do("PATCH", loc, bytes.NewReader(data[cut:]), map[string]string{
		"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("%d-%d", cut, len(data)-1)})
	c.expect(resp, http.StatusAccepted)
	d := digest.FromBytes(data)
	c.expect(c.do("PUT", resp.Header.Get("Location")+"?digest="+d.String(), nil, nil), http.StatusCreated)
	if !checkBlob(t, c, "s3/restart", d, data) {
		t.Fatal("the committed blob is not served")
	}
}

// TestS3Outage: with the bucket unreachable, blob reads and writes answer 503 with a clear
// error, the metadata API goes on and /readyz fails; when it is back, Lading recovers by
// itself. On one node (SQLite metadata) and on three nodes on PostgreSQL behind a round-robin
// front.
func TestS3Outage(t *testing.T) {
	t.Run("OneNode", func(t *testing.T) {
		srv, s3 := startOnS3(t)
		s3Outage(t, srv, s3)
	})
	t.Run("ThreeNodes", func(t *testing.T) {
		c := testserver.StartCluster(t, ladingBin, 3)
		s3Outage(t, c.Front, c.S3)
	})
}

func s3Outage(t *testing.T, srv *testserver.Server, s3 *testserver.S3) {
	c := newClient(t, srv)
	data := randomBytes(1 << 20)
	d := c.pushBlob("s3/outage", data)
	sdk := adminECR(srv)
	ready := func() int {
		resp, err := http.Get(srv.URL() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}

	other := randomBytes(1000)
	loc := c.startUpload("s3/outage") // a session started before the outage
	dl, err := sdk.GetDownloadUrlForLayer(context.Background(), &ecr.GetDownloadUrlForLayerInput{
		RepositoryName: aws.String("s3/outage"), LayerDigest: aws.String(d.String())})
	if err != nil {
		t.Fatal(err)
	}
	s3.Stop()
	if resp, err := http.Get(aws.ToString(dl.DownloadUrl)); err != nil {
		t.Fatal(err)
	} else if _ = resp.Body.Close(); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("layer download URL during the outage: %d", resp.StatusCode)
	}
	unavailable := func(resp *http.Response, what string) {
		t.Helper()
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		var body struct {
			Errors []struct{ Code, Message string }
		}
		_ = json.Unmarshal(b, &body)
		if resp.StatusCode != http.StatusServiceUnavailable || len(body.Errors) != 1 || body.Errors[0].Code != "UNAVAILABLE" ||
			!strings.Contains(body.Errors[0].Message, "blob storage is unavailable") {
			t.Errorf("%s during the outage: %d %s", what, resp.StatusCode, b)
		}
	}
	unavailable(c.do("GET", "/v2/s3/outage/blobs/"+d.String(), nil, nil), "blob GET")
	unavailable(c.do("PUT", loc+"?digest="+digest.FromBytes(other).String(), bytes.NewReader(other), nil), "blob PUT")
	unavailable(c.do("POST", "/v2/s3/outage/blobs/uploads/?digest="+digest.FromBytes(other).String(), bytes.NewReader(other), nil), "monolithic upload")
	out, err := sdk.DescribeRepositories(context.Background(), &ecr.DescribeRepositoriesInput{})
	if err != nil || len(out.Repositories) != 1 || aws.ToString(out.Repositories[0].RepositoryName) != "s3/outage" {
		t.Errorf("DescribeRepositories during the outage: %+v, %v", out, err)
	}
	if _, err := sdk.CreateRepository(context.Background(), &ecr.CreateRepositoryInput{RepositoryName: aws.String("s3/created-during-outage")}); err != nil {
		t.Errorf("CreateRepository during the outage: %v", err)
	}
	if got := ready(); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %d", got)
	}

	if err := s3.Start(); err != nil {
		t.Fatal(err)
	}
	if got := ready(); got != http.StatusOK {
		t.Errorf("/readyz after the outage: %d", got)
	}
	if !checkBlob(t, c, "s3/outage", d, data) {
		t.Error("blob not served after the outage")
	}
	c.pushBlob("s3/outage", other)
}

// TestS3Redirect: with --s3-redirect, blob GETs and GetDownloadUrlForLayer hand out presigned
// URLs of the bucket, which give the blob.
func TestS3Redirect(t *testing.T) {
	srv, s3 := startOnS3(t, "--s3-redirect")
	c := newClient(t, srv)
	data := randomBytes(300 << 10)
	d := c.pushBlob("s3/redirect", data)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", srv.URL()+"/v2/s3/redirect/blobs/"+d.String(), nil)
	req.SetBasicAuth(testserver.AccessKeyID, testserver.SecretAccessKey)
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	target := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(target, "http://"+s3.Addr+"/") {
		t.Fatalf("blob GET: %d to %q, want a redirect to the bucket", resp.StatusCode, target)
	}
	fetch := func(u string) []byte {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
		}
		return b
	}
	if !bytes.Equal(fetch(target), data) {
		t.Fatal("the presigned URL gave other bytes")
	}
	sdk := adminECR(srv)
	out, err := sdk.GetDownloadUrlForLayer(context.Background(), &ecr.GetDownloadUrlForLayerInput{
		RepositoryName: aws.String("s3/redirect"), LayerDigest: aws.String(d.String())})
	if err != nil {
		t.Fatal(err)
	}
	u := aws.ToString(out.DownloadUrl)
	if !strings.HasPrefix(u, "http://"+s3.Addr+"/") || !bytes.Equal(fetch(u), data) {
		t.Fatalf("GetDownloadUrlForLayer gave %q, not a working URL of the bucket", u)
	}
	// A client that follows redirects pulls as before.
	if !checkBlob(t, c, "s3/redirect", d, data) {
		t.Fatal("blob not served through the redirect")
	}
}

// TestAdminGCOnS3: `lading admin gc --blobs s3://...`, beside the server, frees a blob no
// manifest references and an abandoned upload from the bucket, and keeps an image's blobs.
func TestAdminGCOnS3(t *testing.T) {
	crane := testserver.Tool(t, "crane")
	srv, s3 := startOnS3(t, "--gc-interval", "0")
	c := newClient(t, srv)
	env := []string{"DOCKER_CONFIG=" + srv.DockerConfig(t)}
	_, img, _ := testImages(t)
	ref := srv.Addr + "/s3/gc:v1"
	run(t, env, crane, "push", "--insecure", singleLayout(t, img, nil), ref)
	loose := c.pushBlob("s3/gc", randomBytes(2000)) // linked, referenced by no manifest
	loc := c.startUpload("s3/gc")
	c.expect(c.do("PATCH", loc, bytes.NewReader(randomBytes(3000)), map[string]string{"Content-Type": "application/octet-stream"}), http.StatusAccepted)
	bucket := filepath.Join(s3.Dir, testserver.S3Bucket)
	inBucket := func(d digest.Digest) bool {
		_, err := os.Stat(filepath.Join(bucket, "blobs", "sha256", d.Encoded()[:2], d.Encoded()))
		return err == nil
	}
	if !inBucket(loose) {
		t.Fatal("the loose blob is not in the bucket")
	}
	out := adminGC(t, srv.DataDir, "--blobs", s3.URL(), "--grace", "0", "--upload-ttl", "1ns")
	if reported(t, out, "blobs") != 1 || reported(t, out, "upload sessions") != 1 {
		t.Fatalf("admin gc:\n%s", out)
	}
	if inBucket(loose) {
		t.Error("the loose blob is still in the bucket")
	}
	if n := filesUnder(t, filepath.Join(bucket, "uploads")); n != 0 {
		t.Errorf("%d objects of the abandoned upload left in the bucket", n)
	}
	pulled := filepath.Join(t.TempDir(), "pulled")
	run(t, env, crane, "pull", "--insecure", "--format=oci", ref, pulled)
	idx := layoutIndex(t, pulled)
	gi, err := idx.Image(firstEntry(t, idx).Digest)
	if err != nil {
		t.Fatal(err)
	}
	checkPulledImage(t, gi, img)
}

// TestS3UploadAcrossTwoServers: two `lading serve` processes on one data directory (SQLite
// metadata, as several processes may share it) and one bucket; an upload started on the first
// gets a chunk from each and is committed on the second.
func TestS3UploadAcrossTwoServers(t *testing.T) {
	a, s3 := startOnS3(t)
	b := testserver.StartAt(t, ladingBin, a.DataDir, "--blobs", s3.URL())
	ca, cb := newClient(t, a), newClient(t, b)
	data := randomBytes(11<<20 + 99)
	cut := 6<<20 + 1
	loc := ca.startUpload("s3/two")
	resp := ca.do("PATCH", loc, bytes.NewReader(data[:cut]), map[string]string{
		"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("0-%d", cut-1)})
	ca.expect(resp, http.StatusAccepted)
	resp = cb.do("PATCH", resp.Header.Get("Location"), bytes.NewReader(data[cut:]), map[string]string{
		"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("%d-%d", cut, len(data)-1)})
	cb.expect(resp, http.StatusAccepted)
	d := digest.FromBytes(data)
	cb.expect(cb.do("PUT", resp.Header.Get("Location")+"?digest="+d.String(), nil, nil), http.StatusCreated)
	if !checkBlob(t, ca, "s3/two", d, data) || !checkBlob(t, cb, "s3/two", d, data) {
		t.Fatal("the blob is not served by both servers")
	}
}

// TestAdminMigrateBlobsToS3: a registry on files moves its blobs into a bucket with `lading
// admin migrate --to-blobs`; a second run copies nothing; a server on the same data directory
// with --blobs s3://... then serves the image byte for byte.
func TestAdminMigrateBlobsToS3(t *testing.T) {
	crane := testserver.Tool(t, "crane")
	s3 := testserver.StartS3(t)
	s3.SetEnv(t)
	onFiles := testserver.Start(t, ladingBin)
	env := []string{"DOCKER_CONFIG=" + onFiles.DockerConfig(t)}
	_, img, _ := testImages(t)
	run(t, env, crane, "push", "--insecure", singleLayout(t, img, nil), onFiles.Addr+"/moved/app:v1")
	onDisk := filesUnder(t, filepath.Join(onFiles.DataDir, "blobs"))
	if onDisk == 0 {
		t.Fatal("no blob on disk after the push")
	}

	migrate := func() string {
		t.Helper()
		return run(t, nil, ladingBin, "admin", "migrate", "--data-dir", onFiles.DataDir, "--to-blobs", s3.URL(), "--log-level", "warn")
	}
	if out := migrate(); reported(t, out, "blobs copied") != onDisk || reported(t, out, "blobs already there") != 0 {
		t.Fatalf("first migrate of %d blobs:\n%s", onDisk, out)
	}
	if out := migrate(); reported(t, out, "blobs copied") != 0 || reported(t, out, "blobs already there") != onDisk {
		t.Fatalf("second migrate:\n%s", out)
	}
	if n := filesUnder(t, filepath.Join(s3.Dir, testserver.S3Bucket, "blobs")); n != onDisk {
		t.Fatalf("%d blobs in the bucket, %d on disk", n, onDisk)
	}

	// What is served next can only come from the bucket.
	onFiles.Stop()
	if err := os.RemoveAll(filepath.Join(onFiles.DataDir, "blobs")); err != nil {
		t.Fatal(err)
	}
	onS3 := testserver.StartAt(t, ladingBin, onFiles.DataDir, "--blobs", s3.URL())
	pulled := filepath.Join(t.TempDir(), "pulled")
	run(t, []string{"DOCKER_CONFIG=" + onS3.DockerConfig(t)}, crane, "pull", "--insecure", "--format=oci", onS3.Addr+"/moved/app:v1", pulled)
	idx := layoutIndex(t, pulled)
	gi, err := idx.Image(firstEntry(t, idx).Digest)
	if err != nil {
		t.Fatal(err)
	}
	checkPulledImage(t, gi, img)
}

// adminECR is an ECR client of srv signed with the test admin key.
func adminECR(srv *testserver.Server) *ecr.Client {
	return ecr.New(ecr.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()), Retryer: testserver.SDKRetryer(),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: testserver.AccessKeyID, SecretAccessKey: testserver.SecretAccessKey, Source: "test"}, nil
		})})
}
