// Package npm reads Node.js packages: the package.json of installed packages and npm's lock
// files, through osv-scalibr's javascript/packagejson and javascript/packagelockjson
// extractors.
package npm

import (
	"path"
	"strings"

	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/packagejson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/packagelockjson"
	packageurl "github.com/package-url/packageurl-go"

	"github.com/lading-registry/lading/internal/inventory/installed"
	"github.com/lading-registry/lading/internal/inventory/plugin"
	"github.com/lading-registry/lading/internal/inventory/plugins/internal/scalibrplugin"
)

// PackageJSON returns the plugin for installed packages' package.json files.
func PackageJSON() plugin.Plugin {
	return scalibrplugin.New(packagejson.New, scalibrplugin.Config{
		Version:  1,
		Describe: "package.json",
		Narrow:   installedPackage,
		Convert:  scalibrplugin.Language("npm", installed.ManagerNodePkg, false, packageurl.TypeNPM, true),
	})
}

// PackageLock returns the plugin for package-lock.json and npm-shrinkwrap.json files.
func PackageLock() plugin.Plugin {
	return scalibrplugin.New(packagelockjson.New, scalibrplugin.Config{
		Version:  1,
		Describe: "npm lock file",
		Convert:  scalibrplugin.Language("npm", installed.ManagerNPM, true, packageurl.TypeNPM, true),
	})
}

// installedPackage keeps the package.json files of installed packages: those directly in a
// package directory of node_modules (node_modules/<name>, node_modules/@scope/<name>).
// osv-scalibr reads every package.json, but an application's own one names no installed
// package, and package.json files deeper inside a package describe its sub-modules (or its
// test fixtures).
func installedPackage(f plugin.File) bool {
	dir := path.Dir(f.Path())
	parent := path.Dir(dir)
	if path.Base(parent) == "node_modules" {
		return true
	}
	return strings.HasPrefix(path.Base(parent), "@") && path.Base(path.Dir(parent)) == "node_modules"
}
