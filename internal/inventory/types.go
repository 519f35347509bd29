package inventory

import (
	"context"
	"io"
	"log/slog"

	"github.com/lading-registry/lading/internal/inventory/installed"
)

// SchemaVersion is stored in every LayerInventory. It changes whenever the extractors or the
// format change in a way that makes a cached LayerInventory stale, so that a cache keyed by
// layer digest can be keyed by (digest, SchemaVersion, Mode) instead.
const SchemaVersion = 1

// Mode selects the extractors, as ECR's scan types do.
type Mode string

const (
	// ModeBasic finds operating-system packages only (ECR "BASIC" scanning).
	ModeBasic Mode = "BASIC"
	// ModeEnhanced finds operating-system and language packages (ECR "ENHANCED" scanning).
	ModeEnhanced Mode = "ENHANCED"
)

// Package managers as Amazon Inspector names them in vulnerablePackages[].packageManager.
const (
	ManagerOS         = installed.ManagerOS
	ManagerJAR        = installed.ManagerJAR
	ManagerGoBinary   = installed.ManagerGoBinary
	ManagerGoMod      = installed.ManagerGoMod
	ManagerNodePkg    = installed.ManagerNodePkg
	ManagerNPM        = installed.ManagerNPM
	ManagerPythonPkg  = installed.ManagerPythonPkg
	ManagerDotnetCore = installed.ManagerDotnetCore
	ManagerNuGet      = installed.ManagerNuGet
	ManagerGemspec    = installed.ManagerGemspec
	ManagerCargo      = installed.ManagerCargo
	ManagerComposer   = installed.ManagerComposer
)

// OSV ecosystem names of the language ecosystems.
const (
	EcosystemMaven     = "Maven"
	EcosystemNPM       = "npm"
	EcosystemPyPI      = "PyPI"
	EcosystemGo        = "Go"
	EcosystemNuGet     = "NuGet"
	EcosystemRubyGems  = "RubyGems"
	EcosystemCratesIO  = "crates.io"
	EcosystemPackagist = "Packagist"
)

// GoStdlib is the package name osv-scanner and the Go vulnerability database use for the Go
// standard library (the toolchain a binary was built with).
const GoStdlib = "stdlib"

// Package is one package found in an image: see internal/inventory/installed, which
// defines it apart from the extractors so that matching imports no I/O.
type Package = installed.Package

// Skipped records an entry (or part of one) that was not scanned, or was read in a special
// way, and why.
type Skipped struct {
	// Path is the entry's path in the image; inside archives "outer.jar!/inner.jar".
	Path   string `json:"path"`
	Layer  string `json:"layer"`
	Reason string `json:"reason"`
}

// OSDatabase is the content of one OS package database file written by a layer.
type OSDatabase struct {
	Path string `json:"path"`
	// Kind is "dpkg", "apk" or "rpm".
	Kind     string    `json:"kind"`
	Packages []Package `json:"packages"`
}

// OSReleaseFile is the content of an os-release file written by a layer.
type OSReleaseFile struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

// Symlink is a symbolic link written by a layer that may matter for finding the os-release file.
type Symlink struct {
	Path   string `json:"path"`
	Target string `json:"target"`
}

// LayerInventory is what one layer contributes, independent of the other layers of any
// image that holds it, so it can be cached by layer digest.
type LayerInventory struct {
	SchemaVersion int    `json:"schemaVersion"`
	Digest        string `json:"digest"`
	Mode          Mode   `json:"mode"`
	// Packages are the packages found in this layer's files, except OS databases.
	Packages []Package `json:"packages,omitempty"`
	// OSDatabases are the OS package databases this layer writes.
	OSDatabases []OSDatabase `json:"osDatabases,omitempty"`
	// Whiteouts are paths this layer deletes from the layers below (".wh.<name>").
	Whiteouts []string `json:"whiteouts,omitempty"`
	// OpaqueDirs are directories whose content from the layers below this layer hides
	// (".wh..wh..opq").
	OpaqueDirs []string `json:"opaqueDirs,omitempty"`
	// Paths are the package-relevant paths this layer writes (files and links whose name or
	// content makes them candidates for an extractor), so that Merge can see that a file found
	// in a lower layer was replaced. Sorted.
	Paths          []string        `json:"paths,omitempty"`
	OSReleaseFiles []OSReleaseFile `json:"osReleaseFiles,omitempty"`
	Symlinks       []Symlink       `json:"symlinks,omitempty"`
	Skipped        []Skipped       `json:"skipped,omitempty"`
	// Incomplete is set when a size limit stopped the reading of the layer before its end.
	Incomplete bool       `json:"incomplete,omitempty"`
	Stats      LayerStats `json:"stats"`
}

// LayerStats counts what the scan of a layer read.
type LayerStats struct {
	Entries           int64 `json:"entries"`
	DecompressedBytes int64 `json:"decompressedBytes"`
	FilesExtracted    int64 `json:"filesExtracted"`
}

// OSInfo describes the image's operating system, from its os-release file.
type OSInfo struct {
	// ID and VersionID are os-release's ID and VERSION_ID ("debian", "12").
	ID         string `json:"id"`
	VersionID  string `json:"versionId,omitempty"`
	Codename   string `json:"codename,omitempty"`
	PrettyName string `json:"prettyName,omitempty"`
	// Ecosystem is the OSV ecosystem of the release's packages, e.g. "Debian:12".
	Ecosystem string `json:"ecosystem,omitempty"`
	// Path is the os-release file read (after symlinks), Layer the layer that wrote it.
	Path  string `json:"path"`
	Layer string `json:"layer"`
}

// Image is the inventory of a whole image: the layers merged.
type Image struct {
	// OS is nil when the image has no readable os-release file (e.g. scratch images).
	OS *OSInfo `json:"os,omitempty"`
	// Packages are sorted by ecosystem, name, version, path.
	Packages []Package `json:"packages"`
	// Layers are the digests of the layers merged, lowest first.
	Layers []string `json:"layers"`
	// Skipped lists what every layer skipped, and what the merge could not resolve.
	Skipped    []Skipped `json:"skipped,omitempty"`
	Incomplete bool      `json:"incomplete,omitempty"`
}

// Layer is one layer handed to Scan: its digest and a way to read its (possibly compressed)
// tar stream once.
type Layer struct {
	Digest string
	Open   func(ctx context.Context) (io.ReadCloser, error)
}

// Options configure a scan.
type Options struct {
	// Mode defaults to ModeEnhanced.
	Mode Mode
	// ScratchDir is the directory under which a scan creates (with os.MkdirTemp) and removes
	// its temporary directory for files too large to keep in memory. Nothing is written
	// anywhere else. Defaults to os.TempDir().
	ScratchDir string
	Limits     Limits
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

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

func (l Limits) withDefaults() Limits {
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

func (o Options) withDefaults() Options {
	if o.Mode == "" {
		o.Mode = ModeEnhanced
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Limits = o.Limits.withDefaults()
	return o
}
