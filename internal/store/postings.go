package store

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// PartChunkBits splits inventory part ids into chunks of 1<<PartChunkBits for SQLite's
// inverted index from package keys to parts (inventory_key_postings, 0054): one row per key
// and chunk holding the chunk's part ids of the key. Measured on the bench's 10,000-image store
// (2.2 million key-part pairs): 2^10 ids a chunk take 1.41 bytes a pair, 2^9 1.52, 2^11 1.32
// but 2^12 1.44 again, as a blob past about 1,000 bytes (a key in a third of a chunk's parts)
// spills from the B-tree cell to an overflow page of its own, mostly empty. 2^10 ids take at
// most about 1,000 bytes however dense the key: no row spills. Stored rows are chunked by it
// (0054 converts with 10): changing it takes a migration rewriting them.
const PartChunkBits = 10

// PartChunk is the chunk of a part id.
func PartChunk(id int64) int64 { return id >> PartChunkBits }

// EncodePartIDs encodes sorted, distinct part ids of one chunk as inventory_key_postings
// keeps them: uvarint deltas, the first from the chunk's first id, so an id takes one byte
// when within 128 of the one before and never more than two (a chunk spans 1,024).
func EncodePartIDs(chunk int64, ids []int64) []byte {
	out := make([]byte, 0, len(ids)+4)
	prev := chunk << PartChunkBits
	for _, id := range ids {
		out = binary.AppendUvarint(out, uint64(id-prev))
		prev = id
	}
	return out
}

// errPostings is what a stored posting list that EncodePartIDs cannot have written is.
var errPostings = errors.New("inventory key postings: corrupt part ids")

// DecodePartIDs decodes what EncodePartIDs encoded for chunk, appending the ids to dst. The
// bytes are read from the store, so anything EncodePartIDs cannot have written (an empty list,
// a bad varint, ids out of order or outside the chunk) is an error.
func DecodePartIDs(dst []int64, chunk int64, b []byte) ([]int64, error) {
	if len(b) == 0 {
		return dst, fmt.Errorf("%w: empty (chunk %d)", errPostings, chunk)
	}
	const span = 1 << PartChunkBits
	off := uint64(0) // the previous id's offset in the chunk
	for i := 0; len(b) > 0; i++ {
		d, n := binary.Uvarint(b)
		if n <= 0 {
			return dst, fmt.Errorf("%w: bad varint (chunk %d)", errPostings, chunk)
		}
		if (d == 0 && i > 0) || d >= span-off {
			return dst, fmt.Errorf("%w: id out of order or outside the chunk (chunk %d)", errPostings, chunk)
		}
		off += d
		dst = append(dst, chunk<<PartChunkBits+int64(off))
		b = b[n:]
	}
	return dst, nil
}
