// Package plugin is the interface between the layer walk of internal/inventory and the
// extractors that read package files. It is modelled on osv-scalibr's filesystem.Extractor
// (Name, Version, FileRequired, Extract), so that osv-scalibr's extractors plug in as they
// are: a File is an osv-scalibr filesystem.FileAPI.
//
// The walk streams each layer once. For every regular file it asks each plugin's
// FileRequired, buffers the content once for the plugins that want it (in memory, or in the
// scan's scratch directory) and hands it to their Extract. A plugin never sees the tar
// stream, another layer or the image: Merge combines the layers.
package plugin

import (
	"context"
	"io/fs"

	"github.com/lading-registry/lading/internal/inventory/installed"
)

// Mode selects the plugins, as ECR's scan types do.
type Mode string

const (
	// ModeBasic finds operating-system packages only (ECR "BASIC" scanning).
	ModeBasic Mode = "BASIC"
	// ModeEnhanced finds operating-system and language packages (ECR "ENHANCED" scanning).
	ModeEnhanced Mode = "ENHANCED"
)

// Plugin reads one kind of package file.
type Plugin interface {
	// Name identifies the plugin in cache fingerprints, the golden file and logs. Plugins
	// that wrap an osv-scalibr extractor take its name ("os/dpkg").
	Name() string
	// Version changes whenever what the plugin reports for some file changes: it is part of
	// the fingerprint under which layer inventories are cached, so a new version reads
	// layers again.
	Version() int
	// FileRequired reports whether Extract should read the file. It is called for every
	// regular file of every layer, so it must be cheap: decide by path and Stat, and read
	// Head only when the name cannot tell. The File is valid during the call only.
	FileRequired(f File) bool
	// MaxBytes is the size of the largest file Extract reads under the scan's limits
	// (usually Limits.MaxMetadataBytes or Limits.MaxFileBytes); a larger file is skipped,
	// with its reason.
	MaxBytes(l Limits) int64
	// Extract reads one file that FileRequired selected. An error becomes the file's
	// Skipped reason, so it says what the file was ("dpkg database: ..."); what was found
	// is kept all the same. A bad file never fails the layer.
	Extract(ctx context.Context, in *Input) (Found, error)
}

// File is a regular file of a layer as FileRequired sees it, before its content is read.
// Path and Stat make it an osv-scalibr filesystem.FileAPI.
type File interface {
	// Path is the file's path relative to the image root, slash-separated
	// ("var/lib/dpkg/status"), as osv-scalibr's extractors expect it.
	Path() string
	// Stat describes the tar entry: name, size, mode.
	Stat() (fs.FileInfo, error)
	// Head returns the first min(n, MaxHead) bytes of the content (fewer for a shorter
	// file), for plugins that recognise files by content rather than name.
	Head(n int) ([]byte, error)
}

// MaxHead bounds File.Head: enough for magic numbers.
const MaxHead = 64

// Input is one file handed to Extract.
type Input struct {
	// Path is the file's absolute path in the image ("/var/lib/dpkg/status").
	Path string
	// Info describes the tar entry (name, size, mode).
	Info fs.FileInfo
	// Content is the file's content, read once for all the plugins that required it. It
	// is closed after the last Extract.
	Content *Content
	// Env is what the layer scan offers every Extract call.
	Env *Env
}

// Env is what a layer scan offers the plugins: the layer, its limits, the memory budget and
// scratch directory, and its list of skipped files.
type Env struct {
	// Layer is the digest of the layer being read.
	Layer  string
	Limits Limits
	// Buffers holds content under the scan's memory budget, spilling to its scratch
	// directory: for nested content (archives in archives) and libraries that open files by
	// name (Buffers.OnDisk).
	Buffers *Buffers
	// Skip records a part of the file that was not read, or was read in a special way, and
	// why; path may point inside the file ("/app/x.jar!/lib/y.jar").
	Skip func(path, reason string)
}

// Found is what a plugin found in one file.
type Found struct {
	// Packages found in the file. A package without a Path gets the file's. Language
	// packages carry their ecosystem, packageManager and PURL; OS packages (OSDatabase set)
	// get their ecosystem and PURL from the image's release, in Merge.
	Packages []installed.Package
	// OSDatabase is the kind of OS package database the file is ("dpkg", "apk", "rpm"), ""
	// for other files. Every layer that installs packages rewrites the database, and Merge
	// attributes each package to the lowest layer from which on the database lists it.
	OSDatabase string
	// OSRelease is the content of an os-release file, nil for other files. Merge reads the
	// image's release from the one /etc/os-release or /usr/lib/os-release resolves to.
	OSRelease *string
	// Owned is, for a package manager's record of the files its packages installed (dpkg's
	// info/*.list, apk's installed database, rpm's database), which package installed which
	// file; nil for other files. The walk keeps only the files some plugin reads by name
	// (language packages' metadata), and Merge reports a language package whose metadata an
	// OS package installed as that OS package.
	Owned *Owned
}

// Owned is a package manager's record of the files its packages installed.
type Owned struct {
	// Kind is the kind of OS database whose packages these are ("dpkg", "apk", "rpm").
	Kind     string
	Packages []OwnedFiles
}

// OwnedFiles are the files one OS package installed.
type OwnedFiles struct {
	Package string `json:"package"`
	// Version and Arch are set when the record says (apk, rpm; a dpkg .list file names the
	// architecture of a multi-arch package only).
	Version string `json:"version,omitempty"`
	Arch    string `json:"arch,omitempty"`
	// Files are absolute paths ("/usr/lib/python3/dist-packages/x-1.0.dist-info/METADATA").
	Files []string `json:"files"`
}
