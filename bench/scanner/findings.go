package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/package-url/packageurl-go"
)

// pkgKey is a package as both reports can name it: OS packages by binary package name and full
// Debian version (epoch:upstream-revision), others by their ecosystem name and version.
type pkgKey struct{ name, version string }

func (k pkgKey) String() string { return k.name + "@" + k.version }

// osvVuln is one osv-scanner finding on one package, with every identifier it goes by.
type osvVuln struct {
	id        string
	ids       map[string]bool // id, aliases, upstream, and its group's ids and aliases
	ecosystem string
	source    string // osv-scanner's package name (the source package for Debian)
	paths     map[string]bool
}

// diffPair is a (vulnerability, package) pair one scanner reports and the other does not.
type diffPair struct {
	vuln    string
	aliases []string
	pkg     pkgKey
	eco     string // ecosystem (osv-scanner's) or package manager (Lading's)
	path    string
	hint    string // what the other scanner has for this package
}

// locationDiff is a package both report with the same vulnerabilities, found at different
// places.
type locationDiff struct {
	pkg                 pkgKey
	osvOnly, ladingOnly []string
}

type findingsDiff struct {
	osvPairs, ladingPairs int // distinct (vulnerability, package) pairs of each
	matched               int // osv-scanner's pairs that Lading has (up to aliases)
	osvOnly, ladingOnly   []diffPair
	locations             []locationDiff
	ladingAll             []diffPair // Lading's pairs, listed when osv-scanner failed
	skipped               string     // why no comparison was made
}

// location is where a package was found, in a form both reports can be compared in: the file
// in the image (Lading writes "outer.jar!/inner.jar" for nested archives), and for npm the
// node_modules folder (osv-scanner reports the packages of node_modules/.package-lock.json,
// Lading each package's own package.json).
func location(p string) string {
	if i := strings.Index(p, "!/"); i >= 0 {
		p = p[:i]
	}
	if i := strings.Index(p, "/node_modules/"); i >= 0 {
		p = p[:i] + "/node_modules"
	}
	return p
}

// osvOutput is the part of osv-scanner's JSON report the comparison reads.
type osvOutput struct {
	Results []struct {
		Source struct {
			Path string `json:"path"`
		} `json:"source"`
		Packages []struct {
			Package struct {
				Name          string `json:"name"`
				OSPackageName string `json:"os_package_name"`
				Version       string `json:"version"`
				Ecosystem     string `json:"ecosystem"`
			} `json:"package"`
			Vulnerabilities []struct {
				ID       string   `json:"id"`
				Aliases  []string `json:"aliases"`
				Upstream []string `json:"upstream"`
			} `json:"vulnerabilities"`
			Groups []struct {
				IDs     []string `json:"ids"`
				Aliases []string `json:"aliases"`
			} `json:"groups"`
		} `json:"packages"`
	} `json:"results"`
}

// ladingOutput is the part of Lading's JSON report (DescribeImageScanFindings) it reads.
type ladingOutput struct {
	ImageScanFindings struct {
		EnhancedFindings []struct {
			PackageVulnerabilityDetails struct {
				VulnerabilityID    string `json:"vulnerabilityId"`
				VulnerablePackages []struct {
					Name           string `json:"name"`
					Version        string `json:"version"`
					Epoch          int    `json:"epoch"`
					Release        string `json:"release"`
					PackageManager string `json:"packageManager"`
					FilePath       string `json:"filePath"`
				} `json:"vulnerablePackages"`
			} `json:"packageVulnerabilityDetails"`
		} `json:"enhancedFindings"`
	} `json:"imageScanFindings"`
}

var pep503 = regexp.MustCompile(`[-_.]+`)

// normName makes names compare equal across the two reports: case, and PyPI's PEP 503 rule.
func normName(name string, python bool) string {
	name = strings.ToLower(name)
	if python {
		name = pep503.ReplaceAllString(name, "-")
	}
	return name
}

// normVersion drops a Go-style "v" prefix, which one side may write and the other not.
func normVersion(v string) string {
	if len(v) > 1 && v[0] == 'v' && v[1] >= '0' && v[1] <= '9' {
		return v[1:]
	}
	return v
}

func readJSON(path string, v any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func parseOSV(path string) (map[pkgKey][]osvVuln, error) {
	var out osvOutput
	if err := readJSON(path, &out); err != nil {
		return nil, err
	}
	pairs := map[pkgKey][]osvVuln{}
	for _, r := range out.Results {
		for _, p := range r.Packages {
			name := p.Package.Name
			if p.Package.OSPackageName != "" {
				name = p.Package.OSPackageName // the binary package; Name is its source package
			}
			key := pkgKey{normName(name, p.Package.Ecosystem == "PyPI"), normVersion(p.Package.Version)}
			for _, v := range p.Vulnerabilities {
				ids := map[string]bool{v.ID: true}
				for _, a := range slices.Concat(v.Aliases, v.Upstream) {
					ids[a] = true
				}
				for _, g := range p.Groups {
					if slices.Contains(g.IDs, v.ID) {
						for _, a := range slices.Concat(g.IDs, g.Aliases) {
							ids[a] = true
						}
					}
				}
				i := slices.IndexFunc(pairs[key], func(o osvVuln) bool { return o.id == v.ID })
				if i < 0 {
					i = len(pairs[key])
					pairs[key] = append(pairs[key], osvVuln{id: v.ID, ids: ids, ecosystem: p.Package.Ecosystem, source: p.Package.Name, paths: map[string]bool{}})
				}
				pairs[key][i].paths[location(r.Source.Path)] = true
			}
		}
	}
	return pairs, nil
}

type ladingPair struct {
	manager string
	paths   map[string]bool
}

func parseLading(path string) (map[pkgKey]map[string]ladingPair, error) {
	var out ladingOutput
	if err := readJSON(path, &out); err != nil {
		return nil, err
	}
	pairs := map[pkgKey]map[string]ladingPair{}
	for _, f := range out.ImageScanFindings.EnhancedFindings {
		d := f.PackageVulnerabilityDetails
		for _, p := range d.VulnerablePackages {
			version := p.Version
			if p.PackageManager == "OS" { // Lading splits dpkg versions into epoch, version, release
				if p.Epoch > 0 {
					version = strconv.Itoa(p.Epoch) + ":" + version
				}
				if p.Release != "" {
					version += "-" + p.Release
				}
			}
			key := pkgKey{normName(p.Name, p.PackageManager == "PYTHON"), normVersion(version)}
			if pairs[key] == nil {
				pairs[key] = map[string]ladingPair{}
			}
			lp, ok := pairs[key][d.VulnerabilityID]
			if !ok {
				lp = ladingPair{manager: p.PackageManager, paths: map[string]bool{}}
				pairs[key][d.VulnerabilityID] = lp
			}
			lp.paths[location(p.FilePath)] = true
		}
	}
	return pairs, nil
}

// inventory maps a normalised package name to the versions a scanner found.
type inventory map[string][]string

func (inv inventory) add(name, version string, python bool) {
	n := normName(name, python)
	v := normVersion(version)
	if !slices.Contains(inv[n], v) {
		inv[n] = append(inv[n], v)
	}
}

// describe says what the other scanner has for a package: the inventory is what it found, the
// vulns what it reported on the package.
func describe(who string, inv inventory, k pkgKey, vulns []string) string {
	versions, ok := inv[k.name]
	switch {
	case inv == nil:
		return who + " inventory unavailable"
	case !ok:
		return who + " found no package named " + k.name
	case !slices.Contains(versions, k.version):
		return fmt.Sprintf("%s found %s only at %s", who, k.name, strings.Join(versions, ", "))
	case len(vulns) == 0:
		return who + " found the package and reports no vulnerability on it"
	}
	return fmt.Sprintf("%s found the package and reports %d other(s) on it: %s", who, len(vulns), strings.Join(first(vulns, 6), " "))
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clip(s[:n]), "…")
	}
	return s
}

// ladingInventory reads the CycloneDX SBOM of the warm-up run.
func ladingInventory(path string) (inventory, error) {
	var bom struct {
		Components []struct {
			PURL string `json:"purl"`
		} `json:"components"`
	}
	if err := readJSON(path, &bom); err != nil {
		return nil, err
	}
	inv := inventory{}
	for _, c := range bom.Components {
		p, err := packageurl.FromString(c.PURL)
		if err != nil {
			continue
		}
		name := p.Name
		switch p.Type {
		case packageurl.TypeMaven:
			name = p.Namespace + ":" + p.Name
		case packageurl.TypeNPM, packageurl.TypeGolang, packageurl.TypeComposer:
			if p.Namespace != "" {
				name = p.Namespace + "/" + p.Name
			}
		}
		inv.add(name, p.Version, p.Type == packageurl.TypePyPi)
	}
	return inv, nil
}

// osvInventory reads the --all-packages report of the warm-up run.
func osvInventory(path string) (inventory, error) {
	var out osvOutput
	if err := readJSON(path, &out); err != nil {
		return nil, err
	}
	inv := inventory{}
	for _, r := range out.Results {
		for _, p := range r.Packages {
			name := p.Package.Name
			if p.Package.OSPackageName != "" {
				name = p.Package.OSPackageName
			}
			inv.add(name, p.Package.Version, p.Package.Ecosystem == "PyPI")
		}
	}
	return inv, nil
}

// compareFindings matches osv-scanner's (vulnerability, package) pairs with Lading's. A pair
// matches when the package (name and version) is the same and Lading's vulnerability id is one
// of the identifiers of osv-scanner's (its id, aliases, upstream ids, or its group's): Lading
// names a vulnerability by its CVE when a record has one, osv-scanner by the record's id.
func compareFindings(res imageResult) (findingsDiff, error) {
	var d findingsDiff
	if res.lading.failure != "" {
		d.skipped = "Lading gave no result"
		return d, nil
	}
	lad, err := parseLading(res.lading.report)
	if err != nil {
		return d, err
	}
	if res.osv.failure != "" {
		d.skipped = "osv-scanner gave no result"
		for k, ids := range lad {
			for id, lp := range ids {
				d.ladingAll = append(d.ladingAll, diffPair{vuln: id, pkg: k, eco: lp.manager, path: strings.Join(mapKeys(lp.paths), " ")})
			}
		}
		slices.SortFunc(d.ladingAll, byPair)
		return d, nil
	}
	osv, err := parseOSV(res.osv.report)
	if err != nil {
		return d, err
	}
	// The inventories only explain differences; a missing one is said so in the hint.
	ladInv, err := ladingInventory(res.lading.inv)
	if err != nil {
		ladInv = nil
	}
	osvInv, err := osvInventory(res.osv.inv)
	if err != nil {
		osvInv = nil
	}
	for k, vs := range osv {
		d.osvPairs += len(vs)
		osvLocs, ladLocs := map[string]bool{}, map[string]bool{}
		for _, v := range vs {
			matched := false
			for id, lp := range lad[k] {
				if v.ids[id] {
					matched = true
					for l := range lp.paths {
						ladLocs[l] = true
					}
				}
			}
			if matched {
				d.matched++
				for l := range v.paths {
					osvLocs[l] = true
				}
				continue
			}
			aliases := []string{}
			for id := range v.ids {
				if id != v.id {
					aliases = append(aliases, id)
				}
			}
			slices.Sort(aliases)
			d.osvOnly = append(d.osvOnly, diffPair{vuln: v.id, aliases: aliases, pkg: k, eco: v.ecosystem, path: strings.Join(mapKeys(v.paths), " "),
				hint: describe("Lading", ladInv, k, mapKeys(lad[k]))})
		}
		// Where the matched pairs were found: the same places on both sides?
		ld := locationDiff{pkg: k}
		for l := range osvLocs {
			if !ladLocs[l] {
				ld.osvOnly = append(ld.osvOnly, l)
			}
		}
		for l := range ladLocs {
			if !osvLocs[l] {
				ld.ladingOnly = append(ld.ladingOnly, l)
			}
		}
		if len(ld.osvOnly)+len(ld.ladingOnly) > 0 {
			slices.Sort(ld.osvOnly)
			slices.Sort(ld.ladingOnly)
			d.locations = append(d.locations, ld)
		}
	}
	for k, ids := range lad {
		d.ladingPairs += len(ids)
		for id, lp := range ids {
			if slices.ContainsFunc(osv[k], func(v osvVuln) bool { return v.ids[id] }) {
				continue
			}
			var others []string
			for _, v := range osv[k] {
				others = append(others, v.id)
			}
			slices.Sort(others)
			d.ladingOnly = append(d.ladingOnly, diffPair{vuln: id, pkg: k, eco: lp.manager, path: strings.Join(mapKeys(lp.paths), " "),
				hint: describe("osv-scanner", osvInv, k, others)})
		}
	}
	slices.SortFunc(d.osvOnly, byPair)
	slices.SortFunc(d.ladingOnly, byPair)
	slices.SortFunc(d.locations, func(a, b locationDiff) int { return strings.Compare(a.pkg.String(), b.pkg.String()) })
	return d, nil
}

func byPair(a, b diffPair) int {
	if c := strings.Compare(a.pkg.String(), b.pkg.String()); c != 0 {
		return c
	}
	return strings.Compare(a.vuln, b.vuln)
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// errorSummary says why an osv-scanner run failed: the plugins its log names in "Error during
// extraction: (extracting as PLUGIN) ..." lines, or else the log's last line.
func errorSummary(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const prefix = "Error during extraction: (extracting as "
	var plugins []string
	var last string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) != "" {
			last = line
		}
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			plugin, _, _ := strings.Cut(rest, ")")
			if !slices.Contains(plugins, plugin) {
				plugins = append(plugins, plugin)
			}
		}
	}
	if len(plugins) == 0 {
		return truncate(last, 200)
	}
	return "errors during extraction in " + strings.Join(plugins, ", ")
}
