// Package ruby reads installed gems' specifications through osv-scalibr's ruby/gemspec
// extractor.
package ruby

import (
	"path"

	"github.com/google/osv-scalibr/extractor/filesystem/language/ruby/gemspec"
	packageurl "github.com/package-url/packageurl-go"

	"github.com/lading-registry/lading/internal/inventory/installed"
	"github.com/lading-registry/lading/internal/inventory/plugin"
	"github.com/lading-registry/lading/internal/inventory/plugins/internal/scalibrplugin"
)

// New returns the plugin.
func New() plugin.Plugin {
	return scalibrplugin.New(gemspec.New, scalibrplugin.Config{
		Version:  1,
		Describe: "gemspec",
		Narrow:   installedGem,
		Convert:  scalibrplugin.Language("RubyGems", installed.ManagerGemspec, false, packageurl.TypeGem, false),
	})
}

// installedGem keeps the specifications RubyGems writes for installed gems
// (<gem home>/specifications/<name>-<version>.gemspec). osv-scalibr reads every .gemspec,
// but the one inside a gem's own source (gems/<name>-<version>/<name>.gemspec) would report
// the gem twice, and an application's own gemspec names no installed gem.
func installedGem(f plugin.File) bool {
	return path.Base(path.Dir(f.Path())) == "specifications"
}
