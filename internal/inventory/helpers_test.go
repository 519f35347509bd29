package inventory_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/lading-registry/lading/internal/imagesrc"
	"github.com/lading-registry/lading/internal/inventory"
)

// sharedTestdata returns the shared test data folder: $LADING_SHARED_TESTDATA, or
// ../shared/testdata beside the repository root (the folder holding go.mod). CI has it, so a
// missing folder fails the test rather than skipping it.
func sharedTestdata(tb testing.TB) string {
	tb.Helper()
	if dir := os.Getenv("LADING_SHARED_TESTDATA"); dir != "" {
		return mustDir(tb, dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return mustDir(tb, filepath.Join(dir, "..", "shared", "testdata"))
		}
		if filepath.Dir(dir) == dir {
			tb.Fatalf("no go.mod above %s", wd)
		}
	}
}

func mustDir(tb testing.TB, dir string) string {
	tb.Helper()
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		tb.Fatalf("shared test data %s is missing (set LADING_SHARED_TESTDATA): %v", dir, err)
	}
	return dir
}

// openImage opens one image of a corpus file in shared/testdata/images.
func openImage(tb testing.TB, file, name string) *imagesrc.Image {
	tb.Helper()
	img, err := imagesrc.OpenArchive(context.Background(), filepath.Join(sharedTestdata(tb), "images", file), name, imagesrc.Options{Platform: "linux/amd64"})
	if err != nil {
		tb.Fatalf("open %s %s: %v", file, name, err)
	}
	tb.Cleanup(func() { _ = img.Close() })
	return img
}

func inventoryLayers(img *imagesrc.Image) []inventory.Layer {
	layers := make([]inventory.Layer, len(img.Layers))
	for i, l := range img.Layers {
		layers[i] = inventory.Layer{Digest: l.Digest, Open: l.Open}
	}
	return layers
}
