package report

import (
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	spdxjson "github.com/spdx/tools-golang/json"
	spdxcommon "github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/lading-registry/lading/internal/inventory"
)

// SPDX writes an SPDX 2.3 JSON document of the image's packages (an SBOM; SPDX 2.3 has no
// vulnerability section, so advisories are linked as SECURITY external references).
func SPDX(w io.Writer, s *Scan, o Options) error {
	name := firstNonEmpty(s.Image.Name, s.Image.ManifestDigest)
	doc := &spdx.Document{
		SPDXVersion: spdx.Version, DataLicense: spdx.DataLicense, SPDXIdentifier: "DOCUMENT",
		DocumentName:      name,
		DocumentNamespace: "https://lading.dev/spdx/" + strings.ReplaceAll(s.Image.ManifestDigest, ":", "-") + "-" + uuid.NewString(),
		CreationInfo: &spdx.CreationInfo{Creators: []spdxcommon.Creator{{CreatorType: "Tool", Creator: "lading-" + o.ToolVersion}},
			Created: o.now().Format(time.RFC3339)},
	}
	image := &spdx.Package{PackageName: name, PackageSPDXIdentifier: "Image", PackageVersion: s.Image.ManifestDigest,
		PackageDownloadLocation: "NOASSERTION", PrimaryPackagePurpose: "CONTAINER"}
	doc.Packages = append(doc.Packages, image)
	doc.Relationships = append(doc.Relationships, &spdx.Relationship{RefA: spdxcommon.MakeDocElementID("", "DOCUMENT"),
		RefB: spdxcommon.MakeDocElementID("", "Image"), Relationship: "DESCRIBES"})
	advisories := map[string][]string{}
	for _, f := range s.Findings {
		for _, p := range f.Packages {
			k := p.Ecosystem + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.FilePath
			advisories[k] = append(advisories[k], f.VulnerabilityID)
		}
	}
	for i, p := range s.Inventory.Packages {
		id := spdxcommon.ElementID("Package-" + strconv.Itoa(i+1))
		pkg := &spdx.Package{PackageName: p.Name, PackageSPDXIdentifier: id, PackageVersion: p.Version,
			PackageDownloadLocation: "NOASSERTION", PackageSourceInfo: "found at " + p.Path + " in layer " + p.Layer,
			PrimaryPackagePurpose: "LIBRARY"}
		if p.PURL != "" {
			pkg.PackageExternalReferences = append(pkg.PackageExternalReferences, &spdx.PackageExternalReference{
				Category: "PACKAGE-MANAGER", RefType: "purl", Locator: p.PURL})
		}
		version := p.Version
		if p.PackageManager == inventory.ManagerOS {
			version = p.UpstreamVersion()
		}
		for _, id := range advisories[p.Ecosystem+"\x00"+p.Name+"\x00"+version+"\x00"+p.Path] {
			pkg.PackageExternalReferences = append(pkg.PackageExternalReferences, &spdx.PackageExternalReference{
				Category: "SECURITY", RefType: "advisory", Locator: "https://osv.dev/vulnerability/" + id})
		}
		doc.Packages = append(doc.Packages, pkg)
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{RefA: spdxcommon.MakeDocElementID("", "Image"),
			RefB: spdxcommon.MakeDocElementID("", string(id)), Relationship: "CONTAINS"})
	}
	return spdxjson.Write(doc, w, spdxjson.Indent("  "))
}
