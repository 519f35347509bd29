package storetest

import (
	"context"
	"testing"
	"time"
)

// testLeases: one holder at a time; the holder renews; an expired lease goes to whoever asks;
// a holder that lost its lease learns it on renewal; a released lease is free at once.
func testLeases(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	acquire := func(name, holder string, ttl time.Duration, want bool) {
		t.Helper()
		got, err := db.AcquireLease(ctx, name, holder, ttl)
		if err != nil {
			t.Fatalf("AcquireLease(%s, %s): %v", name, holder, err)
		}
		if got != want {
			t.Fatalf("AcquireLease(%s, %s) = %v, want %v", name, holder, got, want)
		}
	}
	const long = time.Minute
	acquire("gc", "a", long, true)
	acquire("gc", "b", long, false)      // a holds it
	acquire("gc", "a", long, true)       // renewal
	acquire("events/x", "b", long, true) // another lease is another name
	acquire("gc", "b", long, false)

	// Expiry: a's short lease runs out, b takes it over, and a learns on renewal.
	const short = 300 * time.Millisecond
	acquire("lifecycle", "a", short, true)
	acquire("lifecycle", "b", long, false)
	time.Sleep(short + 100*time.Millisecond)
	acquire("lifecycle", "b", long, true)
	acquire("lifecycle", "a", long, false) // a's renewal: lost

	// Release: only by its holder; then anyone may take it at once.
	if err := db.ReleaseLease(ctx, "gc", "b"); err != nil {
		t.Fatal(err)
	}
	acquire("gc", "b", long, false) // b's release of a's lease did nothing
	if err := db.ReleaseLease(ctx, "gc", "a"); err != nil {
		t.Fatal(err)
	}
	acquire("gc", "b", long, true)
	acquire("gc", "a", long, false)
}
