package gc_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/blob"
	blobfs "github.com/lading-registry/lading/internal/blob/fs"
	"github.com/lading-registry/lading/internal/gc"
	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

// clock is a settable time source for the store and the collector.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type env struct {
	dir   string
	meta  *sqlite.DB
	blobs *blobfs.Store
	clk   *clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	meta, err := sqlite.Open(context.Background(), filepath.Join(dir, "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = meta.Close() })
	clk := &clock{t: time.Now().Truncate(time.Millisecond)}
	meta.SetClock(clk.now)
	blobs, err := blobfs.New(dir, blobfs.Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return &env{dir: dir, meta: meta, blobs: blobs, clk: clk}
}

// upload stores content and links it into repo, as a push of one blob does.
func (e *env) upload(t *testing.T, repo, content string) digest.Digest {
	t.Helper()
	ctx := context.Background()
	id, err := e.blobs.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.blobs.Append(ctx, id, 0, bytes.NewReader([]byte(content))); err != nil {
		t.Fatal(err)
	}
	d := digest.FromString(content)
	if _, err := e.blobs.Commit(ctx, id, d); err != nil {
		t.Fatal(err)
	}
	if repo != "" {
		if err := e.meta.LinkBlob(ctx, repo, d.String(), int64(len(content)), true); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// push uploads a config and layers and stores a manifest referencing them.
func (e *env) push(t *testing.T, repo, tag, config string, layers ...string) string {
	t.Helper()
	refs := []store.Reference{{Kind: store.RefConfig, Digest: e.upload(t, repo, config).String(), Size: int64(len(config)), Required: true}}
	for _, l := range layers {
		refs = append(refs, store.Reference{Kind: store.RefLayer, Digest: e.upload(t, repo, l).String(), Size: int64(len(l)), Required: true})
	}
	content := []byte(config + "|" + tag)
	m := store.Manifest{Repository: repo, Digest: digest.FromBytes(content).String(), MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: int64(len(content)), Content: content}
	var tags []string
	if tag != "" {
		tags = []string{tag}
	}
	if _, err := e.meta.PutManifest(context.Background(), m, refs, tags, store.PutOptions{CreateRepository: true}); err != nil {
		t.Fatal(err)
	}
	return m.Digest
}

func (e *env) present(t *testing.T, content string) bool {
	t.Helper()
	_, err := e.blobs.Stat(context.Background(), digest.FromString(content))
	if err != nil && !errors.Is(err, blob.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func (e *env) linked(t *testing.T, repo, content string) bool {
	t.Helper()
	_, err := e.meta.BlobSize(context.Background(), repo, digest.FromString(content).String())
	if err != nil && !errors.Is(err, store.ErrBlobUnknown) {
		t.Fatal(err)
	}
	return err == nil
}

func (e *env) run(t *testing.T, o gc.Options) gc.Report {
	t.Helper()
	o.Now = e.clk.now
	o.Logger = slog.New(slog.DiscardHandler)
	rep, err := gc.New(e.meta, e.blobs).Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestCollect(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.push(t, "app", "v1", "cfg1", "shared", "only-v1")
	v2 := e.push(t, "app", "v2", "cfg2", "shared", "only-v2")
	if _, err := e.meta.DeleteManifest(ctx, "app", v2, true); err != nil {
		t.Fatal(err)
	}
	e.upload(t, "other", "abandoned layer")    // linked, never referenced
	e.upload(t, "", "committed, never linked") // a crash between commit and link
	for _, inv := range []struct{ layer, image string }{{"shared", v2}, {"only-v2", ""}} {
		if err := e.meta.PutLayerInventory(ctx, digest.FromString(inv.layer).String(), "BASIC", "fp", []byte("layer")); err != nil {
			t.Fatal(err)
		}
		if inv.image != "" {
			if _, err := e.meta.PutImageInventory(ctx, inv.image, "BASIC", "fp", "", nil, 0, []byte("image"), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A session directory without its record, and another with one, both idle for a while.
	orphan, err := e.blobs.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := e.clk.t.Add(-3 * time.Hour)
	if err := os.Chtimes(filepath.Join(e.dir, "uploads", orphan), old, old); err != nil {
		t.Fatal(err)
	}
	e.clk.t = e.clk.t.Add(2 * time.Hour)
	// Within the grace period of this clock: a link made now, and its file.
	e.upload(t, "app", "just pushed")

	dry := e.run(t, gc.Options{Grace: time.Hour, DryRun: true})
	want := gc.Report{DryRun: true, LinksRemoved: 3, Blobs: 4, LayerInventories: 1, ImageInventories: 1, Uploads: 1}
	if dry.LinksRemoved != want.LinksRemoved || dry.Blobs != want.Blobs || dry.LayerInventories != want.LayerInventories ||
		dry.ImageInventories != want.ImageInventories || dry.Uploads != want.Uploads {
		t.Fatalf("dry run reported %+v, want %+v", dry, want)
	}
	wantBytes := int64(len("cfg2") + len("only-v2") + len("abandoned layer") + len("committed, never linked"))
	if dry.BlobBytes != wantBytes {
		t.Fatalf("dry run reported %d bytes, want %d", dry.BlobBytes, wantBytes)
	}
	if !e.present(t, "only-v2") || !e.linked(t, "other", "abandoned layer") {
		t.Fatal("the dry run removed something")
	}

	rep := e.run(t, gc.Options{Grace: time.Hour})
	if rep.LinksRemoved != want.LinksRemoved || rep.Blobs != want.Blobs || rep.BlobBytes != wantBytes ||
		rep.LayerInventories != 1 || rep.ImageInventories != 1 || rep.Uploads != 1 {
		t.Fatalf("collection reported %+v", rep)
	}
	for _, c := range []struct {
		repo, content  string
		linked, exists bool
	}{
		{"app", "cfg1", true, true},
		{"app", "shared", true, true},
		{"app", "only-v1", true, true},
		{"app", "cfg2", false, false},
		{"app", "only-v2", false, false},
		{"other", "abandoned layer", false, false},
		{"", "committed, never linked", false, false},
		{"app", "just pushed", true, true},
	} {
		if c.repo != "" && e.linked(t, c.repo, c.content) != c.linked {
			t.Errorf("%s in %s: linked %v, want %v", c.content, c.repo, !c.linked, c.linked)
		}
		if e.present(t, c.content) != c.exists {
			t.Errorf("%s: present %v, want %v", c.content, !c.exists, c.exists)
		}
	}
	if _, err := e.meta.LayerInventory(ctx, digest.FromString("shared").String(), "BASIC", "fp"); err != nil {
		t.Errorf("the inventory of a layer in use was removed: %v", err)
	}
	if _, err := e.blobs.UploadSize(ctx, orphan); !errors.Is(err, blob.ErrUploadNotFound) {
		t.Errorf("orphan upload kept: %v", err)
	}
	// A second run finds nothing more.
	if again := e.run(t, gc.Options{Grace: time.Hour}); again.LinksRemoved+again.Blobs+again.Uploads != 0 {
		t.Fatalf("second run: %+v", again)
	}
}

// TestMountAfterPruneFallsBack: a mount whose source link garbage collection removed after the
// registry read it must not link the blob (its file is about to go).
func TestMountAfterPruneFallsBack(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	d := e.upload(t, "src", "mounted layer")
	e.clk.t = e.clk.t.Add(2 * time.Hour)
	if _, err := e.meta.BlobSize(ctx, "src", d.String()); err != nil { // the registry's first look
		t.Fatal(err)
	}
	e.run(t, gc.Options{Grace: time.Hour})
	if _, err := e.meta.MountBlob(ctx, "dst", "src", d.String(), true); !errors.Is(err, store.ErrBlobUnknown) {
		t.Fatalf("mount after the prune: %v, want ErrBlobUnknown", err)
	}
	if _, err := e.meta.MountBlob(ctx, "dst", "", d.String(), true); !errors.Is(err, store.ErrBlobUnknown) {
		t.Fatalf("mount from anywhere after the prune: %v, want ErrBlobUnknown", err)
	}
	if e.linked(t, "dst", "mounted layer") {
		t.Fatal("the mount linked a pruned blob")
	}
}

// TestCheckedLinkSurvives: a client told that a blob exists (HEAD) pushes its manifest after
// a collection; the check re-stamped the link, so the collection spared it.
func TestCheckedLinkSurvives(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	d := e.upload(t, "app", "layer pushed long ago")
	e.clk.t = e.clk.t.Add(48 * time.Hour)
	if _, err := e.meta.CheckBlob(ctx, "app", d.String()); err != nil {
		t.Fatal(err)
	}
	e.clk.t = e.clk.t.Add(time.Minute)
	e.run(t, gc.Options{Grace: time.Hour})
	if !e.linked(t, "app", "layer pushed long ago") || !e.present(t, "layer pushed long ago") {
		t.Fatal("a link the client was just told about was collected")
	}
}
