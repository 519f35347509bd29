package scan_test

import (
	"archive/tar"
	"os"
)

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

// writeTar writes a tar holding one regular file.
func writeTar(path, name, content string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
