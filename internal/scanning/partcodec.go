package scanning

import (
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Inventory parts are compressed with zstd: on the parts of the
// bench/continuous store (1,000 images, 1,389 parts) zstd at SpeedBetterCompression with the
// layer named once per part took 5.75 MB where gzip at BestSpeed with the layer in every
// package took 7.20 MB, and it decompresses faster. Parts stored before (gzip) are still read.

// zstdMagic opens a zstd frame; a gzip stream opens with 1f 8b.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// partMaxDecoded bounds what one stored part may decompress to (a part of a million packages
// is about 300 MB of JSON: none is near that).
const partMaxDecoded = 512 << 20

type zstdCodec struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

// partCodec is made once: zstd's EncodeAll and DecodeAll may be called concurrently, and
// neither holds state between calls that could change an answer.
var partCodec = sync.OnceValues(func() (*zstdCodec, error) {
	enc, err := newPartEncoder()
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(partMaxDecoded))
	if err != nil {
		return nil, err
	}
	return &zstdCodec{enc: enc, dec: dec}, nil
})

// compressPart compresses a part's JSON as it is stored.
func compressPart(js []byte) ([]byte, error) {
	c, err := partCodec()
	if err != nil {
		return nil, err
	}
	return c.enc.EncodeAll(js, make([]byte, 0, len(js)/4)), nil
}

// newPartEncoder makes an encoder of the options parts are written with. A part is found by
// the SHA-256 of its bytes, so the same packages must compress to the same bytes every time.
func newPartEncoder() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
		// A part is checked against its SHA-256 when read: a checksum would only add 4 bytes.
		zstd.WithEncoderCRC(false))
}
