package store_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/lading-registry/lading/internal/store"
)

func TestStoredDetail(t *testing.T) {
	for _, tc := range []struct {
		name    string
		detail  string
		compact bool
		want    string
		bad     bool
	}{
		{name: "compacted", detail: "{ \"a\" : [1, 2] }\n", want: `{"a":[1,2]}`},
		{name: "marked compact, taken as is", detail: `{"a":[1,2]}`, compact: true, want: `{"a":[1,2]}`},
		{name: "not JSON", detail: `{"a":`, bad: true},
		{name: "not an object", detail: `[1]`, bad: true},
		{name: "marked compact but not an object", detail: `[1]`, compact: true, bad: true},
		{name: "marked compact but empty", detail: ``, compact: true, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := store.OutboxEvent{DetailType: "Test", Source: "test", Detail: json.RawMessage(tc.detail), DetailCompact: tc.compact}
			got, err := ev.StoredDetail()
			if tc.bad {
				if !errors.Is(err, store.ErrBadOutboxEvent) {
					t.Fatalf("got %q, %v; want store.ErrBadOutboxEvent", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
