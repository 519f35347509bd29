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
