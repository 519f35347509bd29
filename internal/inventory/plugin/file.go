package plugin

import (
	"io/fs"
	"path"
	"time"
)

// NewFile is a File over content held in memory, for calling FileRequired outside a layer
// scan (tests, tools). path is relative to the image root, as in a layer.
func NewFile(path string, mode fs.FileMode, content []byte) File {
	return memFile{path: path, mode: mode, content: content}
}

type memFile struct {
	path    string
	mode    fs.FileMode
	content []byte
}

func (f memFile) Path() string               { return f.path }
func (f memFile) Stat() (fs.FileInfo, error) { return f, nil }
func (f memFile) Head(n int) ([]byte, error) {
	return f.content[:min(n, MaxHead, len(f.content))], nil
}

// memFile is its own fs.FileInfo.

func (f memFile) Name() string       { return path.Base(f.path) }
func (f memFile) Size() int64        { return int64(len(f.content)) }
func (f memFile) Mode() fs.FileMode  { return f.mode }
func (f memFile) ModTime() time.Time { return time.Time{} }
func (f memFile) IsDir() bool        { return false }
func (f memFile) Sys() any           { return nil }
