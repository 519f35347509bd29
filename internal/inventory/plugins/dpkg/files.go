package dpkg

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/lading-registry/lading/internal/inventory/plugin"
)

// Files returns the plugin that reads dpkg's records of the files each package installed:
// /var/lib/dpkg/info/<package>[:<arch>].list (one absolute path per line) and, in distroless
// images, /var/lib/dpkg/status.d/<package>.md5sums ("<md5>  <path from the root>"). osv-scalibr's
// extractor reads the status files only. Merge reports a language package whose metadata
// such a record lists as the Debian package (see plugin.Found.Owned).
func Files() plugin.Plugin { return files{} }

type files struct{}

func (files) Name() string { return "lading/dpkg-files" }
func (files) Version() int { return 1 }

func (files) FileRequired(f plugin.File) bool {
	dir, base := path.Split(f.Path())
	return (dir == "var/lib/dpkg/info/" && strings.HasSuffix(base, ".list") && len(base) > len(".list")) ||
		(dir == "var/lib/dpkg/status.d/" && strings.HasSuffix(base, ".md5sums") && len(base) > len(".md5sums"))
}

func (files) MaxBytes(l plugin.Limits) int64 { return l.MaxMetadataBytes }

func (files) Extract(_ context.Context, in *plugin.Input) (plugin.Found, error) {
	owned, err := parseFileList(path.Base(in.Path), in.Content.NewReader())
	found := plugin.Found{Owned: owned}
	if err != nil {
		return found, fmt.Errorf("dpkg file list: %w", err)
	}
	return found, nil
}

// maxLine bounds one line of a file list: a path, with an md5sum before it.
const maxLine = 8 << 10

// parseFileList reads a .list or .md5sums file named base. What was read before an error is
// returned with it.
func parseFileList(base string, r io.Reader) (*plugin.Owned, error) {
	name, md5sums := strings.CutSuffix(base, ".md5sums")
	if !md5sums {
		name = strings.TrimSuffix(name, ".list")
	}
	// Multi-arch packages' lists are named <package>:<arch>.list.
	name, arch, _ := strings.Cut(name, ":")
	pkg := plugin.OwnedFiles{Package: name, Arch: arch}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	for sc.Scan() {
		line := sc.Text()
		if md5sums {
			_, p, ok := strings.Cut(line, "  ")
			if !ok {
				continue
			}
			line = "/" + strings.TrimPrefix(p, "/")
		}
		if p := path.Clean(line); strings.HasPrefix(line, "/") && p != "/" {
			pkg.Files = append(pkg.Files, p)
		}
	}
	owned := &plugin.Owned{Kind: "dpkg", Packages: []plugin.OwnedFiles{pkg}}
	if name == "" {
		owned = nil
	}
	return owned, sc.Err()
}
