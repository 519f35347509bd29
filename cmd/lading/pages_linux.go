package main

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// releaseCodePages unmaps the pages of the process's own executable that its read-only
// mappings (code, read-only data) hold, so that they stop counting in its resident memory
// until used again. Package initialisation touches code and tables all over the 50 MB
// binary (a third of `lading scan`'s peak RSS on a small image), and a layer read touches code
// matching and reporting do not; the kernel maps a page back from the page cache on its next
// use, so this changes nothing but the process's resident set. A mapping holding a private
// copy of any page (Anonymous above zero: written to, e.g. by relocations) is left alone, as
// MADV_DONTNEED would discard the copy. Best effort: errors leave the mappings as they are.
func releaseCodePages() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return
	}
	var start, end uint64
	var candidate bool
	release := func() {
		if candidate && end > start {
			_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), syscall.MADV_DONTNEED)
		}
		candidate = false
	}
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		line := sc.Bytes()
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if lo, hi, ok := bytes.Cut(f[0], []byte("-")); ok && len(f) >= 5 {
			// A mapping's first line: "start-end perms offset dev inode [path]".
			release()
			s, err1 := strconv.ParseUint(string(lo), 16, 64)
			e, err2 := strconv.ParseUint(string(hi), 16, 64)
			perms := f[1]
			candidate = err1 == nil && err2 == nil && len(f) == 6 && string(f[5]) == exe &&
				len(perms) == 4 && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p'
			start, end = s, e
			continue
		}
		if candidate && string(f[0]) == "Anonymous:" && (len(f) < 2 || string(f[1]) != "0") {
			candidate = false
		}
	}
	release()
}
