package inventory

import (
	"bufio"
	"errors"
	"path"
	"strconv"
	"strings"
)

const (
	// maxSymlinkHops is the kernel's limit on symbolic links followed while resolving one path.
	maxSymlinkHops = 40
	// maxOSReleaseLine bounds one line of an os-release file (the plugin reads at most 64 KiB).
	maxOSReleaseLine = 64 << 10
)

var errTooManyLinks = errors.New("too many levels of symbolic links")

// parseOSRelease reads os-release(5): KEY=value lines, values optionally quoted.
func parseOSRelease(content string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(content))
	sc.Buffer(make([]byte, 0, 4096), maxOSReleaseLine)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			continue
		}
		if unq, err := strconv.Unquote(v); err == nil && (strings.HasPrefix(v, `"`) || strings.HasPrefix(v, "`")) {
			v = unq
		} else if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = v[1 : len(v)-1]
		} else {
			v = strings.Trim(v, `"`)
		}
		m[k] = v
	}
	return m
}

// osInfoFromRelease builds OSInfo, with the OSV ecosystem, from os-release fields.
func osInfoFromRelease(m map[string]string) *OSInfo {
	id := strings.ToLower(m["ID"])
	if id == "" {
		return nil
	}
	info := &OSInfo{
		ID:         id,
		VersionID:  m["VERSION_ID"],
		Codename:   m["VERSION_CODENAME"],
		PrettyName: m["PRETTY_NAME"],
	}
	info.Ecosystem = osvEcosystem(id, m)
	return info
}

// osvEcosystem names the OSV ecosystem of a release, as OSV's data spells it (e.g.
// "Debian:12", "Ubuntu:22.04:LTS", "Alpine:v3.20", "AlmaLinux:9", "Rocky Linux:9").
func osvEcosystem(id string, m map[string]string) string {
	version := m["VERSION_ID"]
	major, _, _ := strings.Cut(version, ".")
	withSuffix := func(eco, suffix string) string {
		if suffix == "" {
			return eco
		}
		return eco + ":" + suffix
	}
	switch id {
	case "debian":
		if version == "" {
			// Testing and unstable have no VERSION_ID; OSV has no ecosystem for them.
			return "Debian"
		}
		return withSuffix("Debian", major)
	case "ubuntu":
		eco := withSuffix("Ubuntu", version)
		if strings.Contains(m["VERSION"], "LTS") {
			eco += ":LTS"
		}
		return eco
	case "alpine":
		parts := strings.Split(version, ".")
		if len(parts) >= 2 {
			return "Alpine:v" + parts[0] + "." + parts[1]
		}
		return "Alpine"
	case "almalinux":
		return withSuffix("AlmaLinux", major)
	case "rocky":
		return withSuffix("Rocky Linux", major)
	case "rhel":
		// OSV's Red Hat ecosystem is keyed by CPE ("Red Hat:enterprise_linux:9::baseos").
		if _, suffix, ok := strings.Cut(m["CPE_NAME"], ":redhat:"); ok {
			return "Red Hat:" + suffix
		}
		return "Red Hat"
	case "wolfi":
		return "Wolfi"
	case "chainguard":
		return "Chainguard"
	case "mageia":
		return withSuffix("Mageia", version)
	case "opensuse-leap":
		return withSuffix("openSUSE", "Leap "+version)
	case "opensuse-tumbleweed":
		return "openSUSE:Tumbleweed"
	case "sles":
		return withSuffix("SUSE", version)
	case "photon":
		return withSuffix("Photon OS", version)
	case "azurelinux":
		return withSuffix("Azure Linux", version)
	case "mariner":
		return withSuffix("Mariner", version)
	case "openeuler":
		return withSuffix("openEuler", version)
	}
	return ""
}

// resolveInRoot follows symbolic links along p in the merged image, as inside a chroot:
// absolute targets start at the image root and ".." stops at it. It returns the final path.
func resolveInRoot(p string, links map[string]string) (string, error) {
	parts := splitPath(p)
	hops := 0
	resolved := "/"
	for i := 0; i < len(parts); i++ {
		next := path.Join(resolved, parts[i])
		target, ok := links[next]
		if !ok {
			resolved = next
			continue
		}
		hops++
		if hops > maxSymlinkHops {
			return "", errTooManyLinks
		}
		var base string
		if strings.HasPrefix(target, "/") {
			base = path.Clean(target)
		} else {
			base = path.Join(resolved, target)
		}
		parts = append(splitPath(base), parts[i+1:]...)
		resolved = "/"
		i = -1
	}
	return resolved, nil
}

func splitPath(p string) []string {
	var parts []string
	for part := range strings.SplitSeq(p, "/") {
		if part != "" && part != "." {
			parts = append(parts, part)
		}
	}
	return parts
}
