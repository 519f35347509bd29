package pipeline_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/match"
	"github.com/lading-registry/lading/internal/scanning/pipeline"
)

const (
	debianRelease = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nID=debian\n"
	dpkgStatus    = "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u1\n\n"
	// opensslRecord affects the openssl source package of Debian 12 below 3.0.11-1~deb12u2.
	opensslRecord = `{"id":"DSA-9999-1","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2099-0001"],"summary":"openssl flaw",
		"affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},
		"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.11-1~deb12u2"}]}]}]}`
)

func gzipTar(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// blobs serves layer content from memory and counts the opens (layers are read concurrently).
type blobs struct {
	content map[string][]byte
	mu      sync.Mutex
	opens   map[string]int
}

func (b *blobs) layer(digest, createdBy string) pipeline.Layer {
	return pipeline.Layer{Digest: digest, Size: int64(len(b.content[digest])), CreatedBy: createdBy, Content: opener{b, digest}}
}

type opener struct {
	b      *blobs
	digest string
}

func (o opener) Open(context.Context) (io.ReadCloser, error) {
	o.b.mu.Lock()
	o.b.opens[o.digest]++
	o.b.mu.Unlock()
	data, ok := o.b.content[o.digest]
	if !ok {
		return nil, &pipeline.AbsentError{Reason: "not here"}
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// memCache is a Cache in memory, safe for the concurrent layer reads of a scan.
type memCache struct {
	mu sync.Mutex
	m  map[string]*inventory.LayerInventory
}

func newMemCache() *memCache { return &memCache{m: map[string]*inventory.LayerInventory{}} }

func (c *memCache) Get(_ context.Context, digest string, mode inventory.Mode) (*inventory.LayerInventory, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	li, ok := c.m[digest+"/"+string(mode)]
	return li, ok, nil
}

func (c *memCache) Put(_ context.Context, digest string, mode inventory.Mode, li *inventory.LayerInventory) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[digest+"/"+string(mode)] = li
	return nil
}

func index(t testing.TB) *advisory.Index {
	t.Helper()
	a, err := advisory.Parse([]byte(opensslRecord))
	if err != nil {
		t.Fatal(err)
	}
	return advisory.BuildIndex(1, []*advisory.Advisory{a})
}

func TestScanReadsEachLayerOnceAndMatches(t *testing.T) {
	ctx := context.Background()
	b := &blobs{opens: map[string]int{}, content: map[string][]byte{
		"sha256:base": gzipTar(t, map[string]string{"etc/os-release": debianRelease}),
		"sha256:ssl":  gzipTar(t, map[string]string{"var/lib/dpkg/status": dpkgStatus}),
	}}
	layers := []pipeline.Layer{b.layer("sha256:base", "ADD rootfs /"), b.layer("sha256:ssl", "RUN apt-get install libssl3")}
	var asked [][]advisory.PackageKey
	idx := index(t)
	adv := pipeline.AdvisoriesFunc(func(_ context.Context, keys []advisory.PackageKey) (match.Advisories, error) {
		asked = append(asked, keys)
		return idx, nil
	})
	var (
		progressMu sync.Mutex
		progressed []string
	)
	cache := newMemCache()
	s := pipeline.Scanner{Mode: inventory.ModeBasic, ScratchDir: t.TempDir(), Cache: cache,
		Progress: func(i int, l pipeline.Layer, r io.Reader) io.Reader {
			progressMu.Lock()
			defer progressMu.Unlock()
			progressed = append(progressed, l.Digest)
			return r
		}}
	res, err := s.Scan(ctx, layers, adv)
	if err != nil {
		t.Fatal(err)
	}
	if res.OS == nil || res.OS.Ecosystem != "Debian:12" {
		t.Fatalf("os %+v", res.OS)
	}
	if want := []advisory.PackageKey{advisory.MakeKey("Debian:12", "openssl")}; len(asked) != 1 || !slices.Equal(asked[0], want) || !slices.Equal(res.Keys, want) {
		t.Errorf("advisories asked for %v, keys %v; want %v", asked, res.Keys, want)
	}
	if len(res.Findings) != 1 || res.Findings[0].VulnerabilityID != "CVE-2099-0001" {
		t.Fatalf("findings %+v", res.Findings)
	}
	p := res.Findings[0].Packages[0]
	if p.Name != "libssl3" || p.Layer != "sha256:ssl" || p.CreatedBy != "RUN apt-get install libssl3" || p.FixedInVersion != "3.0.11-1~deb12u2" {
		t.Errorf("vulnerable package %+v", p)
	}
	if res.NotEvaluated != nil {
		t.Errorf("not evaluated: %v", res.NotEvaluated)
	}
	// Layers are read concurrently: each once, in any order.
	if slices.Sort(progressed); !slices.Equal(progressed, []string{"sha256:base", "sha256:ssl"}) {
		t.Errorf("progress saw %v", progressed)
	}

	// A second image on the same layers reads none of them: the cache holds both.
	again, err := s.Scan(ctx, layers, adv)
	if err != nil {
		t.Fatal(err)
	}
	for d, n := range b.opens {
		if n != 1 {
			t.Errorf("%s opened %d times", d, n)
		}
	}
	if len(again.Findings) != 1 || len(progressed) != 2 {
		t.Errorf("cached scan: %d findings, progress %v", len(again.Findings), progressed)
	}
}

func TestAbsentLayerIsSkippedNotCached(t *testing.T) {
	b := &blobs{opens: map[string]int{}, content: map[string][]byte{
		"sha256:base": gzipTar(t, map[string]string{"etc/os-release": debianRelease}),
	}}
	cache := newMemCache()
	s := pipeline.Scanner{ScratchDir: t.TempDir(), Cache: cache}
	inv, err := s.Inventory(context.Background(), []pipeline.Layer{b.layer("sha256:base", ""), b.layer("sha256:foreign", "")})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(inv.Skipped, func(s inventory.Skipped) bool { return s.Layer == "sha256:foreign" })
	if i < 0 || inv.Skipped[i].Reason != "not here" {
		t.Errorf("skipped %+v", inv.Skipped)
	}
	if _, ok, _ := cache.Get(context.Background(), "sha256:foreign", inventory.ModeEnhanced); ok {
		t.Error("an absent layer was cached")
	}
	if len(inv.History) != 0 {
		t.Errorf("history of layers without created_by: %v", inv.History)
	}
}

func TestLayerFailures(t *testing.T) {
	boom := errors.New("disk on fire")
	for _, tc := range []struct {
		name       string
		layer      pipeline.Layer
		unreadable bool
		want       error
	}{
		{"not a tar", pipeline.Layer{Digest: "sha256:junk", Content: bytesOpener("this is no layer")}, true, nil},
		{"open fails", pipeline.Layer{Digest: "sha256:gone", Content: failingOpener{boom}}, false, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pipeline.Scanner{ScratchDir: t.TempDir()}.Inventory(context.Background(), []pipeline.Layer{tc.layer})
			le, ok := errors.AsType[*pipeline.LayerError](err)
			if !ok || le.Digest != tc.layer.Digest {
				t.Fatalf("err %v: want a LayerError of %s", err, tc.layer.Digest)
			}
			if got := errors.Is(err, pipeline.ErrUnreadableLayer); got != tc.unreadable {
				t.Errorf("unreadable %v, want %v (%v)", got, tc.unreadable, err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err %v does not wrap %v", err, tc.want)
			}
		})
	}
}

type bytesOpener string

func (b bytesOpener) Open(context.Context) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader([]byte(b))), nil
}

type failingOpener struct{ err error }

func (f failingOpener) Open(context.Context) (io.ReadCloser, error) { return nil, f.err }

func TestKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkgs []inventory.Package
		want []advisory.PackageKey
	}{
		{"none", nil, nil},
		{"no ecosystem", []inventory.Package{{Name: "libc6", PackageManager: inventory.ManagerOS}}, nil},
		{"OS packages by source, once", []inventory.Package{
			{Ecosystem: "Debian:12", Name: "libssl3", SourceName: "openssl", PackageManager: inventory.ManagerOS},
			{Ecosystem: "Debian:12", Name: "openssl", PackageManager: inventory.ManagerOS},
			{Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", PackageManager: inventory.ManagerJAR},
		}, []advisory.PackageKey{advisory.MakeKey("Debian:12", "openssl"), advisory.MakeKey("Maven", "org.apache.logging.log4j:log4j-core")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pipeline.Keys(tc.pkgs); !slices.Equal(got, tc.want) {
				t.Errorf("Keys = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestInventoryReadsTheLargestLayersFirst: layers are handed to the readers largest first
// (those of unknown size last, in order), and the inventory is the one read in order.
func TestInventoryReadsTheLargestLayersFirst(t *testing.T) {
	ctx := context.Background()
	padding := func(n int) string { return strings.Repeat("x", n) } // compressed, a few bytes per KiB
	b := &blobs{opens: map[string]int{}, content: map[string][]byte{
		"sha256:small":   gzipTar(t, map[string]string{"etc/os-release": debianRelease}),
		"sha256:large":   gzipTar(t, map[string]string{"var/lib/dpkg/status": dpkgStatus, "pad": padding(4 << 20)}),
		"sha256:medium":  gzipTar(t, map[string]string{"pad2": padding(1 << 20)}),
		"sha256:unknown": gzipTar(t, map[string]string{"pad3": padding(8 << 20)}),
	}}
	unknown := b.layer("sha256:unknown", "")
	unknown.Size = -1
	layers := []pipeline.Layer{b.layer("sha256:small", ""), unknown, b.layer("sha256:large", ""), b.layer("sha256:medium", "")}
	var order []string
	s := pipeline.Scanner{Mode: inventory.ModeBasic, ScratchDir: t.TempDir(), Parallel: 1,
		Progress: func(i int, l pipeline.Layer, r io.Reader) io.Reader {
			order = append(order, l.Digest)
			return r
		}}
	inv, err := s.Inventory(ctx, layers)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sha256:large", "sha256:medium", "sha256:small", "sha256:unknown"}; !slices.Equal(order, want) {
		t.Errorf("layers read in the order %v, want %v", order, want)
	}
	if want := []string{"sha256:small", "sha256:unknown", "sha256:large", "sha256:medium"}; !slices.Equal(inv.Layers, want) {
		t.Errorf("inventory of the layers %v, want them in the image's order %v", inv.Layers, want)
	}
	if inv.OS == nil || inv.OS.Ecosystem != "Debian:12" || len(inv.Packages) != 1 || inv.Packages[0].Layer != "sha256:large" {
		t.Errorf("inventory %+v %+v", inv.OS, inv.Packages)
	}
}
