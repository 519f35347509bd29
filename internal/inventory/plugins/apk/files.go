package apk

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/lading-registry/lading/internal/inventory/plugin"
)

// dbPaths are where apk keeps its installed database.
var dbPaths = [...]string{"lib/apk/db/installed", "usr/lib/apk/db/installed", "var/lib/apk/db/installed"}

// Files returns the plugin that reads the files each package installed from apk's installed
// database (its F: directory and R: file lines, which osv-scalibr's extractor does not
// report). Merge reports a language package whose metadata they list as the Alpine package
// (see plugin.Found.Owned).
func Files() plugin.Plugin { return files{} }

type files struct{}

func (files) Name() string { return "lading/apk-files" }
func (files) Version() int { return 1 }

func (files) FileRequired(f plugin.File) bool {
	p := f.Path()
	for _, db := range dbPaths {
		if p == db {
			return true
		}
	}
	return false
}

func (files) MaxBytes(l plugin.Limits) int64 { return l.MaxMetadataBytes }

func (files) Extract(_ context.Context, in *plugin.Input) (plugin.Found, error) {
	owned, err := parseInstalled(in.Content.NewReader())
	found := plugin.Found{Owned: owned}
	if err != nil {
		return found, fmt.Errorf("apk file lists: %w", err)
	}
	return found, nil
}

// maxLine bounds one line of the database (a long description or a path).
const maxLine = 64 << 10

// parseInstalled reads the packages' file lists from apk's installed database: records
// separated by blank lines, P: name, V: version, A: architecture, F: a directory (relative to
// the root) and R: a file in the last F: directory. What was read before an error is
// returned with it.
func parseInstalled(r io.Reader) (*plugin.Owned, error) {
	owned := &plugin.Owned{Kind: "apk"}
	var cur plugin.OwnedFiles
	dir := ""
	flush := func() {
		if cur.Package != "" && len(cur.Files) > 0 {
			owned.Packages = append(owned.Packages, cur)
		}
		cur, dir = plugin.OwnedFiles{}, ""
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch key {
		case "P":
			cur.Package = value
		case "V":
			cur.Version = value
		case "A":
			cur.Arch = value
		case "F":
			dir = value
		case "R":
			if p := path.Clean("/" + dir + "/" + value); value != "" && p != "/" {
				cur.Files = append(cur.Files, p)
			}
		}
	}
	flush()
	if len(owned.Packages) == 0 {
		owned = nil
	}
	return owned, sc.Err()
}
