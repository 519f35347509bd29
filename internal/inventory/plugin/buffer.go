package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// spareMax is the largest Content memory a Buffers keeps for reuse once closed: the files
// plugins read whole (package databases, manifests, executables' headers) follow one another,
// and reusing one buffer instead of allocating each is most of a layer scan's allocations.
const spareMax = 1 << 20

// ErrTooLarge marks content over a size limit.
var ErrTooLarge = errors.New("too large")

// Buffers hands out Content, keeping the bytes held in memory under a budget and spilling
// the rest to one temporary directory, created on first use inside a parent directory and
// removed by Close. A Buffers belongs to one layer scan (one goroutine).
type Buffers struct {
	parent    string
	dir       string
	maxMemory int64
	inMemory  int64
	// spare is the memory of the last closed Content, reused by the next Read it fits.
	spare []byte
}

// NewBuffers returns Buffers that keep at most maxMemory bytes in memory and spill to a
// temporary directory inside scratchParent.
func NewBuffers(scratchParent string, maxMemory int64) *Buffers {
	return &Buffers{parent: scratchParent, maxMemory: maxMemory}
}

// InMemory is the number of bytes the open Content holds in memory.
func (bs *Buffers) InMemory() int64 { return bs.inMemory }

// Close removes the scratch directory and everything in it.
func (bs *Buffers) Close() error {
	if bs.dir == "" {
		return nil
	}
	err := os.RemoveAll(bs.dir)
	bs.dir = ""
	return err
}

func (bs *Buffers) createFile() (*os.File, error) {
	if bs.dir == "" {
		dir, err := os.MkdirTemp(bs.parent, "lading-inventory-*")
		if err != nil {
			return nil, fmt.Errorf("create scratch directory: %w", err)
		}
		bs.dir = dir
	}
	f, err := os.CreateTemp(bs.dir, "spill-*")
	if err != nil {
		return nil, fmt.Errorf("create scratch file: %w", err)
	}
	return f, nil
}

// Read reads r (of declared size, -1 if unknown) into Content of at most max bytes; more is
// ErrTooLarge. The content stays in memory when it fits the budget, else it is spilled.
func (bs *Buffers) Read(r io.Reader, declared, max int64) (*Content, error) {
	if declared > max {
		return nil, fmt.Errorf("%d bytes, over the %d-byte limit (%w)", declared, max, ErrTooLarge)
	}
	limited := &io.LimitedReader{R: r, N: max + 1}
	c := &Content{owner: bs}
	if declared >= 0 && bs.inMemory+declared <= bs.maxMemory {
		// Declared sizes of zip entries can lie: read at most what was declared plus one byte
		// into memory, then continue into a file if there is more.
		if int64(cap(bs.spare)) >= declared+1 {
			c.mem, bs.spare = bs.spare[:0], nil
		} else {
			c.mem = make([]byte, 0, declared+1)
		}
		c.held = declared + 1
		bs.inMemory += c.held
		n, err := io.ReadFull(limited, c.mem[:declared+1])
		c.mem = c.mem[:n]
		c.size = int64(n)
		if err == nil {
			if err := c.spill(limited); err != nil {
				c.Close()
				return nil, err
			}
		} else if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			c.Close()
			return nil, err
		}
	} else if err := c.spill(limited); err != nil {
		c.Close()
		return nil, err
	}
	if c.size > max {
		c.Close()
		return nil, fmt.Errorf("more than %d bytes, over the limit (%w)", max, ErrTooLarge)
	}
	return c, nil
}

// OnDisk returns the name of a file holding c's content, for libraries that open files by
// name (SQLite, Berkeley DB): the spill file, or a scratch copy of content held in memory.
// done removes the copy; the caller must not change the file.
func (bs *Buffers) OnDisk(c *Content) (name string, done func(), err error) {
	if c.file != nil {
		return c.file.Name(), func() {}, nil
	}
	f, err := bs.createFile()
	if err != nil {
		return "", nil, err
	}
	name = f.Name()
	_, err = io.Copy(f, c.NewReader())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	// Best effort: the scratch directory is removed as a whole at the end of the scan.
	done = func() { _ = os.Remove(name) }
	if err != nil {
		done()
		return "", nil, fmt.Errorf("write scratch file: %w", err)
	}
	return name, done, nil
}

// Content is a file's content, held in memory or in a scratch file. It is an io.ReaderAt.
type Content struct {
	mem   []byte
	file  *os.File
	size  int64
	owner *Buffers
	// held is what mem counts in the owner's budget (the declared size and a byte).
	held int64
}

// Size is the content's length in bytes.
func (c *Content) Size() int64 { return c.size }

// ReadAt implements io.ReaderAt.
func (c *Content) ReadAt(p []byte, off int64) (int, error) {
	if c.file != nil {
		return c.file.ReadAt(p, off)
	}
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= int64(len(c.mem)) {
		return 0, io.EOF
	}
	n := copy(p, c.mem[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// NewReader reads the content from its start; it is also an io.ReaderAt and io.Seeker, as
// some libraries require.
func (c *Content) NewReader() *io.SectionReader { return io.NewSectionReader(c, 0, c.size) }

// Close releases the content: its memory returns to the budget, its spill file is removed.
func (c *Content) Close() {
	if c == nil {
		return
	}
	if c.file != nil {
		name := c.file.Name()
		_ = c.file.Close()
		_ = os.Remove(name)
		c.file = nil
	}
	if c.mem != nil {
		c.owner.inMemory -= c.held
		if cap(c.mem) > cap(c.owner.spare) && cap(c.mem) <= spareMax {
			c.owner.spare = c.mem
		}
		c.mem = nil
	}
}

// spill moves the content to a scratch file and appends the rest of r.
func (c *Content) spill(r io.Reader) error {
	f, err := c.owner.createFile()
	if err != nil {
		return err
	}
	c.file = f
	if len(c.mem) > 0 {
		if _, err := f.Write(c.mem); err != nil {
			return fmt.Errorf("write scratch file: %w", err)
		}
		c.owner.inMemory -= c.held
		c.mem = nil
	}
	n, err := io.Copy(f, r)
	c.size += n
	if err != nil {
		return err
	}
	return nil
}

// ContextReader returns a reader of r whose reads fail once ctx is done, so that long
// copies stop on cancellation.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx: ctx, r: r} }

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
