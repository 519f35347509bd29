package inventory_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/testfiles"
)

// entry is one tar entry of a test layer.
type entry struct {
	name     string
	body     []byte
	mode     int64
	typeflag byte
	link     string
}

func file(name string, body []byte) entry { return entry{name: name, body: body, mode: 0o644} }

func symlink(name, target string) entry {
	return entry{name: name, typeflag: tar.TypeSymlink, link: target, mode: 0o777}
}

func dir(name string) entry { return entry{name: name, typeflag: tar.TypeDir, mode: 0o755} }

// tarLayer writes entries as an uncompressed tar.
func tarLayer(tb testing.TB, entries ...entry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		tf := e.typeflag
		if tf == 0 {
			tf = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Mode: e.mode, Typeflag: tf, Linkname: e.link, Format: tar.FormatPAX}
		if tf == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			tb.Fatal(err)
		}
		if tf == tar.TypeReg {
			if _, err := tw.Write(e.body); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// gzipped is the package's own test helper (export_test.go).
func gzipped(tb testing.TB, b []byte) []byte { return inventory.GzipOf(tb, b) }

func zstded(tb testing.TB, b []byte) []byte {
	tb.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return zw.EncodeAll(b, nil)
}

// zipFile is one entry of a test archive.
type zipFile struct {
	name string
	body []byte
}

// zipArchive writes a zip (jar) holding files, stored uncompressed so that nesting stays cheap.
func zipArchive(tb testing.TB, files ...zipFile) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Store})
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := w.Write(f.body); err != nil {
			tb.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// testdata reads a file of testdata/artifacts, named by its slash-separated path.
func testdata(tb testing.TB, name string) []byte {
	tb.Helper()
	return testfiles.Read(tb, "artifacts", name)
}

// treeEntries turns a folder of testdata/artifacts into layer entries under prefix.
func treeEntries(tb testing.TB, folder, prefix string) []entry {
	tb.Helper()
	var out []entry
	root := testfiles.Path(tb, "artifacts", folder)
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out = append(out, file(prefix+"/"+filepath.ToSlash(rel), b))
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
