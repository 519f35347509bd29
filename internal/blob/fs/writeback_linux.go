//go:build linux && (amd64 || arm64)

package fs

import (
	"os"
	"syscall"
)

// syncFileRangeWrite is SYNC_FILE_RANGE_WRITE: start writing back the range's dirty pages, do
// not wait for it.
const syncFileRangeWrite = 0x2

// startWriteback asks the kernel to start writing a range of f to disk. It is only a head start
// for Commit's fsync, which still decides durability, so a failure is ignored.
func startWriteback(f *os.File, off, n int64) {
	_ = syscall.SyncFileRange(int(f.Fd()), off, n, syncFileRangeWrite)
}
