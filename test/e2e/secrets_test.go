package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/sqlite"
	"github.com/lading-registry/lading/internal/testserver"
)

// assertModes checks the permission bits of paths under dir; a path ending in "?" may be missing.
func assertModes(t *testing.T, dir string, want map[string]fs.FileMode) {
	t.Helper()
	for name, mode := range want {
		name, optional := strings.CutSuffix(name, "?")
		fi, err := os.Stat(filepath.Join(dir, name))
		if optional && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Error(err)
			continue
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("%q: mode %#o, want %#o", name, got, mode)
		}
	}
}

// assertNotInFiles fails when secret appears in the bytes of the database or its WAL.
func assertNotInFiles(t *testing.T, dataDir, secret string) {
	t.Helper()
	for _, name := range []string{"lading.db", "lading.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dataDir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the secret in plain text", name)
		}
	}
}

// storedSecrets reads what the database holds for an access key and the signing keys.
func storedSecrets(t *testing.T, dataDir, accessKeyID string) map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dataDir, "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]string{}
	rows, err := db.Query("SELECT id, secret FROM access_keys WHERE id = ? UNION ALL SELECT key, value FROM settings WHERE key LIKE 'auth.%'", accessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDataDirIsPrivate: a running server's data directory and what it holds are readable by its
// user alone, and the database holds no secret in plain text.
func TestDataDirIsPrivate(t *testing.T) {
	srv := testserver.Start(t, ladingBin)
	c := newClient(t, srv)
	d := c.pushBlob("private/repo", randomBytes(1000))
	loc := c.startUpload("private/repo")
	// A registry-token login makes the token signing key.
	aws := &client{t: t, base: srv.URL(), user: "AWS", pass: "not.a-token"}
	aws.expect(aws.do("GET", "/v2/", nil, nil), http.StatusUnauthorized)

	upload := filepath.Join("uploads", filepath.Base(loc))
	assertModes(t, srv.DataDir, map[string]fs.FileMode{
		"": 0o700, "lading.db": 0o600, "lading.db-wal?": 0o600, "lading.db-shm?": 0o600, "secret.key": 0o600,
		"blobs": 0o700, "uploads": 0o700, "scratch": 0o700,
		filepath.Join("blobs", "sha256", d.Encoded()[:2], d.Encoded()): 0o400, // committed blobs are read-only
		upload: 0o700, filepath.Join(upload, "data"): 0o600,
	})
	stored := storedSecrets(t, srv.DataDir, testserver.AccessKeyID)
	for _, name := range []string{testserver.AccessKeyID, "auth.token_key"} {
		if v := stored[name]; !strings.HasPrefix(v, "v1:") || strings.Contains(v, testserver.SecretAccessKey) {
			t.Errorf("%s stored as %q, want it encrypted", name, v)
		}
	}
	assertNotInFiles(t, srv.DataDir, testserver.SecretAccessKey)
	c.expect(c.do("GET", "/v2/", nil, nil), http.StatusOK)
}

// TestOlderDataDirIsTightenedAndSealed starts on a data directory as an older Lading left it
// (world-readable, secrets in plain text): start-up tightens it, warning about each path, and
// encrypts the secrets, which keep working.
func TestOlderDataDirIsTightenedAndSealed(t *testing.T) {
	const legacyID, legacySecret = "LAKLEGACYKEY00000000", "legacy-secret-0123456789abcdefghijklmno"
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// As an older Lading made it: through the store, with secrets in plain text.
	db, err := sqlite.Open(context.Background(), filepath.Join(dataDir, "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAccessKey(context.Background(), store.AccessKey{ID: legacyID, Secret: legacySecret}); err != nil {
		t.Fatal(err)
	}
	const legacyTokenKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	if err := db.PutSetting(context.Background(), "auth.token_key", legacyTokenKey); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"blobs", "uploads"} {
		if err := os.Mkdir(filepath.Join(dataDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dataDir, "admin-credentials"), []byte("LADING_ADMIN_ACCESS_KEY_ID=x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := map[string]fs.FileMode{"": 0o755, "lading.db": 0o644, "blobs": 0o755, "uploads": 0o755, "admin-credentials": 0o644}
	for name, mode := range old {
		if err := os.Chmod(filepath.Join(dataDir, name), mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	before, err := os.ReadFile(filepath.Join(dataDir, "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(before, []byte(legacySecret)) {
		t.Fatal("the legacy database does not hold the secret in plain text: the test proves nothing")
	}

	srv := &testserver.Server{Bin: ladingBin, DataDir: dataDir, Addr: testserver.FreeAddr(t),
		Env: []string{"LADING_ADMIN_ACCESS_KEY_ID=" + testserver.AccessKeyID, "LADING_ADMIN_SECRET_ACCESS_KEY=" + testserver.SecretAccessKey}}
	t.Cleanup(srv.Kill)
	if err := srv.Restart(); err != nil {
		t.Fatalf("%v\n%s", err, srv.Logs())
	}

	tightened := srv.Lines("tightened permissions")
	for name, mode := range old {
		want := "old_mode=0755 new_mode=0700"
		if mode == 0o644 {
			want = "old_mode=0644 new_mode=0600"
		}
		path := filepath.Join(dataDir, name)
		n := 0
		for _, l := range tightened {
			if strings.Contains(l, "path="+path+" ") && strings.Contains(l, want) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d warnings for %s %s, want 1:\n%s", n, path, want, strings.Join(tightened, "\n"))
		}
	}
	if sealed := srv.Lines("encrypted secrets an older Lading stored in plain text"); len(sealed) != 1 || !strings.Contains(sealed[0], "count=2") {
		t.Errorf("want one line saying two secrets were encrypted:\n%s", strings.Join(sealed, "\n"))
	}
	assertModes(t, dataDir, map[string]fs.FileMode{
		"": 0o700, "lading.db": 0o600, "lading.db-wal?": 0o600, "lading.db-shm?": 0o600, "blobs": 0o700, "uploads": 0o700,
		"admin-credentials": 0o600, "secret.key": 0o600,
	})

	// The old secret still authenticates, and a registry token too (the token key is the same).
	legacy := &client{t: t, base: srv.URL(), user: legacyID, pass: legacySecret}
	legacy.expect(legacy.do("GET", "/v2/", nil, nil), http.StatusOK)
	wrong := &client{t: t, base: srv.URL(), user: legacyID, pass: legacySecret + "x"}
	wrong.expect(wrong.do("GET", "/v2/", nil, nil), http.StatusUnauthorized)
	stored := storedSecrets(t, dataDir, legacyID)
	for _, name := range []string{legacyID, "auth.token_key"} {
		if !strings.HasPrefix(stored[name], "v1:") {
			t.Errorf("%s stored as %q, want it encrypted", name, stored[name])
		}
	}
	assertNotInFiles(t, dataDir, legacySecret)
	assertNotInFiles(t, dataDir, legacyTokenKey)

	// Once: the next start has nothing to tighten or encrypt.
	srv.Stop()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Lines("tightened permissions")); n != len(tightened) {
		t.Errorf("restart tightened again: %d lines, had %d", n, len(tightened))
	}
	if n := len(srv.Lines("encrypted secrets an older Lading")); n != 1 {
		t.Errorf("restart encrypted again: %d lines", n)
	}
	legacy.expect(legacy.do("GET", "/v2/", nil, nil), http.StatusOK)
}

// TestStartRefusesWrongSecretKey: with the key missing or another one in its place, the server
// does not start and says why (rather than refusing every access key as invalid); the right key
// from LADING_SECRET_KEY instead of the file works.
func TestStartRefusesWrongSecretKey(t *testing.T) {
	srv := testserver.Start(t, ladingBin)
	srv.Stop()
	keyFile := filepath.Join(srv.DataDir, "secret.key")
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	other := make([]byte, 32)
	if _, err := rand.Read(other); err != nil {
		t.Fatal(err)
	}
	otherKey := base64.StdEncoding.EncodeToString(other)
	for _, tc := range []struct {
		name string
		file string // "" removes the key file
		env  string
		want string
	}{
		{"key file missing", "", "", "secret key missing"},
		{"another key file", otherKey + "\n", "", "do not decrypt with this secret key"},
		{"another key in the environment", "", otherKey, "do not decrypt with this secret key"},
		{"environment and file differ", string(key), otherKey, "hold different keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_ = os.Remove(keyFile)
			if tc.file != "" {
				if err := os.WriteFile(keyFile, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(ladingBin, "serve", "--data-dir", srv.DataDir, "--addr", testserver.FreeAddr(t), "--db-source", "none")
			cmd.Env = append(os.Environ(), append(srv.Env, "LADING_SECRET_KEY="+tc.env)...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatal("serve started")
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("want %q in:\n%s", tc.want, out)
			}
		})
	}

	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	srv.Env = append(srv.Env, "LADING_SECRET_KEY="+strings.TrimSpace(string(key)))
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv)
	c.expect(c.do("GET", "/v2/", nil, nil), http.StatusOK)
	if _, err := os.Stat(keyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a key file was made though the key came from the environment (%v)", err)
	}
}
