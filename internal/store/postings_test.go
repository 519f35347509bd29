package store

import (
	"slices"
	"testing"
)

func TestPartIDsRoundTrip(t *testing.T) {
	const span = 1 << PartChunkBits
	for _, tc := range []struct {
		chunk int64
		ids   []int64
	}{
		{0, []int64{0}},
		{0, []int64{1, 2, 3}},
		{0, []int64{0, span - 1}},
		{7, []int64{7 * span}},
		{7, []int64{7*span + 5, 7*span + 200, 8*span - 1}},
		{1 << 30, []int64{1<<30*span + 1}},
	} {
		b := EncodePartIDs(tc.chunk, tc.ids)
		got, err := DecodePartIDs(nil, tc.chunk, b)
		if err != nil || !slices.Equal(got, tc.ids) {
			t.Errorf("chunk %d: %v encoded as %x decodes to %v, %v", tc.chunk, tc.ids, b, got, err)
		}
		if PartChunk(tc.ids[0]) != tc.chunk || PartChunk(tc.ids[len(tc.ids)-1]) != tc.chunk {
			t.Errorf("%v: not all in chunk %d", tc.ids, tc.chunk)
		}
	}
	// Dense ids take a byte each, the first one's offset in the chunk too.
	all := make([]int64, span)
	for i := range all {
		all[i] = 3*span + int64(i)
	}
	if b := EncodePartIDs(3, all); len(b) != span {
		t.Errorf("a full chunk takes %d bytes, want %d", len(b), span)
	}
}

func TestDecodePartIDsRejects(t *testing.T) {
	const span = 1 << PartChunkBits
	for name, b := range map[string][]byte{
		"empty":                   {},
		"truncated varint":        {0x80},
		"overlong varint":         {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"repeated id":             {3, 0},
		"first outside the chunk": EncodePartIDs(0, []int64{span}),
		"last outside the chunk":  EncodePartIDs(0, []int64{1, span + 1}),
		"delta past 2^63":         append([]byte{1}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
	} {
		if got, err := DecodePartIDs(nil, 0, b); err == nil {
			t.Errorf("%s (%x): decoded to %v, want an error", name, b, got)
		}
	}
}

// FuzzDecodePartIDs: whatever the stored bytes, decoding fails or gives sorted, distinct ids
// of the chunk, which encode back to bytes decoding to the same ids.
func FuzzDecodePartIDs(f *testing.F) {
	f.Add(int64(0), []byte{0})
	f.Add(int64(5), EncodePartIDs(5, []int64{5 << PartChunkBits, 5<<PartChunkBits + 300}))
	f.Add(int64(1), []byte{0x80, 0x01})
	f.Fuzz(func(t *testing.T, chunk int64, b []byte) {
		if chunk < 0 || chunk > 1<<40 {
			return // part ids are positive int64s
		}
		ids, err := DecodePartIDs(nil, chunk, b)
		if err != nil {
			return
		}
		if len(ids) == 0 {
			t.Fatalf("%x decoded to no ids", b)
		}
		for i, id := range ids {
			if PartChunk(id) != chunk || (i > 0 && id <= ids[i-1]) {
				t.Fatalf("%x decoded to %v: not sorted, distinct ids of chunk %d", b, ids, chunk)
			}
		}
		again, err := DecodePartIDs(nil, chunk, EncodePartIDs(chunk, ids))
		if err != nil || !slices.Equal(again, ids) {
			t.Fatalf("%v re-encoded decodes to %v, %v", ids, again, err)
		}
	})
}
