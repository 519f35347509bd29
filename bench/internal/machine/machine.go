// Package machine describes the machine a benchmark runs on, for its report.
package machine

import (
	"bufio"
	"os"
	"runtime"
	"strings"
)

// LoadAverage is the 1-minute load average: the machine may be shared, and a busy one makes
// every figure slower and noisier.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	first, _, _ := strings.Cut(string(b), " ")
	return first
}

// CPUModel is the processor's model name, or the architecture when it cannot be read.
func CPUModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
