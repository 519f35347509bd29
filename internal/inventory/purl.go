package inventory

import (
	"strconv"
	"strings"

	packageurl "github.com/package-url/packageurl-go"
)

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
