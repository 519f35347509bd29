package pipeline_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/lading-registry/lading/internal/scanning/pipeline"
)

// BenchmarkScanOnBase compares the scan of an image whose base layers are already inventoried
// (the layer cache holds them; only the image's own small layer is new) with a cold scan of
// the same image (issue 11 point 5: warm <= 0.05x cold). bench/scanner runs it and prints the
// ratio. The base is neo4j-like of the corpus: Debian 12 base, apt packages, jars.
func BenchmarkScanOnBase(b *testing.B) {
	base := imageLayers(b, "debian-family.tar", "neo4j-like")
	adv := pipeline.Index(index(b))
	own := func(i int) pipeline.Layer {
		data := gzipTar(b, map[string]string{
			"app/package.json":     `{"name":"app","version":"1.0.0","dependencies":{"lodash":"4.17.15"}}`,
			"app/server.js":        fmt.Sprintf("// build %d\n", i),
			"app/node_modules/x/y": "z",
		})
		return pipeline.Layer{Digest: fmt.Sprintf("sha256:own-%d", i), Size: int64(len(data)), Content: bytesOpener(data)}
	}
	b.Run("cold", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := (pipeline.Scanner{ScratchDir: b.TempDir()}).Scan(context.Background(), append(base[:len(base):len(base)], own(i)), adv); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm-base", func(b *testing.B) {
		cache := newMemCache()
		s := pipeline.Scanner{ScratchDir: b.TempDir(), Cache: cache}
		if _, err := s.Inventory(context.Background(), base); err != nil {
			b.Fatal(err)
		}
		for i := 0; b.Loop(); i++ {
			// A new image each time: its own layer is not in the cache.
			if _, err := s.Scan(context.Background(), append(base[:len(base):len(base)], own(i)), adv); err != nil {
				b.Fatal(err)
			}
		}
	})
}
