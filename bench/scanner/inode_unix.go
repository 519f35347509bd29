package main

import (
	"io/fs"
	"syscall"
)

// inode returns a file's inode number and link count, to write hard links as links.
func inode(st fs.FileInfo) (ino, nlink uint64) {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino, uint64(s.Nlink)
	}
	return 0, 1
}
