package vulndb

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lading-registry/lading/internal/advisory"
)

// source is one input of an import: an all.zip, another zip, a folder of records or a
// single record. A source that holds an ecosystem's complete set of records (an all.zip in
// an ecosystem folder, as OSV's bucket lays them out) is a snapshot of that ecosystem:
// records of the ecosystem that it lacks have been deleted upstream.
type source struct {
	path     string
	kind     sourceKind
	snapshot string // the ecosystem this source is complete for, or ""
}

type sourceKind int

const (
	zipSource sourceKind = iota
	dirSource
	fileSource
)

// resolveSources turns import paths into sources: an `all.zip` file (a snapshot of the
// ecosystem named by its folder), any other .zip, a .json record, a folder in OSV's bucket
// layout (`<Ecosystem>/all.zip`), an ecosystem folder holding all.zip, or a folder of
// OSV JSON records (searched recursively).
func resolveSources(paths []string) ([]source, error) {
	if len(paths) == 0 {
		return nil, errors.New("nothing to import: give all.zip files or folders")
	}
	var out []source
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			switch {
			case strings.EqualFold(filepath.Base(p), "all.zip"):
				out = append(out, source{path: p, kind: zipSource, snapshot: ecosystemOfFolder(filepath.Dir(p))})
			case strings.EqualFold(filepath.Ext(p), ".zip"):
				out = append(out, source{path: p, kind: zipSource})
			case strings.EqualFold(filepath.Ext(p), ".json"):
				out = append(out, source{path: p, kind: fileSource})
			default:
				return nil, fmt.Errorf("%s: not a .zip or .json file", p)
			}
			continue
		}
		if z := filepath.Join(p, "all.zip"); isFile(z) {
			out = append(out, source{path: z, kind: zipSource, snapshot: ecosystemOfFolder(p)})
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var zips []source
		for _, e := range entries {
			if z := filepath.Join(p, e.Name(), "all.zip"); e.IsDir() && isFile(z) {
				zips = append(zips, source{path: z, kind: zipSource, snapshot: e.Name()})
			}
		}
		if len(zips) > 0 {
			sort.Slice(zips, func(i, j int) bool { return zips[i].path < zips[j].path })
			out = append(out, zips...)
			continue
		}
		out = append(out, source{path: p, kind: dirSource})
	}
	return out, nil
}

func ecosystemOfFolder(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	name := filepath.Base(abs)
	if name == "." || name == string(filepath.Separator) {
		return ""
	}
	return name
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// recordFunc receives one raw record and where it came from (for messages).
type recordFunc func(where string, raw []byte) error

// each calls fn for every record of the source.
func (s source) each(ctx context.Context, fn recordFunc) error {
	switch s.kind {
	case zipSource:
		return eachInZipFile(ctx, s.path, fn)
	case fileSource:
		raw, err := readBounded(s.path)
		if err != nil {
			return err
		}
		return fn(s.path, raw)
	default:
		return filepath.WalkDir(s.path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if d.IsDir() || !strings.EqualFold(filepath.Ext(p), ".json") || !d.Type().IsRegular() {
				return nil
			}
			raw, err := readBounded(p)
			if err != nil {
				return err
			}
			return fn(p, raw)
		})
	}
}

func readBounded(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, advisory.MaxRecordSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if len(raw) > advisory.MaxRecordSize {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", p, advisory.ErrInvalidRecord, advisory.MaxRecordSize)
	}
	return raw, nil
}

// ErrCorruptArchive marks a zip that cannot be read completely.
var ErrCorruptArchive = errors.New("corrupt archive")

func eachInZipFile(ctx context.Context, path string, fn recordFunc) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return eachInZip(ctx, f, fi.Size(), path, fn)
}

// eachInZip reads the .json entries of a zip, one at a time and each bounded by
// MaxRecordSize, so a hostile archive cannot make it hold more than one record in memory.
// archive/zip checks each entry's size and CRC as it is read.
func eachInZip(ctx context.Context, r io.ReaderAt, size int64, name string, fn recordFunc) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", name, ErrCorruptArchive, err)
	}
	for _, zf := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if zf.FileInfo().IsDir() || !strings.EqualFold(filepath.Ext(zf.Name), ".json") {
			continue
		}
		where := name + ":" + zf.Name
		if zf.UncompressedSize64 > advisory.MaxRecordSize {
			return fmt.Errorf("%s: %w: larger than %d bytes", where, advisory.ErrInvalidRecord, advisory.MaxRecordSize)
		}
		rc, err := zf.Open()
		if err != nil {
			return fmt.Errorf("%s: %w: %w", where, ErrCorruptArchive, err)
		}
		raw, err := io.ReadAll(io.LimitReader(rc, advisory.MaxRecordSize+1))
		_ = rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %w: %w", where, ErrCorruptArchive, err)
		}
		if len(raw) > advisory.MaxRecordSize {
			return fmt.Errorf("%s: %w: larger than %d bytes", where, advisory.ErrInvalidRecord, advisory.MaxRecordSize)
		}
		if err := fn(where, raw); err != nil {
			return err
		}
	}
	return nil
}

// countZipRecords counts the .json entries of a zip (for progress), 0 when unreadable.
func countZipRecords(path string) int64 {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return 0
	}
	defer zr.Close()
	var n int64
	for _, f := range zr.File {
		if !f.FileInfo().IsDir() && strings.EqualFold(filepath.Ext(f.Name), ".json") {
			n++
		}
	}
	return n
}
