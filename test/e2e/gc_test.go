package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-registry/lading/internal/app"
	"github.com/lading-registry/lading/internal/testserver"
)

var adminAuth = remote.WithAuth(&authn.Basic{Username: testserver.AccessKeyID, Password: testserver.SecretAccessKey})

// layeredImage is an OCI image of the given layers, made distinct by its config.
func layeredImage(t *testing.T, label string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{"image": label}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

func randomLayer(t *testing.T, size int64) v1.Layer {
	t.Helper()
	l, err := random.Layer(size, types.OCIUncompressedLayer)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// blobBytes is the sum of the blob files' sizes under dataDir/blobs.
func blobBytes(t *testing.T, dataDir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(filepath.Join(dataDir, "blobs"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// imageBlobs adds the sizes of an image's config and layers to need, by digest.
func imageBlobs(t *testing.T, img v1.Image, need map[string]int64) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	need[m.Config.Digest.String()] = m.Config.Size
	for _, l := range m.Layers {
		need[l.Digest.String()] = l.Size
	}
}

func adminGC(t *testing.T, dataDir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(ladingBin, append([]string{"admin", "gc", "--data-dir", dataDir, "--log-level", "warn"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("lading admin gc %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// reported reads a count from `lading admin gc`'s table.
func reported(t *testing.T, out, row string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + row + `\s+(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q row in:\n%s", row, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// Fifty images pushed, forty of them deleted (twenty-five one by one, fifteen with their
// repository), an upload abandoned: `lading admin gc`, run beside the server on its data
// directory, first reports without deleting (--dry-run), then brings blobs/ back to what the
// ten images left need, and each of them still pulls byte-identical with crane.
func TestGCAfterDeletes(t *testing.T) {
	srv := testserver.Start(t, ladingBin, "--gc-interval", "0", "--lifecycle-interval", "0")
	c := newClient(t, srv)
	base := []v1.Layer{randomLayer(t, 512<<10), randomLayer(t, 256<<10)}
	type pushed struct {
		ref string
		img v1.Image
	}
	var kept, deleted []pushed
	for i := range 50 {
		repo := "keep"
		if i >= 35 {
			repo = "drop"
		}
		img := layeredImage(t, strconv.Itoa(i), append(base, randomLayer(t, 128<<10))...)
		ref := fmt.Sprintf("%s/%s:v%d", srv.Addr, repo, i)
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, img, adminAuth); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		if i < 10 {
			kept = append(kept, pushed{ref, img})
		} else {
			deleted = append(deleted, pushed{ref, img})
		}
	}
	for _, p := range deleted {
		if strings.Contains(p.ref, "/keep:") {
			c.expect(c.do(http.MethodDelete, "/v2/keep/manifests/"+digestOf(t, p.img), nil, nil), http.StatusAccepted)
		}
	}
	api := ecr.New(ecr.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: testserver.AccessKeyID, SecretAccessKey: testserver.SecretAccessKey}, nil
		})})
	if _, err := api.DeleteRepository(context.Background(), &ecr.DeleteRepositoryInput{RepositoryName: aws.String("drop"), Force: true}); err != nil {
		t.Fatal(err)
	}
	loc := c.startUpload("keep")
	c.expect(c.do(http.MethodPatch, loc, bytes.NewReader(randomBytes(1<<20)), map[string]string{"Content-Type": "application/octet-stream"}), http.StatusAccepted)

	need := map[string]int64{}
	for _, p := range kept {
		imageBlobs(t, p.img, need)
	}
	var needBytes int64
	for _, n := range need {
		needBytes += n
	}
	before := blobBytes(t, srv.DataDir)

	out := adminGC(t, srv.DataDir, "--dry-run", "--grace", "0", "--upload-ttl", "1ms")
	if !strings.Contains(out, "would free") || reported(t, out, "blobs") < 80 || reported(t, out, "upload sessions") != 1 {
		t.Fatalf("dry run reported:\n%s", out)
	}
	if got := blobBytes(t, srv.DataDir); got != before {
		t.Fatalf("the dry run changed blobs/ from %d to %d bytes", before, got)
	}

	out = adminGC(t, srv.DataDir, "--grace", "0", "--upload-ttl", "1ms")
	// 40 configs and 40 unique layers: the base layers stay with the kept images.
	if reported(t, out, "blobs") != 80 || reported(t, out, "upload sessions") != 1 {
		t.Fatalf("gc reported:\n%s", out)
	}
	after := blobBytes(t, srv.DataDir)
	t.Logf("blobs/: %d bytes before gc, %d after; the 10 images left need %d", before, after, needBytes)
	if after < needBytes || float64(after-needBytes) > 0.05*float64(needBytes) {
		t.Fatalf("blobs/ holds %d bytes after gc; the images left need %d", after, needBytes)
	}
	if entries, err := os.ReadDir(filepath.Join(srv.DataDir, "uploads")); err != nil || len(entries) != 0 {
		t.Fatalf("uploads/ after gc: %d entries, %v", len(entries), err)
	}

	crane := testserver.Tool(t, "crane")
	env := []string{"DOCKER_CONFIG=" + srv.DockerConfig(t)}
	for _, p := range kept {
		dir := filepath.Join(t.TempDir(), "pulled")
		run(t, env, crane, "pull", "--insecure", "--format=oci", p.ref, dir)
		pulled := layoutIndex(t, dir)
		got, err := pulled.Image(firstEntry(t, pulled).Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkPulledImage(t, got, p.img)
	}
	for _, p := range deleted[:3] {
		r, _ := name.ParseReference(p.ref, name.Insecure)
		if _, err := remote.Image(r, adminAuth); err == nil {
			t.Fatalf("%s still pulls", p.ref)
		}
	}
}

// clock is an injected clock that tests move forward; it starts at the real time.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// Garbage collection runs over and over while 16 clients push images sharing their base layers,
// for 20 rounds. Between rounds the images are deleted and the clock moves past the grace
// period, so each round's collections remove the previous round's links and blobs while the
// new pushes check, upload and link the same base layers. No push fails, and every image pushed
// then pulls, its blobs hashing to their digests.
func TestGCDuringConcurrentPushes(t *testing.T) {
	const grace = 10 * time.Minute
	clk := &clock{}
	a, err := app.Open(context.Background(), app.Config{
		DataDir: t.TempDir(), Region: "us-east-1", RegistryID: "123456789012", CreateOnPush: true,
		AdminAccessKeyID: testserver.AccessKeyID, AdminSecretAccessKey: testserver.SecretAccessKey,
		Logger: slog.New(slog.DiscardHandler), Now: clk.now, GCGrace: grace,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = a.Close()
	})
	host := strings.TrimPrefix(srv.URL, "http://")
	base := make([]v1.Layer, 4)
	for i := range base {
		base[i] = randomLayer(t, 48<<10)
	}
	ctx := context.Background()
	var collected, collections int
	for round := range 20 {
		stop := make(chan struct{})
		gcDone := make(chan error, 1)
		go func() {
			for {
				select {
				case <-stop:
					gcDone <- nil
					return
				default:
				}
				rep, err := a.CollectGarbage(ctx, false)
				if err != nil {
					gcDone <- err
					return
				}
				collections++
				collected += rep.Blobs
			}
		}()
		refs := make([]string, 16)
		imgs := make([]v1.Image, 16)
		errs := make([]error, 16)
		var wg sync.WaitGroup
		for i := range 16 {
			unique := make([]byte, 4096)
			_, _ = rand.Read(unique)
			layers := []v1.Layer{base[i%4], base[(i+1)%4], randomLayer(t, 4<<10)}
			imgs[i] = layeredImage(t, fmt.Sprintf("%d-%d", round, i), layers...)
			refs[i] = fmt.Sprintf("%s/c%d:r%d-%d", host, i%4, round, i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := name.ParseReference(refs[i], name.Insecure)
				if err == nil {
					err = remote.Write(r, imgs[i], adminAuth)
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		close(stop)
		if err := <-gcDone; err != nil {
			t.Fatalf("round %d: gc: %v", round, err)
		}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: push %s: %v", round, refs[i], err)
			}
		}
		for i, ref := range refs {
			r, _ := name.ParseReference(ref, name.Insecure)
			got, err := remote.Image(r, adminAuth)
			if err != nil {
				t.Fatalf("round %d: pull %s: %v", round, ref, err)
			}
			if digestOf(t, got) != digestOf(t, imgs[i]) {
				t.Fatalf("round %d: %s pulled as %s", round, ref, digestOf(t, got))
			}
			layers, err := got.Layers()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range layers {
				want, err := l.Digest()
				if err != nil {
					t.Fatal(err)
				}
				rc, err := l.Compressed()
				if err != nil {
					t.Fatalf("round %d: %s layer %s: %v", round, ref, want, err)
				}
				h, _, err := v1.SHA256(rc)
				_ = rc.Close()
				if err != nil || h != want {
					t.Fatalf("round %d: %s layer %s hashes to %s (%v)", round, ref, want, h, err)
				}
			}
			req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/v2/"+strings.SplitN(strings.TrimPrefix(ref, host+"/"), ":", 2)[0]+"/manifests/"+digestOf(t, imgs[i]), nil)
			req.SetBasicAuth(testserver.AccessKeyID, testserver.SecretAccessKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("delete %s: %d", ref, resp.StatusCode)
			}
		}
		clk.advance(grace + time.Minute)
	}
	// Everything was deleted: a last collection leaves no blob.
	if _, err := a.CollectGarbage(ctx, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d collections ran during the pushes, removing %d blobs", collections, collected)
	if collected == 0 {
		t.Fatal("the collections during the pushes removed nothing: the test did not race them")
	}
	if n := blobBytes(t, a.DataDir()); n != 0 {
		t.Fatalf("%d bytes of blobs left after every image was deleted and collected", n)
	}
}
