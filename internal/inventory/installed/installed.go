// Package installed is the package model that internal/inventory produces and
// internal/match consumes: one package found in an image, where it was found and how its
// package manager names it. It does no I/O, so that matching can take packages without
// importing the layer readers and extractors of internal/inventory, which re-exports these
// names.
package installed

import "strings"

// Package managers as Amazon Inspector names them in vulnerablePackages[].packageManager.
const (
	ManagerOS         = "OS"
	ManagerJAR        = "JAR"
	ManagerGoBinary   = "GOBINARY"
	ManagerGoMod      = "GOMOD"
	ManagerNodePkg    = "NODEPKG"
	ManagerNPM        = "NPM"
	ManagerPythonPkg  = "PYTHONPKG"
	ManagerDotnetCore = "DOTNET_CORE"
	ManagerNuGet      = "NUGET"
	ManagerGemspec    = "GEMSPEC"
	ManagerCargo      = "CARGO"
	ManagerComposer   = "COMPOSER"
)

// Package is one package found in an image.
type Package struct {
	// Ecosystem is the OSV ecosystem, e.g. "Debian:12", "Alpine:v3.20", "Maven", "npm", "Go".
	// For OS packages it is empty in a LayerInventory (the release is only known for the whole
	// image) and filled in by inventory.Merge.
	Ecosystem string `json:"ecosystem,omitempty"`
	Name      string `json:"name"`
	// Version is the full version as the ecosystem's OSV version ordering expects it: for dpkg
	// "[epoch:]upstream[-revision]", for rpm "[epoch:]version-release", for apk "1.2.3-r4",
	// for Go without the leading "v".
	Version string `json:"version"`
	// SourceName and SourceVersion are the distribution source package (Debian "Source:",
	// Alpine origin, the rpm's SRPM). Distributions publish advisories by source package.
	SourceName    string `json:"sourceName,omitempty"`
	SourceVersion string `json:"sourceVersion,omitempty"`
	// Epoch and Release are parts of Version, for formats that have them (dpkg, rpm, apk).
	Epoch   int    `json:"epoch,omitempty"`
	Release string `json:"release,omitempty"`
	Arch    string `json:"arch,omitempty"`
	PURL    string `json:"purl,omitempty"`
	// Path is where the package was found: the package database, the metadata file, the
	// archive (nested archives as "/app/x.jar!/BOOT-INF/lib/y.jar") or the binary.
	Path string `json:"path"`
	// Layer is the digest of the layer that introduced the package.
	Layer string `json:"layer"`
	// PackageManager is Inspector's vulnerablePackages[].packageManager value (ManagerOS, ...).
	PackageManager string `json:"packageManager"`
	// FromLockfile marks packages read from a lock file (package-lock.json, Cargo.lock,
	// composer.lock) rather than from installed metadata; inventory.Merge drops them where
	// installed metadata under the same directory reports the same package.
	FromLockfile bool `json:"fromLockfile,omitempty"`
	// Symbols are, for a module of a Go binary, the functions the binary holds of the module's
	// packages; nil when the binary's symbol table could not be read, and for every other
	// package. Reachability is decided from them (internal/match).
	Symbols *Symbols `json:"symbols,omitempty"`
	// LanguagePackages are, for an OS package, the language packages whose metadata it
	// installed (the dist-info of Debian's python3-xyz): the package is reported once, as
	// this OS package, unless the scan asks for OS-owned language packages too.
	LanguagePackages []LanguagePackage `json:"languagePackages,omitempty"`
}

// LanguagePackage names a language package an OS package installed.
type LanguagePackage struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	Path      string `json:"path"`
}

// Symbols are the functions a Go binary holds of one module's packages, inlined ones
// included: what the vulnerable symbols of Go advisories are looked for in.
type Symbols struct {
	// Packages maps each package path of the module that the binary holds code of to the
	// names of its functions and methods, as the Go vulnerability database names symbols
	// ("Parse", "Tag.String"), sorted. Never nil: an empty map says the symbol table was read
	// and holds nothing of the module.
	Packages map[string][]string `json:"packages"`
	// GOOS and GOARCH are the binary's target, when its build information names it: some
	// advisories are about one platform only.
	GOOS   string `json:"goos,omitempty"`
	GOARCH string `json:"goarch,omitempty"`
}

// UpstreamVersion is Version without epoch and release, as ECR shows "version" beside
// "epoch" and "release".
func (p Package) UpstreamVersion() string {
	v := p.Version
	if p.PackageManager != ManagerOS {
		return v
	}
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	if p.Release != "" {
		v = strings.TrimSuffix(v, "-"+p.Release)
	}
	return v
}
