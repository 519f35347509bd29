// Package cli is what every benchmark command does around its measurement: exit statuses,
// cancellation on an interrupt, and time-stamped progress lines.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// BadFlags reports invalid flags (why), prints the flags' usage and exits with status 2.
func BadFlags(why string) {
	fmt.Fprintln(os.Stderr, "bench:", why)
	flag.Usage()
	os.Exit(2)
}

// Run runs the benchmark with a context that an interrupt or SIGTERM cancels, its report on
// standard output; a failure is printed on standard error and exits with status 1.
func Run(run func(ctx context.Context, out io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Progress returns a function writing progress lines on standard error, each stamped with the
// seconds since Progress was called.
func Progress() func(format string, args ...any) {
	start := time.Now()
	return func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
}
