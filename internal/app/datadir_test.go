package app

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/store"
)

func perm(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// A new data directory is private from the start, the SQLite files included: SQLite gives
// lading.db-wal and lading.db-shm the mode of lading.db, which Lading creates 0600.
func TestOpenMakesDataDirPrivate(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	a, err := Open(ctx, Config{DataDir: dir, RegistryID: "000000000000", Logger: slog.New(slog.DiscardHandler),
		AdminAccessKeyID: "LAKTESTADMIN00000000", AdminSecretAccessKey: "test-secret-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// A write, so that the WAL holds something while the database is open.
	if err := a.meta.CreateAccessKey(ctx, store.AccessKey{ID: "LAKOTHER", Secret: "x"}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{
		"": 0o700, "blobs": 0o700, "uploads": 0o700, scratchDir: 0o700,
		MetaFile: 0o600, MetaFile + "-wal": 0o600, MetaFile + "-shm": 0o600, auth.SecretKeyFile: 0o600,
	} {
		if got := perm(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%q: mode %#o, want %#o", name, got, want)
		}
	}
}

// An older Lading's data directory is tightened at start, one warning per path naming the old
// and new modes, once; what is tight enough and the files in the private directories are left.
func TestSecureDataDirTightens(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cases := []struct {
		path      string
		isDir     bool
		mode, new fs.FileMode // new == mode: left alone
	}{
		{"", true, 0o755, 0o700},
		{"blobs", true, 0o755, 0o700},
		{filepath.Join("blobs", "sha256"), true, 0o755, 0o755},
		{filepath.Join("blobs", "sha256", "ab"), true, 0o755, 0o755},
		{filepath.Join("blobs", "sha256", "ab", "abcdef"), false, 0o644, 0o644},
		{"uploads", true, 0o777, 0o700},
		{scratchDir, true, 0o700, 0o700},
		{vulnDBCacheDir, true, 0o750, 0o700},
		{MetaFile, false, 0o644, 0o600},
		{MetaFile + "-wal", false, 0o644, 0o600},
		{MetaFile + "-shm", false, 0o664, 0o600},
		{auth.CredentialsFile, false, 0o644, 0o600},
		{auth.SecretKeyFile, false, 0o440, 0o400},
		{auth.CredentialsFile + ".other", false, 0o644, 0o644},
	}
	for _, tc := range cases {
		p := filepath.Join(dir, tc.path)
		if tc.isDir {
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	changed := 0
	for _, tc := range cases {
		if err := os.Chmod(filepath.Join(dir, tc.path), tc.mode); err != nil {
			t.Fatal(err)
		}
		if tc.new != tc.mode {
			changed++
		}
	}

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if err := secureDataDir(dir, log); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		p := filepath.Join(dir, tc.path)
		if got := perm(t, p); got != tc.new {
			t.Errorf("%q: mode %#o, want %#o", tc.path, got, tc.new)
		}
		line := fmt.Sprintf("path=%s old_mode=%#o new_mode=%#o", p, tc.mode, tc.new)
		if warned, want := strings.Contains(logs.String(), line), tc.mode != tc.new; warned != want {
			t.Errorf("%q: warned %v, want %v (%s)", tc.path, warned, want, line)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != changed {
		t.Errorf("%d warnings, want %d:\n%s", n, changed, logs.String())
	}

	logs.Reset()
	if err := secureDataDir(dir, log); err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Errorf("second start warned again:\n%s", logs.String())
	}
}
