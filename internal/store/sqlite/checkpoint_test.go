package sqlite

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"
	"time"
)

// TestBackgroundCheckpoint: what a commit leaves in the WAL reaches the database file without
// the write connection checkpointing (its threshold is far above what is written here), and
// Close stops the checkpoints.
func TestBackgroundCheckpoint(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	var threshold int
	if err := db.write.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&threshold); err != nil {
		t.Fatal(err)
	}
	if threshold != writerAutoCheckpoint {
		t.Fatalf("the write connection checkpoints at %d pages, want %d", threshold, writerAutoCheckpoint)
	}
	size := func() int64 {
		t.Helper()
		fi, err := os.Stat(db.Path())
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// About 4 MiB of new pages (1,000 of 4 KiB; the threshold is 100,000): they are in the WAL
	// only until a checkpoint copies them into the file, which grows by as much.
	if _, err := db.write.ExecContext(ctx, "CREATE TABLE ballast(b BLOB)"); err != nil {
		t.Fatal(err)
	}
	before := size()
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		if _, err := tx.ExecContext(ctx, "INSERT INTO ballast VALUES (?)", strings.Repeat("x", 4000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for size() < before+3<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("the database file is %d bytes 10 s after the commit (%d before): nothing checkpointed it", size(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-db.ckpt.done:
	default:
		t.Fatal("the checkpointer still runs after Close")
	}
}

// TestCheckpointWaitsForQuiet: the background checkpoints wait while a write transaction runs
// (a burst of writes), copy once it has ended, and wait no longer than the schedule's maxDefer.
func TestCheckpointWaitsForQuiet(t *testing.T) {
	tests := []struct {
		name     string
		maxDefer time.Duration
		// duringTx is whether a checkpoint must run while the transaction is still open.
		duringTx bool
	}{
		{name: "waits for the end of the burst", maxDefer: time.Hour, duringTx: false},
		{name: "waits no longer than maxDefer", maxDefer: 300 * time.Millisecond, duringTx: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db := openTest(t)
			// The schedule under test, ticking fast, in place of the default one.
			if err := db.ckpt.close(); err != nil {
				t.Fatal(err)
			}
			ckpt, err := startCheckpointer(db.Path(), checkpointSchedule{every: 10 * time.Millisecond, quiet: 50 * time.Millisecond, maxDefer: tt.maxDefer}, db.writes)
			if err != nil {
				t.Fatal(err)
			}
			db.ckpt = ckpt
			if _, err := db.write.ExecContext(ctx, "CREATE TABLE ballast(b BLOB)"); err != nil {
				t.Fatal(err)
			}
			ranAfter := func(n int64, within time.Duration) bool {
				deadline := time.Now().Add(within)
				for ckpt.checkpoints.Load() <= n {
					if time.Now().After(deadline) {
						return false
					}
					time.Sleep(5 * time.Millisecond)
				}
				return true
			}
			release := make(chan struct{})
			inTx := make(chan int64)
			txDone := make(chan error)
			go func() {
				txDone <- db.Tx(ctx, func(tx *sql.Tx) error {
					if _, err := tx.ExecContext(ctx, "INSERT INTO ballast VALUES (?)", strings.Repeat("x", 4000)); err != nil {
						return err
					}
					inTx <- ckpt.checkpoints.Load()
					<-release
					return nil
				})
			}()
			before := <-inTx
			checkpointed := ranAfter(before, 2*time.Second)
			close(release)
			if err := <-txDone; err != nil {
				t.Fatal(err)
			}
			if checkpointed != tt.duringTx {
				t.Fatalf("a checkpoint ran while the write transaction was open: %v, want %v (maxDefer %v)", checkpointed, tt.duringTx, tt.maxDefer)
			}
			if !ranAfter(ckpt.checkpoints.Load(), 5*time.Second) {
				t.Fatal("no checkpoint ran within 5 s after the write transaction ended")
			}
		})
	}
}
