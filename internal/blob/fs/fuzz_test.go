package fs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/blob"
)

// FuzzUploadStateMachine drives one upload session with a sequence of operations decoded from
// the input and checks it against a model: the session's size and content, when a chunk is
// accepted, and that a commit succeeds exactly when the digest matches.
func FuzzUploadStateMachine(f *testing.F) {
	f.Add([]byte{0, 5, 'h', 'e', 'l', 'l', 'o', 3, 0})
	f.Add([]byte{0, 3, 'a', 'b', 'c', 1, 2, 'x', 'y', 3, 1, 2})
	f.Add([]byte{0, 1, 'z', 4, 0, 1, 'z'})
	f.Fuzz(func(t *testing.T, program []byte) {
		ctx := context.Background()
		s, err := New(t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		id, err := s.NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var model []byte
		alive := true
		next := func() (byte, bool) {
			if len(program) == 0 {
				return 0, false
			}
			b := program[0]
			program = program[1:]
			return b, true
		}
		for {
			op, ok := next()
			if !ok {
				return
			}
			switch op % 5 {
			case 0, 1: // append: 0 at the right offset, 1 at a wrong one
				n, _ := next()
				data := make([]byte, 0, n)
				for range int(n) {
					b, _ := next()
					data = append(data, b)
				}
				off := int64(len(model))
				if op%5 == 1 {
					off += int64(n%7) + 1
				}
				size, err := s.Append(ctx, id, off, bytes.NewReader(data))
				switch {
				case !alive:
					if !errors.Is(err, blob.ErrUploadNotFound) {
						t.Fatalf("append to finished upload: %v", err)
					}
				case op%5 == 1:
					if !errors.Is(err, blob.ErrOffsetMismatch) || size != int64(len(model)) {
						t.Fatalf("wrong offset accepted: size %d err %v", size, err)
					}
				default:
					if err != nil {
						t.Fatal(err)
					}
					model = append(model, data...)
					if size != int64(len(model)) {
						t.Fatalf("size %d, model %d", size, len(model))
					}
				}
			case 2: // status
				size, err := s.UploadSize(ctx, id)
				if alive && (err != nil || size != int64(len(model))) {
					t.Fatalf("status %d %v, model %d", size, err, len(model))
				}
			case 3: // commit, with the right digest when the next byte is even
				b, _ := next()
				want := digest.FromBytes(model)
				if b%2 == 1 {
					want = digest.FromBytes(append(append([]byte{}, model...), b))
				}
				_, err := s.Commit(ctx, id, want)
				switch {
				case !alive:
					if !errors.Is(err, blob.ErrUploadNotFound) {
						t.Fatalf("commit of finished upload: %v", err)
					}
				case b%2 == 1:
					if !errors.Is(err, blob.ErrDigestMismatch) {
						t.Fatalf("wrong digest committed: %v", err)
					}
					alive = false
				default:
					if err != nil {
						t.Fatal(err)
					}
					r, err := s.Open(ctx, want)
					if err != nil {
						t.Fatal(err)
					}
					got, _ := io.ReadAll(r)
					_ = r.Close()
					if !bytes.Equal(got, model) {
						t.Fatal("committed content differs from model")
					}
					alive = false
				}
			case 4: // cancel
				err := s.Cancel(ctx, id)
				if alive != (err == nil) {
					t.Fatalf("cancel alive=%v err=%v", alive, err)
				}
				alive = false
			}
		}
	})
}
