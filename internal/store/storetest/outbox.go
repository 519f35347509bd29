package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/store"
)

func testEvent(detail string) store.OutboxEvent {
	return store.OutboxEvent{
		DetailType: "ECR Image Action", Source: "aws.ecr", Account: "123456789012", Region: "us-west-2",
		Time:   time.Date(2019, 11, 16, 1, 54, 34, 0, time.UTC),
		Detail: json.RawMessage(detail),
	}
}

func testAppendAndReadOutbox(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	first := testEvent(`{"action-type": "PUSH",  "image-tag": "latest"}`)
	first.ID = "13cde686-328b-6117-af20-0e5566167482"
	second := testEvent(`{"action-type":"DELETE"}`)
	second.Resources = []string{"arn:aws:ecr:us-west-2:123456789012:repository/a"}
	if err := db.AppendOutbox(ctx, first, second); err != nil {
		t.Fatal(err)
	}
	// Appending an event already there is a no-op (a retried append).
	if err := db.AppendOutbox(ctx, first); err != nil {
		t.Fatal(err)
	}
	got, err := db.ReadOutbox(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("read %d events, want 2", len(got))
	}
	if got[0].ID != first.ID || got[1].ID == "" || got[1].ID == first.ID {
		t.Errorf("ids %q %q: want the given one, then a generated one", got[0].ID, got[1].ID)
	}
	if got[0].Seq >= got[1].Seq {
		t.Errorf("sequence %d then %d: want increasing", got[0].Seq, got[1].Seq)
	}
	if string(got[0].Detail) != `{"action-type":"PUSH","image-tag":"latest"}` {
		t.Errorf("detail %s: want compacted JSON", got[0].Detail)
	}
	if !got[0].Time.Equal(first.Time) || got[0].Account != first.Account || got[0].Region != first.Region ||
		got[0].DetailType != first.DetailType || got[0].Source != first.Source || got[0].CreatedAt.IsZero() {
		t.Errorf("round trip changed the event: %+v", got[0])
	}
	if got[0].Resources == nil || len(got[0].Resources) != 0 {
		t.Errorf("resources of first = %#v, want empty, not nil", got[0].Resources)
	}
	if !slices.Equal(got[1].Resources, second.Resources) {
		t.Errorf("resources = %v, want %v", got[1].Resources, second.Resources)
	}
	after, err := db.ReadOutbox(ctx, got[0].Seq, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 1 || after[0].Seq != got[1].Seq {
		t.Errorf("read after %d: %+v, want only the second event", got[0].Seq, after)
	}
	limited, err := db.ReadOutbox(ctx, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(limited) != 1 {
		t.Errorf("limit 1 returned %d events", len(limited))
	}
	// One append naming an event twice, and one already there, adds it once.
	third := testEvent(`{"n":3}`)
	third.ID = "4b5e1f4c-3d1a-4a52-9a0e-7d2f6c1b8e90"
	if err := db.AppendOutbox(ctx, third, first, third); err != nil {
		t.Fatal(err)
	}
	all, err := db.ReadOutbox(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[2].ID != third.ID {
		t.Errorf("after appending an event twice in one append: %d events, want 3, the last %s", len(all), third.ID)
	}
}

func testAppendOutboxRejectsBadEventsWritingNothing(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	good := testEvent(`{"a":1}`)
	for _, tc := range []struct {
		name string
		ev   store.OutboxEvent
	}{
		{"invalid JSON", testEvent(`{"a":`)},
		{"not an object", testEvent(`[1,2]`)},
		{"empty detail", testEvent(``)},
		{"no detail type", func() store.OutboxEvent { e := good; e.DetailType = ""; return e }()},
		{"no source", func() store.OutboxEvent { e := good; e.Source = ""; return e }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := db.AppendOutbox(ctx, good, tc.ev)
			if !errors.Is(err, store.ErrBadOutboxEvent) {
				t.Fatalf("got %v, want store.ErrBadOutboxEvent", err)
			}
			evs, err := db.ReadOutbox(ctx, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 0 {
				t.Fatalf("a rejected batch left %d events", len(evs))
			}
		})
	}
}

func testWebhookCursors(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	if err := db.AppendOutbox(ctx, testEvent(`{"n":1}`), testEvent(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	pos, err := db.InitWebhookCursors(ctx, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := db.ReadOutbox(ctx, 0, 10)
	end := evs[len(evs)-1].Seq
	if pos["a"] != end || pos["b"] != end {
		t.Fatalf("new webhooks at %v, want both at the outbox end %d", pos, end)
	}
	if err := db.AppendOutbox(ctx, testEvent(`{"n":3}`)); err != nil {
		t.Fatal(err)
	}
	if err := db.AdvanceWebhookCursor(ctx, "a", end+1); err != nil {
		t.Fatal(err)
	}
	// A cursor never moves back.
	if err := db.AdvanceWebhookCursor(ctx, "a", end-1); err != nil {
		t.Fatal(err)
	}
	if err := db.AdvanceWebhookCursor(ctx, "nobody", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("advance unknown webhook: %v, want ErrNotFound", err)
	}
	// Restart with a, c: a resumes, b is forgotten, c starts at the end.
	pos, err = db.InitWebhookCursors(ctx, []string{"a", "c", "c"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"a": end + 1, "c": end + 1}
	if len(pos) != len(want) || pos["a"] != want["a"] || pos["c"] != want["c"] {
		t.Fatalf("positions %v, want %v", pos, want)
	}
	all, tail, err := db.WebhookCursors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || tail != end+1 {
		t.Fatalf("stored cursors %v end %d, want a and c, end %d", all, tail, end+1)
	}
}

func testPruneOutboxKeepsWhatAWebhookStillNeeds(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	if _, err := db.InitWebhookCursors(ctx, []string{"slow", "fast"}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := db.AppendOutbox(ctx, testEvent(fmt.Sprintf(`{"i":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	evs, _ := db.ReadOutbox(ctx, 0, 10)
	if err := db.AdvanceWebhookCursor(ctx, "fast", evs[4].Seq); err != nil {
		t.Fatal(err)
	}
	if err := db.AdvanceWebhookCursor(ctx, "slow", evs[1].Seq); err != nil {
		t.Fatal(err)
	}
	// Nothing is old enough yet.
	if n, err := db.PruneOutbox(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("pruned %d (err %v) of recent events, want 0", n, err)
	}
	n, err := db.PruneOutbox(ctx, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("pruned %d, want the 2 that both webhooks received", n)
	}
	left, _ := db.ReadOutbox(ctx, 0, 10)
	if len(left) != 3 || left[0].Seq != evs[2].Seq {
		t.Fatalf("left %d events starting at %d, want 3 from %d", len(left), left[0].Seq, evs[2].Seq)
	}
	// Sequence numbers are not reused after pruning, and a new webhook starts past them.
	if _, err := db.InitWebhookCursors(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PruneOutbox(ctx, time.Now().Add(time.Hour)); err != nil || n != 3 {
		t.Fatalf("with no webhooks pruned %d (err %v), want all 3", n, err)
	}
	if err := db.AppendOutbox(ctx, testEvent(`{"after":"prune"}`)); err != nil {
		t.Fatal(err)
	}
	next, _ := db.ReadOutbox(ctx, 0, 10)
	if len(next) != 1 || next[0].Seq <= evs[4].Seq {
		t.Fatalf("after pruning everything: %+v, want one event with seq > %d", next, evs[4].Seq)
	}
}
