package report

import (
	"bytes"
	"fmt"
	"testing"
)

type streamItem struct {
	Name  string            `json:"name"`
	Note  string            `json:"note,omitempty"`
	Tags  []string          `json:"tags"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

type streamInner struct {
	Count int          `json:"count"`
	Items []streamItem `json:"items,omitempty"`
	Other []streamItem `json:"other,omitempty"`
}

type streamOuter struct {
	ID    string       `json:"id"`
	Inner *streamInner `json:"inner"`
	After []string     `json:"after"`
}

// TestEncodeListStreamedAsEncoder: the streamed report is byte for byte what json.Encoder with
// the same indentation writes, whatever the list's length, depth and content, and when the
// first element cannot be told apart in the envelope (the fallback).
func TestEncodeListStreamedAsEncoder(t *testing.T) {
	items := func(n int) []streamItem {
		var l []streamItem
		for i := range n {
			l = append(l, streamItem{Name: fmt.Sprintf("item-%d <&>", i), Tags: []string{"a", "\u2028"}, Attrs: map[string]string{"k": "v"}})
		}
		return l
	}
	same := []streamItem{{Name: "x"}, {Name: "x"}, {Name: "x"}}
	for _, tc := range []struct {
		name  string
		items []streamItem
		other []streamItem
	}{
		{"none", nil, nil},
		{"one", items(1), nil},
		{"two", items(2), nil},
		{"many", items(40), items(3)},
		{"equal elements", same, nil},
		{"first element also first in another list (fallback)", same, same[:1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner := &streamInner{Count: len(tc.items), Items: tc.items, Other: tc.other}
			v := streamOuter{ID: "image", Inner: inner, After: []string{"z"}}
			var want, got bytes.Buffer
			if err := encodeIndented(&want, v); err != nil {
				t.Fatal(err)
			}
			if err := encodeListStreamed(&got, v, inner.Items, func(l []streamItem) { inner.Items = l }); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("streamed:\n%s\nencoder:\n%s", got.String(), want.String())
			}
			if len(inner.Items) != len(tc.items) {
				t.Errorf("the list has %d elements after, want %d", len(inner.Items), len(tc.items))
			}
		})
	}
	// At the top level too.
	top := items(3)
	var want, got bytes.Buffer
	if err := encodeIndented(&want, &top); err != nil {
		t.Fatal(err)
	}
	if err := encodeListStreamed(&got, &top, top, func(l []streamItem) { top = l }); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Errorf("top-level list streamed:\n%s\nencoder:\n%s", got.String(), want.String())
	}
}

// errWriter fails every write.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("disk full") }

func TestEncodeListStreamedReportsWriteErrors(t *testing.T) {
	inner := &streamInner{Items: []streamItem{{Name: "a"}, {Name: "b"}}}
	v := streamOuter{Inner: inner}
	if err := encodeListStreamed(errWriter{}, v, inner.Items, func(l []streamItem) { inner.Items = l }); err == nil {
		t.Fatal("a failing writer gave no error")
	}
}
