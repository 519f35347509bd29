package inventory

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/inventory/plugin"
	"github.com/lading-registry/lading/internal/testfiles"
)

type fakePlugin struct {
	name    string
	version int
}

func (p fakePlugin) Name() string                 { return p.name }
func (p fakePlugin) Version() int                 { return p.version }
func (fakePlugin) FileRequired(plugin.File) bool  { return false }
func (fakePlugin) MaxBytes(l plugin.Limits) int64 { return l.MaxMetadataBytes }
func (fakePlugin) Extract(context.Context, *plugin.Input) (plugin.Found, error) {
	return plugin.Found{}, nil
}

func TestFingerprintChanges(t *testing.T) {
	a1, b1 := fakePlugin{"a", 1}, fakePlugin{"b", 1}
	base := fingerprintOf(2, "v0.5.3", []Plugin{a1, b1})
	tests := []struct {
		name  string
		got   string
		equal bool
	}{
		{"same plugins in another order", fingerprintOf(2, "v0.5.3", []Plugin{b1, a1}), true},
		{"a plugin's new version", fingerprintOf(2, "v0.5.3", []Plugin{fakePlugin{"a", 2}, b1}), false},
		{"a plugin added", fingerprintOf(2, "v0.5.3", []Plugin{a1, b1, fakePlugin{"c", 1}}), false},
		{"a plugin removed", fingerprintOf(2, "v0.5.3", []Plugin{a1}), false},
		{"osv-scalibr upgraded", fingerprintOf(2, "v0.6.0", []Plugin{a1, b1}), false},
		{"the walk's new version", fingerprintOf(3, "v0.5.3", []Plugin{a1, b1}), false},
	}
	for _, tt := range tests {
		if (tt.got == base) != tt.equal {
			t.Errorf("%s: fingerprint %s, base %s", tt.name, tt.got, base)
		}
	}
	if len(base) != 16 {
		t.Errorf("fingerprint %q is not 16 hex digits", base)
	}
	// Each call builds the plugins anew: the fingerprint must not depend on the instances.
	basic, enhanced, again := Fingerprint(ModeBasic), Fingerprint(ModeEnhanced), Fingerprint(ModeEnhanced)
	if basic == enhanced || enhanced != again {
		t.Errorf("BASIC %s, ENHANCED %s then %s", basic, enhanced, again)
	}
}

// TestScalibrVersion: test binaries carry no dependency list, so the version osv-scalibr
// declares of itself stands in; it must be the one go.mod requires, or the golden file and
// the fingerprints under test would name another osv-scalibr than the build's.
func TestScalibrVersion(t *testing.T) {
	root, err := testfiles.ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var required string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == scalibrModule {
			required = fields[1]
		}
	}
	if got := ScalibrVersion(); required == "" || got != required {
		t.Errorf("ScalibrVersion() = %q, go.mod requires %q: after an upgrade to a version whose "+
			"version.ScannerVersion differs (a pseudo-version), give the fallback another source", got, required)
	}
}

func TestModuleVersion(t *testing.T) {
	bi := &debug.BuildInfo{Deps: []*debug.Module{
		{Path: "example.com/other", Version: "v1.0.0"},
		{Path: scalibrModule, Version: "v0.5.3"},
	}}
	replaced := &debug.BuildInfo{Deps: []*debug.Module{{Path: scalibrModule, Version: "v0.5.3",
		Replace: &debug.Module{Path: "github.com/fork/osv-scalibr", Version: "v0.5.4-fork"}}}}
	local := &debug.BuildInfo{Deps: []*debug.Module{{Path: scalibrModule, Version: "v0.5.3",
		Replace: &debug.Module{Path: "../osv-scalibr"}}}}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"required", bi, "v0.5.3"},
		{"replaced", replaced, "github.com/fork/osv-scalibr@v0.5.4-fork"},
		{"local directory", local, "../osv-scalibr (replacing v0.5.3)"},
		{"absent", &debug.BuildInfo{}, ""},
	}
	for _, tt := range tests {
		if got := moduleVersion(tt.bi, scalibrModule); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
