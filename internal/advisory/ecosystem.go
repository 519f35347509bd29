package advisory

import (
	"strings"

	"github.com/ossf/osv-schema/bindings/go/osvconstants"
)

// PackageKey identifies a package as OSV does: the ecosystem string exactly as OSV writes
// it (with its release suffix, e.g. "Debian:12", "Alpine:v3.20", "Ubuntu:22.04:LTS") and
// the package name, normalised where the ecosystem treats names case- or
// punctuation-insensitively (see NormalizeName). Distribution packages are source packages.
type PackageKey struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"package"`
}

func (k PackageKey) String() string { return k.Ecosystem + "/" + k.Name }

// Compare orders keys by ecosystem, then name.
func (k PackageKey) Compare(o PackageKey) int {
	if c := strings.Compare(k.Ecosystem, o.Ecosystem); c != 0 {
		return c
	}
	return strings.Compare(k.Name, o.Name)
}

// Bare returns the key of the same package in the bare ecosystem ("Debian" for
// "Debian:12") when OSV makes the ecosystem's release suffix optional: records written for
// the bare ecosystem apply to every release, so a lookup of k consults both keys.
func (k PackageKey) Bare() (PackageKey, bool) {
	base := BaseEcosystem(k.Ecosystem)
	if base == k.Ecosystem || !releaseOptional(base) {
		return PackageKey{}, false
	}
	return PackageKey{Ecosystem: base, Name: k.Name}, true
}

// MakeKey builds the key for an ecosystem and a package name, normalising the name.
func MakeKey(ecosystem, name string) PackageKey {
	ecosystem = strings.TrimSpace(ecosystem)
	return PackageKey{Ecosystem: ecosystem, Name: NormalizeName(ecosystem, name)}
}

// BaseEcosystem strips the release or repository suffix: "Debian:12" -> "Debian".
func BaseEcosystem(ecosystem string) string {
	if i := strings.IndexByte(ecosystem, ':'); i >= 0 {
		return ecosystem[:i]
	}
	return ecosystem
}

// NormalizeName puts a package name in the form used for matching. Names are compared as
// each ecosystem compares them: PyPI per PEP 503; NuGet, Packagist, Hex, Pub and crates.io
// case-insensitively (crates.io also equates '-' and '_'); everything else exactly.
func NormalizeName(ecosystem, name string) string {
	name = strings.TrimSpace(name)
	switch osvconstants.Ecosystem(BaseEcosystem(ecosystem)) {
	case osvconstants.EcosystemPyPI:
		return normalizePyPI(name)
	case osvconstants.EcosystemNuGet, osvconstants.EcosystemPackagist, osvconstants.EcosystemHex, osvconstants.EcosystemPub:
		return strings.ToLower(name)
	case osvconstants.EcosystemCratesIO:
		n := strings.ToLower(name)
		if strings.IndexByte(n, '-') >= 0 {
			n = strings.ReplaceAll(n, "-", "_")
		}
		return n
	}
	return name
}

// normalizePyPI is PEP 503: lower case, runs of '-', '_' and '.' become one '-'.
func normalizePyPI(name string) string {
	clean := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' || c == '_' || c == '.' || c == '-' && i+1 < len(name) && (name[i+1] == '-' || name[i+1] == '_' || name[i+1] == '.') {
			clean = false
			break
		}
	}
	if clean {
		return name
	}
	var b strings.Builder
	b.Grow(len(name))
	sep := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-' || c == '_' || c == '.':
			if !sep {
				b.WriteByte('-')
			}
			sep = true
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		sep = false
		b.WriteByte(c)
	}
	return b.String()
}

// releaseOptional lists ecosystems whose release suffix OSV makes optional: a record written
// for the bare ecosystem applies to every release, so a query for "Debian:12" also consults
// "Debian".
func releaseOptional(base string) bool {
	switch osvconstants.Ecosystem(base) {
	case osvconstants.EcosystemDebian, osvconstants.EcosystemAlmaLinux, osvconstants.EcosystemRockyLinux:
		return true
	}
	return false
}

// DistroEcosystem returns the OSV ecosystem string for an operating system as
// /etc/os-release describes it (ID and VERSION_ID), or "" when OSV has no ecosystem for it.
// For example ("debian", "12") -> "Debian:12", ("alpine", "3.20.3") -> "Alpine:v3.20",
// ("ubuntu", "22.04") -> "Ubuntu:22.04:LTS", ("almalinux", "9.4") -> "AlmaLinux:9".
func DistroEcosystem(id, versionID string) string {
	id = strings.ToLower(strings.TrimSpace(id))
	v := strings.Trim(strings.TrimSpace(versionID), `"`)
	major, rest, _ := strings.Cut(v, ".")
	minor, _, _ := strings.Cut(rest, ".")
	switch id {
	case "debian":
		if major == "" {
			return ""
		}
		return "Debian:" + major
	case "ubuntu":
		if major == "" || minor == "" {
			return ""
		}
		eco := "Ubuntu:" + major + "." + minor
		// LTS releases are the April releases of even years.
		if minor == "04" && len(major) == 2 && (major[1]-'0')%2 == 0 {
			eco += ":LTS"
		}
		return eco
	case "alpine":
		if major == "" || minor == "" {
			return ""
		}
		return "Alpine:v" + major + "." + minor
	case "almalinux":
		return withMajor("AlmaLinux", major)
	case "rocky":
		return withMajor("Rocky Linux", major)
	case "wolfi":
		return "Wolfi"
	case "chainguard":
		return "Chainguard"
	}
	return ""
}

func withMajor(eco, major string) string {
	if major == "" {
		return eco
	}
	return eco + ":" + major
}
