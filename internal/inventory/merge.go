package inventory

import (
	"cmp"
	"path"
	"slices"
	"strings"

	"github.com/lading-registry/lading/internal/inventory/plugin"
)

// liveFile is a path's content as the merge stands at some layer.
type liveFile struct {
	layer int
	pkgs  []Package
}

// dbVersion is one layer's copy of an OS database.
type dbVersion struct {
	layer int
	db    OSDatabase
}

type liveText struct {
	layer   int
	content string
}

// ownersVersion is one layer's copy of a record of installed files.
type ownersVersion struct {
	layer  int
	owners FileOwners
}

// merged is the state of the image's file system as far as the inventory is concerned.
type merged struct {
	files map[string]liveFile
	// dbs holds, per database path, the copies written by successive layers since the path
	// was last deleted, lowest first.
	dbs map[string][]dbVersion
	// owners holds, per record of installed files, its copies as dbs does: apk and rpm
	// rewrite theirs with their databases.
	owners  map[string][]ownersVersion
	osrel   map[string]liveText
	links   map[string]string
	digests []string
}

// Merge applies the layers in order (lowest first) as a container runtime stacks them:
// whiteouts and opaque directories delete what lower layers wrote, a path written again
// replaces what lower layers wrote there (and below it), and what remains is the image's
// inventory. Each package is attributed to the layer that introduced it: for language
// packages the layer that wrote the file it was found in; for OS packages, whose database
// every installing layer rewrites, the lowest layer from which on, without a gap, the
// database lists the same package at the same version. The OS ecosystem of OS packages comes
// from the image's os-release file. Merge does no I/O.
func Merge(layers []*LayerInventory) *Image {
	return MergeWith(layers, MergeOptions{})
}

// MergeOptions change what Merge reports.
type MergeOptions struct {
	// KeepOSOwned keeps a language package whose metadata an OS package installed (a Debian
	// python3-xyz's dist-info) as a package of its own too, beside the OS package that names
	// it. By default it is reported once, as the OS package, as Trivy does: the distribution
	// patches and tracks it under its own name and version.
	KeepOSOwned bool
}

// MergeWith is Merge with options.
func MergeWith(layers []*LayerInventory, opts MergeOptions) *Image {
	m := &merged{
		files:  map[string]liveFile{},
		owners: map[string][]ownersVersion{},
		dbs:    map[string][]dbVersion{},
		osrel:  map[string]liveText{},
		links:  map[string]string{},
	}
	img := &Image{Packages: []Package{}, Layers: []string{}}
	for i, layer := range layers {
		if layer == nil {
			continue
		}
		img.Layers = append(img.Layers, layer.Digest)
		img.Skipped = append(img.Skipped, layer.Skipped...)
		img.Incomplete = img.Incomplete || layer.Incomplete
		m.apply(i, layer)
	}
	m.digests = make([]string, len(layers))
	for i, layer := range layers {
		if layer != nil {
			m.digests[i] = layer.Digest
		}
	}

	osInfo, problem := m.detectOS()
	img.OS = osInfo
	if problem != nil {
		img.Skipped = append(img.Skipped, *problem)
	}
	// osByName finds an OS package by its database's kind and its name.
	type ownerKey struct{ kind, name string }
	osByName := map[ownerKey][]int{}
	for _, p := range sortedKeys(m.dbs) {
		history := m.dbs[p]
		for _, pkg := range m.osPackages(history, osInfo) {
			k := ownerKey{history[len(history)-1].db.Kind, pkg.Name}
			osByName[k] = append(osByName[k], len(img.Packages))
			img.Packages = append(img.Packages, pkg)
		}
	}
	var language []Package
	for _, p := range sortedKeys(m.files) {
		language = append(language, m.files[p].pkgs...)
	}
	owned := m.ownedFiles()
	for _, pkg := range dropLockfileDuplicates(language) {
		if o, ok := owned[fileKey(pkg.Path)]; ok {
			// The owner must still be installed: a record outliving its package owns nothing.
			candidates := osByName[ownerKey{o.kind, o.pkg}]
			at := -1
			for _, i := range candidates {
				if at < 0 || (o.arch != "" && img.Packages[i].Arch == o.arch) {
					at = i
				}
			}
			if at >= 0 {
				osPkg := &img.Packages[at]
				// Clipped: the layer inventories are shared between concurrent merges (the
				// scanning service's memo), and must not be appended to in place.
				osPkg.LanguagePackages = append(slices.Clip(osPkg.LanguagePackages), LanguagePackage{Ecosystem: pkg.Ecosystem, Name: pkg.Name, Version: pkg.Version, Path: pkg.Path})
				if !opts.KeepOSOwned {
					continue
				}
			}
		}
		img.Packages = append(img.Packages, pkg)
	}
	slices.SortFunc(img.Packages, comparePackages)
	return img
}

// fileOwner is the OS package that installed a file.
type fileOwner struct{ kind, pkg, arch string }

// ownedFiles maps each file a current record of installed files lists to its package. A
// package listed by successive copies of a database at the same version and architecture
// owns the files of all those copies: each layer keeps only the files some plugin reads by
// name, so a copy rewritten by a later layer lists the same metadata files.
func (m *merged) ownedFiles() map[string]fileOwner {
	out := map[string]fileOwner{}
	for _, src := range sortedKeys(m.owners) {
		history := m.owners[src]
		newest := history[len(history)-1].owners
		for _, pkg := range newest.Packages {
			owner := fileOwner{newest.Kind, pkg.Package, pkg.Arch}
			for i := len(history) - 1; i >= 0; i-- {
				j := slices.IndexFunc(history[i].owners.Packages, func(o plugin.OwnedFiles) bool {
					return o.Package == pkg.Package && o.Version == pkg.Version && o.Arch == pkg.Arch
				})
				if j < 0 {
					break
				}
				for _, f := range history[i].owners.Packages[j].Files {
					out[f] = owner
				}
			}
		}
	}
	return out
}

func comparePackages(a, b Package) int {
	return cmp.Or(
		cmp.Compare(a.Ecosystem, b.Ecosystem),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Version, b.Version),
		cmp.Compare(a.Path, b.Path),
		cmp.Compare(a.Arch, b.Arch),
	)
}

// apply stacks one layer on the state.
func (m *merged) apply(i int, layer *LayerInventory) {
	// Deletions apply to the layers below only, so they come before this layer's content.
	// Whiteouts delete a path and everything below it; an opaque directory everything below
	// it; a path this layer writes replaces the path and everything below it, except that
	// rewriting a database continues its history rather than ending it.
	removed := map[string]bool{}
	removedBelow := map[string]bool{}
	replaced := map[string]bool{}
	for _, w := range layer.Whiteouts {
		removed[w] = true
	}
	for _, d := range layer.OpaqueDirs {
		removedBelow[d] = true
	}
	for _, p := range layer.Paths {
		replaced[p] = true
	}
	rewritten := map[string]bool{}
	for _, db := range layer.OSDatabases {
		rewritten[db.Path] = true
	}
	for _, o := range layer.FileOwners {
		rewritten[o.Path] = true
	}
	underDeleted := func(p string, exact bool) bool {
		if exact && (removed[p] || replaced[p]) {
			return true
		}
		for dir := path.Dir(p); ; dir = path.Dir(dir) {
			if removed[dir] || removedBelow[dir] || replaced[dir] {
				return true
			}
			if dir == "/" {
				return false
			}
		}
	}
	deleted := func(p string) bool { return underDeleted(fileKey(p), true) }
	dbDeleted := func(p string) bool {
		if removed[p] {
			return true
		}
		return underDeleted(p, !rewritten[p])
	}
	if len(removed)+len(removedBelow)+len(replaced) > 0 {
		deleteWhere(m.files, deleted)
		deleteWhere(m.dbs, dbDeleted)
		deleteWhere(m.owners, dbDeleted)
		deleteWhere(m.osrel, deleted)
		deleteWhere(m.links, deleted)
	}

	for _, pkg := range layer.Packages {
		key := fileKey(pkg.Path)
		f, ok := m.files[key]
		if !ok || f.layer != i {
			f = liveFile{layer: i}
		}
		pkg.Layer = layer.Digest
		f.pkgs = append(f.pkgs, pkg)
		m.files[key] = f
	}
	for _, db := range layer.OSDatabases {
		m.dbs[db.Path] = append(m.dbs[db.Path], dbVersion{layer: i, db: db})
	}
	for _, o := range layer.FileOwners {
		m.owners[o.Path] = append(m.owners[o.Path], ownersVersion{layer: i, owners: o})
	}
	for _, f := range layer.OSReleaseFiles {
		m.osrel[f.Path] = liveText{layer: i, content: f.Content}
		delete(m.links, f.Path)
	}
	for _, l := range layer.Symlinks {
		m.links[l.Path] = l.Target
		delete(m.osrel, l.Path)
	}
}

// fileKey is the image path of the file a package was found in: for a package inside an
// archive ("/app/x.jar!/lib/y.jar") the outermost archive.
func fileKey(p string) string {
	if i := strings.Index(p, "!/"); i >= 0 {
		return p[:i]
	}
	return p
}

func deleteWhere[V any](m map[string]V, deleted func(string) bool) {
	for p := range m {
		if deleted(p) {
			delete(m, p)
		}
	}
}

// osPackages attributes the packages of a database's newest copy to layers.
func (m *merged) osPackages(history []dbVersion, osInfo *OSInfo) []Package {
	if len(history) == 0 {
		return nil
	}
	type key struct{ name, version, arch string }
	sets := make([]map[key]bool, len(history))
	for i, v := range history {
		sets[i] = map[key]bool{}
		for _, p := range v.db.Packages {
			sets[i][key{p.Name, p.Version, p.Arch}] = true
		}
	}
	newest := history[len(history)-1]
	out := make([]Package, 0, len(newest.db.Packages))
	for _, p := range newest.db.Packages {
		k := key{p.Name, p.Version, p.Arch}
		first := len(history) - 1
		for first > 0 && sets[first-1][k] {
			first--
		}
		p.Layer = m.digests[history[first].layer]
		p.Ecosystem = osEcosystem(newest.db.Kind, osInfo)
		p.PURL = osPURL(p, newest.db.Kind, osInfo)
		out = append(out, p)
	}
	return out
}

// osEcosystem is the OS packages' ecosystem: the release's, or the distribution family's
// when the image has no readable os-release.
func osEcosystem(kind string, osInfo *OSInfo) string {
	if osInfo != nil && osInfo.Ecosystem != "" {
		return osInfo.Ecosystem
	}
	switch kind {
	case "dpkg":
		return "Debian"
	case "apk":
		return "Alpine"
	}
	return ""
}

// detectOS reads the os-release file of the merged image: /etc/os-release, else
// /usr/lib/os-release, following symbolic links only inside the image.
func (m *merged) detectOS() (*OSInfo, *Skipped) {
	var problem *Skipped
	for _, candidate := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		resolved, err := resolveInRoot(candidate, m.links)
		if err != nil {
			if problem == nil {
				problem = &Skipped{Path: candidate, Reason: "os-release: " + err.Error()}
			}
			continue
		}
		f, ok := m.osrel[resolved]
		if !ok {
			continue
		}
		info := osInfoFromRelease(parseOSRelease(f.content))
		if info == nil {
			continue
		}
		info.Path = resolved
		info.Layer = m.digests[f.layer]
		return info, nil
	}
	return nil, problem
}

// dropLockfileDuplicates drops packages read from a lock file when installed metadata under
// the lock file's directory reports the same package and version: the installed copy is the
// one that runs, and one finding per package is enough.
func dropLockfileDuplicates(pkgs []Package) []Package {
	type key struct{ eco, name, version string }
	installed := map[key][]string{}
	for _, p := range pkgs {
		if !p.FromLockfile {
			k := key{p.Ecosystem, p.Name, p.Version}
			installed[k] = append(installed[k], p.Path)
		}
	}
	out := pkgs[:0]
	for _, p := range pkgs {
		if p.FromLockfile {
			dir := path.Dir(p.Path)
			covered := slices.ContainsFunc(installed[key{p.Ecosystem, p.Name, p.Version}], func(ip string) bool {
				return dir == "/" || strings.HasPrefix(ip, dir+"/")
			})
			if covered {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}
