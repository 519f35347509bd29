package lease_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/lease"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

// duty counts how many holders run it at once, and which holder ran it last.
type duty struct {
	running, most atomic.Int32
	mu            sync.Mutex
	by            []string
}

func (d *duty) run(who string) func(context.Context) {
	return func(ctx context.Context) {
		n := d.running.Add(1)
		for {
			m := d.most.Load()
			if n <= m || d.most.CompareAndSwap(m, n) {
				break
			}
		}
		d.mu.Lock()
		d.by = append(d.by, who)
		d.mu.Unlock()
		<-ctx.Done()
		d.running.Add(-1)
	}
}

func (d *duty) runs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.by...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHolders: two holders of one lease run the duty one at a time; when the running one stops
// (its lease released), the other takes the duty over; a holder whose lease another took stops
// its duty when its renewal says so.
func TestHolders(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	const ttl = 300 * time.Millisecond
	var d duty
	ctxA, stopA := context.WithCancel(ctx)
	ctxB, stopB := context.WithCancel(ctx)
	defer stopB()
	var wg sync.WaitGroup
	wg.Go(func() { lease.NewHolder(db, "a", ttl, nil).Run(ctxA, "duty", d.run("a")) })
	waitFor(t, "a runs the duty", func() bool { return len(d.runs()) == 1 })
	wg.Go(func() { lease.NewHolder(db, "b", ttl, nil).Run(ctxB, "duty", d.run("b")) })
	time.Sleep(3 * ttl) // b tries several times meanwhile
	if got := d.runs(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("runs while a holds the lease: %v, want [a]", got)
	}
	stopA()
	waitFor(t, "b takes the duty over", func() bool { return len(d.runs()) == 2 })
	if got := d.runs(); got[1] != "b" {
		t.Fatalf("runs: %v, want [a b]", got)
	}

	// Someone else takes b's lease (as after b's lease expired unseen): b's next renewal says
	// it is lost, and b stops the duty.
	waitFor(t, "b's lease free to steal", func() bool {
		// Force the takeover: release b's lease under its name, then take it as c.
		if err := db.ReleaseLease(ctx, "duty", "b"); err != nil {
			t.Fatal(err)
		}
		ok, err := db.AcquireLease(ctx, "duty", "c", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	})
	waitFor(t, "b stops the duty it lost", func() bool { return d.running.Load() == 0 })
	stopB()
	wg.Wait()
	if m := d.most.Load(); m != 1 {
		t.Fatalf("%d holders ran the duty at once, want 1", m)
	}
}
