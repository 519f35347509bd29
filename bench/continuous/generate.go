package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	packageurl "github.com/package-url/packageurl-go"

	"github.com/lading-registry/lading/internal/advisory"
	"github.com/lading-registry/lading/internal/inventory"
)

// genConfig shapes the generated registry.
type genConfig struct {
	seed    uint64
	images  int
	bases   int
	repos   int
	minPkgs int
	maxPkgs int
	fresh   float64 // probability that a package is at the newest version the data names
	window  time.Duration
	now     time.Time
}

// layerDef is a layer with the packages it introduces.
type layerDef struct {
	digest    string
	size      int64
	createdBy string
	pkgs      []inventory.Package
}

// baseImage is one of the few hundred images the registry's images are built on.
type baseImage struct {
	rel     int // index in osReleases
	os      *inventory.OSInfo
	layers  []layerDef
	osNames map[string]bool // source packages it holds, so added OS layers install others
	appEco  int             // index in langEcosystems: what the images built on it are written in
}

// dep is an application dependency of a repository at some version.
type dep struct {
	eco langEcosystem
	def *pkgDef
	v   int // index in def.versions
}

// genImage is one generated repository image: what a scan of it would have stored.
type genImage struct {
	repo, tag, digest string
	manifest          []byte
	configDigest      string
	layers            []layerDef // own layers only; the base's are in base
	base              *baseImage
	pushedAt          time.Time
	pkgs              []inventory.Package
	history           map[string]string
}

type generator struct {
	cfg   genConfig
	c     *corpus
	bases []*baseImage
}

func digestFrom(s string) digest.Digest { return digest.Digest(s) }

func digestOf(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func newGenerator(cfg genConfig, c *corpus) *generator {
	g := &generator{cfg: cfg, c: c}
	r := rand.New(rand.NewPCG(cfg.seed, 1))
	relW := make([]int, len(osReleases))
	for i, rel := range osReleases {
		relW[i] = rel.weight
	}
	ecoW := make([]int, len(langEcosystems))
	for i, l := range langEcosystems {
		ecoW[i] = l.weight
	}
	for b := range cfg.bases {
		g.bases = append(g.bases, g.newBase(r, b, weighted(r, relW), weighted(r, ecoW)))
	}
	return g
}

func weighted(r *rand.Rand, w []int) int {
	total := 0
	for _, x := range w {
		total += x
	}
	n := r.IntN(total)
	for i, x := range w {
		if n < x {
			return i
		}
		n -= x
	}
	return len(w) - 1
}

// pickVersion returns, with probability fresh, the newest version no advisory affects (the
// newest version when there is none), else an outdated one from the newer half.
func pickVersion(r *rand.Rand, d *pkgDef, fresh float64) int {
	if r.Float64() < fresh {
		if len(d.safe) > 0 {
			return d.safe[len(d.safe)-1]
		}
		return len(d.versions) - 1
	}
	n := len(d.versions)
	return n/2 + r.IntN(n-n/2)
}

// zipfPick draws n distinct packages of pool, popular ones (low index in a fixed shuffle)
// more often, as real images share their common dependencies.
func zipfPick(r *rand.Rand, pool []*pkgDef, n int, skip func(*pkgDef) bool) []*pkgDef {
	if n > len(pool) {
		n = len(pool)
	}
	z := rand.NewZipf(r, 1.07, 8, uint64(len(pool)-1))
	seen := map[*pkgDef]bool{}
	var out []*pkgDef
	for tries := 0; len(out) < n && tries < n*20; tries++ {
		d := pool[z.Uint64()]
		if seen[d] || (skip != nil && skip(d)) {
			continue
		}
		if len(d.safe) == 0 && r.IntN(10) != 0 {
			// A package every known version of which is vulnerable (unmaintained, or
			// malicious, as many npm records are) is rare in a maintained image.
			continue
		}
		seen[d] = true
		out = append(out, d)
	}
	return out
}

func (g *generator) newBase(r *rand.Rand, n, rel, eco int) *baseImage {
	rl := osReleases[rel]
	b := &baseImage{rel: rel, appEco: eco, osNames: map[string]bool{}}
	osLayer := layerDef{digest: digestOf("base-os", strconv.Itoa(n), strconv.FormatUint(g.cfg.seed, 10)),
		createdBy: "/bin/sh -c #(nop) ADD file:" + digestOf("rootfs", strconv.Itoa(n))[7:71] + " in / "}
	b.os = &inventory.OSInfo{ID: rl.id, VersionID: rl.versionID, Codename: rl.codename, Ecosystem: rl.eco,
		PrettyName: prettyName(rl.id, rl.versionID, rl.codename), Path: "etc/os-release", Layer: osLayer.digest}
	pool := g.c.os[rl.eco]
	var count int
	switch rl.family {
	case "Alpine":
		count = 15 + r.IntN(80)
	case "AlmaLinux":
		count = 150 + r.IntN(220)
	default:
		count = 90 + r.IntN(260)
	}
	var defs []*pkgDef
	for _, d := range pool {
		if d.core {
			defs = append(defs, d)
		}
	}
	defs = append(defs, zipfPick(r, pool, count-len(defs), func(d *pkgDef) bool { return d.core })...)
	for _, d := range defs {
		b.osNames[d.name] = true
		osLayer.pkgs = append(osLayer.pkgs, osPackages(rl.family, rl.eco, b.os, d, pickVersion(r, d, g.cfg.fresh), osLayer.digest)...)
	}
	osLayer.size = int64(len(osLayer.pkgs)) * 400 << 10
	b.layers = append(b.layers, osLayer)
	// Half the bases carry a language runtime with its own bundled packages (node with npm,
	// python with pip and setuptools, ...).
	if r.IntN(2) == 0 {
		le := langEcosystems[eco]
		rt := layerDef{digest: digestOf("base-runtime", strconv.Itoa(n), strconv.FormatUint(g.cfg.seed, 10)),
			createdBy: "/bin/sh -c set -eux; install " + le.eco + " runtime"}
		for _, d := range zipfPick(r, g.c.lang[le.eco], 5+r.IntN(40), nil) {
			rt.pkgs = append(rt.pkgs, langPackage(le.eco, le.manager, d, pickVersion(r, d, g.cfg.fresh), rt.digest, "usr/local/lib/runtime"))
		}
		rt.size = 30 << 20
		b.layers = append(b.layers, rt)
	}
	return b
}

func prettyName(id, version, codename string) string {
	switch id {
	case "debian":
		return "Debian GNU/Linux " + version + " (" + codename + ")"
	case "alpine":
		return "Alpine Linux v" + strings.Join(strings.SplitN(version, ".", 3)[:2], ".")
	}
	return "AlmaLinux " + version
}

// osPackages are the binary packages of a source package as the OS extractor reports them
// after the merge (ecosystem filled in from os-release).
func osPackages(family, eco string, osInfo *inventory.OSInfo, d *pkgDef, v int, layer string) []inventory.Package {
	version := d.versions[v]
	var kind, path, arch string
	switch family {
	case "Alpine":
		kind, path, arch = packageurl.TypeApk, "lib/apk/db/installed", "x86_64"
	case "AlmaLinux":
		kind, path, arch = packageurl.TypeRPM, "var/lib/rpm/rpmdb.sqlite", "x86_64"
	default:
		kind, path, arch = packageurl.TypeDebian, "var/lib/dpkg/status", "amd64"
	}
	out := make([]inventory.Package, 0, len(d.binaries))
	for _, bin := range d.binaries {
		p := inventory.Package{Ecosystem: eco, Name: bin, Version: version, Arch: arch, Path: path, Layer: layer,
			PackageManager: inventory.ManagerOS}
		if bin != d.name {
			p.SourceName = d.name
		}
		if e, rest, ok := strings.Cut(version, ":"); ok {
			p.Epoch, _ = strconv.Atoi(e)
			version = rest
		}
		if i := strings.LastIndex(version, "-"); i > 0 {
			p.Release = version[i+1:]
		}
		q := packageurl.Qualifiers{{Key: "arch", Value: arch}, {Key: "distro", Value: osInfo.ID + "-" + osInfo.VersionID}}
		if p.SourceName != "" {
			q = append(q, packageurl.Qualifier{Key: "upstream", Value: p.SourceName})
		}
		p.PURL = packageurl.NewPackageURL(kind, osInfo.ID, bin, p.Version, q, "").ToString()
		out = append(out, p)
	}
	return out
}

// langPackage is a language package as its extractor reports it.
func langPackage(eco, manager string, d *pkgDef, v int, layer, root string) inventory.Package {
	version := d.versions[v]
	name := d.binaries[0]
	p := inventory.Package{Ecosystem: eco, Name: name, Version: version, Layer: layer, PackageManager: manager}
	var typ, ns, n string
	pv := version
	switch eco {
	case "npm":
		typ, ns, n = packageurl.TypeNPM, "", name
		if i := strings.LastIndex(name, "/"); i >= 0 {
			ns, n = name[:i], name[i+1:]
		}
		p.Path = root + "/node_modules/" + name + "/package.json"
	case "PyPI":
		typ, n = packageurl.TypePyPi, strings.ReplaceAll(strings.ToLower(name), "_", "-")
		p.Path = root + "/site-packages/" + strings.ReplaceAll(name, "-", "_") + "-" + version + ".dist-info/METADATA"
	case "Go":
		typ, n = packageurl.TypeGolang, name
		if i := strings.LastIndex(name, "/"); i >= 0 {
			ns, n = name[:i], name[i+1:]
		}
		if name != "stdlib" {
			pv = "v" + version
		}
		p.Path = root + "/bin/server"
	case "Maven":
		typ = packageurl.TypeMaven
		ns, n, _ = strings.Cut(name, ":")
		p.Path = root + "/lib/" + n + "-" + version + ".jar"
	case "RubyGems":
		typ, n = packageurl.TypeGem, name
		p.Path = root + "/bundle/specifications/" + name + "-" + version + ".gemspec"
	case "Packagist":
		typ, ns, n = packageurl.TypeComposer, "", name
		if i := strings.LastIndex(name, "/"); i >= 0 {
			ns, n = name[:i], name[i+1:]
		}
		p.Path = root + "/vendor/composer/installed.json"
	case "crates.io":
		typ, n = packageurl.TypeCargo, name
		p.Path = root + "/bin/app"
	case "NuGet":
		typ, n = packageurl.TypeNuget, name
		p.Path = root + "/App.deps.json"
	}
	p.PURL = packageurl.NewPackageURL(typ, ns, n, pv, nil, "").ToString()
	return p
}

func (g *generator) repoName(ri int) string { return fmt.Sprintf("team-%03d/service-%05d", ri%97, ri) }

// repoImages generates the images of repository number ri, oldest first: the same
// application on one base, its dependencies moving to newer versions from build to build.
func (g *generator) repoImages(ri, count int) []genImage {
	r := rand.New(rand.NewPCG(g.cfg.seed, uint64(ri)+2))
	// Popular bases carry more repositories.
	bz := rand.NewZipf(r, 1.2, 4, uint64(len(g.bases)-1))
	b := g.bases[bz.Uint64()]
	le := langEcosystems[b.appEco]
	if r.IntN(4) == 0 {
		// A quarter of the repositories use another language than their base suggests.
		ecoW := make([]int, len(langEcosystems))
		for i, l := range langEcosystems {
			ecoW[i] = l.weight
		}
		le = langEcosystems[weighted(r, ecoW)]
	}
	rel := osReleases[b.rel]
	repo := g.repoName(ri)
	basePkgs := 0
	for _, l := range b.layers {
		basePkgs += len(l.pkgs)
	}
	target := g.cfg.minPkgs + r.IntN(g.cfg.maxPkgs-g.cfg.minPkgs+1)
	nDeps := max(10, target-basePkgs)
	var deps []dep
	for _, d := range zipfPick(r, g.c.lang[le.eco], nDeps, nil) {
		deps = append(deps, dep{le, d, pickVersion(r, d, g.cfg.fresh)})
	}
	if len(deps) < nDeps {
		// The data knows few packages of some ecosystems (Maven, NuGet): such applications
		// also ship a front end (npm packages), which keeps them within the package bounds.
		npm := langEcosystems[0]
		for _, d := range zipfPick(r, g.c.lang[npm.eco], nDeps-len(deps), nil) {
			deps = append(deps, dep{npm, d, pickVersion(r, d, g.cfg.fresh)})
		}
	}
	// Some applications also install OS packages of their own.
	var extraOS []*pkgDef
	if r.Float64() < 0.4 {
		extraOS = zipfPick(r, g.c.os[rel.eco], 3+r.IntN(30), func(d *pkgDef) bool { return b.osNames[d.name] })
	}
	extraVer := make([]int, len(extraOS))
	for i, d := range extraOS {
		extraVer[i] = pickVersion(r, d, g.cfg.fresh)
	}
	out := make([]genImage, 0, count)
	for i := range count {
		if i > 0 {
			for j := range deps {
				if deps[j].v < len(deps[j].def.versions)-1 && r.Float64() < 0.08 {
					deps[j].v++
				}
			}
		}
		img := genImage{repo: repo, tag: fmt.Sprintf("1.%d.%d", i/10, i%10), base: b,
			pushedAt: g.cfg.now.Add(-time.Duration(r.Int64N(int64(g.cfg.window))))}
		salt := strconv.FormatUint(g.cfg.seed, 10) + "/" + repo + "/" + strconv.Itoa(i)
		if len(extraOS) > 0 {
			l := layerDef{digest: digestOf("os-extra", salt), size: int64(len(extraOS)) << 20,
				createdBy: "/bin/sh -c apt-get update && apt-get install -y --no-install-recommends ..."}
			for j, d := range extraOS {
				l.pkgs = append(l.pkgs, osPackages(rel.family, rel.eco, b.os, d, extraVer[j], l.digest)...)
			}
			img.layers = append(img.layers, l)
		}
		app := layerDef{digest: digestOf("app-deps", salt), size: int64(len(deps)) << 18, createdBy: "/bin/sh -c install dependencies"}
		for _, d := range deps {
			app.pkgs = append(app.pkgs, langPackage(d.eco.eco, d.eco.manager, d.def, d.v, app.digest, "app"))
		}
		img.layers = append(img.layers, app)
		if r.IntN(3) == 0 {
			img.layers = append(img.layers, layerDef{digest: digestOf("app-code", salt), size: 2 << 20, createdBy: "COPY . /app # buildkit"})
		}
		g.finish(&img, salt)
		out = append(out, img)
	}
	return out
}

// finish fills in the merged package list, the history and the manifest.
func (g *generator) finish(img *genImage, salt string) {
	img.history = map[string]string{}
	var layers []ocispec.Descriptor
	total := 0
	for _, l := range append(append([]layerDef(nil), img.base.layers...), img.layers...) {
		total += len(l.pkgs)
	}
	pkgs := make([]inventory.Package, 0, total)
	for _, l := range append(append([]layerDef(nil), img.base.layers...), img.layers...) {
		img.history[l.digest] = l.createdBy
		pkgs = append(pkgs, l.pkgs...)
		layers = append(layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digestFrom(l.digest), Size: l.size})
	}
	img.pkgs = clampPackages(pkgs, g.cfg.maxPkgs)
	img.configDigest = digestOf("config", salt)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digestFrom(img.configDigest), Size: 4000},
		Layers: layers}
	m.SchemaVersion = 2
	img.manifest, _ = json.Marshal(m)
	sum := sha256.Sum256(img.manifest)
	img.digest = "sha256:" + hex.EncodeToString(sum[:])
}

// clampPackages keeps an image within the package bound by dropping application packages
// from the end (the base's packages stay).
func clampPackages(pkgs []inventory.Package, maxPkgs int) []inventory.Package {
	if len(pkgs) <= maxPkgs {
		return pkgs
	}
	return pkgs[:maxPkgs]
}

// keysOf returns an image's distinct advisory keys, as the scanner indexes them.
func keysOf(pkgs []inventory.Package, key func(inventory.Package) advisory.PackageKey) []advisory.PackageKey {
	seen := make(map[advisory.PackageKey]bool, len(pkgs))
	out := make([]advisory.PackageKey, 0, len(pkgs))
	for _, p := range pkgs {
		if p.Ecosystem == "" {
			continue
		}
		k := key(p)
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}
