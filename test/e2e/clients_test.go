package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-registry/lading/internal/testserver"
)

const refNameAnnotation = "org.opencontainers.image.ref.name"

// testImages writes an OCI layout holding a three-layer image (ref "img") and a two-platform
// index (ref "multi"), returning the layout path and both objects.
func testImages(t *testing.T) (string, v1.Image, v1.ImageIndex) {
	t.Helper()
	img, err := random.Image(256<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{refNameAnnotation: "img"})); err != nil {
		t.Fatal(err)
	}
	// The index is written by hand, as buildx writes them: go-containerregistry's mutate would add
	// artifactType to each entry, which older clients (skopeo 1.9) drop, changing the digest.
	im := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for _, arch := range []string{"amd64", "arm64"} {
		pimg, err := random.Image(64<<10, 2)
		if err != nil {
			t.Fatal(err)
		}
		pimg = mutate.MediaType(pimg, types.OCIManifestSchema1)
		pimg = mutate.ConfigMediaType(pimg, types.OCIConfigJSON)
		if err := p.WriteImage(pimg); err != nil {
			t.Fatal(err)
		}
		raw, err := pimg.RawManifest()
		if err != nil {
			t.Fatal(err)
		}
		h, _, _ := v1.SHA256(bytes.NewReader(raw))
		im.Manifests = append(im.Manifests, v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: h, Size: int64(len(raw)),
			Platform: &v1.Platform{OS: "linux", Architecture: arch}})
	}
	raw, err := json.Marshal(im)
	if err != nil {
		t.Fatal(err)
	}
	h, size, _ := v1.SHA256(bytes.NewReader(raw))
	if err := p.WriteBlob(h, io.NopCloser(bytes.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendDescriptor(v1.Descriptor{MediaType: types.OCIImageIndex, Digest: h, Size: size,
		Annotations: map[string]string{refNameAnnotation: "multi"}}); err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := top.ImageIndex(h)
	if err != nil {
		t.Fatal(err)
	}
	return dir, img, idx
}

// singleLayout writes a layout holding only one image or index, as crane push wants.
func singleLayout(t *testing.T, img v1.Image, idx v1.ImageIndex) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "single")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if img != nil {
		err = p.AppendImage(img)
	} else {
		err = p.AppendIndex(idx)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

func digestOf(t *testing.T, x interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	d, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// checkLayoutImage reads image ref from an OCI layout written by a client's pull and compares
// manifest digest and every layer's bytes with want.
func checkPulledImage(t *testing.T, got v1.Image, want v1.Image) {
	t.Helper()
	if g, w := digestOf(t, got), digestOf(t, want); g != w {
		t.Fatalf("pulled manifest %s, pushed %s", g, w)
	}
	gl, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	wl, err := want.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(gl) != len(wl) {
		t.Fatalf("%d layers pulled, %d pushed", len(gl), len(wl))
	}
	for i := range gl {
		a, b := readLayer(t, gl[i]), readLayer(t, wl[i])
		if !bytes.Equal(a, b) {
			t.Fatalf("layer %d differs", i)
		}
	}
}

func readLayer(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// layoutEntry opens the image or index that a pull wrote as the only (or named) entry of a layout.
func layoutIndex(t *testing.T, dir string) v1.ImageIndex {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func firstEntry(t *testing.T, idx v1.ImageIndex) v1.Descriptor {
	t.Helper()
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) == 0 {
		t.Fatal("empty layout")
	}
	return m.Manifests[0]
}

// checkPulledLayout compares the image (or, when !isImage, the index) a client pulled into the
// OCI layout at dir with what was pushed.
func checkPulledLayout(t *testing.T, dir string, isImage bool, img v1.Image, idx v1.ImageIndex) {
	t.Helper()
	pulled := layoutIndex(t, dir)
	desc := firstEntry(t, pulled)
	if isImage {
		gi, err := pulled.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkPulledImage(t, gi, img)
		return
	}
	gidx, err := pulled.ImageIndex(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	checkPulledIndex(t, gidx, idx)
}

func checkPulledIndex(t *testing.T, got, want v1.ImageIndex) {
	t.Helper()
	if g, w := digestOf(t, got), digestOf(t, want); g != w {
		t.Fatalf("pulled index %s, pushed %s", g, w)
	}
	wm, _ := want.IndexManifest()
	for _, d := range wm.Manifests {
		gi, err := got.Image(d.Digest)
		if err != nil {
			t.Fatalf("child %s: %v", d.Digest, err)
		}
		wi, _ := want.Image(d.Digest)
		checkPulledImage(t, gi, wi)
	}
}

func TestCrane(t *testing.T) {
	crane := testserver.Tool(t, "crane")
	srv := testserver.Start(t, ladingBin)
	env := []string{"DOCKER_CONFIG=" + srv.DockerConfig(t)}
	_, img, idx := testImages(t)

	ref := srv.Addr + "/crane/img:v1"
	run(t, env, crane, "push", "--insecure", singleLayout(t, img, nil), ref)
	if got := run(t, env, crane, "digest", "--insecure", ref); got != digestOf(t, img) {
		t.Fatalf("crane digest %s, want %s", got, digestOf(t, img))
	}
	out := filepath.Join(t.TempDir(), "pulled")
	run(t, env, crane, "pull", "--insecure", "--format=oci", ref, out)
	pulled := layoutIndex(t, out)
	gi, err := pulled.Image(firstEntry(t, pulled).Digest)
	if err != nil {
		t.Fatal(err)
	}
	checkPulledImage(t, gi, img)

	iref := srv.Addr + "/crane/multi:v1"
	run(t, env, crane, "push", "--insecure", singleLayout(t, nil, idx), iref)
	if got := run(t, env, crane, "digest", "--insecure", iref); got != digestOf(t, idx) {
		t.Fatalf("index digest %s, want %s", got, digestOf(t, idx))
	}
	// crane pull of an index writes the index itself into the layout.
	iout := filepath.Join(t.TempDir(), "ipulled")
	run(t, env, crane, "pull", "--insecure", "--format=oci", iref, iout)
	pulledIdx := layoutIndex(t, iout)
	gidx, err := pulledIdx.ImageIndex(firstEntry(t, pulledIdx).Digest)
	if err != nil {
		t.Fatal(err)
	}
	checkPulledIndex(t, gidx, idx)
	tags := run(t, env, crane, "ls", "--insecure", srv.Addr+"/crane/img")
	if tags != "v1" {
		t.Fatalf("tags %q", tags)
	}
}

func TestSkopeo(t *testing.T) {
	skopeo := testserver.Tool(t, "skopeo")
	srv := testserver.Start(t, ladingBin)
	authfile := filepath.Join(srv.DockerConfig(t), "config.json")
	dir, img, idx := testImages(t)

	for _, tc := range []struct {
		ref  string
		repo string
	}{{"img", "skopeo/img:v1"}, {"multi", "skopeo/multi:v1"}} {
		dst := "docker://" + srv.Addr + "/" + tc.repo
		run(t, nil, skopeo, "copy", "--all", "--dest-tls-verify=false", "--dest-authfile", authfile,
			"oci:"+dir+":"+tc.ref, dst)
		out := filepath.Join(t.TempDir(), "out")
		run(t, nil, skopeo, "copy", "--all", "--src-tls-verify=false", "--src-authfile", authfile, dst, "oci:"+out+":pulled")
		checkPulledLayout(t, out, tc.ref == "img", img, idx)
	}
}

func TestOras(t *testing.T) {
	oras := testserver.Tool(t, "oras")
	srv := testserver.Start(t, ladingBin)
	regConfig := filepath.Join(srv.DockerConfig(t), "config.json")
	dir, img, idx := testImages(t)

	for _, tc := range []struct{ ref, repo string }{{"img", "oras/img:v1"}, {"multi", "oras/multi:v1"}} {
		dst := srv.Addr + "/" + tc.repo
		run(t, nil, oras, "cp", "--to-registry-config", regConfig, "--to-plain-http", "--from-oci-layout", dir+":"+tc.ref, dst)
		out := filepath.Join(t.TempDir(), "out")
		run(t, nil, oras, "cp", "--from-registry-config", regConfig, "--from-plain-http", dst, "--to-oci-layout", out+":pulled")
		checkPulledLayout(t, out, tc.ref == "img", img, idx)
	}

	// An artifact pushed from files, with an artifact type, pulled back byte for byte.
	work := t.TempDir()
	payload := bytes.Repeat([]byte("lading artifact\n"), 4096)
	if err := os.WriteFile(filepath.Join(work, "report.txt"), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	ref := srv.Addr + "/oras/artifact:v1"
	cmd := exec.Command(oras, "push", "--registry-config", regConfig, "--plain-http", "--artifact-type", "application/vnd.lading.test", ref, "report.txt:text/plain")
	cmd.Dir = work
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oras push: %v\n%s", err, out)
	}
	pullDir := t.TempDir()
	cmd = exec.Command(oras, "pull", "--registry-config", regConfig, "--plain-http", ref)
	cmd.Dir = pullDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oras pull: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(pullDir, "report.txt"))
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("artifact differs after round trip (%v)", err)
	}
}
