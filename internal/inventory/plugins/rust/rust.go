// Package rust reads Rust crates: Cargo.lock files and the dependency list cargo-auditable
// embeds in executables, through osv-scalibr's rust/cargolock and rust/cargoauditable
// extractors.
package rust

import (
	"github.com/google/osv-scalibr/extractor/filesystem/language/rust/cargoauditable"
	"github.com/google/osv-scalibr/extractor/filesystem/language/rust/cargolock"
	packageurl "github.com/package-url/packageurl-go"

	"github.com/lading-registry/lading/internal/inventory/installed"
	"github.com/lading-registry/lading/internal/inventory/plugin"
	"github.com/lading-registry/lading/internal/inventory/plugins/internal/scalibrplugin"
)

// CargoLock returns the plugin for Cargo.lock files.
func CargoLock() plugin.Plugin {
	return scalibrplugin.New(cargolock.New, scalibrplugin.Config{
		Version:  1,
		Describe: "Cargo.lock",
		Convert:  scalibrplugin.Language("crates.io", installed.ManagerCargo, true, packageurl.TypeCargo, false),
	})
}

// CargoAuditable returns the plugin for executables built with cargo-auditable.
func CargoAuditable() plugin.Plugin {
	return scalibrplugin.New(cargoauditable.New, scalibrplugin.Config{
		Version:  1,
		Describe: "cargo-auditable data",
		MaxBytes: func(l plugin.Limits) int64 { return l.MaxFileBytes },
		Convert:  scalibrplugin.Language("crates.io", installed.ManagerCargo, false, packageurl.TypeCargo, false),
	})
}
