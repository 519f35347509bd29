// Package gobinary reads the build information of Go executables, found by content (ELF
// files, whatever their name or mode), with the standard library's debug/buildinfo, and the
// functions they hold (debug/gosym), by which reachability tells whether an advisory's
// vulnerable symbols are in the binary.
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
	"path"
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
func (goBinary) Version() int { return 2 } // 2: symbols

// FileRequired looks at the first bytes: Go binaries are found by content.
func (goBinary) FileRequired(f plugin.File) bool {
	head, err := f.Head(len(elfMagic))
	return err == nil && string(head) == elfMagic
}

func (goBinary) MaxBytes(l plugin.Limits) int64 { return l.MaxFileBytes }

func (goBinary) Extract(_ context.Context, in *plugin.Input) (plugin.Found, error) {
	pkgs, symErr, err := packages(in.Content, in.Content.Size())
	if err != nil {
		return plugin.Found{}, fmt.Errorf("executable: %w", err)
	}
	if symErr != nil && len(pkgs) > 0 {
		// The packages stand; only their reachability is unknown, which the report says.
		in.Env.Skip(in.Path, fmt.Sprintf("Go symbols not read (reachability unknown): %v", symErr))
	}
	return plugin.Found{Packages: pkgs}, nil
}

// packages reads the build information of an ELF file, and the functions it holds of each
// module. A file that is not a Go binary yields nothing; one that cannot be parsed (e.g.
// truncated) is an error. A symbol table that cannot be read is symErr: the packages are
// found all the same, without Symbols.
func packages(ra io.ReaderAt, size int64) (pkgs []installed.Package, symErr, err error) {
	f, bi, err := readBuildInfo(io.NewSectionReader(ra, 0, size))
	if err != nil {
		if notGoExecutable(err) {
			return nil, nil, nil
		}
		if strings.HasPrefix(err.Error(), "unreadable ELF file") {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("build information: %w", err)
	}
	// modules maps the module path under which a module's code is compiled to its package;
	// a replaced module's code keeps the import paths of the module it replaces.
	type module struct {
		at       int
		reported string // the path reported: the replacement's
	}
	modules := map[string]module{}
	add := func(name, version, compiledAs string) {
		// OSV's Go ranges write versions without the leading "v".
		version = strings.TrimPrefix(version, "v")
		if name == "" || version == "" || version == "(devel)" {
			return
		}
		modules[compiledAs] = module{len(pkgs), name}
		pkgs = append(pkgs, installed.Package{Ecosystem: ecosystem, Name: name, Version: version,
			PackageManager: installed.ManagerGoBinary, PURL: purl(name, version)})
	}
	goVersion, _, _ := strings.Cut(bi.GoVersion, " ")
	if v, ok := strings.CutPrefix(goVersion, "go"); ok && looksLikeGoRelease(v) {
		add(Stdlib, v, Stdlib)
	}
	add(bi.Main.Path, bi.Main.Version, bi.Main.Path)
	for _, dep := range bi.Deps {
		mod := dep
		if dep.Replace != nil && dep.Replace.Path != "" {
			mod = dep.Replace
		}
		// A replacement by a local directory has no version and no advisories.
		add(mod.Path, mod.Version, dep.Path)
	}
	if len(pkgs) == 0 {
		return nil, nil, nil
	}
	table, symErr := readSymbols(f)
	if symErr != nil {
		return pkgs, symErr, nil
	}
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	for i := range pkgs {
		pkgs[i].Symbols = &installed.Symbols{Packages: map[string][]string{}, GOOS: goos, GOARCH: goarch}
	}
	// Only the packages of the modules reported are kept: the others can match no advisory.
	for pkgPath, syms := range table {
		isMain := pkgPath == "main"
		if isMain {
			pkgPath = bi.Path // as govulncheck does: advisories name the main package by its path
		}
		owner, ok := "", false
		for p := pkgPath; p != "." && p != "/" && p != ""; p = path.Dir(p) {
			if _, ok = modules[p]; ok {
				owner = p
				break
			}
		}
		if !ok {
			first, _, _ := strings.Cut(pkgPath, "/")
			if isMain || first == "" || strings.Contains(first, ".") {
				continue
			}
			owner = Stdlib // no dot in the first element: the standard library's
			if _, ok = modules[owner]; !ok {
				continue
			}
		}
		m := modules[owner]
		if owner != Stdlib {
			pkgPath = m.reported + strings.TrimPrefix(pkgPath, owner)
		}
		pkgs[m.at].Symbols.Packages[pkgPath] = syms
	}
	return pkgs, nil, nil
}

// readSymbols reads the function table, guarding debug/gosym against panics on hostile
// files.
func readSymbols(f *elf.File) (table map[string][]string, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			table, err = nil, fmt.Errorf("function table: %v", rec)
		}
	}()
	return symbolTable(f)
}

// notGoExecutable tells whether err is debug/buildinfo's answer for a readable file that is no
// Go binary (it exports no error value to compare with).
func notGoExecutable(err error) bool {
	return err != nil && strings.Contains(err.Error(), "not a Go executable")
}

// readBuildInfo reads an ELF file's Go build information, and its parsed ELF headers for a Go
// binary (f is nil for a file that is none), guarding debug/elf and debug/buildinfo against
// panics on hostile files. An unreadable file is told from a non-Go one by parsing its headers
// again: buildinfo reports both alike ("unrecognized file format").
func readBuildInfo(r *io.SectionReader) (f *elf.File, bi *debug.BuildInfo, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			f, bi, err = nil, nil, fmt.Errorf("unreadable ELF file: %v", rec)
		}
	}()
	// Most ELF files of an image are not Go's: the build information is read first (which
	// parses the ELF headers itself), and the headers again only for a Go binary's symbols,
	// or for why the file is not readable.
	bi, err = buildinfo.Read(r)
	if !notGoExecutable(err) {
		var ferr error
		if f, ferr = elf.NewFile(r); ferr != nil {
			return nil, nil, fmt.Errorf("unreadable ELF file: %w", ferr)
		}
	}
	return f, bi, err
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
