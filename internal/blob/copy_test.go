package blob_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/blob"
)

// TestCopyBetweenDrivers: every blob of one driver's store arrives in the other's, verified; a
// run cut short resumes; a second run copies only what is new; a destination blob whose
// content is not its digest's is caught by Verify.
func TestCopyBetweenDrivers(t *testing.T) {
	ds := drivers(t)
	for _, dir := range []struct{ from, to int }{{0, 1}, {1, 0}} {
		src, dst := ds[dir.from], ds[dir.to]
		t.Run(src.name+"-to-"+dst.name, func(t *testing.T) {
			ctx := context.Background()
			from, to := src.node(t, blob.Options{}), dst.node(t, blob.Options{})
			contents := map[digest.Digest][]byte{}
			put := func(b []byte) {
				t.Helper()
				d := digest.FromBytes(b)
				if _, err := upload(t, []*blob.Store{from}, [][]byte{b}, d); err != nil {
					t.Fatal(err)
				}
				contents[d] = b
			}
			// A second run of the subtest's pair sees the first's blobs: start from what is there.
			for _, n := range []int{1, 4096, 7<<20 + 3} {
				put(append(random(n), []byte(src.name+dst.name)...))
			}

			// Cut short after the first blob: what was copied stays, the rest follows next run.
			cut, cancel := context.WithCancel(ctx)
			rep, err := blob.Copy(cut, to, from, blob.CopyOptions{Progress: func(blob.File, bool) { cancel() }})
			if !errors.Is(err, context.Canceled) || rep.Copied+rep.Present != 1 {
				t.Fatalf("interrupted copy: %+v, %v", rep, err)
			}
			rep, err = blob.Copy(ctx, to, from, blob.CopyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Copied < len(contents)-1 || rep.Present < 1 {
				t.Fatalf("resumed copy: %+v of %d blobs", rep, len(contents))
			}
			for d, b := range contents {
				if got := readAll(t, to, d); !bytes.Equal(got, b) {
					t.Fatalf("%s differs after the copy", d)
				}
			}

			put([]byte("committed after the first copy " + src.name))
			again, err := blob.Copy(ctx, to, from, blob.CopyOptions{Verify: true})
			if err != nil {
				t.Fatal(err)
			}
			if again.Copied != 1 || again.Present != rep.Copied+rep.Present {
				t.Fatalf("second copy: %+v, after %+v", again, rep)
			}

			// Same size, other bytes: only Verify can tell.
			var victim digest.Digest
			for d, b := range contents {
				if len(b) == 4096+len(src.name+dst.name) {
					victim = d
				}
			}
			p, err := blob.BlobPath(victim)
			if err != nil {
				t.Fatal(err)
			}
			if err := to.Driver().PutContent(ctx, p, make([]byte, len(contents[victim]))); err != nil {
				t.Fatal(err)
			}
			if _, err := blob.Copy(ctx, to, from, blob.CopyOptions{}); err != nil {
				t.Fatalf("copy without verify: %v", err)
			}
			if _, err := blob.Copy(ctx, to, from, blob.CopyOptions{Verify: true}); !errors.Is(err, blob.ErrBlobDiffers) {
				t.Fatalf("copy with verify over a corrupt blob: %v", err)
			}
		})
	}
}
