package inventory

import (
	"io"
	"sync"
)

// Read-ahead of a decompressed layer stream: chunk is the size of one buffer, and at most
// aheadChunks are filled and not yet read (so at most aheadChunks+1 buffers exist per layer).
// The first aheadAfter bytes are read directly: most layers of small images end before, and
// need no goroutine and no buffers.
const (
	aheadChunk  = 256 << 10
	aheadChunks = 4
	aheadAfter  = 64 << 20
)

// readAhead decompresses a layer in its own goroutine while the layer walk parses the tar
// stream and runs the plugins on what was decompressed before: one large layer, which layer
// parallelism cannot split, then uses two cores. Readers see the same bytes and the same
// error, at the same position, as reading the decompressor directly. Memory is bounded by
// the buffers. Close stops the goroutine without waiting for it: a read it has started
// (from a network stream, say) ends when the caller closes the layer's stream; the goroutine
// then closes the decompressor, which it alone uses.
type readAhead struct {
	// src and closeSource are the source until the goroutine starts, after direct bytes.
	src         io.Reader
	closeSource func()
	direct      int64
	started     bool

	full chan aheadChunkData
	free chan []byte
	done chan struct{}
	once sync.Once

	cur aheadChunkData
	off int
	err error
}

type aheadChunkData struct {
	buf []byte
	n   int
	err error
}

func newReadAhead(r io.Reader, closeSource func(), direct int64) *readAhead {
	return &readAhead{
		src:         r,
		closeSource: closeSource,
		direct:      direct,
		full:        make(chan aheadChunkData, aheadChunks),
		free:        make(chan []byte, aheadChunks+1),
		done:        make(chan struct{}),
	}
}

// fill runs in the goroutine: it reads r into free buffers until an error (io.EOF at the end).
func (ra *readAhead) fill(r io.Reader, closeSource func()) {
	defer closeSource()
	made := 0
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.done:
			return
		default:
			if made < aheadChunks+1 {
				buf = make([]byte, aheadChunk)
				made++
			} else {
				select {
				case buf = <-ra.free:
				case <-ra.done:
					return
				}
			}
		}
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var k int
			k, err = r.Read(buf[n:])
			n += k
		}
		select {
		case ra.full <- aheadChunkData{buf: buf, n: n, err: err}:
		case <-ra.done:
			return
		}
		if err != nil {
			return
		}
	}
}

func (ra *readAhead) Read(p []byte) (int, error) {
	if !ra.started {
		if ra.err != nil {
			return 0, ra.err
		}
		if ra.direct > 0 {
			n, err := ra.src.Read(p[:min(int64(len(p)), ra.direct)])
			ra.direct -= int64(n)
			ra.err = err
			return n, err
		}
		ra.started = true
		go ra.fill(ra.src, ra.closeSource)
	}
	for ra.off >= ra.cur.n {
		if ra.err != nil {
			return 0, ra.err
		}
		if ra.cur.buf != nil {
			ra.free <- ra.cur.buf
		}
		if ra.cur.err != nil {
			ra.err, ra.cur = ra.cur.err, aheadChunkData{}
			return 0, ra.err
		}
		ra.cur, ra.off = <-ra.full, 0
	}
	if len(p) == 0 {
		return 0, nil
	}
	n := copy(p, ra.cur.buf[ra.off:ra.cur.n])
	ra.off += n
	return n, nil
}

// Close stops the read-ahead (or closes the source, if it never started); reads after it are
// not allowed.
func (ra *readAhead) Close() {
	ra.once.Do(func() {
		if !ra.started {
			ra.closeSource()
			return
		}
		close(ra.done)
	})
}
