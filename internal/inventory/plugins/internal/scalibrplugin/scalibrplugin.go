// Package scalibrplugin runs osv-scalibr's filesystem extractors as inventory plugins, as
// they are: their own FileRequired decides which files they read, and their Extract reads
// the file's content from the layer stream (no unpacked tree). Each ecosystem folder adds
// only what osv-scalibr does not decide: the version of Lading's conversion, the package
// manager's name, and how a package becomes an installed.Package.
package scalibrplugin

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing/fstest"

	cpb "github.com/google/osv-scalibr/binary/proto/config_go_proto"
	"github.com/google/osv-scalibr/extractor"
	"github.com/google/osv-scalibr/extractor/filesystem"
	packageurl "github.com/package-url/packageurl-go"

	"github.com/lading-registry/lading/internal/inventory/installed"
	"github.com/lading-registry/lading/internal/inventory/plugin"
)

// Config is what a plugin adds to an osv-scalibr extractor.
type Config struct {
	// Version is the version of the plugin's own part (Narrow, Convert, the size limit):
	// bump it when that changes what the plugin reports. osv-scalibr's version is part of
	// the fingerprint apart.
	Version int
	// Describe names the file in skip reasons ("dpkg database").
	Describe string
	// MaxBytes picks the size limit; Limits.MaxMetadataBytes when nil.
	MaxBytes func(plugin.Limits) int64
	// Narrow, when set, must also accept a file osv-scalibr's FileRequired accepts: a
	// choice of Lading's among the files the extractor reads, never a copy of its rules.
	Narrow func(f plugin.File) bool
	// OpensByName is set for extractors that open the file by name (databases).
	OpensByName bool
	// OSDatabase is the kind of OS package database the extractor reads ("dpkg"), "" for
	// language files.
	OSDatabase string
	// Database, when set, tells the kind of database from what osv-scalibr reports of a
	// package, for an extractor that reads several kinds ("" keeps OSDatabase).
	Database func(*extractor.Package) string
	// Convert turns a package osv-scalibr found into Lading's; false drops it. Path and
	// Layer are filled in by the walk.
	Convert func(*extractor.Package) (installed.Package, bool)
}

// Plugin is an osv-scalibr filesystem extractor as an inventory plugin.
type Plugin struct {
	ex  filesystem.Extractor
	cfg Config
	// releaseFS stands in for the image root that osv-scalibr's OS extractors read
	// os-release from: the release is decided for the whole image by Merge, not per layer.
	releaseFS fstest.MapFS
}

// New wraps the extractor that newExtractor makes with an empty (default) configuration.
func New(newExtractor func(*cpb.PluginConfig) (filesystem.Extractor, error), cfg Config) *Plugin {
	ex, err := newExtractor(&cpb.PluginConfig{})
	if err != nil {
		// The constructors only fail on an invalid configuration, and this one is empty.
		panic(fmt.Sprintf("osv-scalibr extractor: %v", err))
	}
	if cfg.MaxBytes == nil {
		cfg.MaxBytes = func(l plugin.Limits) int64 { return l.MaxMetadataBytes }
	}
	return &Plugin{ex: ex, cfg: cfg, releaseFS: fstest.MapFS{"etc/os-release": &fstest.MapFile{Mode: 0o644}}}
}

// Name is osv-scalibr's name of the extractor.
func (p *Plugin) Name() string { return p.ex.Name() }

// Version is the version of Lading's part.
func (p *Plugin) Version() int { return p.cfg.Version }

// FileRequired is the extractor's own, narrowed by Config.Narrow.
func (p *Plugin) FileRequired(f plugin.File) bool {
	return p.ex.FileRequired(f) && (p.cfg.Narrow == nil || p.cfg.Narrow(f))
}

// MaxBytes is Config.MaxBytes.
func (p *Plugin) MaxBytes(l plugin.Limits) int64 { return p.cfg.MaxBytes(l) }

// Extract runs the extractor on the file's content and converts what it found.
func (p *Plugin) Extract(ctx context.Context, in *plugin.Input) (plugin.Found, error) {
	input := &filesystem.ScanInput{
		FS:     p.releaseFS,
		Path:   strings.TrimPrefix(in.Path, "/"),
		Info:   in.Info,
		Reader: in.Content.NewReader(),
	}
	if p.cfg.OpensByName {
		name, done, err := in.Env.Buffers.OnDisk(in.Content)
		if err != nil {
			return plugin.Found{OSDatabase: p.cfg.OSDatabase}, fmt.Errorf("%s: %w", p.cfg.Describe, err)
		}
		defer done()
		input.Root, input.Path = filepath.Dir(name), filepath.Base(name)
	}
	inv, err := p.ex.Extract(ctx, input)
	found := plugin.Found{OSDatabase: p.cfg.OSDatabase}
	for _, sp := range inv.Packages {
		if p.cfg.Database != nil {
			if kind := p.cfg.Database(sp); kind != "" {
				found.OSDatabase = kind
			}
		}
		if pkg, ok := p.cfg.Convert(sp); ok {
			found.Packages = append(found.Packages, pkg)
		}
	}
	if err != nil {
		return found, fmt.Errorf("%s: %w", p.cfg.Describe, err)
	}
	return found, nil
}

// Language is a Convert for language packages: named and versioned as osv-scalibr found
// them, in the given OSV ecosystem and Inspector packageManager, with a PURL of purlType
// (the name split at its last "/" into namespace and name when splitNamespace is set).
func Language(ecosystem, manager string, lockfile bool, purlType string, splitNamespace bool) func(*extractor.Package) (installed.Package, bool) {
	return func(sp *extractor.Package) (installed.Package, bool) {
		if sp.Name == "" || sp.Version == "" {
			return installed.Package{}, false
		}
		namespace, name := "", sp.Name
		if i := strings.LastIndex(name, "/"); splitNamespace && i >= 0 {
			namespace, name = name[:i], name[i+1:]
		}
		return installed.Package{
			Ecosystem:      ecosystem,
			Name:           sp.Name,
			Version:        sp.Version,
			PackageManager: manager,
			FromLockfile:   lockfile,
			PURL:           PURL(purlType, namespace, name, sp.Version),
		}, true
	}
}

// PURL is a package URL without qualifiers; "" without a name.
func PURL(purlType, namespace, name, version string) string {
	if name == "" {
		return ""
	}
	return packageurl.NewPackageURL(purlType, namespace, name, version, nil, "").ToString()
}
