package inventory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// errTooLarge marks content over a size limit.
var errTooLarge = errors.New("too large")

// scratch owns one temporary directory, created on first use inside the configured scratch
// directory and removed by close. All spilled content lives there.
type scratch struct {
	parent string
	dir    string
}

func (s *scratch) createFile() (*os.File, error) {
	if s.dir == "" {
		dir, err := os.MkdirTemp(s.parent, "lading-inventory-*")
		if err != nil {
			return nil, fmt.Errorf("create scratch directory: %w", err)
		}
		s.dir = dir
	}
	f, err := os.CreateTemp(s.dir, "spill-*")
	if err != nil {
		return nil, fmt.Errorf("create scratch file: %w", err)
	}
	return f, nil
}

func (s *scratch) close() error {
	if s.dir == "" {
		return nil
	}
	err := os.RemoveAll(s.dir)
	s.dir = ""
	return err
}

// blob is content read into memory, or spilled to a scratch file when memory is short.
type blob struct {
	mem   []byte
	file  *os.File
	size  int64
	owner *buffers
}

func (b *blob) readerAt() io.ReaderAt {
	if b.file != nil {
		return b.file
	}
	return bytes.NewReader(b.mem)
}

func (b *blob) reader() io.Reader { return io.NewSectionReader(b.readerAt(), 0, b.size) }

// path is the spill file's name, or "" for content held in memory.
func (b *blob) path() string {
	if b.file == nil {
		return ""
	}
	return b.file.Name()
}

func (b *blob) close() {
	if b == nil {
		return
	}
	if b.file != nil {
		name := b.file.Name()
		_ = b.file.Close()
		_ = os.Remove(name)
		b.file = nil
	}
	if b.mem != nil {
		b.owner.inMemory -= int64(cap(b.mem))
		b.mem = nil
	}
}

// buffers hands out blobs, keeping the bytes held in memory under a budget.
type buffers struct {
	scratch   *scratch
	maxMemory int64
	inMemory  int64
}

// read reads r (of declared size, -1 if unknown) into a blob of at most max bytes. Content
// over max is errTooLarge. A blob is kept in memory when it fits the memory budget, else spilled.
func (bs *buffers) read(r io.Reader, declared, max int64) (*blob, error) {
	if declared > max {
		return nil, fmt.Errorf("%d bytes, over the %d-byte limit (%w)", declared, max, errTooLarge)
	}
	limited := &io.LimitedReader{R: r, N: max + 1}
	b := &blob{owner: bs}
	if declared >= 0 && bs.inMemory+declared <= bs.maxMemory {
		// Declared sizes of zip entries can lie: read at most what was declared plus one byte
		// into memory, then continue into a file if there is more.
		b.mem = make([]byte, 0, declared+1)
		bs.inMemory += declared + 1
		n, err := io.ReadFull(limited, b.mem[:declared+1])
		b.mem = b.mem[:n]
		b.size = int64(n)
		if err == nil {
			if err := b.spill(limited); err != nil {
				b.close()
				return nil, err
			}
		} else if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			b.close()
			return nil, err
		}
	} else if err := b.spill(limited); err != nil {
		b.close()
		return nil, err
	}
	if b.size > max {
		b.close()
		return nil, fmt.Errorf("more than %d bytes, over the limit (%w)", max, errTooLarge)
	}
	return b, nil
}

// spill moves the blob to a scratch file and appends the rest of r.
func (b *blob) spill(r io.Reader) error {
	f, err := b.owner.scratch.createFile()
	if err != nil {
		return err
	}
	b.file = f
	if len(b.mem) > 0 {
		if _, err := f.Write(b.mem); err != nil {
			return fmt.Errorf("write scratch file: %w", err)
		}
		b.owner.inMemory -= int64(cap(b.mem))
		b.mem = nil
	}
	n, err := io.Copy(f, r)
	b.size += n
	if err != nil {
		return err
	}
	return nil
}

// ctxReader fails reads once ctx is done, so that long copies stop on cancellation.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// countingReader counts bytes and fails with errTooLarge past max.
type countingReader struct {
	r   io.Reader
	n   int64
	max int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n >= c.max {
		return 0, fmt.Errorf("more than %d bytes (%w)", c.max, errTooLarge)
	}
	if int64(len(p)) > c.max-c.n {
		p = p[:c.max-c.n]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
