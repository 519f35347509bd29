// Package gc removes what no image needs any more: blob links no manifest references, blob
// files no link or manifest names, cached inventories of layers and images that are gone, and
// abandoned upload sessions. It is safe while pushes go on, in this process or another one on
// the same data directory:
//
//   - A link is removed, in one metadata transaction that re-checks the condition, only when it
//     is older than the grace period and no manifest of its repository references its blob. The
//     grace period covers a push between its blob uploads and its manifest; a client told that a
//     blob exists (HEAD, BatchCheckLayerAvailability, a mount) gets its link re-stamped, so that
//     the period counts from then.
//   - A blob file is removed only after that transaction, when no link and no manifest names its
//     digest, re-checked while the blob store holds the digest's lock, and only if the file is
//     older than the grace period. A commit of the same digest takes that lock to rename its file
//     into place and stamps it as new, so a blob committed while the collection runs is seen as
//     young, or as linked, or is renamed into place after the removal; never lost.
//   - A cross-repository mount links only if its source link still exists in the same
//     transaction (store MountBlob), so a mount after the links were pruned falls back to an
//     upload instead of linking a file about to go.
package gc

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/store"
)

// Meta is what garbage collection needs from the metadata store.
type Meta interface {
	PruneBlobLinks(ctx context.Context, cutoff time.Time, dryRun bool) ([]store.BlobLink, error)
	BlobsInUse(ctx context.Context, linksPrunedBefore time.Time) (map[string]bool, error)
	BlobInUse(ctx context.Context, digest string) (bool, error)
	PruneInventories(ctx context.Context, cutoff time.Time, dryRun bool) (store.InventoryPrune, error)
	UploadSessions(ctx context.Context) (map[string]time.Time, error)
	DeleteUploadIfIdle(ctx context.Context, id string, cutoff time.Time) (bool, error)
}

// SetPruner is a metadata store that keeps what findings of many images share apart (SQLite's
// package sets, 0049) and removes it once no finding names it.
type SetPruner interface {
	PruneFindingPackageSets(ctx context.Context, dryRun bool) (int64, error)
}

// Blobs is what garbage collection needs from the blob store.
type Blobs interface {
	WalkBlobs(ctx context.Context, fn func(blob.File) error) error
	RemoveUnused(ctx context.Context, d digest.Digest, cutoff time.Time, inUse func(context.Context) (bool, error)) (bool, error)
	Uploads(ctx context.Context) ([]blob.UploadDir, error)
	DropIdleUpload(ctx context.Context, id string, cutoff time.Time) (bool, error)
}

// Options tune one collection.
type Options struct {
	// Grace spares links and files younger than this (default one hour). Zero is only safe when
	// nothing pushes while the collection runs.
	Grace time.Duration
	// UploadTTL drops upload sessions idle for this long (default 24 hours); sessions on disk
	// that the metadata store does not know are dropped after Grace.
	UploadTTL time.Duration
	// DryRun reports what would be removed, removing nothing.
	DryRun bool
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// DefaultGrace is the grace period when none is given.
const DefaultGrace = time.Hour

// Report says what a collection removed (or, in a dry run, would remove).
type Report struct {
	DryRun           bool
	LinksRemoved     int   // blob links no manifest of their repository references
	Blobs            int   // blob files
	BlobBytes        int64 // their size
	LayerInventories int64
	ImageInventories int64
	InventoryBytes   int64
	PackageSets      int64 // findings' shared package sets no finding names (SQLite)
	Uploads          int   // upload sessions (and their records)
	UploadBytes      int64 // the bytes they held
	Took             time.Duration
}

// Collector runs collections over one metadata store and one blob store.
type Collector struct {
	meta  Meta
	blobs Blobs
}

// New returns a Collector.
func New(meta Meta, blobs Blobs) *Collector { return &Collector{meta: meta, blobs: blobs} }

// Run collects once.
func (c *Collector) Run(ctx context.Context, o Options) (Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Grace < 0 {
		return Report{}, fmt.Errorf("grace period %s is negative", o.Grace)
	}
	if o.UploadTTL <= 0 {
		o.UploadTTL = 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	start := o.Now()
	cutoff := start.Add(-o.Grace)
	rep := Report{DryRun: o.DryRun}
	if err := c.uploads(ctx, o, start, cutoff, &rep); err != nil {
		return rep, err
	}
	// (a) Links first, in one transaction: from then on a pruned digest can only come back
	// through an upload, whose commit the blob store serialises with (b).
	links, err := c.meta.PruneBlobLinks(ctx, cutoff, o.DryRun)
	if err != nil {
		return rep, err
	}
	rep.LinksRemoved = len(links)
	inv, err := c.meta.PruneInventories(ctx, cutoff, o.DryRun)
	if err != nil {
		return rep, err
	}
	rep.LayerInventories, rep.ImageInventories, rep.InventoryBytes = inv.LayerInventories, inv.ImageInventories, inv.Bytes
	if p, ok := c.meta.(SetPruner); ok {
		if rep.PackageSets, err = p.PruneFindingPackageSets(ctx, o.DryRun); err != nil {
			return rep, err
		}
	}
	// (b) Then the files.
	if err := c.blobFiles(ctx, o, cutoff, &rep); err != nil {
		return rep, err
	}
	rep.Took = o.Now().Sub(start)
	o.Logger.InfoContext(ctx, "garbage collection", "dry_run", o.DryRun, "links", rep.LinksRemoved, "blobs", rep.Blobs,
		"blob_bytes", rep.BlobBytes, "layer_inventories", rep.LayerInventories, "image_inventories", rep.ImageInventories,
		"package_sets", rep.PackageSets, "uploads", rep.Uploads, "took", rep.Took)
	return rep, nil
}

func (c *Collector) blobFiles(ctx context.Context, o Options, cutoff time.Time, rep *Report) error {
	var prunedBefore time.Time
	if o.DryRun {
		prunedBefore = cutoff // the links a real run would have removed by now
	}
	inUse, err := c.meta.BlobsInUse(ctx, prunedBefore)
	if err != nil {
		return err
	}
	var candidates []blob.File
	err = c.blobs.WalkBlobs(ctx, func(f blob.File) error {
		if !inUse[f.Digest.String()] && f.ModTime.Before(cutoff) {
			candidates = append(candidates, f)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, f := range candidates {
		if o.DryRun {
			rep.Blobs++
			rep.BlobBytes += f.Size
			continue
		}
		// The listing above is only a hint: the store looks again under the digest's lock.
		removed, err := c.blobs.RemoveUnused(ctx, f.Digest, cutoff, func(ctx context.Context) (bool, error) {
			return c.meta.BlobInUse(ctx, f.Digest.String())
		})
		if err != nil {
			return fmt.Errorf("remove blob %s: %w", f.Digest, err)
		}
		if removed {
			rep.Blobs++
			rep.BlobBytes += f.Size
		}
	}
	return nil
}

// uploads drops sessions idle past the TTL, session directories the metadata store does not
// know (a crash between the two writes that start a session) and records whose directory is
// gone (a crash between a commit and the record's removal), the last two after the grace period.
func (c *Collector) uploads(ctx context.Context, o Options, now, cutoff time.Time, rep *Report) error {
	records, err := c.meta.UploadSessions(ctx)
	if err != nil {
		return err
	}
	dirs, err := c.blobs.Uploads(ctx)
	if err != nil {
		return err
	}
	stale := now.Add(-o.UploadTTL)
	onDisk := map[string]bool{}
	for _, d := range dirs {
		onDisk[d.ID] = true
		at, known := records[d.ID]
		idleSince := cutoff
		if known {
			if !at.Before(stale) {
				continue
			}
			idleSince = stale
		}
		if !d.ModTime.Before(idleSince) {
			continue
		}
		if o.DryRun {
			rep.Uploads++
			rep.UploadBytes += d.Size
			continue
		}
		dropped, err := c.blobs.DropIdleUpload(ctx, d.ID, idleSince)
		if err != nil {
			return fmt.Errorf("drop upload %s: %w", d.ID, err)
		}
		if !dropped {
			continue
		}
		rep.Uploads++
		rep.UploadBytes += d.Size
		if known {
			if _, err := c.meta.DeleteUploadIfIdle(ctx, d.ID, stale); err != nil {
				return err
			}
		}
	}
	for id, at := range records {
		if onDisk[id] || !at.Before(cutoff) {
			continue
		}
		if o.DryRun {
			rep.Uploads++
			continue
		}
		if _, err := c.meta.DeleteUploadIfIdle(ctx, id, cutoff); err != nil {
			return err
		}
		rep.Uploads++
	}
	return nil
}
