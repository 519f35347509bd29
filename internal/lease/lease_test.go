package lease_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/lease"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

func openStore(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// Several runners on one store: the work runs on one of them at a time, and moves to another
// when its holder stops.
func TestOneHolderAtATime(t *testing.T) {
	db := openStore(t)
	const ttl = 300 * time.Millisecond
	var running, most atomic.Int32
	work := func(ctx context.Context) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		<-ctx.Done()
	}
	ctx := context.Background()
	cancels := make([]context.CancelFunc, 3)
	var wg sync.WaitGroup
	for i := range cancels {
		rctx, cancel := context.WithCancel(ctx)
		cancels[i] = cancel
		// Hosts of their own: runners of one process on one host would take each other for
		// restarts of a dead process.
		r := lease.NewRunner(db, fmt.Sprintf("node%d/1/x", i), ttl, nil)
		wg.Go(func() { r.Run(rctx, "duty/x", work) })
	}
	waitFor(t, func() bool { return running.Load() == 1 })
	for i := range cancels[:2] {
		cancels[i]() // whichever holds the lease, the work goes on (or moves) to one of the rest
		time.Sleep(ttl)
		if running.Load() != 1 {
			t.Fatalf("after stopping runner %d: %d running, want 1", i, running.Load())
		}
	}
	cancels[2]()
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("the work ran on %d runners at once, want 1", most.Load())
	}
}

// A holder whose lease was taken stops its work at its next renewal.
func TestLostLeaseStopsWork(t *testing.T) {
	db := openStore(t)
	const ttl = 300 * time.Millisecond
	me := "node/1/me"
	stopped := make(chan struct{})
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := lease.NewRunner(db, me, ttl, nil)
	go r.Run(ctx, "duty/x", func(ctx context.Context) {
		select {
		case <-started:
			return // taken again after losing it: not part of this test
		default:
		}
		close(started)
		<-ctx.Done()
		close(stopped)
	})
	<-started
	// Another node takes the lease (as if this one had been too slow to renew).
	if err := db.ReleaseLease(context.Background(), "duty/x", me); err != nil {
		t.Fatal(err)
	}
	if h, err := db.AcquireLease(context.Background(), "duty/x", "other/1/x", time.Minute); err != nil || h != "other/1/x" {
		t.Fatalf("take over: %q, %v", h, err)
	}
	select {
	case <-stopped:
	case <-time.After(2 * ttl):
		t.Fatal("work went on after its lease was lost")
	}
}

// A lease held by a process of this host that died is taken at once, not after its expiry.
func TestDeadLocalHolderIsReplaced(t *testing.T) {
	db := openStore(t)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, holder string
		immediate    bool
	}{
		{"dead pid", fmt.Sprintf("%s/%d/x", host, 1<<30), true},
		{"own pid, earlier process", fmt.Sprintf("%s/%d/earlier", host, os.Getpid()), true},
		{"live pid", fmt.Sprintf("%s/%d/x", host, os.Getppid()), false},
		{"other host", fmt.Sprintf("elsewhere.%s/%d/x", host, 1<<30), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "duty/" + tc.name
			if h, err := db.AcquireLease(context.Background(), name, tc.holder, time.Hour); err != nil || h != tc.holder {
				t.Fatalf("seed: %q, %v", h, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			ran := make(chan struct{}, 1)
			lease.NewRunner(db, lease.NewHolder(), time.Hour, nil).Run(ctx, name, func(ctx context.Context) {
				ran <- struct{}{}
				<-ctx.Done()
			})
			got := len(ran) == 1
			if got != tc.immediate {
				t.Fatalf("work ran: %v, want %v", got, tc.immediate)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A TTL too short to renew in (a mistyped --lease-ttl 1ns) is raised, not a panic of a
// zero ticker.
func TestTinyTTL(t *testing.T) {
	db := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	ran := make(chan struct{}, 1)
	lease.NewRunner(db, "node/1/x", time.Nanosecond, nil).Run(ctx, "duty/x", func(ctx context.Context) {
		select {
		case ran <- struct{}{}:
		default:
		}
		<-ctx.Done()
	})
	if len(ran) != 1 {
		t.Fatal("the work did not run")
	}
}
