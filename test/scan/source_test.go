package scan_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestScanMissingFile: a path-like argument that names no file is reported as such at once,
// with the error exit status (3, not --exit-code's), and never sent to a registry.
func TestScanMissingFile(t *testing.T) {
	data := t.TempDir()
	for _, tc := range []struct{ arg, path string }{
		{"./missing.tar", "./missing.tar"},
		{"/nonexistent", "/nonexistent"},
		{"missing.tar:app", "missing.tar"},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, ladingBin, "scan", "--data-dir", data, "--log-level", "warn", "--exit-code", "1", tc.arg)
			cmd.Dir = t.TempDir() // relative paths name nothing here
			// Any registry request would fail on this proxy with another message than the one wanted.
			cmd.Env = append(os.Environ(), "HTTPS_PROXY=http://127.0.0.1:1", "HTTP_PROXY=http://127.0.0.1:1")
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			err := cmd.Run()
			took := time.Since(start)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 3 {
				t.Fatalf("exit %v, want status 3 (stderr %q)", err, stderr.String())
			}
			want := "lading: open " + tc.path + ": no such file or directory"
			if got := strings.TrimSpace(stderr.String()); got != want {
				t.Errorf("stderr %q, want %q", got, want)
			}
			if stdout.Len() != 0 {
				t.Errorf("a report was written: %q", stdout.String())
			}
			if took > 10*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}
