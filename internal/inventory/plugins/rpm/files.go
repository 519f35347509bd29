package rpm

import (
	"context"
	"fmt"
	"path"
	"strconv"

	rpmdb "github.com/erikvarga/go-rpmdb/pkg"

	"github.com/lading-registry/lading/internal/inventory/plugin"
)

// Files returns the plugin that reads the files each package installed from an rpm
// database, through the go-rpmdb library osv-scalibr's extractor uses (which does not report
// them). It wants the files the rpm plugin wants. Merge reports a language package whose
// metadata they list as the rpm package (see plugin.Found.Owned).
func Files() plugin.Plugin { return files{db: New()} }

type files struct{ db plugin.Plugin }

func (files) Name() string                         { return "lading/rpm-files" }
func (files) Version() int                         { return 1 }
func (f files) FileRequired(file plugin.File) bool { return f.db.FileRequired(file) }
func (files) MaxBytes(l plugin.Limits) int64       { return l.MaxFileBytes }

func (files) Extract(ctx context.Context, in *plugin.Input) (plugin.Found, error) {
	name, done, err := in.Env.Buffers.OnDisk(in.Content) // the library opens databases by name
	if err != nil {
		return plugin.Found{}, fmt.Errorf("rpm file lists: %w", err)
	}
	defer done()
	db, err := rpmdb.Open(name)
	if err != nil {
		return plugin.Found{}, fmt.Errorf("rpm file lists: %w", err)
	}
	defer db.Close()
	pkgs, err := db.ListPackagesWithContext(ctx)
	if err != nil {
		return plugin.Found{}, fmt.Errorf("rpm file lists: %w", err)
	}
	owned := &plugin.Owned{Kind: "rpm"}
	for _, p := range pkgs {
		names, err := p.InstalledFileNames()
		if err != nil || len(names) == 0 {
			continue // a package without a consistent file list owns nothing
		}
		version := p.Version + "-" + p.Release
		if p.Epoch != nil && *p.Epoch > 0 {
			version = strconv.Itoa(*p.Epoch) + ":" + version
		}
		of := plugin.OwnedFiles{Package: p.Name, Version: version, Arch: p.Arch}
		for _, n := range names {
			if c := path.Clean(n); len(n) > 1 && n[0] == '/' {
				of.Files = append(of.Files, c)
			}
		}
		owned.Packages = append(owned.Packages, of)
	}
	if len(owned.Packages) == 0 {
		return plugin.Found{}, nil
	}
	return plugin.Found{Owned: owned}, nil
}
