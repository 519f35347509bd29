package ruby

import (
	"testing"

	"github.com/lading-registry/lading/internal/inventory/plugin"
)

func TestFileRequired(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"usr/local/bundle/specifications/rack-2.2.3.gemspec", true},
		{"var/lib/gems/3.1.0/specifications/default/json-2.6.1.gemspec", false}, // default gems ship with Ruby
		{"usr/local/bundle/gems/rack-2.2.3/rack.gemspec", false},                // the gem's own source
		{"srv/app/app.gemspec", false},
		{"usr/local/bundle/specifications/rack-2.2.3.gemspec.orig", false}, // osv-scalibr's rule
	}
	for _, tt := range tests {
		if got := New().FileRequired(plugin.NewFile(tt.path, 0o644, nil)); got != tt.want {
			t.Errorf("FileRequired(%s) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
