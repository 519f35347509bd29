package main

import (
	"archive/zip"
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lading-registry/lading/internal/advisory"
)

// pkgDef is one package the generator may put in an image: a real name with the real versions
// the test data names for it, in ascending order. For OS packages name is the source package
// (what advisories are keyed by) and binaries the binary packages built from it.
type pkgDef struct {
	eco      string // OSV ecosystem, e.g. "Debian:12", "npm"
	name     string
	binaries []string
	versions []string
	core     bool // found in a real package database of the artifacts: every base of its OS has it
	// safe are the indexes of the versions no advisory of the corpus affects, ascending.
	safe []int
}

// markSafe records which versions of each package no advisory affects, so that the generator
// can make most packages of an image current, as in a maintained registry.
func (c *corpus) markSafe(idx *advisory.Index) {
	for _, pools := range []map[string][]*pkgDef{c.os, c.lang} {
		for _, defs := range pools {
			for _, d := range defs {
				d.safe = d.safe[:0]
				for i, v := range d.versions {
					if vs, err := idx.Affecting(d.eco, d.name, v); err == nil && len(vs) == 0 {
						d.safe = append(d.safe, i)
					}
				}
			}
		}
	}
}

// corpus holds the package pools: per OS release and per language ecosystem.
type corpus struct {
	os   map[string][]*pkgDef // by release ecosystem, e.g. "Debian:11"
	lang map[string][]*pkgDef // by ecosystem, e.g. "npm"
}

// osReleases are the releases bases are built on, with the ecosystems whose versions may stand
// in for a package the release's own records do not name (same distribution, other release).
var osReleases = []struct {
	eco, family, id, versionID, codename string
	weight                               int
}{
	{"Debian:12", "Debian", "debian", "12", "bookworm", 30},
	{"Debian:11", "Debian", "debian", "11", "bullseye", 20},
	{"Debian:10", "Debian", "debian", "10", "buster", 8},
	{"Alpine:v3.24", "Alpine", "alpine", "3.24.1", "", 18},
	{"Alpine:v3.23", "Alpine", "alpine", "3.23.4", "", 10},
	{"AlmaLinux:9", "AlmaLinux", "almalinux", "9.6", "", 10},
	{"AlmaLinux:8", "AlmaLinux", "almalinux", "8.10", "", 4},
}

// langEcosystems are the application ecosystems, with how often a repository is built in each.
type langEcosystem struct {
	eco, manager string
	weight       int
}

var langEcosystems = []langEcosystem{
	{"npm", "NODEPKG", 30}, {"PyPI", "PYTHONPKG", 24}, {"Go", "GOBINARY", 16}, {"Maven", "JAR", 6},
	{"RubyGems", "GEMSPEC", 8}, {"Packagist", "COMPOSER", 8}, {"crates.io", "CARGO", 6}, {"NuGet", "DOTNET_CORE", 2},
}

// loadCorpus reads the package names and versions of the OSV records under osvDir and the real
// package databases under artifactsDir.
func loadCorpus(osvDir, artifactsDir string) (*corpus, error) {
	// versions[eco][name] collects every version the records name, per ecosystem as written.
	versions := map[string]map[string]map[string]bool{}
	add := func(eco, name, v string) {
		if v == "" || v == "0" || v == "*" {
			return
		}
		if versions[eco] == nil {
			versions[eco] = map[string]map[string]bool{}
		}
		if versions[eco][name] == nil {
			versions[eco][name] = map[string]bool{}
		}
		versions[eco][name][v] = true
	}
	for _, dir := range []string{"Debian", "Alpine", "AlmaLinux", "npm", "PyPI", "Go", "crates.io", "RubyGems", "Packagist", "Maven", "NuGet"} {
		if err := eachRecord(filepath.Join(osvDir, dir, "all.zip"), func(a *advisory.Advisory) {
			for _, af := range a.Affected {
				for _, v := range af.Versions {
					add(af.Ecosystem, af.Name, v)
				}
				for _, r := range af.Ranges {
					if r.Type == "GIT" {
						continue
					}
					for _, e := range r.Events {
						add(af.Ecosystem, af.Name, e.Version)
					}
				}
			}
		}); err != nil {
			return nil, err
		}
	}
	c := &corpus{os: map[string][]*pkgDef{}, lang: map[string][]*pkgDef{}}

	// OS pools: a release's own records first; names the distribution's other releases know
	// (Debian:12 has few records here) take their versions from the nearest release that has
	// them.
	for _, rel := range osReleases {
		names := map[string]bool{}
		for eco, byName := range versions {
			if strings.HasPrefix(eco, rel.family+":") && releaseRecent(eco) {
				for n := range byName {
					names[n] = true
				}
			}
		}
		for _, n := range slices.Sorted(maps.Keys(names)) {
			vs := versions[rel.eco][n]
			if len(vs) == 0 {
				vs = nearestVersions(versions, rel.family, rel.eco, n)
			}
			if d := newDef(rel.eco, n, nil, vs); d != nil {
				c.os[rel.eco] = append(c.os[rel.eco], d)
			}
		}
	}
	for _, l := range langEcosystems {
		for _, n := range slices.Sorted(maps.Keys(versions[l.eco])) {
			if d := newDef(l.eco, n, nil, versions[l.eco][n]); d != nil {
				c.lang[l.eco] = append(c.lang[l.eco], d)
			}
		}
	}
	if err := c.addArtifacts(artifactsDir); err != nil {
		return nil, err
	}
	for eco, defs := range c.os {
		if len(defs) < 50 {
			return nil, fmt.Errorf("corpus: only %d packages for %s", len(defs), eco)
		}
	}
	return c, nil
}

// releaseRecent limits the names of OS pools to releases of the last decade.
func releaseRecent(eco string) bool {
	switch eco {
	case "Debian:3.0", "Debian:3.1", "Debian:4.0", "Debian:5.0", "Debian:6", "Debian:7", "Debian:8":
		return false
	}
	return true
}

func nearestVersions(versions map[string]map[string]map[string]bool, family, eco, name string) map[string]bool {
	var order []string
	switch family {
	case "Debian":
		order = []string{"Debian:12", "Debian:11", "Debian:10", "Debian:9", "Debian:13"}
	case "Alpine":
		order = []string{"Alpine:v3.24", "Alpine:v3.23"}
	case "AlmaLinux":
		order = []string{"AlmaLinux:9", "AlmaLinux:8", "AlmaLinux:10"}
	}
	// Prefer the release just below this one: its versions are the closest to real ones.
	i := slices.Index(order, eco)
	for _, e := range append(order[i+1:], order[:i]...) {
		if vs := versions[e][name]; len(vs) > 0 {
			return vs
		}
	}
	return nil
}

// newDef sorts the versions the ecosystem can order, dropping those it cannot parse.
func newDef(eco, name string, binaries []string, vs map[string]bool) *pkgDef {
	var ok []string
	for v := range vs {
		if _, err := advisory.CompareVersions(eco, v, v); err == nil {
			ok = append(ok, v)
		}
	}
	if len(ok) == 0 {
		return nil
	}
	slices.SortFunc(ok, func(a, b string) int {
		c, _ := advisory.CompareVersions(eco, a, b)
		if c == 0 {
			return strings.Compare(a, b)
		}
		return c
	})
	if len(binaries) == 0 {
		binaries = []string{name}
	}
	return &pkgDef{eco: eco, name: name, binaries: binaries, versions: ok}
}

// addArtifacts puts the packages of the real package databases into the pools, marked core:
// every base of their distribution holds them (as every Debian image holds its minbase).
func (c *corpus) addArtifacts(dir string) error {
	type realPkg struct{ name, source, version string }
	dpkg, err := readDpkgStatus(filepath.Join(dir, "dpkg", "bookworm-minbase.status"), filepath.Join(dir, "dpkg", "bookworm-curl-old.status"))
	if err != nil {
		return err
	}
	apk, err := readApkInstalled(filepath.Join(dir, "alpine", "alpine-3.20.3.installed"), filepath.Join(dir, "alpine", "alpine-3.18.9.installed"))
	if err != nil {
		return err
	}
	merge := func(eco string, pool []*pkgDef, pkgs []realPkg) []*pkgDef {
		bySource := map[string][]realPkg{}
		for _, p := range pkgs {
			bySource[p.source] = append(bySource[p.source], p)
		}
		for _, src := range slices.Sorted(maps.Keys(bySource)) {
			ps := bySource[src]
			var bins []string
			vs := map[string]bool{}
			for _, p := range ps {
				bins = append(bins, p.name)
				vs[p.version] = true
			}
			slices.Sort(bins)
			bins = slices.Compact(bins)
			i := slices.IndexFunc(pool, func(d *pkgDef) bool { return d.name == src })
			if i >= 0 {
				for _, v := range pool[i].versions {
					vs[v] = true
				}
			}
			d := newDef(eco, src, bins, vs)
			if d == nil {
				continue
			}
			d.core = true
			if i >= 0 {
				pool[i] = d
			} else {
				pool = append(pool, d)
			}
		}
		return pool
	}
	toReal := func(in [][3]string) []realPkg {
		out := make([]realPkg, len(in))
		for i, p := range in {
			out[i] = realPkg{p[0], p[1], p[2]}
		}
		return out
	}
	for _, rel := range osReleases {
		switch rel.family {
		case "Debian":
			c.os[rel.eco] = merge(rel.eco, c.os[rel.eco], toReal(dpkg))
		case "Alpine":
			c.os[rel.eco] = merge(rel.eco, c.os[rel.eco], toReal(apk))
		}
	}
	langReal := map[string][][2]string{}
	if langReal["npm"], err = readNpmLock(filepath.Join(dir, "npm", "node-app", "package-lock.json")); err != nil {
		return err
	}
	if langReal["Go"], err = readGoBuildInfo(filepath.Join(dir, "go")); err != nil {
		return err
	}
	if langReal["PyPI"], err = readDistInfo(filepath.Join(dir, "python", "dist-packages")); err != nil {
		return err
	}
	langReal["Maven"] = [][2]string{{"org.apache.logging.log4j:log4j-api", "2.14.1"}, {"org.apache.logging.log4j:log4j-api", "2.17.1"},
		{"org.apache.logging.log4j:log4j-api", "2.19.0"}, {"org.apache.logging.log4j:log4j-core", "2.19.0"}}
	langReal["NuGet"] = [][2]string{{"Newtonsoft.Json", "13.0.3"}}
	for eco, pkgs := range langReal {
		var rp []realPkg
		for _, p := range pkgs {
			rp = append(rp, realPkg{p[0], p[0], p[1]})
		}
		c.lang[eco] = merge(eco, c.lang[eco], rp)
	}
	return nil
}

func eachRecord(zipPath string, fn func(*advisory.Advisory)) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return fmt.Errorf("corpus: %w", err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		raw, err := io.ReadAll(io.LimitReader(rc, advisory.MaxRecordSize))
		_ = rc.Close()
		if err != nil {
			return err
		}
		a, err := advisory.Parse(raw)
		if err != nil {
			continue // the import reports such records; the pools just skip them
		}
		fn(a)
	}
	return nil
}

// readDpkgStatus returns (package, source, version) of the installed packages.
func readDpkgStatus(paths ...string) ([][3]string, error) {
	var out [][3]string
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		var name, source, version string
		flush := func() {
			if name != "" && version != "" {
				if source == "" {
					source = name
				}
				out = append(out, [3]string{name, source, version})
			}
			name, source, version = "", "", ""
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				flush()
			case strings.HasPrefix(line, "Package: "):
				name = strings.TrimPrefix(line, "Package: ")
			case strings.HasPrefix(line, "Version: "):
				version = strings.TrimPrefix(line, "Version: ")
			case strings.HasPrefix(line, "Source: "):
				// "Source: bash (5.2.15-2)": the source version, when given, is what advisories use.
				s := strings.TrimPrefix(line, "Source: ")
				source, _, _ = strings.Cut(s, " ")
			}
		}
		flush()
		_ = f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readApkInstalled returns (package, origin, version) of the installed packages.
func readApkInstalled(paths ...string) ([][3]string, error) {
	var out [][3]string
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		for _, block := range strings.Split(string(raw), "\n\n") {
			var name, origin, version string
			for _, line := range strings.Split(block, "\n") {
				switch {
				case strings.HasPrefix(line, "P:"):
					name = line[2:]
				case strings.HasPrefix(line, "V:"):
					version = line[2:]
				case strings.HasPrefix(line, "o:"):
					origin = line[2:]
				}
			}
			if name != "" && version != "" {
				if origin == "" {
					origin = name
				}
				out = append(out, [3]string{name, origin, version})
			}
		}
	}
	return out, nil
}

func readNpmLock(path string) ([][2]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(raw, &lock); err != nil {
		return nil, fmt.Errorf("corpus: %s: %w", path, err)
	}
	var out [][2]string
	for p, v := range lock.Packages {
		i := strings.LastIndex(p, "node_modules/")
		if i < 0 || v.Version == "" {
			continue
		}
		out = append(out, [2]string{p[i+len("node_modules/"):], v.Version})
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0]+a[1], b[0]+b[1]) })
	return out, nil
}

func readGoBuildInfo(dir string) ([][2]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.buildinfo.txt"))
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(raw), "\n") {
			fields := strings.Split(strings.TrimSpace(line), "\t")
			if len(fields) >= 3 && fields[0] == "dep" {
				out = append(out, [2]string{fields[1], strings.TrimPrefix(fields[2], "v")})
			}
			if strings.Contains(line, ": go1.") {
				_, v, _ := strings.Cut(line, ": go")
				out = append(out, [2]string{"stdlib", strings.TrimSpace(v)})
			}
		}
	}
	return out, nil
}

func readDistInfo(dir string) ([][2]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	var out [][2]string
	for _, e := range entries {
		base := strings.TrimSuffix(strings.TrimSuffix(e.Name(), ".dist-info"), ".egg-info")
		name, version, ok := strings.Cut(base, "-")
		if ok {
			out = append(out, [2]string{name, version})
		}
	}
	return out, nil
}
