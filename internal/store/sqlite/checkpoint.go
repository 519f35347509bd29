package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// The WAL is copied back into the database file by a connection of its own, in the
// background, rather than by the write connection after the commit that fills it past
// SQLite's threshold (wal_autocheckpoint, 1,000 pages): that copy ran on the writer's path,
// where the next write waited for it (about 1 s of an 8 s re-evaluation of 10,000 images in
// a store of a million, bench/continuous). The write connection keeps a threshold as a
// backstop, should the background checkpoints fall behind or fail. It is above what one
// large transaction writes (a re-evaluation's batch of 2,000 images at a million: about
// 15,000 pages), or the writer would still checkpoint after each such commit itself.
//
// Nor does it copy in the middle of a burst of writes (a re-evaluation's transactions back to
// back, pushes one after another): while a write transaction runs, or one ended less than
// checkpointQuiet ago, it waits, for checkpointMaxDefer at most. A copy in a burst takes the
// CPU the burst's own work needs (at a million images, a third of the re-evaluation's time in
// system calls was the checkpoints beside it: 0.5 s) and copies a page the burst writes again
// once per checkpoint; after the burst each page is copied once.
const (
	checkpointEvery    = 100 * time.Millisecond
	checkpointQuiet    = 100 * time.Millisecond
	checkpointMaxDefer = 5 * time.Second
	// writerAutoCheckpoint is the write connection's threshold, in pages (400 MiB of 4 KiB).
	writerAutoCheckpoint = 100000
)

// writeActivity is what the checkpointer knows of the write transactions: how many run, and
// when the last one ended.
type writeActivity struct {
	running atomic.Int32
	lastEnd atomic.Int64 // UnixNano
}

// begin marks a write transaction begun; the function returned marks it ended.
func (a *writeActivity) begin() func() {
	a.running.Add(1)
	return func() {
		a.lastEnd.Store(time.Now().UnixNano())
		a.running.Add(-1)
	}
}

// busy reports whether writes are under way at now: one runs, or one ended within quiet.
func (a *writeActivity) busy(now time.Time, quiet time.Duration) bool {
	return a.running.Load() > 0 || now.UnixNano()-a.lastEnd.Load() < int64(quiet)
}

// checkpointSchedule is when the checkpointer copies: every tick, unless writes are under way
// (see checkpointQuiet, checkpointMaxDefer).
type checkpointSchedule struct {
	every, quiet, maxDefer time.Duration
}

// checkpointer runs PASSIVE checkpoints (which wait for no reader or writer) until closed.
type checkpointer struct {
	conn     *sql.DB
	cancel   context.CancelFunc
	done     chan struct{}
	activity *writeActivity
	schedule checkpointSchedule
	// checkpoints counts the checkpoints run, for tests.
	checkpoints atomic.Int64
}

func startCheckpointer(path string, schedule checkpointSchedule, activity *writeActivity) (*checkpointer, error) {
	conn, err := openPool(path, false, 0)
	if err != nil {
		return nil, err
	}
	conn.SetMaxOpenConns(1)
	conn.SetMaxIdleConns(1)
	conn.SetConnMaxIdleTime(0)
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{conn: conn, cancel: cancel, done: make(chan struct{}), activity: activity, schedule: schedule}
	go c.run(ctx)
	return c, nil
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	tick := time.NewTicker(c.schedule.every)
	defer tick.Stop()
	failing := false
	last := time.Now()
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return
		case now = <-tick.C:
		}
		if c.activity.busy(now, c.schedule.quiet) && now.Sub(last) < c.schedule.maxDefer {
			continue // in a burst of writes: copy after it
		}
		last = now
		err := c.checkpoint(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			// Logged once until one succeeds: the write connection's own threshold still
			// bounds the WAL meanwhile.
			slog.Warn("background WAL checkpoint failed; the writer checkpoints instead", "err", err)
			failing = true
		case err == nil:
			failing = false
		}
	}
}

// checkpoint copies what it can of the WAL into the database file (a reader or the writer may
// keep it from copying everything: the next tick goes on).
func (c *checkpointer) checkpoint(ctx context.Context) error {
	var blocked, logFrames, copied int
	if err := c.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&blocked, &logFrames, &copied); err != nil {
		return fmt.Errorf("wal checkpoint: %w", err)
	}
	c.checkpoints.Add(1)
	return nil
}

// close stops the checkpoints and closes the connection.
func (c *checkpointer) close() error {
	c.cancel()
	<-c.done
	return c.conn.Close()
}
