// Package dpkg reads Debian's package database (/var/lib/dpkg/status, distroless
// status.d/ files, and whatever else osv-scalibr's os/dpkg extractor reads, such as OpenWrt's
// opkg status file, in the same format) through that extractor.
package dpkg

import (
	"strconv"
	"strings"

	"github.com/google/osv-scalibr/extractor"
	scalibrdpkg "github.com/google/osv-scalibr/extractor/filesystem/os/dpkg"
	dpkgmeta "github.com/google/osv-scalibr/extractor/filesystem/os/dpkg/metadata"
	"github.com/google/osv-scalibr/purl"

	"github.com/lading-registry/lading/internal/inventory/installed"
	"github.com/lading-registry/lading/internal/inventory/plugin"
	"github.com/lading-registry/lading/internal/inventory/plugins/internal/scalibrplugin"
)

// New returns the plugin.
func New() plugin.Plugin {
	return scalibrplugin.New(scalibrdpkg.New, scalibrplugin.Config{
		Version:    2, // 2: opkg status files are an "opkg" database
		Describe:   "dpkg database",
		OSDatabase: "dpkg",
		Database:   kind,
		Convert:    convert,
	})
}

// kind tells opkg's packages, which osv-scalibr marks, from dpkg's: they are no Debian
// packages, so Merge must not fall back to the Debian ecosystem for them.
func kind(sp *extractor.Package) string {
	if sp.PURLType == purl.TypeOpkg {
		return "opkg"
	}
	return "dpkg"
}

// convert keeps the source package (Debian publishes advisories by source package) and
// splits the version into its parts. The ecosystem comes from the image's release.
func convert(sp *extractor.Package) (installed.Package, bool) {
	if sp.Name == "" || sp.Version == "" {
		return installed.Package{}, false
	}
	pkg := installed.Package{Name: sp.Name, Version: sp.Version, PackageManager: installed.ManagerOS}
	if m, ok := sp.Metadata.(*dpkgmeta.Metadata); ok {
		pkg.Arch = m.Architecture
		pkg.SourceName, pkg.SourceVersion = m.SourceName, m.SourceVersion
		pkg.Epoch, pkg.Release = splitVersion(sp.Version)
	}
	if pkg.SourceName == "" {
		pkg.SourceName = pkg.Name
	}
	if pkg.SourceVersion == "" {
		pkg.SourceVersion = pkg.Version
	}
	return pkg, true
}

// splitVersion returns the epoch and the Debian revision of a dpkg version
// "[epoch:]upstream[-revision]".
func splitVersion(v string) (epoch int, revision string) {
	if e, rest, ok := strings.Cut(v, ":"); ok {
		if n, err := strconv.Atoi(e); err == nil {
			epoch = n
		}
		v = rest
	}
	if i := strings.LastIndex(v, "-"); i >= 0 {
		revision = v[i+1:]
	}
	return epoch, revision
}
