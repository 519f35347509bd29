// Package osrelease keeps the content of os-release files (/etc/os-release,
// /usr/lib/os-release and any other file of that name: which one counts is decided for the
// whole image, after symbolic links, by inventory.Merge, which also parses it).
package osrelease

import (
	"context"
	"fmt"
	"io"
	"path"

	"github.com/lading-registry/lading/internal/inventory/plugin"
)

// maxBytes bounds an os-release file: real ones hold a few hundred bytes.
const maxBytes = 64 << 10

// New returns the plugin.
func New() plugin.Plugin { return osRelease{} }

type osRelease struct{}

func (osRelease) Name() string { return "lading/osrelease" }
func (osRelease) Version() int { return 1 }

func (osRelease) FileRequired(f plugin.File) bool { return path.Base(f.Path()) == "os-release" }

func (osRelease) MaxBytes(plugin.Limits) int64 { return maxBytes }

func (osRelease) Extract(_ context.Context, in *plugin.Input) (plugin.Found, error) {
	b, err := io.ReadAll(in.Content.NewReader())
	if err != nil {
		return plugin.Found{}, fmt.Errorf("os-release: %w", err)
	}
	content := string(b)
	return plugin.Found{OSRelease: &content}, nil
}
