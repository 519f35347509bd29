//go:build linux || darwin || freebsd

package fs

import "syscall"

// freeBytes is the space on path's volume that an unprivileged writer may still use.
func freeBytes(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
