package inventory

import (
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// programPipeBytes is the size asked of the program's output pipe (Linux's default is
// 64 KiB): the program then runs that far ahead of the layer walk, in kernel memory rather
// than in buffers of this process. The kernel caps it (fs.pipe-max-size, 1 MiB by default).
const programPipeBytes = 1 << 20

// growPipe enlarges the pipe r reads from, if it can; a pipe left at its size is only slower.
func growPipe(r io.Reader) {
	sc, ok := r.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, programPipeBytes)
	})
}
