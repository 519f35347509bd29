package plugin

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

func TestBuffersRead(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100) // 1000 bytes
	tests := []struct {
		name      string
		maxMemory int64
		declared  int64
		max       int64
		wantDisk  bool
		wantErr   error
	}{
		{"in memory", 4096, 1000, 2000, false, nil},
		{"over the memory budget", 500, 1000, 2000, true, nil},
		{"size unknown", 4096, -1, 2000, true, nil},
		{"declared size lies low", 4096, 10, 2000, true, nil},
		{"declared over max", 4096, 1000, 999, false, ErrTooLarge},
		{"content over max", 4096, 10, 999, false, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scratch := t.TempDir()
			bs := NewBuffers(scratch, tt.maxMemory)
			c, err := bs.Read(bytes.NewReader(data), tt.declared, tt.max)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if got, _ := io.ReadAll(c.NewReader()); !bytes.Equal(got, data) || c.Size() != int64(len(data)) {
					t.Errorf("read back %d bytes, size %d", len(got), c.Size())
				}
				name, done, err := bs.OnDisk(c)
				if err != nil {
					t.Fatal(err)
				}
				if onDisk, err := os.ReadFile(name); err != nil || !bytes.Equal(onDisk, data) {
					t.Errorf("on disk: %d bytes, %v", len(onDisk), err)
				}
				if spilled := c.file != nil; spilled != tt.wantDisk {
					t.Errorf("spilled = %v, want %v", spilled, tt.wantDisk)
				}
				done()
				c.Close()
			}
			if bs.InMemory() != 0 {
				t.Errorf("%d bytes still counted in memory", bs.InMemory())
			}
			if err := bs.Close(); err != nil {
				t.Fatal(err)
			}
			if entries, _ := os.ReadDir(scratch); len(entries) != 0 {
				t.Errorf("scratch directory not emptied: %v", entries)
			}
		})
	}
}

func TestContentReadAt(t *testing.T) {
	bs := NewBuffers(t.TempDir(), 1<<20)
	c, err := bs.Read(strings.NewReader("hello, world"), 12, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tests := []struct {
		off     int64
		n       int
		want    string
		wantEOF bool
	}{
		{0, 5, "hello", false},
		{7, 5, "world", false},
		{7, 10, "world", true},
		{12, 1, "", true},
	}
	for _, tt := range tests {
		p := make([]byte, tt.n)
		n, err := c.ReadAt(p, tt.off)
		if string(p[:n]) != tt.want || errors.Is(err, io.EOF) != tt.wantEOF {
			t.Errorf("ReadAt(%d, %d) = %q, %v", tt.off, tt.n, p[:n], err)
		}
	}
}

func TestNewFileHead(t *testing.T) {
	f := NewFile("usr/bin/x", 0o755, bytes.Repeat([]byte{'a'}, 100))
	if h, _ := f.Head(4); string(h) != "aaaa" {
		t.Errorf("Head(4) = %q", h)
	}
	if h, _ := f.Head(1000); len(h) != MaxHead {
		t.Errorf("Head(1000) gave %d bytes, want MaxHead", len(h))
	}
	if info, _ := f.Stat(); info.Size() != 100 || info.Mode() != 0o755 || info.Name() != "x" || f.Path() != "usr/bin/x" {
		t.Errorf("Stat = %+v", info)
	}
}

// A closed Content's memory serves the next Read that fits it: each Content reads back its
// own bytes, the budget counts what each declared, and a closed one reads nothing.
func TestBuffersReuseMemory(t *testing.T) {
	bs := NewBuffers(t.TempDir(), 1<<20)
	defer bs.Close()
	first := bytes.Repeat([]byte("a"), 1000)
	c1, err := bs.Read(bytes.NewReader(first), int64(len(first)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	mem := c1.mem[:1]
	c1.Close()
	if n, _ := c1.ReadAt(make([]byte, 1), 0); n != 0 {
		t.Fatal("a closed Content still reads")
	}
	tests := []struct {
		data  []byte
		reuse bool
	}{
		{[]byte(strings.Repeat("b", 10)), true},      // fits the closed one's memory
		{[]byte(strings.Repeat("c", 5000)), false},   // does not
		{[]byte(strings.Repeat("d", 4000)), true},    // fits the larger one kept since
		{bytes.Repeat([]byte("e"), spareMax), false}, // over spareMax with its extra byte: not kept
	}
	for i, tt := range tests {
		c, err := bs.Read(bytes.NewReader(tt.data), int64(len(tt.data)), 1<<21)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := io.ReadAll(c.NewReader()); !bytes.Equal(got, tt.data) {
			t.Fatalf("%d: read back %q…, want %q…", i, got[:1], tt.data[:1])
		}
		if c.file != nil {
			t.Fatalf("%d: spilled", i)
		}
		if reused := &c.mem[:1][0] == &mem[0]; reused != tt.reuse {
			t.Errorf("%d: reused = %v, want %v", i, reused, tt.reuse)
		}
		if bs.InMemory() != int64(len(tt.data))+1 {
			t.Errorf("%d: %d bytes counted, want %d", i, bs.InMemory(), len(tt.data)+1)
		}
		if cap(c.mem) > cap(mem) || !tt.reuse {
			mem = c.mem[:1]
		}
		c.Close()
		if bs.InMemory() != 0 {
			t.Errorf("%d: %d bytes still counted", i, bs.InMemory())
		}
	}
	if cap(bs.spare) > spareMax {
		t.Errorf("kept %d bytes, over spareMax", cap(bs.spare))
	}
}
