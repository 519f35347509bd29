// Package python reads installed Python distributions (*.dist-info/METADATA,
// *.egg-info/PKG-INFO, and whatever else osv-scalibr's python/wheelegg extractor reads,
// such as .whl and .egg archives) through that extractor.
package python

import (
	"strings"

	"github.com/google/osv-scalibr/extractor"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/wheelegg"
	packageurl "github.com/package-url/packageurl-go"

	"github.com/lading-registry/lading/internal/inventory/installed"
	"github.com/lading-registry/lading/internal/inventory/plugin"
	"github.com/lading-registry/lading/internal/inventory/plugins/internal/scalibrplugin"
)

// New returns the plugin.
func New() plugin.Plugin {
	return scalibrplugin.New(wheelegg.New, scalibrplugin.Config{
		Version:  1,
		Describe: "Python metadata",
		Convert:  convert,
	})
}

func convert(sp *extractor.Package) (installed.Package, bool) {
	if sp.Name == "" || sp.Version == "" {
		return installed.Package{}, false
	}
	return installed.Package{
		Ecosystem:      "PyPI",
		Name:           sp.Name,
		Version:        sp.Version,
		PackageManager: installed.ManagerPythonPkg,
		// PyPI names are case-insensitive and treat "_" as "-"; the PURL spec writes them
		// normalised.
		PURL: scalibrplugin.PURL(packageurl.TypePyPi, "", strings.ReplaceAll(strings.ToLower(sp.Name), "_", "-"), sp.Version),
	}, true
}
