// Package schema reads the versioned migrations each metadata store engine embeds and decides
// which of them a database still needs; each engine applies them in its own transactions.
package schema

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// ErrNewerSchema means the database was written by a newer Lading than this one.
var ErrNewerSchema = errors.New("metadata database was written by a newer version of Lading")

// Migration is one NNNN_name.sql file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Load reads dir/NNNN_name.sql from fsys, in version order. Versions need not be contiguous:
// each domain owns a range.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %q: want NNNN_name.sql", e.Name())
		}
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		if !ok || name == "" {
			return nil, fmt.Errorf("migration file %q: want NNNN_name.sql", e.Name())
		}
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %q: bad version %q", e.Name(), num)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migration files %q and %q share version %d", other, e.Name(), v)
		}
		seen[v] = e.Name()
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Pending returns the migrations of all up to version upTo that applied lacks, in order. A
// database holding a version this build does not know is ErrNewerSchema: its schema may have
// changed in ways this build would misread.
func Pending(all []Migration, applied map[int]bool, upTo int) ([]Migration, error) {
	known := make(map[int]bool, len(all))
	for _, m := range all {
		known[m.Version] = true
	}
	var newer []int
	for v := range applied {
		if !known[v] {
			newer = append(newer, v)
		}
	}
	if len(newer) > 0 {
		sort.Ints(newer)
		return nil, fmt.Errorf("%w: it has schema migration %d, which this build does not know; upgrade Lading", ErrNewerSchema, newer[0])
	}
	var out []Migration
	for _, m := range all {
		if !applied[m.Version] && m.Version <= upTo {
			out = append(out, m)
		}
	}
	return out, nil
}
