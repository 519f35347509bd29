package inventory

import (
	"errors"
	"path"
	"strings"
)

var errEscapesRoot = errors.New("escapes the image root")

// cleanEntryPath turns a tar entry name into a clean absolute path inside the image root.
// Names are resolved lexically: a ".." that would climb above the root is an error, as it
// is for container runtimes, which refuse such layers. absolute reports a leading "/", which
// runtimes read as relative to the root.
func cleanEntryPath(name string) (p string, absolute bool, err error) {
	absolute = strings.HasPrefix(name, "/")
	parts := make([]string, 0, strings.Count(name, "/")+1)
	for part := range strings.SplitSeq(name, "/") {
		switch part {
		case "", ".":
		case "..":
			if len(parts) == 0 {
				return "", absolute, errEscapesRoot
			}
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, part)
		}
	}
	return "/" + strings.Join(parts, "/"), absolute, nil
}

// resolveLinkTarget returns the path a symbolic link at linkPath points to, resolved
// lexically, and whether a relative target climbs above the root (it is then clamped to the
// root, as inside a chroot).
func resolveLinkTarget(linkPath, target string) (resolved string, escapes bool) {
	if strings.HasPrefix(target, "/") {
		return path.Clean(target), false
	}
	p, _, err := cleanEntryPath(path.Dir(linkPath) + "/" + target)
	if err != nil {
		return path.Join(path.Dir(linkPath), target), true // path.Join stops at the root
	}
	return p, false
}

// fileKind says which extractor a file's name selects.
type fileKind int

const (
	kindNone fileKind = iota
	kindOSRelease
	kindDpkg
	kindApk
	kindRpm
	kindJava
	kindPython
	kindNodePackage
	kindNpmLock
	kindDepsJSON
	kindGemspec
	kindCargoLock
	kindComposerLock
	kindComposerInstalled
)

func (k fileKind) String() string {
	switch k {
	case kindOSRelease:
		return "os-release"
	case kindDpkg:
		return "dpkg database"
	case kindApk:
		return "apk database"
	case kindRpm:
		return "rpm database"
	case kindJava:
		return "Java archive"
	case kindPython:
		return "Python metadata"
	case kindNodePackage:
		return "package.json"
	case kindNpmLock:
		return "npm lock file"
	case kindDepsJSON:
		return ".NET deps.json"
	case kindGemspec:
		return "gemspec"
	case kindCargoLock:
		return "Cargo.lock"
	case kindComposerLock:
		return "composer.lock"
	case kindComposerInstalled:
		return "composer installed.json"
	default:
		return "file"
	}
}

var javaArchiveExts = []string{".jar", ".war", ".ear", ".jmod", ".par", ".sar", ".jpi", ".hpi", ".lpkg", ".nar"}

func isJavaArchiveName(name string) bool {
	ext := path.Ext(name)
	for _, e := range javaArchiveExts {
		if strings.EqualFold(ext, e) {
			return true
		}
	}
	return false
}

var rpmDirs = []string{"/var/lib/rpm", "/usr/lib/sysimage/rpm", "/usr/share/rpm"}

// classify selects the extractor for a file by its absolute path. Executables are found by
// content, not here.
func classify(p string, mode Mode) fileKind {
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case base == "os-release":
		return kindOSRelease
	case p == "/var/lib/dpkg/status",
		dir == "/var/lib/dpkg/status.d" && !strings.HasSuffix(base, ".md5sums"):
		return kindDpkg
	case p == "/lib/apk/db/installed", p == "/usr/lib/apk/db/installed":
		return kindApk
	case (base == "Packages" || base == "Packages.db" || base == "rpmdb.sqlite") && contains(rpmDirs, dir):
		return kindRpm
	}
	if mode == ModeBasic {
		return kindNone
	}
	switch {
	case isJavaArchiveName(base):
		return kindJava
	case strings.HasSuffix(p, ".dist-info/METADATA"),
		strings.HasSuffix(p, ".egg-info/PKG-INFO"),
		strings.HasSuffix(p, "/EGG-INFO/PKG-INFO"),
		strings.HasSuffix(base, ".egg-info"):
		return kindPython
	case base == "package.json" && isNodeModulesPackageDir(dir):
		return kindNodePackage
	case (base == "package-lock.json" || base == "npm-shrinkwrap.json") && !hasComponent(dir, "node_modules"):
		return kindNpmLock
	case strings.HasSuffix(base, ".deps.json"):
		return kindDepsJSON
	case strings.HasSuffix(base, ".gemspec") && path.Base(dir) == "specifications":
		return kindGemspec
	case base == "Cargo.lock":
		return kindCargoLock
	case base == "composer.lock":
		return kindComposerLock
	case strings.HasSuffix(p, "/vendor/composer/installed.json"):
		return kindComposerInstalled
	}
	return kindNone
}

// isNodeModulesPackageDir reports whether dir is a package directory directly inside a
// node_modules directory (node_modules/<name> or node_modules/@scope/<name>); package.json
// files deeper inside a package describe sub-modules, not packages.
func isNodeModulesPackageDir(dir string) bool {
	parent := path.Dir(dir)
	if path.Base(parent) == "node_modules" {
		return true
	}
	return strings.HasPrefix(path.Base(parent), "@") && path.Base(path.Dir(parent)) == "node_modules"
}

func hasComponent(p, name string) bool {
	for part := range strings.SplitSeq(p, "/") {
		if part == name {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// isOSReleaseLink reports whether a symbolic link may be on the way to the os-release file:
// the os-release paths themselves, their ancestor directories, short top-level links such as
// /lib -> usr/lib, and links whose name or target mention a release file.
func isOSReleaseLink(p, target string) bool {
	switch p {
	case "/etc", "/usr", "/usr/lib", "/etc/os-release", "/usr/lib/os-release":
		return true
	}
	if strings.Count(p, "/") <= 2 {
		return true
	}
	return strings.Contains(path.Base(p), "release") || strings.Contains(target, "release")
}
