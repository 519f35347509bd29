// Package rpm reads rpm databases (Berkeley DB, NDB and SQLite, in the directories
// osv-scalibr's os/rpm extractor looks in) through that extractor. The rpm libraries open
// databases by name, so the content is handed over as a scratch file.
package rpm

import (
	"strconv"
	"strings"

	"github.com/google/osv-scalibr/extractor"
	scalibrrpm "github.com/google/osv-scalibr/extractor/filesystem/os/rpm"
	rpmmeta "github.com/google/osv-scalibr/extractor/filesystem/os/rpm/metadata"

	"github.com/lading-registry/lading/internal/inventory/installed"
	"github.com/lading-registry/lading/internal/inventory/plugin"
	"github.com/lading-registry/lading/internal/inventory/plugins/internal/scalibrplugin"
)

// New returns the plugin.
func New() plugin.Plugin {
	return scalibrplugin.New(scalibrrpm.New, scalibrplugin.Config{
		Version:     1,
		Describe:    "rpm database",
		MaxBytes:    func(l plugin.Limits) int64 { return l.MaxFileBytes },
		OpensByName: true,
		OSDatabase:  "rpm",
		Convert:     convert,
	})
}

// convert writes the epoch into the version ("1:3.0.7-27.el9"), as OSV's rpm ranges do, and
// keeps the source rpm's name and version, by which distributions publish advisories.
func convert(sp *extractor.Package) (installed.Package, bool) {
	if sp.Name == "" || sp.Version == "" {
		return installed.Package{}, false
	}
	pkg := installed.Package{Name: sp.Name, Version: sp.Version, PackageManager: installed.ManagerOS}
	if m, ok := sp.Metadata.(*rpmmeta.Metadata); ok {
		pkg.Arch = m.Architecture
		pkg.Epoch = m.Epoch
		if i := strings.LastIndex(sp.Version, "-"); i > 0 {
			pkg.Release = sp.Version[i+1:]
		}
		if m.Epoch > 0 {
			pkg.Version = strconv.Itoa(m.Epoch) + ":" + sp.Version
		}
		pkg.SourceName, pkg.SourceVersion = splitSourceRPM(m.SourceRPM)
	}
	if pkg.SourceName == "" {
		pkg.SourceName = pkg.Name
	}
	if pkg.SourceVersion == "" {
		pkg.SourceVersion = pkg.Version
	}
	return pkg, true
}

// splitSourceRPM splits "openssl-3.0.7-27.el9.src.rpm" into ("openssl", "3.0.7-27.el9").
func splitSourceRPM(srpm string) (name, version string) {
	s := strings.TrimSuffix(strings.TrimSuffix(srpm, ".rpm"), ".src")
	s = strings.TrimSuffix(s, ".nosrc")
	rel := strings.LastIndex(s, "-")
	if rel <= 0 {
		return "", ""
	}
	ver := strings.LastIndex(s[:rel], "-")
	if ver <= 0 {
		return "", ""
	}
	return s[:ver], s[ver+1:]
}
