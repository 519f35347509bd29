package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/scanning/pipeline"
)

// TestLayerProgress: on a terminal the line shows the layers done, the bytes read and the
// packages found (an OS database counted once however many layers rewrite it, the highest
// layer's copy even when a lower layer finishes last), and is cleared at the end; off a
// terminal nothing is drawn.
func TestLayerProgress(t *testing.T) {
	for _, tc := range []struct {
		name string
		tty  bool
		want []string
	}{
		{"terminal", true, []string{"reading layers: 1/2 done", "3.0 KiB / 6.0 KiB", "6.0 KiB / 6.0 KiB", "reading layers: 2/2 done", "4 packages"}},
		{"not a terminal", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			p := &layerProgress{w: &out, tty: tc.tty, total: 2, size: 6144}
			// The upper layer (1) finishes first.
			layers := []struct {
				i  int
				li *inventory.LayerInventory
			}{
				{1, &inventory.LayerInventory{Packages: []inventory.Package{{Name: "a"}}, OSDatabases: []inventory.OSDatabase{{Path: "/var/lib/dpkg/status", Packages: make([]inventory.Package, 3)}}}},
				{0, &inventory.LayerInventory{OSDatabases: []inventory.OSDatabase{{Path: "/var/lib/dpkg/status", Packages: make([]inventory.Package, 2)}}}},
			}
			for _, tc := range layers {
				i, li := tc.i, tc.li
				l := pipeline.Layer{Size: 3072}
				if _, err := io.Copy(io.Discard, p.layer(i, l, strings.NewReader(strings.Repeat("x", 3072)))); err != nil {
					t.Fatal(err)
				}
				p.layerDone(i, l, li)
			}
			p.finish()
			got := out.String()
			if !tc.tty {
				if got != "" {
					t.Fatalf("drew %q off a terminal", got)
				}
				return
			}
			for _, want := range tc.want {
				if !strings.Contains(got, want) {
					t.Errorf("progress lacks %q: %q", want, got)
				}
			}
			if !strings.HasSuffix(got, "\r\033[K") {
				t.Errorf("line not cleared at the end: %q", got)
			}
		})
	}
}
