package npm

import (
	"testing"

	"github.com/lading-registry/lading/internal/inventory/plugin"
)

// TestFileRequired: osv-scalibr decides which files are npm's, and the package.json plugin
// keeps those of installed packages.
func TestFileRequired(t *testing.T) {
	tests := []struct {
		path              string
		packageJSON, lock bool
	}{
		{"usr/src/app/node_modules/lodash/package.json", true, false},
		{"usr/src/app/node_modules/@types/node/package.json", true, false},
		{"usr/src/app/node_modules/send/node_modules/ms/package.json", true, false},
		{"node_modules/lodash/package.json", true, false},
		{"usr/src/app/package.json", false, false},                         // the application's own
		{"usr/src/app/node_modules/lodash/fp/package.json", false, false},  // a sub-module
		{"usr/src/app/package-lock.json", false, true},                     // osv-scalibr's rule
		{"usr/src/app/npm-shrinkwrap.json", false, true},                   // osv-scalibr's rule
		{"usr/src/app/node_modules/x/package-lock.json", false, false},     // osv-scalibr's rule
		{"usr/src/app/node_modules/lodash/package.json.bak", false, false}, // osv-scalibr's rule
	}
	for _, tt := range tests {
		f := plugin.NewFile(tt.path, 0o644, nil)
		if got := PackageJSON().FileRequired(f); got != tt.packageJSON {
			t.Errorf("package.json plugin: FileRequired(%s) = %v", tt.path, got)
		}
		if got := PackageLock().FileRequired(f); got != tt.lock {
			t.Errorf("lock plugin: FileRequired(%s) = %v", tt.path, got)
		}
	}
}
