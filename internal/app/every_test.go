package app

import (
	"context"
	"testing"
	"time"
)

// every keeps running its duty until the context ends, then returns: the server's periodic
// duties (upload purge, garbage collection, planner statistics) stop with it.
func TestEveryRunsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	runs := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		every(ctx, time.Millisecond, func(context.Context) {
			select {
			case runs <- struct{}{}:
			default: // the test has read enough
			}
		})
	}()
	for range 3 {
		select {
		case <-runs:
		case <-time.After(10 * time.Second):
			t.Fatal("every did not run its duty")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("every did not return after the context ended")
	}
}
