// Package plugins is the list of the inventory's plugins: one folder per ecosystem below
// this one, one line per plugin here.
package plugins

import (
	"github.com/lading-registry/lading/internal/inventory/plugin"
	"github.com/lading-registry/lading/internal/inventory/plugins/apk"
	"github.com/lading-registry/lading/internal/inventory/plugins/dotnet"
	"github.com/lading-registry/lading/internal/inventory/plugins/dpkg"
	"github.com/lading-registry/lading/internal/inventory/plugins/gobinary"
	"github.com/lading-registry/lading/internal/inventory/plugins/java"
	"github.com/lading-registry/lading/internal/inventory/plugins/npm"
	"github.com/lading-registry/lading/internal/inventory/plugins/osrelease"
	"github.com/lading-registry/lading/internal/inventory/plugins/php"
	"github.com/lading-registry/lading/internal/inventory/plugins/python"
	"github.com/lading-registry/lading/internal/inventory/plugins/rpm"
	"github.com/lading-registry/lading/internal/inventory/plugins/ruby"
	"github.com/lading-registry/lading/internal/inventory/plugins/rust"
)

// Default returns new instances of the plugins a scan in mode runs: the operating system's
// (its release and package databases) in ModeBasic, and the languages' too in ModeEnhanced.
// A plugin that wants a file in BASIC mode too goes in the first list.
func Default(mode plugin.Mode) []plugin.Plugin {
	ps := []plugin.Plugin{
		osrelease.New(),
		dpkg.New(),
		apk.New(),
		rpm.New(),
	}
	if mode == plugin.ModeBasic {
		return ps
	}
	return append(ps,
		java.New(),
		gobinary.New(),
		python.New(),
		npm.PackageJSON(),
		npm.PackageLock(),
		dotnet.New(),
		ruby.New(),
		rust.CargoLock(),
		rust.CargoAuditable(),
		php.ComposerLock(),
		php.Installed(),
		// Which OS package installed which language package's metadata: only language
		// packages need it.
		dpkg.Files(),
		apk.Files(),
		rpm.Files(),
	)
}
