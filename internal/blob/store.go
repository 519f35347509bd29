package blob

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// Store is the content-addressed blob store every driver shares:
//
//	blobs/<algorithm>/<first two hex digits>/<hex>   committed, verified blobs
//	uploads/<id>/data                                bytes received so far
//	uploads/<id>/hashstate.<offset>                  the sha256 state after offset bytes (kept
//	                                                 in the writer's state by a StateKeeper)
//
// A blob becomes visible only by a Move after its digest verifies, so a failure at any point
// leaves either no blob or a correct one. Every change to a session (append, commit, cancel,
// purge) holds the session's lock and opens the data only once it has it, so a request that
// waited while the session was committed finds it gone instead of writing into the new blob.
// The hash state is saved after each chunk, keyed by the offset it covers, before the driver
// persists the chunk (or with it, in the writer's own state, by a StateKeeper), so a commit does
// not read the data again on any driver, and a session resumes on any process that shares the
// driver and the locks.
type Store struct {
	d       Driver
	locks   Locker
	opts    Options
	buffers sync.Pool // copy buffers for uploads: large ones keep syscalls few
}

// Options bound what the store accepts.
type Options struct {
	// MaxBlobSize refuses uploads larger than this many bytes (0: no limit).
	MaxBlobSize int64
	// Redirect lets blob reads be answered with a redirect to the driver's URL (a presigned
	// S3 URL), when the driver gives one.
	Redirect bool
}

// NewStore returns the blob store over a driver and the locks its processes share.
func NewStore(d Driver, locks Locker, opts Options) *Store {
	s := &Store{d: d, locks: locks, opts: opts}
	s.buffers.New = func() any { b := make([]byte, 1<<20); return &b }
	return s
}

// Driver is the driver under the store.
func (s *Store) Driver() Driver { return s.d }

// BlobPath is where blob d lives in a driver.
func BlobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	h := d.Encoded()
	return "blobs/" + string(d.Algorithm()) + "/" + h[:2] + "/" + h, nil
}

// shardLock names the lock that serialises a commit of d with a garbage collection's removal
// of it: its shard, as a lock per digest could not itself be removed without a race.
func shardLock(d digest.Digest) string {
	h := d.Encoded()
	return "blobs/" + string(d.Algorithm()) + "/" + h[:2]
}

var uploadIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// SessionPath is the directory of upload session id; ids that are not the store's are refused.
func SessionPath(id string) (string, error) {
	if !uploadIDPattern.MatchString(id) {
		return "", ErrUploadNotFound
	}
	return "uploads/" + id, nil
}

func dataPath(session string) string { return session + "/data" }

func hashStatePath(session string, offset int64) string {
	return session + "/hashstate." + strconv.FormatInt(offset, 10)
}

// notFound turns the driver's "nothing there" into the store's own error.
func notFound(err, as error) error {
	if errors.Is(err, ErrPathNotFound) {
		return as
	}
	return err
}

// Stat returns the size of a committed blob.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	p, err := BlobPath(d)
	if err != nil {
		return 0, err
	}
	fi, err := s.d.Stat(ctx, p)
	if err != nil {
		return 0, notFound(fmt.Errorf("stat blob: %w", err), ErrNotFound)
	}
	return fi.Size, nil
}

// Open returns the blob's content, seekable.
func (s *Store) Open(ctx context.Context, d digest.Digest) (ReadSeekCloser, error) {
	p, err := BlobPath(d)
	if err != nil {
		return nil, err
	}
	if o, ok := s.d.(Opener); ok {
		f, err := o.Open(ctx, p)
		if err != nil {
			return nil, notFound(fmt.Errorf("open blob: %w", err), ErrNotFound)
		}
		return f, nil
	}
	if g, ok := s.d.(Getter); ok {
		r, size, err := g.Get(ctx, p)
		if err != nil {
			return nil, notFound(fmt.Errorf("open blob: %w", err), ErrNotFound)
		}
		return &seekingReader{ctx: ctx, d: s.d, path: p, size: size, r: r}, nil
	}
	fi, err := s.d.Stat(ctx, p)
	if err != nil {
		return nil, notFound(fmt.Errorf("open blob: %w", err), ErrNotFound)
	}
	return &seekingReader{ctx: ctx, d: s.d, path: p, size: fi.Size}, nil
}

// RedirectURL is a URL the client may fetch blob d from directly for ttl, when the store is
// configured to redirect and its driver gives one; "" otherwise.
func (s *Store) RedirectURL(ctx context.Context, d digest.Digest, ttl time.Duration) (string, error) {
	r, ok := s.d.(Redirector)
	if !s.opts.Redirect || !ok {
		return "", nil
	}
	p, err := BlobPath(d)
	if err != nil {
		return "", err
	}
	return r.RedirectURL(ctx, p, ttl)
}

// Ping tells whether the storage answers (drivers that cannot fail to answer always do).
func (s *Store) Ping(ctx context.Context) error {
	if p, ok := s.d.(Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// Delete removes a committed blob. Deleting a missing blob is not an error.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	p, err := BlobPath(d)
	if err != nil {
		return err
	}
	if err := s.d.Delete(ctx, p); err != nil {
		return fmt.Errorf("delete blob: %w", err)
	}
	return nil
}

func (s *Store) checkSpace() error {
	if c, ok := s.d.(SpaceChecker); ok {
		return c.CheckSpace()
	}
	return nil
}

// NewUpload starts an empty upload session and returns its id.
func (s *Store) NewUpload(ctx context.Context) (string, error) {
	if err := s.checkSpace(); err != nil {
		return "", err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	session, _ := SessionPath(id)
	w, err := s.d.Writer(ctx, dataPath(session), false)
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		_ = s.d.Delete(ctx, session)
		return "", fmt.Errorf("create upload: %w", err)
	}
	return id, nil
}

// lockSession takes session id's lock, waiting for whoever holds it when wait is set.
func (s *Store) lockSession(ctx context.Context, id string, wait bool) (session string, unlock func(), err error) {
	session, err = SessionPath(id)
	if err != nil {
		return "", nil, err
	}
	unlock, err = s.locks.Lock(ctx, session, wait)
	if err != nil {
		return "", nil, notFound(fmt.Errorf("lock upload: %w", err), ErrUploadNotFound)
	}
	return session, unlock, nil
}

// openData opens the session's data to go on writing it; a session that was committed,
// cancelled or dropped while the caller waited for its lock has none.
func (s *Store) openData(ctx context.Context, session string) (FileWriter, error) {
	w, err := s.d.Writer(ctx, dataPath(session), true)
	if err != nil {
		return nil, notFound(fmt.Errorf("open upload: %w", err), ErrUploadNotFound)
	}
	return w, nil
}

// end removes a session (its lock held): its data first, so that a waiter finds none even if
// removing the rest fails part way.
func (s *Store) end(ctx context.Context, session string) error {
	if err := s.d.Delete(ctx, dataPath(session)); err != nil {
		return fmt.Errorf("remove upload: %w", err)
	}
	_ = s.d.Delete(ctx, session)
	return nil
}

// UploadSize reports how many bytes the session holds.
func (s *Store) UploadSize(ctx context.Context, id string) (int64, error) {
	session, err := SessionPath(id)
	if err != nil {
		return 0, err
	}
	fi, err := s.d.Stat(ctx, dataPath(session))
	if err != nil {
		return 0, notFound(fmt.Errorf("stat upload: %w", err), ErrUploadNotFound)
	}
	return fi.Size, nil
}

// spaceCheckEvery is how much an upload may grow between two looks at the storage's reserve.
const spaceCheckEvery = 8 << 20

// Append writes r at offset, which must equal the current size (offset < 0 means "at the end"),
// and returns the new size. Bytes received before a transport error are kept, so a client can
// ask for the size and resume. An upload the store refuses to hold (beyond MaxBlobSize, or with
// the storage at its reserve or full) is ended at once, freeing its space, with ErrTooLarge or
// ErrInsufficientStorage.
func (s *Store) Append(ctx context.Context, id string, offset int64, r io.Reader) (int64, error) {
	session, unlock, err := s.lockSession(ctx, id, true)
	if err != nil {
		return 0, err
	}
	defer unlock()
	w, err := s.openData(ctx, session)
	if err != nil {
		return 0, err
	}
	size := w.Size()
	if offset >= 0 && offset != size {
		return size, errors.Join(fmt.Errorf("%w: chunk starts at %d, upload holds %d bytes", ErrOffsetMismatch, offset, size), w.Close())
	}
	refuse := func(err error) (int64, error) {
		if rmErr := errors.Join(w.Cancel(ctx), s.end(ctx, session)); rmErr != nil {
			return 0, errors.Join(err, rmErr)
		}
		return 0, err
	}
	if err := s.checkSpace(); err != nil {
		return refuse(err)
	}
	h, fromKept, err := s.resumeSHA256(ctx, session, w, size)
	if err != nil {
		return size, errors.Join(err, w.Close())
	}
	src := io.Reader(contextReader{ctx, r})
	limit := s.opts.MaxBlobSize
	if limit > 0 {
		src = io.LimitReader(src, limit-size+1)
	}
	n, copyErr := s.copyAndHash(w, h, src)
	if limit > 0 && size+n > limit {
		return refuse(fmt.Errorf("%w: the registry accepts blobs of at most %d bytes", ErrTooLarge, limit))
	}
	if errors.Is(copyErr, ErrInsufficientStorage) {
		return refuse(copyErr)
	}
	// The state is saved before the driver persists the chunk (or with it, by a StateKeeper), so
	// that whatever the driver holds after a failure has its state: the new one, or the previous
	// one, removed only after. What was received is kept even when the request ended (the client
	// went away): it resumes there.
	keep := context.WithoutCancel(ctx)
	if n > 0 {
		if err := s.saveHashState(keep, session, w, h, size+n); err != nil {
			if errors.Is(err, ErrInsufficientStorage) {
				return refuse(err)
			}
			return size, errors.Join(err, w.Close())
		}
	}
	if err := w.Close(); err != nil {
		if errors.Is(err, ErrInsufficientStorage) {
			return refuse(err)
		}
		return size, fmt.Errorf("save upload data: %w", err)
	}
	if n > 0 && size > 0 && !fromKept {
		// The state file at the previous size, now superseded (by the next file, or by the
		// writer's own state when it keeps one: a session holding a kept state holds no state
		// file, which Commit relies on); at 0 there was none, nor when the writer kept it (a
		// delete costs a listing on S3).
		_ = s.d.Delete(keep, hashStatePath(session, size))
	}
	size += n
	if copyErr != nil {
		return size, fmt.Errorf("receive upload data: %w", copyErr)
	}
	return size, nil
}

// hashDepth is how many received chunks may wait for the hasher: enough to ride out jitter
// between the two goroutines, few enough to keep an upload's memory at a few MiB.
const hashDepth = 2

type chunk struct {
	buf *[]byte
	n   int
}

// copyAndHash writes src to w and feeds h exactly the bytes written, even when it fails part
// way. Hashing, the largest CPU cost of an upload, runs on its own goroutine, overlapping with
// receiving and writing the next chunk.
func (s *Store) copyAndHash(w io.Writer, h hash.Hash, src io.Reader) (int64, error) {
	free := make(chan *[]byte, hashDepth+1)
	for range hashDepth + 1 {
		free <- s.buffers.Get().(*[]byte)
	}
	full := make(chan chunk, hashDepth)
	hashed := make(chan struct{})
	go func() {
		defer close(hashed)
		for c := range full {
			h.Write((*c.buf)[:c.n])
			free <- c.buf
		}
	}()
	var written, unchecked int64
	var err error
	for {
		buf := <-free
		nr, rerr := src.Read(*buf)
		if nr > 0 {
			nw, werr := w.Write((*buf)[:nr])
			written += int64(nw)
			full <- chunk{buf, nw}
			if werr == nil && nw != nr {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				err = werr
				break
			}
			if unchecked += int64(nw); unchecked >= spaceCheckEvery {
				unchecked = 0
				// Other uploads fill the same storage: look again while this one grows.
				if err = s.checkSpace(); err != nil {
					break
				}
			}
		} else {
			free <- buf
		}
		if rerr != nil {
			if rerr != io.EOF {
				err = rerr
			}
			break
		}
	}
	close(full)
	<-hashed
	for range hashDepth + 1 {
		s.buffers.Put(<-free)
	}
	return written, err
}

// Commit verifies the session's content against want and, when it matches, makes it the blob
// want. On a mismatch the session is removed and ErrDigestMismatch returned. The data is moved
// while the session's lock is held, and no one opens it without that lock, so nothing can
// write to the blob once it is visible.
func (s *Store) Commit(ctx context.Context, id string, want digest.Digest) (int64, error) {
	if err := want.Validate(); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrDigestMismatch, err)
	}
	dst, err := BlobPath(want)
	if err != nil {
		return 0, err
	}
	session, unlock, err := s.lockSession(ctx, id, true)
	if err != nil {
		return 0, err
	}
	defer unlock()
	w, err := s.openData(ctx, session)
	if err != nil {
		return 0, err
	}
	size := w.Size()
	discard := func(err error) (int64, error) {
		return 0, errors.Join(err, w.Cancel(ctx), s.end(ctx, session))
	}
	if s.opts.MaxBlobSize > 0 && size > s.opts.MaxBlobSize {
		return discard(fmt.Errorf("%w: the registry accepts blobs of at most %d bytes", ErrTooLarge, s.opts.MaxBlobSize))
	}
	mismatch := func(got digest.Digest) error {
		return fmt.Errorf("%w: computed %s, expected %s", ErrDigestMismatch, got, want)
	}
	fromKept := false
	if want.Algorithm() == digest.SHA256 {
		var h hash.Hash
		if h, fromKept, err = s.resumeSHA256(ctx, session, w, size); err != nil {
			return 0, errors.Join(err, w.Close())
		}
		if got := digest.NewDigest(digest.SHA256, h); got != want {
			return discard(mismatch(got))
		}
	}
	if done, err := s.commitTo(ctx, w, want, dst); done || err != nil {
		if err != nil {
			return 0, err
		}
		// A session whose writer kept the hash state holds no state file (Append removes the
		// one it resumed from), and CommitTo removed what the writer kept: there is nothing
		// left to look for (on S3, a listing). What a failed removal leaves is an idle session
		// to PurgeUploads.
		if !fromKept {
			_ = s.d.Delete(ctx, session)
		}
		return size, nil
	}
	if err := w.Commit(ctx); err != nil {
		if errors.Is(err, ErrInsufficientStorage) {
			return discard(err)
		}
		return 0, fmt.Errorf("commit upload: %w", err)
	}
	if want.Algorithm() != digest.SHA256 {
		// Only sha256 has a saved state (other algorithms are rare): hash the complete data.
		got, err := s.hashData(ctx, session, want.Algorithm())
		if err != nil {
			return 0, err
		}
		if got != want {
			return 0, errors.Join(mismatch(got), s.end(ctx, session))
		}
	}
	// The digest's lock keeps a garbage collection from removing the blob between its last look
	// at it and this move (see RemoveUnused). Moving over an existing blob replaces it with bytes
	// just verified, which also repairs a damaged one.
	unlockDigest, err := s.locks.Lock(ctx, shardLock(want), true)
	if err != nil {
		return 0, fmt.Errorf("commit blob: %w", err)
	}
	defer unlockDigest()
	if err := s.d.Move(ctx, dataPath(session), dst); err != nil {
		return 0, fmt.Errorf("commit blob: %w", err)
	}
	_ = s.d.Delete(ctx, session)
	return size, nil
}

// commitTo completes a verified sha256 upload straight at dst when its writer can
// (CommitterTo), under the digest's lock as Commit's Move is; it reports false, having done
// nothing, when it cannot.
func (s *Store) commitTo(ctx context.Context, w FileWriter, want digest.Digest, dst string) (bool, error) {
	ct, ok := w.(CommitterTo)
	if !ok || want.Algorithm() != digest.SHA256 {
		return false, nil
	}
	unlockDigest, err := s.locks.Lock(ctx, shardLock(want), true)
	if err != nil {
		return false, errors.Join(fmt.Errorf("commit blob: %w", err), w.Close())
	}
	defer unlockDigest()
	done, err := ct.CommitTo(ctx, dst)
	if err != nil {
		return done, fmt.Errorf("commit blob: %w", err)
	}
	return done, nil
}

func (s *Store) hashData(ctx context.Context, session string, alg digest.Algorithm) (digest.Digest, error) {
	r, err := s.d.Reader(ctx, dataPath(session), 0)
	if err != nil {
		return "", fmt.Errorf("hash upload: %w", err)
	}
	defer r.Close()
	got, err := alg.FromReader(contextReader{ctx, r})
	if err != nil {
		return "", fmt.Errorf("hash upload: %w", err)
	}
	return got, nil
}

// Cancel discards an upload session.
func (s *Store) Cancel(ctx context.Context, id string) error {
	session, unlock, err := s.lockSession(ctx, id, true)
	if err != nil {
		return err
	}
	defer unlock()
	w, err := s.openData(ctx, session)
	if err != nil {
		return err
	}
	return errors.Join(w.Cancel(ctx), s.end(ctx, session))
}

// PurgeUploads removes sessions untouched since before, returning their ids. A session whose
// lock is held (a chunk arriving slowly) is left for the next round.
func (s *Store) PurgeUploads(ctx context.Context, before time.Time) ([]string, error) {
	ups, err := s.Uploads(ctx)
	if err != nil {
		return nil, err
	}
	var purged []string
	for _, u := range ups {
		if !u.ModTime.Before(before) {
			continue
		}
		if dropped, err := s.DropIdleUpload(ctx, u.ID, before); err == nil && dropped {
			purged = append(purged, u.ID)
		}
	}
	return purged, nil
}

// Uploads lists the upload sessions in storage.
func (s *Store) Uploads(ctx context.Context) ([]UploadDir, error) {
	entries, err := s.d.List(ctx, "uploads")
	if errors.Is(err, ErrPathNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list uploads: %w", err)
	}
	var out []UploadDir
	for _, e := range entries {
		id := e.Path[strings.LastIndexByte(e.Path, '/')+1:]
		if !uploadIDPattern.MatchString(id) {
			continue
		}
		u := UploadDir{ID: id, ModTime: e.ModTime}
		if fi, err := s.d.Stat(ctx, dataPath("uploads/"+id)); err == nil {
			u.Size = fi.Size
		}
		out = append(out, u)
	}
	return out, nil
}

// DropIdleUpload removes session id if it has been idle since before cutoff and nobody holds
// its lock (a chunk arriving, a commit), reporting whether it did.
func (s *Store) DropIdleUpload(ctx context.Context, id string, cutoff time.Time) (bool, error) {
	session, unlock, err := s.lockSession(ctx, id, false)
	if errors.Is(err, ErrUploadNotFound) || errors.Is(err, ErrLocked) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer unlock()
	// Looked at again under the lock: an append that just finished touched it.
	fi, err := s.d.Stat(ctx, session)
	if errors.Is(err, ErrPathNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat upload: %w", err)
	}
	if !fi.ModTime.Before(cutoff) {
		return false, nil
	}
	if w, err := s.d.Writer(ctx, dataPath(session), true); err == nil {
		_ = w.Cancel(ctx)
	}
	if err := s.end(ctx, session); err != nil {
		return false, err
	}
	return true, nil
}

// WalkBlobs calls fn for every committed blob. Files whose names are not digests (left by hand,
// or by a crash of another tool) are skipped.
func (s *Store) WalkBlobs(ctx context.Context, fn func(File) error) error {
	err := s.d.Walk(ctx, "blobs", func(fi FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		parts := strings.Split(fi.Path, "/")
		if len(parts) != 4 || parts[0] != "blobs" {
			return nil
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[3])
		if d.Validate() != nil || d.Encoded()[:2] != parts[2] {
			return nil
		}
		return fn(File{Digest: d, Size: fi.Size, ModTime: fi.ModTime})
	})
	if errors.Is(err, ErrPathNotFound) {
		return nil
	}
	return err
}

// RemoveUnused removes blob d unless it was committed at or after cutoff or inUse, asked
// while the digest's lock is held, says it is still needed. The lock excludes a commit of the
// same digest (Commit holds it while it moves), so a blob committed while this runs is either
// seen by inUse (or as young) or moved into place after the removal; never removed after it
// was committed. It reports whether it removed the blob.
func (s *Store) RemoveUnused(ctx context.Context, d digest.Digest, cutoff time.Time, inUse func(context.Context) (bool, error)) (bool, error) {
	p, err := BlobPath(d)
	if err != nil {
		return false, err
	}
	unlock, err := s.locks.Lock(ctx, shardLock(d), true)
	if err != nil {
		return false, err
	}
	defer unlock()
	fi, err := s.d.Stat(ctx, p)
	if errors.Is(err, ErrPathNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat blob: %w", err)
	}
	if !fi.ModTime.Before(cutoff) {
		return false, nil
	}
	used, err := inUse(ctx)
	if err != nil || used {
		return false, err
	}
	if err := s.d.Delete(ctx, p); err != nil {
		return false, fmt.Errorf("remove blob: %w", err)
	}
	return true, nil
}

// resumeSHA256 returns a sha256 hash of the session's first size bytes, from the state saved
// at that offset when there is one (in the writer's own state, which fromKept reports, or in a
// file of the session's), otherwise by reading the data again (after a crash between a local
// write and the state's save, or for a writer whose commit was retried).
func (s *Store) resumeSHA256(ctx context.Context, session string, w FileWriter, size int64) (h hash.Hash, fromKept bool, err error) {
	h = sha256.New()
	if size == 0 {
		return h, false, nil
	}
	if k, ok := w.(StateKeeper); ok && restoreHashState(h, k.KeptState(), size) {
		return h, true, nil
	}
	// A session written before its driver kept states, or by a writer that keeps none.
	b, err := s.d.GetContent(ctx, hashStatePath(session, size))
	if err == nil && restoreHashState(h, b, size) {
		return h, false, nil
	} else if err != nil && !errors.Is(err, ErrPathNotFound) {
		return nil, false, fmt.Errorf("read hash state: %w", err)
	}
	r, err := s.d.Reader(ctx, dataPath(session), 0)
	if err != nil {
		return nil, false, fmt.Errorf("rehash upload: %w", err)
	}
	defer r.Close()
	if n, err := io.Copy(h, io.LimitReader(contextReader{ctx, r}, size)); err != nil || n != size {
		return nil, false, fmt.Errorf("rehash upload: %d of %d bytes: %w", n, size, err)
	}
	return h, false, nil
}

// restoreHashState sets h to the state b (saveHashState's encoding) when b is the state after
// size bytes, reporting whether it did; h is left reset otherwise.
func restoreHashState(h hash.Hash, b []byte, size int64) bool {
	if len(b) <= 8 || int64(binary.BigEndian.Uint64(b[:8])) != size {
		return false
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b[8:]); err != nil {
		h.Reset()
		return false
	}
	return true
}

// saveHashState keeps h, the state after size bytes, in w's own state when it is a StateKeeper
// (w's Close saves it), otherwise in a file of the session's.
func (s *Store) saveHashState(ctx context.Context, session string, w FileWriter, h hash.Hash, size int64) error {
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	b := binary.BigEndian.AppendUint64(nil, uint64(size))
	b = append(b, state...)
	if k, ok := w.(StateKeeper); ok {
		k.KeepState(b)
		return nil
	}
	if err := s.d.PutContent(ctx, hashStatePath(session, size), b); err != nil {
		return fmt.Errorf("save hash state: %w", err)
	}
	return nil
}

// contextReader stops a long copy when the request's context ends.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// seekingReader reads a file of known size through Reader, opening it again at the offset a
// Seek moved to: a range request costs one ranged read. Seeks alone open nothing: a reader
// handed in open at offset 0 (Getter) serves a read from the start after a look at the size
// (Seek to the end and back), as http.ServeContent and CheckSize make.
type seekingReader struct {
	ctx  context.Context
	d    Driver
	path string
	size int64
	pos  int64
	r    io.ReadCloser // open at rpos, or nil
	rpos int64
}

func (s *seekingReader) Read(p []byte) (int, error) {
	if s.pos >= s.size {
		return 0, io.EOF
	}
	if s.r != nil && s.rpos != s.pos {
		_ = s.r.Close()
		s.r = nil
	}
	if s.r == nil {
		r, err := s.d.Reader(s.ctx, s.path, s.pos)
		if err != nil {
			return 0, err
		}
		s.r, s.rpos = r, s.pos
	}
	n, err := s.r.Read(p)
	s.pos += int64(n)
	s.rpos = s.pos
	if err == io.EOF && s.pos < s.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (s *seekingReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = s.pos + offset
	case io.SeekEnd:
		abs = s.size + offset
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	s.pos = abs
	return abs, nil
}

func (s *seekingReader) Close() error {
	if s.r != nil {
		return s.r.Close()
	}
	return nil
}
