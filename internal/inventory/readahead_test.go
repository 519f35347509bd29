package inventory

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// TestReadAhead: the read-ahead yields the bytes of its source and then the source's own
// error, whatever the sizes of the source's reads and of the reader's.
func TestReadAhead(t *testing.T) {
	data := make([]byte, 3*aheadChunk+12345)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	broken := errors.New("stream broke")
	for _, tc := range []struct {
		name    string
		src     func() io.Reader
		want    []byte
		wantErr error
	}{
		{"whole", func() io.Reader { return bytes.NewReader(data) }, data, nil},
		{"one byte at a time", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data[:5000])) }, data[:5000], nil},
		{"empty", func() io.Reader { return bytes.NewReader(nil) }, []byte{}, nil},
		{"exactly one chunk", func() io.Reader { return bytes.NewReader(data[:aheadChunk]) }, data[:aheadChunk], nil},
		{"error after data", func() io.Reader {
			return io.MultiReader(bytes.NewReader(data[:aheadChunk+7]), iotest.ErrReader(broken))
		}, data[:aheadChunk+7], broken},
		{"unexpected EOF kept", func() io.Reader {
			return io.MultiReader(bytes.NewReader(data[:10]), iotest.ErrReader(io.ErrUnexpectedEOF))
		}, data[:10], io.ErrUnexpectedEOF},
	} {
		for _, c := range []struct{ readSize, direct int }{{1, 0}, {511, 0}, {64 << 10, 0}, {1 << 20, 0}, {511, 3}, {64 << 10, aheadChunk + 3}, {1 << 20, 1 << 30}} {
			readSize := c.readSize
			closed := make(chan struct{})
			ra := newReadAhead(tc.src(), func() { close(closed) }, int64(c.direct))
			var got bytes.Buffer
			buf := make([]byte, readSize)
			var err error
			for {
				var n int
				n, err = ra.Read(buf)
				got.Write(buf[:n])
				if err != nil {
					break
				}
			}
			if tc.wantErr == nil && err != io.EOF || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("%s, reads of %d after %d direct: error %v, want %v", tc.name, readSize, c.direct, err, tc.wantErr)
			}
			if !bytes.Equal(got.Bytes(), tc.want) {
				t.Errorf("%s, reads of %d after %d direct: got %d bytes, want %d (or different)", tc.name, readSize, c.direct, got.Len(), len(tc.want))
			}
			if _, err2 := ra.Read(buf); err2 != err {
				t.Errorf("%s: a read after the end: %v, want %v again", tc.name, err2, err)
			}
			ra.Close()
			<-closed // the source is closed once the goroutine is done
		}
	}
}

// TestReadAheadCloseEarly: a reader that stops early stops the goroutine, which closes the
// source, with the source not read to its end.
func TestReadAheadCloseEarly(t *testing.T) {
	src := &countReader{r: iotest.OneByteReader(bytes.NewReader(make([]byte, 64*aheadChunk)))}
	closed := make(chan struct{})
	ra := newReadAhead(src, func() { close(closed) }, 10)
	if _, err := io.ReadFull(ra, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	ra.Close()
	<-closed
	if src.n >= 64*aheadChunk {
		t.Errorf("read %d bytes of the source after Close", src.n)
	}
}

type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
