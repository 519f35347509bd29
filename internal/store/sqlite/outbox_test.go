package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/store"
)

func openTestDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func testEvent(detail string) store.OutboxEvent {
	return store.OutboxEvent{
		DetailType: "ECR Image Action", Source: "aws.ecr", Account: "123456789012", Region: "us-west-2",
		Time:   time.Date(2019, 11, 16, 1, 54, 34, 0, time.UTC),
		Detail: json.RawMessage(detail),
	}
}

// The point of the outbox: events written with the change they report roll back with it.
func TestAppendOutboxTxCommitsAndRollsBackWithTheChange(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	boom := errors.New("the change failed")
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO repositories(name, created_at) VALUES ('rolled-back', 0)"); err != nil {
			return err
		}
		if err := appendOutboxTx(ctx, tx, []store.OutboxEvent{testEvent(`{"n":1}`)}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	if evs, err := db.ReadOutbox(ctx, 0, 10); err != nil || len(evs) != 0 {
		t.Fatalf("after rollback: %d events, err %v; want none", len(evs), err)
	}
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO repositories(name, created_at) VALUES ('committed', 0)"); err != nil {
			return err
		}
		return appendOutboxTx(ctx, tx, []store.OutboxEvent{testEvent(`{"n":2}`)})
	})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := db.ReadOutbox(ctx, 0, 10)
	if err != nil || len(evs) != 1 || string(evs[0].Detail) != `{"n":2}` {
		t.Fatalf("after commit: %+v, err %v; want the one event", evs, err)
	}
	if ok, err := db.RepositoryExists(ctx, "committed"); err != nil || !ok {
		t.Fatalf("the change itself: exists %v, err %v", ok, err)
	}
}

// BenchmarkAppendOutboxTx measures what an event adds to the transaction of the change it reports.
func BenchmarkAppendOutboxTx(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "meta.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ev := testEvent(`{"result":"SUCCESS","repository-name":"bench","image-digest":"sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234abcd","action-type":"PUSH","image-tag":"latest"}`)
	for b.Loop() {
		ev.ID = ""
		if err := db.Tx(ctx, func(tx *sql.Tx) error { return appendOutboxTx(ctx, tx, []store.OutboxEvent{ev}) }); err != nil {
			b.Fatal(err)
		}
	}
}
