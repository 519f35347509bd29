package blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/blob"
	blobfs "github.com/lading-registry/lading/internal/blob/fs"
	"github.com/lading-registry/lading/internal/blob/pglock"
	blobs3 "github.com/lading-registry/lading/internal/blob/s3"
	"github.com/lading-registry/lading/internal/store/postgres/pgtest"
	"github.com/lading-registry/lading/internal/testserver"
)

// setup is a driver under test; each node is one process's view of a store: a driver and locks of its own over storage shared
// with every other node of the same setup.
type setup struct {
	name string
	// node opens the store again, as another process (or the same one after a restart) would.
	node func(t testing.TB, opts blob.Options) *blob.Store
	// down and up make the storage unreachable and reachable again (nil: it cannot fail).
	down, up func(t *testing.T)
}

func drivers(t testing.TB) []setup {
	fsRoot, pgRoot := t.TempDir(), t.TempDir()
	srv := testserver.StartS3(t)
	srv.SetEnv(t)
	locks := t.TempDir()
	return []setup{
		{name: "fs", node: func(t testing.TB, opts blob.Options) *blob.Store {
			d, err := blobfs.NewDriver(fsRoot, blobfs.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return blob.NewStore(d, d, opts)
		}},
		{name: "s3", node: func(t testing.TB, opts blob.Options) *blob.Store {
			cfg, err := blobs3.ParseURL(srv.URL() + "&part-size=" + strconv.Itoa(5<<20))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Prefix = "conformance/"
			d, err := blobs3.New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			l, err := blobfs.NewFileLocker(locks)
			if err != nil {
				t.Fatal(err)
			}
			return blob.NewStore(d, l, opts)
		}, down: func(*testing.T) { srv.Stop() }, up: func(t *testing.T) {
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
		}},
		// Locks from PostgreSQL, as nodes on several machines take them (pglock).
		{name: "fs+pglock", node: func(t testing.TB, opts blob.Options) *blob.Store {
			d, err := blobfs.NewDriver(pgRoot, blobfs.Options{})
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := pgxpool.ParseConfig(pgtest.ServerURL())
			if err != nil {
				t.Fatal(err)
			}
			cfg.MaxConns = 32 // each lock held keeps a connection
			pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			return blob.NewStore(d, pglock.New(pool), opts)
		}},
	}
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func readAll(t *testing.T, s *blob.Store, d digest.Digest) []byte {
	t.Helper()
	r, err := s.Open(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// upload sends chunks into a new session, each through the store given for it (nodes taking
// turns), and commits on the last node.
func upload(t *testing.T, nodes []*blob.Store, chunks [][]byte, want digest.Digest) (int64, error) {
	t.Helper()
	ctx := context.Background()
	id, err := nodes[0].NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var off int64
	for i, c := range chunks {
		n, err := nodes[i%len(nodes)].Append(ctx, id, off, bytes.NewReader(c))
		if err != nil {
			return 0, err
		}
		off += int64(len(c))
		if n != off {
			t.Fatalf("chunk %d: size %d, want %d", i, n, off)
		}
	}
	return nodes[len(nodes)-1].Commit(ctx, id, want)
}

// TestDriverConformance runs the same cases on every driver: what the registry relies on from
// a blob store, whatever holds the bytes.
func TestDriverConformance(t *testing.T) {
	ctx := context.Background()
	big := random(11<<20 + 12345) // over two S3 parts of 5 MiB, and a pending tail
	cases := []struct {
		name string
		run  func(t *testing.T, st setup)
	}{
		{"chunked upload across nodes verifies and reads back", func(t *testing.T, st setup) {
			nodes := []*blob.Store{st.node(t, blob.Options{}), st.node(t, blob.Options{}), st.node(t, blob.Options{})}
			chunks := [][]byte{big[:1000], big[1000 : 6<<20], big[6<<20 : 6<<20+7], big[6<<20+7:]}
			d := digest.FromBytes(big)
			if _, err := nodes[0].Stat(ctx, d); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("blob visible before its upload: %v", err)
			}
			size, err := upload(t, nodes, chunks, d)
			if err != nil || size != int64(len(big)) {
				t.Fatalf("commit: %d, %v", size, err)
			}
			if got := readAll(t, nodes[1], d); !bytes.Equal(got, big) {
				t.Fatal("content differs")
			}
			if n, err := nodes[2].Stat(ctx, d); err != nil || n != int64(len(big)) {
				t.Fatalf("stat %d %v", n, err)
			}
		}},
		{"ranges", func(t *testing.T, st setup) {
			s := st.node(t, blob.Options{})
			data := random(3 << 20)
			d := digest.FromBytes(data)
			if _, err := upload(t, []*blob.Store{s}, [][]byte{data}, d); err != nil {
				t.Fatal(err)
			}
			r, err := s.Open(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if err := blob.CheckSize(r, int64(len(data))); err != nil {
				t.Fatal(err)
			}
			for _, rg := range []struct{ off, n int64 }{{0, 10}, {1 << 20, 4096}, {int64(len(data)) - 5, 5}, {17, 1}} {
				if _, err := r.Seek(rg.off, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, rg.n)
				if _, err := io.ReadFull(r, got); err != nil {
					t.Fatalf("range %+v: %v", rg, err)
				}
				if !bytes.Equal(got, data[rg.off:rg.off+rg.n]) {
					t.Fatalf("range %+v differs", rg)
				}
			}
		}},
		{"wrong digest leaves nothing", func(t *testing.T, st setup) {
			s := st.node(t, blob.Options{})
			id := newUpload(t, s)
			if _, err := s.Append(ctx, id, 0, bytes.NewReader([]byte("hello"))); err != nil {
				t.Fatal(err)
			}
			bad := digest.FromString("other")
			if _, err := s.Commit(ctx, id, bad); !errors.Is(err, blob.ErrDigestMismatch) {
				t.Fatalf("commit: %v", err)
			}
			for _, d := range []digest.Digest{bad, digest.FromString("hello")} {
				if _, err := s.Stat(ctx, d); !errors.Is(err, blob.ErrNotFound) {
					t.Fatalf("%s visible: %v", d, err)
				}
			}
			if _, err := s.UploadSize(ctx, id); !errors.Is(err, blob.ErrUploadNotFound) {
				t.Fatalf("session kept: %v", err)
			}
		}},
		{"sha512 verifies at commit", func(t *testing.T, st setup) {
			s := st.node(t, blob.Options{})
			data := random(6<<20 + 1)
			d := digest.SHA512.FromBytes(data)
			if _, err := upload(t, []*blob.Store{s}, [][]byte{data[:100], data[100:]}, d); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readAll(t, s, d), data) {
				t.Fatal("content differs")
			}
		}},
		{"chunk at a wrong offset is refused", func(t *testing.T, st setup) {
			s := st.node(t, blob.Options{})
			id := newUpload(t, s)
			if _, err := s.Append(ctx, id, 0, bytes.NewReader([]byte("abc"))); err != nil {
				t.Fatal(err)
			}
			for _, off := range []int64{0, 2, 4} {
				if size, err := s.Append(ctx, id, off, bytes.NewReader([]byte("x"))); !errors.Is(err, blob.ErrOffsetMismatch) || size != 3 {
					t.Fatalf("offset %d: %d %v", off, size, err)
				}
			}
		}},
		{"size limit discards the upload", func(t *testing.T, st setup) {
			s := st.node(t, blob.Options{MaxBlobSize: 10})
			id := newUpload(t, s)
			if _, err := s.Append(ctx, id, 0, bytes.NewReader(make([]byte, 6))); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Append(ctx, id, 6, bytes.NewReader(make([]byte, 5))); !errors.Is(err, blob.ErrTooLarge) {
				t.Fatalf("append over the limit: %v", err)
			}
			if _, err := s.UploadSize(ctx, id); !errors.Is(err, blob.ErrUploadNotFound) {
				t.Fatalf("refused upload kept: %v", err)
			}
		}},
		{"cancel and commit end the session", func(t *testing.T, st setup) {
			s := st.node(t, blob.Options{})
			id := newUpload(t, s)
			if _, err := s.Append(ctx, id, 0, bytes.NewReader(big[:6<<20])); err != nil {
				t.Fatal(err)
			}
			if err := s.Cancel(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Append(ctx, id, -1, bytes.NewReader([]byte("late"))); !errors.Is(err, blob.ErrUploadNotFound) {
				t.Fatalf("append after cancel: %v", err)
			}
			if err := s.Cancel(ctx, id); !errors.Is(err, blob.ErrUploadNotFound) {
				t.Fatalf("second cancel: %v", err)
			}
			d := digest.FromString("once")
			id2 := newUpload(t, s)
			if _, err := s.Append(ctx, id2, 0, bytes.NewReader([]byte("once"))); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Commit(ctx, id2, d); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Commit(ctx, id2, d); !errors.Is(err, blob.ErrUploadNotFound) {
				t.Fatalf("second commit: %v", err)
			}
		}},
		{"garbage collection sees blobs and idle sessions", func(t *testing.T, st setup) {
			s := st.node(t, blob.Options{})
			data := []byte("collected " + t.Name())
			d := digest.FromBytes(data)
			if _, err := upload(t, []*blob.Store{s}, [][]byte{data}, d); err != nil {
				t.Fatal(err)
			}
			var seen bool
			if err := s.WalkBlobs(ctx, func(f blob.File) error {
				seen = seen || (f.Digest == d && f.Size == int64(len(data)))
				return nil
			}); err != nil || !seen {
				t.Fatalf("walk: seen %v, %v", seen, err)
			}
			if removed, err := s.RemoveUnused(ctx, d, time.Now().Add(-time.Hour), func(context.Context) (bool, error) { return false, nil }); err != nil || removed {
				t.Fatalf("a young blob was removed: %v %v", removed, err)
			}
			if removed, err := s.RemoveUnused(ctx, d, time.Now().Add(time.Hour), func(context.Context) (bool, error) { return true, nil }); err != nil || removed {
				t.Fatalf("a blob in use was removed: %v %v", removed, err)
			}
			if removed, err := s.RemoveUnused(ctx, d, time.Now().Add(time.Hour), func(context.Context) (bool, error) { return false, nil }); err != nil || !removed {
				t.Fatalf("an old unused blob was kept: %v %v", removed, err)
			}
			if _, err := s.Stat(ctx, d); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("removed blob still there: %v", err)
			}
			id := newUpload(t, s)
			if _, err := s.Append(ctx, id, 0, bytes.NewReader(big[:6<<20])); err != nil {
				t.Fatal(err)
			}
			ups, err := s.Uploads(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var found bool
			for _, u := range ups {
				found = found || (u.ID == id && u.Size == 6<<20)
			}
			if !found {
				t.Fatalf("session %s not listed in %+v", id, ups)
			}
			if dropped, err := s.DropIdleUpload(ctx, id, time.Now().Add(-time.Hour)); err != nil || dropped {
				t.Fatalf("an active session was dropped: %v %v", dropped, err)
			}
			if dropped, err := s.DropIdleUpload(ctx, id, time.Now().Add(time.Hour)); err != nil || !dropped {
				t.Fatalf("an idle session was kept: %v %v", dropped, err)
			}
			if _, err := s.UploadSize(ctx, id); !errors.Is(err, blob.ErrUploadNotFound) {
				t.Fatalf("dropped session still there: %v", err)
			}
		}},
		{"a chunk cut off with its request keeps what arrived", func(t *testing.T, st setup) {
			s := st.node(t, blob.Options{})
			id := newUpload(t, s)
			cut := 6<<20 + 3 // a part and a pending tail on S3
			reqCtx, hangUp := context.WithCancel(ctx)
			size, err := s.Append(reqCtx, id, 0, &hangingUpReader{data: big[:cut], hangUp: hangUp})
			if err == nil || size != int64(cut) {
				t.Fatalf("cut-off append: size %d, %v; want %d and an error", size, err, cut)
			}
			if got, err := s.UploadSize(ctx, id); err != nil || got != int64(cut) {
				t.Fatalf("upload size %d, %v", got, err)
			}
			if _, err := s.Append(ctx, id, int64(cut), bytes.NewReader(big[cut:])); err != nil {
				t.Fatal(err)
			}
			d := digest.FromBytes(big)
			if _, err := s.Commit(ctx, id, d); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readAll(t, s, d), big) {
				t.Fatal("content differs")
			}
		}},
		{"a late chunk racing a commit on another node never changes the blob", func(t *testing.T, st setup) {
			a, b := st.node(t, blob.Options{}), st.node(t, blob.Options{})
			for round := range 10 {
				first := random(64<<10 + round)
				id, err := a.NewUpload(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := a.Append(ctx, id, 0, bytes.NewReader(first)); err != nil {
					t.Fatal(err)
				}
				d := digest.FromBytes(first)
				done := make(chan error, 1)
				go func() {
					_, err := b.Append(ctx, id, int64(len(first)), bytes.NewReader([]byte("late")))
					done <- err
				}()
				_, commitErr := a.Commit(ctx, id, d)
				appendErr := <-done
				switch {
				case commitErr == nil: // the commit came first: the late chunk finds no session
					if !errors.Is(appendErr, blob.ErrUploadNotFound) {
						t.Fatalf("round %d: append after the commit: %v", round, appendErr)
					}
					if !bytes.Equal(readAll(t, b, d), first) {
						t.Fatalf("round %d: the blob changed", round)
					}
				case errors.Is(commitErr, blob.ErrDigestMismatch): // the chunk came first
					if appendErr != nil {
						t.Fatalf("round %d: append: %v", round, appendErr)
					}
					if _, err := a.Stat(ctx, d); !errors.Is(err, blob.ErrNotFound) {
						t.Fatalf("round %d: a blob that failed its digest is visible: %v", round, err)
					}
				default:
					t.Fatalf("round %d: commit: %v", round, commitErr)
				}
			}
		}},
		{"storage outage: unavailable, then recovered", func(t *testing.T, st setup) {
			if st.down == nil {
				return // a local directory has no outage to play; the S3 row does
			}
			s := st.node(t, blob.Options{})
			data := []byte("before the outage")
			d := digest.FromBytes(data)
			if _, err := upload(t, []*blob.Store{s}, [][]byte{data}, d); err != nil {
				t.Fatal(err)
			}
			id := newUpload(t, s)
			st.down(t)
			if err := s.Ping(ctx); !errors.Is(err, blob.ErrUnavailable) {
				t.Errorf("ping during the outage: %v", err)
			}
			if _, err := s.Open(ctx, d); !errors.Is(err, blob.ErrUnavailable) {
				t.Errorf("open during the outage: %v", err)
			}
			if _, err := s.Append(ctx, id, 0, bytes.NewReader(data)); !errors.Is(err, blob.ErrUnavailable) {
				t.Errorf("append during the outage: %v", err)
			}
			st.up(t)
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("ping after the outage: %v", err)
			}
			if !bytes.Equal(readAll(t, s, d), data) {
				t.Fatal("content differs after the outage")
			}
			if _, err := s.Append(ctx, id, 0, bytes.NewReader(data)); err != nil {
				t.Fatalf("the session after the outage: %v", err)
			}
		}},
	}
	for _, st := range drivers(t) {
		t.Run(st.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, st) })
			}
		})
	}
}

// BenchmarkUpload pushes a 64 MiB blob through each driver as 8 MiB chunks (PATCHes) and
// commits it: the shared upload path's throughput, and what a commit costs on each storage.
func BenchmarkUpload(b *testing.B) {
	ctx := context.Background()
	data := random(64 << 20)
	d := digest.FromBytes(data)
	for _, st := range drivers(b) {
		b.Run(st.name, func(b *testing.B) {
			s := st.node(b, blob.Options{})
			b.SetBytes(int64(len(data)))
			var commitTime time.Duration
			for b.Loop() {
				id, err := s.NewUpload(ctx)
				if err != nil {
					b.Fatal(err)
				}
				for off := 0; off < len(data); off += 8 << 20 {
					if _, err := s.Append(ctx, id, int64(off), bytes.NewReader(data[off:off+8<<20])); err != nil {
						b.Fatal(err)
					}
				}
				t0 := time.Now()
				if _, err := s.Commit(ctx, id, d); err != nil {
					b.Fatal(err)
				}
				commitTime += time.Since(t0)
				if err := s.Delete(ctx, d); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(commitTime.Milliseconds())/float64(b.N), "commit-ms/op")
		})
	}
}

// hangingUpReader is a request body whose client goes away: it yields its data 1 MiB at a time,
// then cancels the request's context and fails, as net/http does when the connection drops.
type hangingUpReader struct {
	data   []byte
	hangUp context.CancelFunc
}

func (r *hangingUpReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		r.hangUp()
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p[:min(len(p), 1<<20)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// newUpload starts an upload session, failing the test when it cannot.
func newUpload(t testing.TB, s interface {
	NewUpload(context.Context) (string, error)
}) string {
	t.Helper()
	id, err := s.NewUpload(context.Background())
	if err != nil {
		t.Fatalf("new upload: %v", err)
	}
	return id
}
