package inventory

import (
	"context"
	"io"
	"log/slog"

	"github.com/lading-registry/lading/internal/inventory/installed"
	"github.com/lading-registry/lading/internal/inventory/plugin"
	"github.com/lading-registry/lading/internal/inventory/plugins"
)

// Mode selects the plugins, as ECR's scan types do.
type Mode = plugin.Mode

const (
	// ModeBasic finds operating-system packages only (ECR "BASIC" scanning).
	ModeBasic = plugin.ModeBasic
	// ModeEnhanced finds operating-system and language packages (ECR "ENHANCED" scanning).
	ModeEnhanced = plugin.ModeEnhanced
)

// Plugin reads one kind of package file: see internal/inventory/plugin.
type Plugin = plugin.Plugin

// Limits bound the resources one layer scan may use: see plugin.Limits.
type Limits = plugin.Limits

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

// Package is one package found in an image: see internal/inventory/installed, which
// defines it apart from the extractors so that matching imports no I/O.
type Package = installed.Package

// Symbols are the functions a Go binary holds of one module's packages: see
// internal/inventory/installed.
type Symbols = installed.Symbols

// LanguagePackage names a language package an OS package installed: see
// internal/inventory/installed.
type LanguagePackage = installed.LanguagePackage

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

// FileOwners is what one file of a layer (a dpkg .list file, apk's or rpm's database) says
// of which OS package installed which files, kept only for the files some plugin reads by
// name: the metadata of language packages, which Merge then reports as the OS package.
type FileOwners struct {
	Path     string              `json:"path"`
	Kind     string              `json:"kind"`
	Packages []plugin.OwnedFiles `json:"packages"`
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
	// Fingerprint identifies the plugins that read the layer, as Fingerprint computes it.
	Fingerprint string `json:"fingerprint"`
	Digest      string `json:"digest"`
	Mode        Mode   `json:"mode"`
	// Packages are the packages found in this layer's files, except OS databases.
	Packages []Package `json:"packages,omitempty"`
	// OSDatabases are the OS package databases this layer writes.
	OSDatabases []OSDatabase `json:"osDatabases,omitempty"`
	// Whiteouts are paths this layer deletes from the layers below (".wh.<name>").
	Whiteouts []string `json:"whiteouts,omitempty"`
	// OpaqueDirs are directories whose content from the layers below this layer hides
	// (".wh..wh..opq").
	OpaqueDirs []string `json:"opaqueDirs,omitempty"`
	// Paths are the package-relevant paths this layer writes (files some plugin read,
	// executables and links), so that Merge can see that a file found in a lower layer was
	// replaced. Sorted.
	Paths []string `json:"paths,omitempty"`
	// FileOwners are the records of installed files this layer writes.
	FileOwners     []FileOwners    `json:"fileOwners,omitempty"`
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
	// FilesExtracted counts the files handed to some plugin's Extract.
	FilesExtracted int64 `json:"filesExtracted"`
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
	// Plugins, when set, replace the plugins Mode selects (plugins.Default): the golden test
	// runs them one at a time.
	Plugins []Plugin
	// ScratchDir is the directory under which a scan creates (with os.MkdirTemp) and removes
	// its temporary directory for files too large to keep in memory. Nothing is written
	// anywhere else. Defaults to os.TempDir().
	ScratchDir string
	Limits     Limits
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// KeepOSOwned makes Scan's merge keep, beside the OS package, a language package whose
	// metadata an OS package installed (MergeOptions.KeepOSOwned).
	KeepOSOwned bool
	// GzipProgram, when set, is the gzip decoder run for gzip layers of at least
	// MinProgramGzipBytes whose head inflates much (GzipProgram turns a --gzip-decoder setting
	// into it); "" decodes every layer in process.
	GzipProgram string
	// LayerSize is the layer's compressed size in bytes, 0 or less when unknown (such a
	// layer is decoded in process).
	LayerSize int64
}

// logger is o.Logger, or slog.Default() when none is set.
func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}

func (o Options) withDefaults() Options {
	if o.Mode == "" {
		o.Mode = ModeEnhanced
	}
	if o.Plugins == nil {
		o.Plugins = plugins.Default(o.Mode)
	}
	o.Logger = o.logger()
	o.Limits = o.Limits.WithDefaults()
	return o
}
