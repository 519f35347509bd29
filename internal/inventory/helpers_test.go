package inventory_test

import (
	"context"
	"testing"

	"github.com/lading-registry/lading/internal/imagesrc"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/testfiles"
)

// openImage opens one image of a corpus file in testdata/images.
func openImage(tb testing.TB, file, name string) *imagesrc.Image {
	tb.Helper()
	img, err := imagesrc.OpenArchive(context.Background(), testfiles.Path(tb, "images", file), name, imagesrc.Options{Platform: "linux/amd64"})
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
