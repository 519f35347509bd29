package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
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
const (
	checkpointEvery = 100 * time.Millisecond
	// writerAutoCheckpoint is the write connection's threshold, in pages (400 MiB of 4 KiB).
	writerAutoCheckpoint = 100000
)

// checkpointer runs PASSIVE checkpoints (which wait for no reader or writer) until closed.
type checkpointer struct {
	conn   *sql.DB
	cancel context.CancelFunc
	done   chan struct{}
}

func startCheckpointer(path string, every time.Duration) (*checkpointer, error) {
	conn, err := openPool(path, false, 0)
	if err != nil {
		return nil, err
	}
	conn.SetMaxOpenConns(1)
	conn.SetMaxIdleConns(1)
	conn.SetConnMaxIdleTime(0)
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{conn: conn, cancel: cancel, done: make(chan struct{})}
	go c.run(ctx, every)
	return c, nil
}

func (c *checkpointer) run(ctx context.Context, every time.Duration) {
	defer close(c.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
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
	return nil
}

// close stops the checkpoints and closes the connection.
func (c *checkpointer) close() error {
	c.cancel()
	<-c.done
	return c.conn.Close()
}
