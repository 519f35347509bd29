package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func testLeases(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	const ttl = 400 * time.Millisecond
	acquire := func(name, holder string, want bool) {
		t.Helper()
		got, err := db.AcquireLease(ctx, name, holder, ttl)
		if err != nil || (got == holder) != want || got == "" {
			t.Fatalf("AcquireLease(%s, %s) = %q, %v; want held %v", name, holder, got, err, want)
		}
	}
	acquire("gc", "a", true)
	acquire("gc", "b", false)       // held by a
	acquire("gc", "a", true)        // a renews
	acquire("webhook/x", "b", true) // another lease is another row
	time.Sleep(ttl + 100*time.Millisecond)
	acquire("gc", "b", true)                                // a's lease expired: b takes it
	acquire("gc", "a", false)                               // a learns on renewal that it lost the lease
	if err := db.ReleaseLease(ctx, "gc", "a"); err != nil { // not a's any more: left alone
		t.Fatal(err)
	}
	acquire("gc", "c", false)
	if err := db.ReleaseLease(ctx, "gc", "b"); err != nil {
		t.Fatal(err)
	}
	acquire("gc", "c", true) // released: no wait for the expiry

	// Racing holders of a free lease: exactly one wins.
	var wg sync.WaitGroup
	got := make([]string, 8)
	errs := make([]error, 8)
	for i := range got {
		wg.Go(func() { got[i], errs[i] = db.AcquireLease(ctx, "race", fmt.Sprint("h", i), time.Minute) })
	}
	wg.Wait()
	winners := 0
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("holder %d: %v", i, errs[i])
		}
		if got[i] == fmt.Sprint("h", i) {
			winners++
		}
		if got[i] != got[0] {
			t.Errorf("holder %d was told %q holds the lease, holder 0 was told %q", i, got[i], got[0])
		}
	}
	if winners != 1 {
		t.Fatalf("%d holders won the same lease, want 1", winners)
	}
}
