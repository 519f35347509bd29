package inventory

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime/debug"
	"slices"

	scalibrversion "github.com/google/osv-scalibr/version"

	"github.com/lading-registry/lading/internal/inventory/plugins"
)

// walkVersion is the version of the layer walk and of the LayerInventory format: bump it when
// a change to the walk (whiteouts, links, limits, the fields kept) makes cached layer
// inventories stale. Plugins have their own versions.
const walkVersion = 2

const scalibrModule = "github.com/google/osv-scalibr"

// Fingerprint identifies what a scan in the given mode extracts: the layer walk's version,
// osv-scalibr's module version and the name and version of every plugin. Cached layer
// inventories are keyed by it, so that a new plugin version, a new or removed plugin, or an
// osv-scalibr upgrade reads layers again.
func Fingerprint(mode Mode) string {
	return fingerprint(plugins.Default(mode))
}

func fingerprint(ps []Plugin) string {
	return fingerprintOf(walkVersion, ScalibrVersion(), ps)
}

func fingerprintOf(walk int, scalibr string, ps []Plugin) string {
	lines := make([]string, 0, len(ps))
	for _, p := range ps {
		lines = append(lines, fmt.Sprintf("%s@%d", p.Name(), p.Version()))
	}
	slices.Sort(lines)
	h := sha256.New()
	fmt.Fprintf(h, "walk %d\nosv-scalibr %s\n", walk, scalibr)
	for _, l := range lines {
		fmt.Fprintln(h, l)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ScalibrVersion is the version of osv-scalibr built in, from the binary's build
// information. Test binaries carry no dependency information (debug.ReadBuildInfo lists no
// Deps under go test), so the version osv-scalibr declares of itself stands in.
func ScalibrVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := moduleVersion(bi, scalibrModule); v != "" {
			return v
		}
	}
	return "v" + scalibrversion.ScannerVersion
}

// moduleVersion returns the version of module path in bi ("" if absent), naming the
// replacement of a replaced module.
func moduleVersion(bi *debug.BuildInfo, path string) string {
	for _, m := range bi.Deps {
		if m.Path != path {
			continue
		}
		if r := m.Replace; r != nil {
			if r.Version != "" {
				return r.Path + "@" + r.Version
			}
			// A local directory has no version: its path is the best name there is, so
			// rebuilding from an edited copy does not change the fingerprint.
			return r.Path + " (replacing " + m.Version + ")"
		}
		return m.Version
	}
	return ""
}
