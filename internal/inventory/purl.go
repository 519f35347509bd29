package inventory

import (
	"strconv"
	"strings"

	packageurl "github.com/package-url/packageurl-go"
)

// purlFor returns the package URL of a language package.
func purlFor(p Package) string {
	var typ, namespace, name string
	version := p.Version
	switch p.Ecosystem {
	case EcosystemMaven:
		typ = packageurl.TypeMaven
		namespace, name, _ = strings.Cut(p.Name, ":")
	case EcosystemNPM:
		typ = packageurl.TypeNPM
		namespace, name = splitLast(p.Name)
	case EcosystemPyPI:
		typ = packageurl.TypePyPi
		name = strings.ReplaceAll(strings.ToLower(p.Name), "_", "-")
	case EcosystemGo:
		typ = packageurl.TypeGolang
		namespace, name = splitLast(p.Name)
		if p.Name != GoStdlib {
			version = "v" + version
		}
	case EcosystemNuGet:
		typ = packageurl.TypeNuget
		name = p.Name
	case EcosystemRubyGems:
		typ = packageurl.TypeGem
		name = p.Name
	case EcosystemCratesIO:
		typ = packageurl.TypeCargo
		name = p.Name
	case EcosystemPackagist:
		typ = packageurl.TypeComposer
		namespace, name = splitLast(p.Name)
	default:
		return ""
	}
	if name == "" {
		return ""
	}
	return packageurl.NewPackageURL(typ, namespace, name, version, nil, "").ToString()
}

// osPURL returns the package URL of an OS package of the given database kind.
func osPURL(p Package, kind string, osInfo *OSInfo) string {
	var typ string
	switch kind {
	case "dpkg":
		typ = packageurl.TypeDebian
	case "apk":
		typ = packageurl.TypeApk
	case "rpm":
		typ = packageurl.TypeRPM
	default:
		return ""
	}
	namespace := ""
	var q packageurl.Qualifiers
	if p.Arch != "" {
		q = append(q, packageurl.Qualifier{Key: "arch", Value: p.Arch})
	}
	if osInfo != nil {
		namespace = strings.ToLower(osInfo.ID)
		distro := osInfo.ID
		if osInfo.VersionID != "" {
			distro += "-" + osInfo.VersionID
		}
		q = append(q, packageurl.Qualifier{Key: "distro", Value: distro})
	}
	version := p.Version
	if kind == "rpm" && p.Epoch > 0 {
		version = strings.TrimPrefix(version, strconv.Itoa(p.Epoch)+":")
		q = append(q, packageurl.Qualifier{Key: "epoch", Value: strconv.Itoa(p.Epoch)})
	}
	if p.SourceName != "" && p.SourceName != p.Name {
		q = append(q, packageurl.Qualifier{Key: "upstream", Value: p.SourceName})
	}
	return packageurl.NewPackageURL(typ, namespace, p.Name, version, q, "").ToString()
}

// splitLast splits "a/b/c" into ("a/b", "c").
func splitLast(s string) (string, string) {
	if i := strings.LastIndex(s, "/"); i >= 0 {
		return s[:i], s[i+1:]
	}
	return "", s
}
