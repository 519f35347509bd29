// Package php reads PHP packages: composer.lock through osv-scalibr's php/composerlock
// extractor, and Composer's vendor/composer/installed.json, for which osv-scalibr has none.
package php

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/google/osv-scalibr/extractor/filesystem/language/php/composerlock"
	packageurl "github.com/package-url/packageurl-go"

	"github.com/lading-registry/lading/internal/inventory/installed"
	"github.com/lading-registry/lading/internal/inventory/plugin"
	"github.com/lading-registry/lading/internal/inventory/plugins/internal/scalibrplugin"
)

const ecosystem = "Packagist"

// ComposerLock returns the plugin for composer.lock files.
func ComposerLock() plugin.Plugin {
	return scalibrplugin.New(composerlock.New, scalibrplugin.Config{
		Version:  1,
		Describe: "composer.lock",
		Convert:  scalibrplugin.Language(ecosystem, installed.ManagerComposer, true, packageurl.TypeComposer, true),
	})
}

// Installed returns the plugin for vendor/composer/installed.json, which lists the packages
// actually installed in vendor/.
func Installed() plugin.Plugin { return installedJSON{} }

type installedJSON struct{}

func (installedJSON) Name() string { return "lading/composer-installed" }
func (installedJSON) Version() int { return 1 }

func (installedJSON) FileRequired(f plugin.File) bool {
	const name = "vendor/composer/installed.json"
	p := f.Path()
	return p == name || strings.HasSuffix(p, "/"+name)
}

func (installedJSON) MaxBytes(l plugin.Limits) int64 { return l.MaxMetadataBytes }

func (installedJSON) Extract(_ context.Context, in *plugin.Input) (plugin.Found, error) {
	pkgs, err := parseInstalled(in.Content.NewReader())
	if err != nil {
		return plugin.Found{}, fmt.Errorf("composer installed.json: %w", err)
	}
	return plugin.Found{Packages: pkgs}, nil
}

type composerPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// parseInstalled reads installed.json: Composer 2 writes {"packages": [...]}, Composer 1 a
// bare array.
func parseInstalled(r io.Reader) ([]installed.Package, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var list []composerPackage
	var v2 struct {
		Packages []composerPackage `json:"packages"`
	}
	if err := json.Unmarshal(data, &v2); err == nil {
		list = v2.Packages
	} else if err2 := json.Unmarshal(data, &list); err2 != nil {
		return nil, fmt.Errorf("not Composer's installed.json: %w", err)
	}
	var pkgs []installed.Package
	for _, cp := range list {
		i := strings.LastIndex(cp.Name, "/")
		version := strings.TrimPrefix(cp.Version, "v")
		if i < 0 || version == "" {
			continue
		}
		vendor, name := cp.Name[:i], cp.Name[i+1:]
		pkgs = append(pkgs, installed.Package{
			Ecosystem:      ecosystem,
			Name:           cp.Name,
			Version:        version,
			PackageManager: installed.ManagerComposer,
			PURL:           scalibrplugin.PURL(packageurl.TypeComposer, vendor, name, version),
		})
	}
	return pkgs, nil
}
