package sqlite

import (
	"context"
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
