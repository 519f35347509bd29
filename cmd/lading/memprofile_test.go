package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"testing"
)

// TestHeapProfilerOffFirst: the heap profiler is off before any package initialiser
// allocates (a sample taken before is what internal/memprofileoff is there to avoid), which
// holds only while that package sorts and depends as it does now. The test binary links the
// same packages as lading and initialises them by the same rule.
func TestHeapProfilerOffFirst(t *testing.T) {
	if runtime.MemProfileRate != 0 {
		t.Fatalf("runtime.MemProfileRate = %d after initialisation, want 0", runtime.MemProfileRate)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.Bytes())
	}
	line := regexp.MustCompile(`^init (\S+) @.* (\d+) bytes, (\d+) allocs$`)
	var allocatedBefore []string
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if m[1] == "github.com/lading-registry/lading/internal/memprofileoff" {
			if len(allocatedBefore) > 0 {
				t.Errorf("initialisers that allocated before the profiler was turned off: %v", allocatedBefore)
			}
			return
		}
		if m[2] != "0" {
			allocatedBefore = append(allocatedBefore, m[1]+" ("+m[2]+" bytes)")
		}
	}
	t.Fatalf("no init line of internal/memprofileoff in the GODEBUG=inittrace=1 output:\n%s", stderr.Bytes())
}
