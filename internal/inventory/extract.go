package inventory

import (
	"archive/tar"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing/fstest"

	cpb "github.com/google/osv-scalibr/binary/proto/config_go_proto"
	"github.com/google/osv-scalibr/extractor"
	"github.com/google/osv-scalibr/extractor/filesystem"
	"github.com/google/osv-scalibr/extractor/filesystem/language/dotnet/depsjson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/packagejson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/packagelockjson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/php/composerlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/wheelegg"
	"github.com/google/osv-scalibr/extractor/filesystem/language/ruby/gemspec"
	"github.com/google/osv-scalibr/extractor/filesystem/language/rust/cargoauditable"
	"github.com/google/osv-scalibr/extractor/filesystem/language/rust/cargolock"
	"github.com/google/osv-scalibr/extractor/filesystem/os/apk"
	apkmeta "github.com/google/osv-scalibr/extractor/filesystem/os/apk/metadata"
	"github.com/google/osv-scalibr/extractor/filesystem/os/dpkg"
	dpkgmeta "github.com/google/osv-scalibr/extractor/filesystem/os/dpkg/metadata"
	"github.com/google/osv-scalibr/extractor/filesystem/os/rpm"
	rpmmeta "github.com/google/osv-scalibr/extractor/filesystem/os/rpm/metadata"
)

// scalibrExtractors are the osv-scalibr extractors used, fed one file at a time from the
// layer stream through ScanInput.Reader (no unpacked tree).
type scalibrExtractors struct {
	byKind    map[fileKind]filesystem.Extractor
	auditable filesystem.Extractor
}

func newScalibrExtractors() *scalibrExtractors {
	cfg := &cpb.PluginConfig{}
	must := func(e filesystem.Extractor, err error) filesystem.Extractor {
		if err != nil {
			// The constructors only fail on invalid plugin configuration, and ours is empty.
			panic(fmt.Sprintf("inventory: osv-scalibr extractor: %v", err))
		}
		return e
	}
	return &scalibrExtractors{
		byKind: map[fileKind]filesystem.Extractor{
			kindDpkg:         must(dpkg.New(cfg)),
			kindApk:          must(apk.New(cfg)),
			kindRpm:          must(rpm.New(cfg)),
			kindPython:       must(wheelegg.New(cfg)),
			kindNodePackage:  must(packagejson.New(cfg)),
			kindNpmLock:      must(packagelockjson.New(cfg)),
			kindDepsJSON:     must(depsjson.New(cfg)),
			kindGemspec:      must(gemspec.New(cfg)),
			kindCargoLock:    must(cargolock.New(cfg)),
			kindComposerLock: must(composerlock.New(cfg)),
		},
		auditable: must(cargoauditable.New(cfg)),
	}
}

// releaseFS stands in for the image root that osv-scalibr's OS extractors read os-release
// from: the release is decided for the whole image by Merge, not per layer, so they are
// given an empty one.
var releaseFS = fstest.MapFS{"etc/os-release": &fstest.MapFile{Mode: 0o644}}

// extractSafely runs a third-party extractor, turning a panic on hostile input into an error.
func extractSafely(ctx context.Context, ex filesystem.Extractor, input *filesystem.ScanInput) (pkgs []*extractor.Package, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("extractor %s failed: %v", ex.Name(), r)
		}
	}()
	inv, err := ex.Extract(ctx, input)
	return inv.Packages, err
}

func fileInput(p string, hdr *tar.Header, b *blob) *filesystem.ScanInput {
	return &filesystem.ScanInput{
		FS:     releaseFS,
		Path:   strings.TrimPrefix(p, "/"),
		Info:   hdr.FileInfo(),
		Reader: io.NewSectionReader(b.readerAt(), 0, b.size),
	}
}

func (ls *layerScan) osDatabase(ctx context.Context, kind fileKind, p string, hdr *tar.Header, b *blob) {
	input := fileInput(p, hdr, b)
	kindName := map[fileKind]string{kindDpkg: "dpkg", kindApk: "apk", kindRpm: "rpm"}[kind]
	if kind == kindRpm {
		// The rpm libraries open the database by file name (SQLite, Berkeley DB, NDB), so the
		// content goes to a scratch file.
		if b.path() == "" {
			f, err := ls.bufs.scratch.createFile()
			if err != nil {
				ls.skip(p, "rpm database: %v", err)
				return
			}
			_, err = io.Copy(f, b.reader())
			name := f.Name()
			_ = f.Close()
			if err != nil {
				ls.skip(p, "rpm database: %v", err)
				return
			}
			defer removeQuietly(name)
			input.Root, input.Path = filepath.Dir(name), filepath.Base(name)
		} else {
			input.Root, input.Path = filepath.Dir(b.path()), filepath.Base(b.path())
		}
	}
	found, err := extractSafely(ctx, ls.exts.byKind[kind], input)
	if err != nil {
		ls.skip(p, "%s database: %v", kindName, err)
	}
	db := OSDatabase{Path: p, Kind: kindName}
	for _, sp := range found {
		pkg, ok := osPackage(sp)
		if !ok {
			continue
		}
		pkg.Path = p
		db.Packages = append(db.Packages, pkg)
	}
	ls.osdbs[p] = db
}

// osPackage converts an osv-scalibr OS package. Its ecosystem is left to Merge.
func osPackage(sp *extractor.Package) (Package, bool) {
	if sp.Name == "" || sp.Version == "" {
		return Package{}, false
	}
	pkg := Package{Name: sp.Name, Version: sp.Version, PackageManager: ManagerOS}
	switch m := sp.Metadata.(type) {
	case *dpkgmeta.Metadata:
		pkg.Arch = m.Architecture
		pkg.SourceName, pkg.SourceVersion = m.SourceName, m.SourceVersion
		pkg.Epoch, pkg.Release = splitDebianVersion(sp.Version)
	case *apkmeta.Metadata:
		pkg.Arch = m.Architecture
		pkg.SourceName = m.OriginName
		if i := strings.LastIndex(sp.Version, "-r"); i > 0 {
			pkg.Release = sp.Version[i+1:]
		}
	case *rpmmeta.Metadata:
		pkg.Arch = m.Architecture
		pkg.Epoch = m.Epoch
		if i := strings.LastIndex(sp.Version, "-"); i > 0 {
			pkg.Release = sp.Version[i+1:]
		}
		if m.Epoch > 0 {
			pkg.Version = strconv.Itoa(m.Epoch) + ":" + sp.Version
		}
		pkg.SourceName, pkg.SourceVersion = splitSourceRPM(m.SourceRPM)
	}
	if pkg.SourceName == "" {
		pkg.SourceName = pkg.Name
	}
	if pkg.SourceVersion == "" {
		pkg.SourceVersion = pkg.Version
	}
	return pkg, true
}

// splitDebianVersion returns the epoch and the Debian revision of a dpkg version
// "[epoch:]upstream[-revision]".
func splitDebianVersion(v string) (epoch int, revision string) {
	if e, rest, ok := strings.Cut(v, ":"); ok {
		if n, err := strconv.Atoi(e); err == nil {
			epoch = n
		}
		v = rest
	}
	if i := strings.LastIndex(v, "-"); i >= 0 {
		revision = v[i+1:]
	}
	return epoch, revision
}

// splitSourceRPM splits "openssl-3.0.7-27.el9.src.rpm" into ("openssl", "3.0.7-27.el9").
func splitSourceRPM(srpm string) (name, version string) {
	s := strings.TrimSuffix(strings.TrimSuffix(srpm, ".rpm"), ".src")
	s = strings.TrimSuffix(s, ".nosrc")
	rel := strings.LastIndex(s, "-")
	if rel <= 0 {
		return "", ""
	}
	ver := strings.LastIndex(s[:rel], "-")
	if ver <= 0 {
		return "", ""
	}
	return s[:ver], s[ver+1:]
}

var languageFileInfo = map[fileKind]struct {
	ecosystem, manager string
	lockfile           bool
}{
	kindPython:       {EcosystemPyPI, ManagerPythonPkg, false},
	kindNodePackage:  {EcosystemNPM, ManagerNodePkg, false},
	kindNpmLock:      {EcosystemNPM, ManagerNPM, true},
	kindDepsJSON:     {EcosystemNuGet, ManagerDotnetCore, false},
	kindGemspec:      {EcosystemRubyGems, ManagerGemspec, false},
	kindCargoLock:    {EcosystemCratesIO, ManagerCargo, true},
	kindComposerLock: {EcosystemPackagist, ManagerComposer, true},
}

func (ls *layerScan) languageFile(ctx context.Context, kind fileKind, p string, hdr *tar.Header, b *blob) {
	info := languageFileInfo[kind]
	found, err := extractSafely(ctx, ls.exts.byKind[kind], fileInput(p, hdr, b))
	if err != nil {
		ls.skip(p, "%s: %v", kind, err)
	}
	var pkgs []Package
	for _, sp := range found {
		if sp.Name == "" || sp.Version == "" {
			continue
		}
		pkg := Package{
			Ecosystem:      info.ecosystem,
			Name:           sp.Name,
			Version:        sp.Version,
			Path:           p,
			PackageManager: info.manager,
			FromLockfile:   info.lockfile,
		}
		pkg.PURL = purlFor(pkg)
		pkgs = append(pkgs, pkg)
	}
	ls.filePkgs[p] = pkgs
}

func (e *scalibrExtractors) cargoAuditable(ctx context.Context, p string, hdr *tar.Header, b *blob) ([]Package, error) {
	found, err := extractSafely(ctx, e.auditable, fileInput(p, hdr, b))
	var pkgs []Package
	for _, sp := range found {
		if sp.Name == "" || sp.Version == "" {
			continue
		}
		pkg := Package{Ecosystem: EcosystemCratesIO, Name: sp.Name, Version: sp.Version, Path: p, PackageManager: ManagerCargo}
		pkg.PURL = purlFor(pkg)
		pkgs = append(pkgs, pkg)
	}
	return pkgs, err
}

// goBinaryPackages reads the build information of a Go executable with the standard
// library's debug/buildinfo (osv-scalibr's gobinary extractor wraps the same call but hides
// read errors, and names the toolchain "go" where the Go vulnerability database says
// "stdlib"). An ELF file that is not a Go binary yields nothing; an ELF file that cannot be
// parsed (e.g. truncated) is an error.
func goBinaryPackages(ra io.ReaderAt, size int64, p string) ([]Package, error) {
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
	var pkgs []Package
	add := func(name, version string) {
		version = strings.TrimPrefix(version, "v")
		if name == "" || version == "" || version == "(devel)" {
			return
		}
		pkg := Package{Ecosystem: EcosystemGo, Name: name, Version: version, Path: p, PackageManager: ManagerGoBinary}
		pkg.PURL = purlFor(pkg)
		pkgs = append(pkgs, pkg)
	}
	goVersion, _, _ := strings.Cut(bi.GoVersion, " ")
	if v, ok := strings.CutPrefix(goVersion, "go"); ok && looksLikeGoRelease(v) {
		add(GoStdlib, v)
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

// composerInstalled is vendor/composer/installed.json: Composer 2 writes {"packages": [...]},
// Composer 1 a bare array.
type composerPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// parseComposerInstalled reads Composer's vendor/composer/installed.json, which osv-scalibr
// has no extractor for (it reads composer.lock only); it lists the packages actually
// installed in vendor/.
func parseComposerInstalled(r io.Reader, p string) ([]Package, error) {
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
	var pkgs []Package
	for _, cp := range list {
		if cp.Name == "" || cp.Version == "" || !strings.Contains(cp.Name, "/") {
			continue
		}
		pkg := Package{
			Ecosystem:      EcosystemPackagist,
			Name:           cp.Name,
			Version:        strings.TrimPrefix(cp.Version, "v"),
			Path:           p,
			PackageManager: ManagerComposer,
		}
		pkg.PURL = purlFor(pkg)
		pkgs = append(pkgs, pkg)
	}
	return pkgs, nil
}

func removeQuietly(name string) {
	// Best effort: the scratch directory is removed as a whole at the end of the scan.
	_ = os.Remove(name)
}
