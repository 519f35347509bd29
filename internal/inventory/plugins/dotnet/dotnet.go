// Package dotnet reads .NET applications' *.deps.json files through osv-scalibr's
// dotnet/depsjson extractor.
package dotnet

import (
	"github.com/google/osv-scalibr/extractor/filesystem/language/dotnet/depsjson"
	packageurl "github.com/package-url/packageurl-go"

	"github.com/lading-registry/lading/internal/inventory/installed"
	"github.com/lading-registry/lading/internal/inventory/plugin"
	"github.com/lading-registry/lading/internal/inventory/plugins/internal/scalibrplugin"
)

// New returns the plugin.
func New() plugin.Plugin {
	return scalibrplugin.New(depsjson.New, scalibrplugin.Config{
		Version:  1,
		Describe: ".NET deps.json",
		Convert:  scalibrplugin.Language("NuGet", installed.ManagerDotnetCore, false, packageurl.TypeNuget, false),
	})
}
