// Package apk reads Alpine's package database (/lib/apk/db/installed and whatever else
// osv-scalibr's os/apk extractor reads) through that extractor.
package apk

import (
	"strings"

	"github.com/google/osv-scalibr/extractor"
	scalibrapk "github.com/google/osv-scalibr/extractor/filesystem/os/apk"
	apkmeta "github.com/google/osv-scalibr/extractor/filesystem/os/apk/metadata"

	"github.com/lading-registry/lading/internal/inventory/installed"
	"github.com/lading-registry/lading/internal/inventory/plugin"
	"github.com/lading-registry/lading/internal/inventory/plugins/internal/scalibrplugin"
)

// New returns the plugin.
func New() plugin.Plugin {
	return scalibrplugin.New(scalibrapk.New, scalibrplugin.Config{
		Version:    1,
		Describe:   "apk database",
		OSDatabase: "apk",
		Convert:    convert,
	})
}

// convert keeps the origin (source) package, by which Alpine publishes advisories, and the
// release ("r29" of "1.36.1-r29").
func convert(sp *extractor.Package) (installed.Package, bool) {
	if sp.Name == "" || sp.Version == "" {
		return installed.Package{}, false
	}
	pkg := installed.Package{Name: sp.Name, Version: sp.Version, PackageManager: installed.ManagerOS}
	if m, ok := sp.Metadata.(*apkmeta.Metadata); ok {
		pkg.Arch = m.Architecture
		pkg.SourceName = m.OriginName
		if i := strings.LastIndex(sp.Version, "-r"); i > 0 {
			pkg.Release = sp.Version[i+1:]
		}
	}
	if pkg.SourceName == "" {
		pkg.SourceName = pkg.Name
	}
	pkg.SourceVersion = pkg.Version
	return pkg, true
}
