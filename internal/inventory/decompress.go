package inventory

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// ErrNotTar is returned for a layer whose (decompressed) content is not a tar archive.
var ErrNotTar = errors.New("layer is not a tar archive")

// ErrUnsupportedCompression is returned for a layer compressed with a format that OCI layers
// do not use (bzip2, xz).
var ErrUnsupportedCompression = errors.New("unsupported layer compression")

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicBzip2 = []byte{'B', 'Z', 'h'}
)

// A gzip layer goes to the program only when the first layerSampleBytes of it (compressed)
// inflate to at least minProgramRatio times as much, and to less than maxProgramRatio times:
// the program's output crosses a pipe, two copies more than Go's decoder makes, which its
// faster inflate pays for on deflated content but not where Go's decoder only copies: content
// gzip stored as it was (compressed files, random bytes: a ratio near 1), and long runs of one
// byte (a file of zeros: deflate's limit is 1032 to 1), which it writes out as back-references.
// The heads of real layers inflate 1 to 8 times (bench/scanner's images); hostile's layer of
// 2 GiB of zeros 1027 times, and its scan took 1.62 s with that layer through igzip, 0.90 s in
// process (medians of 8). Inflating the sample (up to maxProgramRatio times it: 4 MiB of
// zeros) costs 1.2-1.7 ms at most.
const (
	layerSampleBytes = 64 << 10
	minProgramRatio  = 1.25
	maxProgramRatio  = 64
)

// inflatesMuch tells whether the gzip stream br starts with content that inflates to at least
// minProgramRatio times its size, and less than maxProgramRatio times. It only peeks: a read
// error here is met again, and reported, when the layer is read.
func inflatesMuch(br *bufio.Reader) bool {
	sample, _ := br.Peek(layerSampleBytes)
	zr, err := gzip.NewReader(bytes.NewReader(sample))
	if err != nil {
		return false // a damaged header: Go's decoder reports it
	}
	least, most := int64(float64(len(sample))*minProgramRatio), int64(len(sample))*maxProgramRatio
	n, _ := io.Copy(io.Discard, io.LimitReader(zr, most))
	return n >= least && n < most
}

// zstdMaxWindow allows `zstd --long=27` layers while bounding the decoder's memory.
const zstdMaxWindow = 128 << 20

// decompress detects the compression of a layer stream by its magic bytes (media types are
// not trusted) and returns the decompressed stream, decompressed ahead in a goroutine of its
// own (readAhead) or, for a gzip layer of at least MinProgramGzipBytes when opts names a gzip
// program and the layer's head inflates much (inflatesMuch), by that program in a child
// process (in process after all when it does not start). The returned func stops either.
func decompress(ctx context.Context, r io.Reader, opts Options) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, layerSampleBytes)
	head, err := br.Peek(6)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("read layer: %w", err)
	}
	if bytes.HasPrefix(head, magicGzip) && opts.GzipProgram != "" && opts.LayerSize >= MinProgramGzipBytes && inflatesMuch(br) {
		g, err := startGunzipProgram(ctx, opts.GzipProgram, br)
		if err == nil {
			// The tar reader reads a header at a time: buffered, not a system call each.
			return bufio.NewReaderSize(g, programReadBuffer), g.Close, nil
		}
		// A program that does not start is this machine's fault, not the layer's: the layer
		// is inflated here (the same bytes), and the log says why it was not there.
		opts.logger().WarnContext(ctx, "gzip program did not start: the layer is inflated in process",
			"program", opts.GzipProgram, "error", err)
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip layer: %w", err)
		}
		ra := newReadAhead(zr, func() { _ = zr.Close() }, aheadAfter)
		return ra, ra.Close, nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
		)
		if err != nil {
			return nil, nil, fmt.Errorf("zstd layer: %w", err)
		}
		ra := newReadAhead(zr, zr.Close, aheadAfter)
		return ra, ra.Close, nil
	case bytes.HasPrefix(head, magicXz):
		return nil, nil, fmt.Errorf("%w: xz", ErrUnsupportedCompression)
	case bytes.HasPrefix(head, magicBzip2):
		return nil, nil, fmt.Errorf("%w: bzip2", ErrUnsupportedCompression)
	default:
		return br, func() {}, nil
	}
}
