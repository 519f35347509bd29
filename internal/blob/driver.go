package blob

import (
	"context"
	"errors"
	"io"
	"time"
)

// Driver is where blob bytes live, as CNCF Distribution's storage drivers: named objects under
// slash-separated paths ("blobs/sha256/ab/ab12...", "uploads/<id>/data"), nothing more. What
// makes them a registry's blob store (upload sessions, hash state per chunk, verification before
// a blob is visible, size limits, locking) is Store's, above it, and the same for every driver.
//
// Drivers return errors wrapping ErrPathNotFound for a path that holds nothing, and
// ErrUnavailable when the storage cannot be reached.
type Driver interface {
	// Stat describes a file, or a directory (a prefix holding files), whose ModTime is then the
	// latest change beneath it.
	Stat(ctx context.Context, path string) (FileInfo, error)
	// Reader reads a complete file from offset on.
	Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error)
	// Writer opens a file to write: a new one (append false), or one being written, to go on
	// where it ends (append true). Bytes are kept as a writer's Close persists them, so another
	// Writer (in another process or node) resumes there.
	Writer(ctx context.Context, path string, append bool) (FileWriter, error)
	// GetContent and PutContent read and replace a small file whole.
	GetContent(ctx context.Context, path string) ([]byte, error)
	PutContent(ctx context.Context, path string, content []byte) error
	// Move makes dst hold src's content, stamped as modified now, and removes src. It replaces
	// dst if it exists.
	Move(ctx context.Context, src, dst string) error
	// Delete removes a file, or a directory and everything beneath it; a missing path is not
	// an error.
	Delete(ctx context.Context, path string) error
	// List names the entries directly beneath a directory, each with its ModTime as Stat gives it.
	List(ctx context.Context, path string) ([]FileInfo, error)
	// Walk calls fn for every file beneath path, in no particular order.
	Walk(ctx context.Context, path string, fn func(FileInfo) error) error
}

// FileWriter writes a file. Every writer ends with Close, Cancel or Commit.
type FileWriter interface {
	io.Writer
	// Size is the file's size, with what this writer wrote.
	Size() int64
	// Close persists what was written, for a later Writer(path, true) to go on from.
	Close() error
	// Cancel discards the file.
	Cancel(ctx context.Context) error
	// Commit marks the file complete and durable: Reader and Move may use it.
	Commit(ctx context.Context) error
}

// FileInfo describes a path.
type FileInfo struct {
	Path    string
	Size    int64
	ModTime time.Time
	IsDir   bool
}

// Locker gives exclusive locks that hold across every process sharing the store: one per
// upload session ("uploads/<id>") and one per digest shard ("blobs/<alg>/<xx>").
type Locker interface {
	// Lock takes the lock on name, waiting for it when wait is set and otherwise failing at once
	// with ErrLocked. A lock on a session that does not exist fails with ErrPathNotFound.
	Lock(ctx context.Context, name string, wait bool) (unlock func(), err error)
}

// Optional capabilities a driver may have.
type (
	// Opener opens a complete file for reading with seeks of its own (a local file); without
	// it, Store seeks by opening a Reader at the offset.
	Opener interface {
		Open(ctx context.Context, path string) (ReadSeekCloser, error)
	}
	// Getter reads a complete file from its start and tells its size in one request, where
	// Stat then Reader make two (S3: one GET instead of a HEAD and a GET for every blob
	// pulled). Store uses it to open a blob when the driver has no Opener.
	Getter interface {
		Get(ctx context.Context, path string) (r io.ReadCloser, size int64, err error)
	}
	// SpaceChecker refuses to go on when the storage is at its reserve (ErrInsufficientStorage);
	// Store asks before an upload and as it grows.
	SpaceChecker interface {
		CheckSpace() error
	}
	// Redirector gives a URL from which a client may fetch a file directly, valid for ttl; ""
	// when it gives none.
	Redirector interface {
		RedirectURL(ctx context.Context, path string, ttl time.Duration) (string, error)
	}
	// Pinger tells whether the storage answers, for readiness probes.
	Pinger interface {
		Ping(ctx context.Context) error
	}
	// CommitterTo is a FileWriter that can complete its file straight at another path, as
	// Commit then Move would leave it, when that saves work (S3: a file without parts is one
	// server-side copy of its pending bytes to dst, where Commit and Move make two and a HEAD
	// and a DELETE). It reports false, having done nothing, when it cannot.
	CommitterTo interface {
		CommitTo(ctx context.Context, dst string) (bool, error)
	}
	// StateKeeper is a FileWriter that keeps a few bytes of its caller's in its own state:
	// saved by the Close of a writer that wrote, together with the bytes they describe, and
	// given back by the next Writer of the file. Store keeps an upload's hash state there when
	// the driver can (S3: an object fewer written per chunk and read per commit, and none
	// left to list and delete with the session).
	StateKeeper interface {
		// KeptState is what the writer's state held when it was opened (nil: nothing).
		KeptState() []byte
		// KeepState replaces it, to be saved by Close with what was written.
		KeepState(b []byte)
	}
)

// Errors drivers and lockers return.
var (
	ErrPathNotFound = errors.New("path not found")
	ErrLocked       = errors.New("locked by another holder")
	// ErrUnavailable means the storage could not be reached or refused Lading's credentials;
	// the same request may succeed later.
	ErrUnavailable = errors.New("blob storage unavailable")
)
