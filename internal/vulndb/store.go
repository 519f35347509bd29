package vulndb

import (
	"context"
	"errors"
	"time"

	"github.com/lading-registry/lading/internal/advisory"
)

// The store keeps advisories in the metadata store, so that every node sees the same
// database version. Its contract:
//
//   - The database version is a counter that a committed batch raises by one. Reading it
//     must be cheap: servers poll it every second or two.
//   - A batch is staged (records written, invisible to readers) and then committed in one
//     short transaction that makes all of it current at once and takes the next version.
//     A batch that is aborted, or whose process dies, leaves no trace in what readers see.
//   - Commit fails with ErrConflict when another batch committed since the batch's base
//     version, because the batch's diff was computed against that base.
//   - Each committed version keeps the package keys its batch changed, so readers can
//     refresh incrementally; a store may prune old change sets and then reports the change
//     set incomplete.

// ErrConflict means another batch was committed while this one was staged.
var ErrConflict = errors.New("advisory database changed while the batch was staged")

// StoredRecord is one advisory as the store keeps it.
type StoredRecord struct {
	ID        string
	Modified  time.Time
	Withdrawn bool
	Hash      string
	// Keys are the packages the record affects; filled on writes, not on loads.
	Keys []advisory.PackageKey
	// Raw is the compacted OSV JSON.
	Raw []byte
}

// RecordDigest describes a current record, for computing what a batch changes.
type RecordDigest struct {
	ID       string
	Modified time.Time
	Hash     string
	Keys     []advisory.PackageKey
}

// BatchInfo describes a batch when it is staged.
type BatchInfo struct {
	// Base is the version the batch's diff was computed against.
	Base   int64
	Kind   string // "import" or "update"
	Source string // paths or URL, for status
}

// BatchStats counts what a batch did; the store keeps them with the version.
type BatchStats struct {
	Added     int `json:"added"`
	Changed   int `json:"changed"`
	Withdrawn int `json:"withdrawn"`
	Deleted   int `json:"deleted"`
	Unchanged int `json:"unchanged"`
}

// ChangeSet is the set of package keys changed by the versions after From up to To.
type ChangeSet struct {
	From, To int64
	Keys     []advisory.PackageKey
	// Complete is false when the store no longer has the change set of some version in the
	// interval: the reader must then treat everything as changed.
	Complete bool
}

// StoreReader is the read side of the advisory store, all a Watcher needs.
type StoreReader interface {
	// AdvisoryVersion returns the current database version, 0 when nothing was imported.
	AdvisoryVersion(ctx context.Context) (int64, error)
	// LoadAdvisories calls fn with every current record (keys == nil) or every current record
	// affecting one of keys, and returns the version they make up, all read from one snapshot.
	LoadAdvisories(ctx context.Context, keys []advisory.PackageKey, fn func(StoredRecord) error) (int64, error)
	// AdvisoryChanges returns the keys changed after version `after`, up to the current
	// version. When load is not nil and the change set is complete, it also calls load with
	// every current record affecting those keys, from the same snapshot.
	AdvisoryChanges(ctx context.Context, after int64, load func(StoredRecord) error) (ChangeSet, error)
	// AdvisoryStatus summarises the current version.
	AdvisoryStatus(ctx context.Context) (*Status, error)
}

// Store is the advisory store.
type Store interface {
	StoreReader
	// AdvisoryDigests calls fn for every current record and returns the version they make up.
	AdvisoryDigests(ctx context.Context, fn func(RecordDigest) error) (int64, error)
	// AdvisoryDigest returns one current record's digest, if there is such a record.
	AdvisoryDigest(ctx context.Context, id string) (RecordDigest, bool, error)
	// StageAdvisories starts a batch.
	StageAdvisories(ctx context.Context, info BatchInfo) (StagedBatch, error)
}

// StagedBatch is a batch being written. Its methods are called from one goroutine.
type StagedBatch interface {
	// Put stages a new or changed record (replacing one staged earlier with the same id).
	Put(ctx context.Context, r StoredRecord) error
	// Delete stages the removal of a current record.
	Delete(ctx context.Context, id string) error
	// AddChanges records package keys the batch changes.
	AddChanges(ctx context.Context, keys []advisory.PackageKey) error
	// Commit makes the batch current and returns its version, or fails with ErrConflict.
	Commit(ctx context.Context, stats BatchStats) (int64, error)
	// Abort discards the batch. It is safe after a failed Commit.
	Abort(ctx context.Context) error
}

// Status describes the database version: `lading db status`.
type Status struct {
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
	// LastKind and LastSource describe the batch that made the version.
	LastKind   string      `json:"lastKind,omitempty"`
	LastSource string      `json:"lastSource,omitempty"`
	LastStats  *BatchStats `json:"lastStats,omitempty"`
	Records    int         `json:"records"`
	Withdrawn  int         `json:"withdrawn"`
	// Ecosystems are keyed by base ecosystem ("Debian", not "Debian:12"); a record affecting
	// several counts in each.
	Ecosystems []EcosystemStatus `json:"ecosystems"`
}

// EcosystemStatus counts one ecosystem's records.
type EcosystemStatus struct {
	Ecosystem      string    `json:"ecosystem"`
	Records        int       `json:"records"`
	Withdrawn      int       `json:"withdrawn"`
	NewestModified time.Time `json:"newestModified"`
	// Releases lists the ecosystem strings with a release suffix ("Debian:12") seen.
	Releases []string `json:"releases,omitempty"`
}
