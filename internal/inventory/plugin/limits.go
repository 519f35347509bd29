package plugin

// Limits bound the resources one layer scan may use. Zero values take the defaults.
type Limits struct {
	// MaxLayerBytes bounds the decompressed bytes read from one layer (default 32 GiB). A
	// layer that is larger is read up to the limit and marked Incomplete.
	MaxLayerBytes int64
	// MaxFileBytes bounds one file read for extraction: a package database, archive or
	// executable (default 1 GiB).
	MaxFileBytes int64
	// MaxMetadataBytes bounds one text metadata file (status files, package.json, lock files;
	// default 64 MiB).
	MaxMetadataBytes int64
	// MaxMemoryBytes bounds the file content held in memory at once; above it, content is
	// spilled to the scratch directory (default 64 MiB).
	MaxMemoryBytes int64
	// MaxArchiveDepth bounds the nesting of archives inside archives (default 32).
	MaxArchiveDepth int
	// MaxNestedArchiveBytes bounds the decompressed size of one archive inside an archive
	// (default 256 MiB).
	MaxNestedArchiveBytes int64
	// MaxArchiveExpansion bounds the bytes decompressed out of one top-level archive and all
	// the archives nested in it (default 2 GiB).
	MaxArchiveExpansion int64
	// MaxArchiveEntries bounds the entries of one archive (default 500,000).
	MaxArchiveEntries int
	// MaxSkippedPerLayer bounds the Skipped records kept for one layer (default 1000); the
	// rest are counted in a last record.
	MaxSkippedPerLayer int
}

// WithDefaults returns l with every zero limit set to its default.
func (l Limits) WithDefaults() Limits {
	const (
		kib = int64(1) << 10
		mib = kib << 10
		gib = mib << 10
	)
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxLayerBytes, 32*gib)
	def(&l.MaxFileBytes, gib)
	def(&l.MaxMetadataBytes, 64*mib)
	def(&l.MaxMemoryBytes, 64*mib)
	def(&l.MaxNestedArchiveBytes, 256*mib)
	def(&l.MaxArchiveExpansion, 2*gib)
	if l.MaxArchiveDepth <= 0 {
		l.MaxArchiveDepth = 32
	}
	if l.MaxArchiveEntries <= 0 {
		l.MaxArchiveEntries = 500_000
	}
	if l.MaxSkippedPerLayer <= 0 {
		l.MaxSkippedPerLayer = 1000
	}
	return l
}
