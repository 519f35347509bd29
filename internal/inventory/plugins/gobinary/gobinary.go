// Package gobinary reads the build information of Go executables, found by content (ELF
// files, whatever their name or mode), with the standard library's debug/buildinfo.
//
// It is Lading's own rather than osv-scalibr's golang/gobinary extractor: that one wraps the
// same call but hides read errors (a truncated binary looks like a non-Go file), names the
// toolchain "go" where the Go vulnerability database says "stdlib", and picks files by name
// and mode.
package gobinary

import (
	"context"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	packageurl "github.com/package-url/packageurl-go"

	"github.com/lading-registry/lading/internal/inventory/installed"
	"github.com/lading-registry/lading/internal/inventory/plugin"
)

// Stdlib is the package name osv-scanner and the Go vulnerability database use for the Go
// standard library (the toolchain a binary was built with).
const Stdlib = "stdlib"

const ecosystem = "Go"

const elfMagic = "\x7fELF"

// New returns the plugin.
func New() plugin.Plugin { return goBinary{} }

type goBinary struct{}

func (goBinary) Name() string { return "lading/gobinary" }
func (goBinary) Version() int { return 1 }

// FileRequired looks at the first bytes: Go binaries are found by content.
func (goBinary) FileRequired(f plugin.File) bool {
	head, err := f.Head(len(elfMagic))
	return err == nil && string(head) == elfMagic
}

func (goBinary) MaxBytes(l plugin.Limits) int64 { return l.MaxFileBytes }

func (goBinary) Extract(_ context.Context, in *plugin.Input) (plugin.Found, error) {
	pkgs, err := packages(in.Content, in.Content.Size())
	if err != nil {
		return plugin.Found{}, fmt.Errorf("executable: %w", err)
	}
	return plugin.Found{Packages: pkgs}, nil
}

// packages reads the build information of an ELF file. A file that is not a Go binary yields
// nothing; one that cannot be parsed (e.g. truncated) is an error.
func packages(ra io.ReaderAt, size int64) ([]installed.Package, error) {
	bi, err := readBuildInfo(io.NewSectionReader(ra, 0, size))
	if err != nil {
		if strings.Contains(err.Error(), "not a Go executable") {
			return nil, nil
		}
		if strings.HasPrefix(err.Error(), "unreadable ELF file") {
			return nil, err
		}
		return nil, fmt.Errorf("build information: %w", err)
	}
	var pkgs []installed.Package
	add := func(name, version string) {
		// OSV's Go ranges write versions without the leading "v".
		version = strings.TrimPrefix(version, "v")
		if name == "" || version == "" || version == "(devel)" {
			return
		}
		pkgs = append(pkgs, installed.Package{Ecosystem: ecosystem, Name: name, Version: version,
			PackageManager: installed.ManagerGoBinary, PURL: purl(name, version)})
	}
	goVersion, _, _ := strings.Cut(bi.GoVersion, " ")
	if v, ok := strings.CutPrefix(goVersion, "go"); ok && looksLikeGoRelease(v) {
		add(Stdlib, v)
	}
	add(bi.Main.Path, bi.Main.Version)
	for _, dep := range bi.Deps {
		mod := dep
		if dep.Replace != nil && dep.Replace.Path != "" {
			mod = dep.Replace
		}
		// A replacement by a local directory has no version and no advisories.
		add(mod.Path, mod.Version)
	}
	return pkgs, nil
}

// readBuildInfo reads an ELF file's Go build information, guarding debug/elf and
// debug/buildinfo against panics on hostile files. It parses the ELF headers first because
// buildinfo reports an unreadable file like a non-Go one.
func readBuildInfo(r *io.SectionReader) (bi *debug.BuildInfo, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			err = fmt.Errorf("unreadable ELF file: %v", rec)
		}
	}()
	if _, err := elf.NewFile(r); err != nil {
		return nil, fmt.Errorf("unreadable ELF file: %w", err)
	}
	return buildinfo.Read(r)
}

// looksLikeGoRelease accepts "1.20.14", "1.21rc2", not development toolchains ("devel ...").
func looksLikeGoRelease(v string) bool {
	return v != "" && v[0] >= '0' && v[0] <= '9'
}

// purl writes module versions with their "v" again, as Go's PURLs do; the toolchain's
// version has none.
func purl(name, version string) string {
	namespace := ""
	if i := strings.LastIndex(name, "/"); i >= 0 {
		namespace, name = name[:i], name[i+1:]
	}
	if name != Stdlib || namespace != "" {
		version = "v" + version
	}
	if name == "" {
		return ""
	}
	return packageurl.NewPackageURL(packageurl.TypeGolang, namespace, name, version, nil, "").ToString()
}
