package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/store"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

const (
	sealedKeyID  = "LAKSEALEDSEALED00001"
	sealedSecret = "sealed-secret-0123456789abcdefghijklmnop"
	adminKeyID   = "LAKENVADMIN000000001"
	adminSecret  = "env-admin-secret-0123456789abcdefghijkl"
)

// openStore opens (creating) the metadata database of dataDir.
func openStore(t *testing.T, dataDir string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(dataDir, "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// sealedStore opens dataDir's secrets as Lading does at start.
func sealedStore(t *testing.T, db *sqlite.DB, dataDir, envKey string) *SealedKeys {
	t.Helper()
	s, err := OpenSecrets(context.Background(), db, SecretsOptions{DataDir: dataDir, Key: envKey, Logger: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	return SealKeys(db, s)
}

// rawSecrets returns what the database holds for each access key and auth setting.
func rawSecrets(t *testing.T, db *sqlite.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	rows, err := db.Reader().Query("SELECT id, secret FROM access_keys UNION ALL SELECT key, value FROM settings WHERE key LIKE 'auth.%'")
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

func randomKeyBase64(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// A copy of the database without the key file gives no secret away and cannot be opened
// without the key; with the wrong key it is refused, saying so; with the right one it works.
func TestSecretsSurviveOnlyWithTheirKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openStore(t, dir)
	keys := sealedStore(t, db, dir, "")
	if err := Bootstrap(ctx, keys, dir, adminKeyID, adminSecret, discardLog()); err != nil {
		t.Fatal(err)
	}
	if err := keys.CreateAccessKey(ctx, store.AccessKey{ID: sealedKeyID, Secret: sealedSecret}); err != nil {
		t.Fatal(err)
	}
	a := NewAuthenticator(keys, Options{})
	tok, _, err := a.IssueToken(ctx, Principal{AccessKeyID: sealedKeyID})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	sig, err := a.SignResource(ctx, "r", exp)
	if err != nil {
		t.Fatal(err)
	}
	tokenKey, err := a.tokenKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	urlKey, err := a.urlKey(ctx)
	if err != nil {
		t.Fatal(err)
	}

	raw := rawSecrets(t, db)
	for _, name := range []string{adminKeyID, sealedKeyID, tokenKeySetting, urlKeySetting} {
		if !strings.HasPrefix(raw[name], sealedPrefix) {
			t.Errorf("%s stored as %q, want it encrypted", name, raw[name])
		}
	}
	if err := db.Close(); err != nil { // checkpoints the WAL into the file
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join(dir, "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	for name, plain := range map[string][]byte{
		"access key secret": []byte(sealedSecret), "admin secret": []byte(adminSecret),
		"token key (hex)": []byte(hex.EncodeToString(tokenKey)), "token key": tokenKey,
		"url key (hex)": []byte(hex.EncodeToString(urlKey)), "url key": urlKey,
	} {
		if bytes.Contains(file, plain) {
			t.Errorf("the database file holds the %s in plain text", name)
		}
	}
	keyFile, err := os.ReadFile(filepath.Join(dir, SecretKeyFile))
	if err != nil {
		t.Fatal(err)
	}

	copyDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(copyDir, "lading.db"), file, 0o600); err != nil {
		t.Fatal(err)
	}
	copied := openStore(t, copyDir)
	for _, tc := range []struct {
		name    string
		envKey  string
		wantErr error
	}{
		{"no key", "", ErrSecretKeyMissing},
		{"wrong key", randomKeyBase64(t), ErrWrongSecretKey},
		{"the key", strings.TrimSpace(string(keyFile)), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := OpenSecrets(ctx, copied, SecretsOptions{DataDir: copyDir, Key: tc.envKey, Logger: discardLog()})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("OpenSecrets: %v, want %v", err, tc.wantErr)
			}
			if _, statErr := os.Stat(filepath.Join(copyDir, SecretKeyFile)); !errors.Is(statErr, os.ErrNotExist) {
				t.Fatalf("a key file was made beside the copy (%v)", statErr)
			}
			if err != nil {
				return
			}
			a := NewAuthenticator(SealKeys(copied, s), Options{})
			for id, secret := range map[string]string{sealedKeyID: sealedSecret, adminKeyID: adminSecret} {
				if _, err := a.Basic(ctx, id, secret); err != nil {
					t.Errorf("%s: %v", id, err)
				}
			}
			if p, err := a.Basic(ctx, "AWS", tok); err != nil || p.AccessKeyID != sealedKeyID {
				t.Errorf("token issued before the copy: %+v %v", p, err)
			}
			if err := a.VerifyResource(ctx, "r", exp.Unix(), sig); err != nil {
				t.Errorf("URL signed before the copy: %v", err)
			}
		})
	}
}

// What an older Lading stored in plain text is encrypted at the next start, once, and keeps
// working: the access keys' secrets and the signing keys (so tokens issued before stay valid).
func TestOpenSecretsSealsPlainValues(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openStore(t, dir)
	// As an older Lading left it: the raw store, no key file.
	if err := Bootstrap(ctx, db, dir, adminKeyID, adminSecret, discardLog()); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAccessKey(ctx, store.AccessKey{ID: sealedKeyID, Secret: sealedSecret}); err != nil {
		t.Fatal(err)
	}
	old := NewAuthenticator(db, Options{})
	tok, _, err := old.IssueToken(ctx, Principal{AccessKeyID: sealedKeyID})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	sig, err := old.SignResource(ctx, "r", exp)
	if err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	s, err := OpenSecrets(ctx, db, SecretsOptions{DataDir: dir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "encrypted secrets an older Lading stored in plain text"); n != 1 {
		t.Fatalf("want one line about sealing, got %d:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "count=4") {
		t.Fatalf("want count=4 (two access keys, two signing keys):\n%s", logs.String())
	}
	for name, v := range rawSecrets(t, db) {
		if !strings.HasPrefix(v, sealedPrefix) {
			t.Errorf("%s still stored as %q", name, v)
		}
	}
	a := NewAuthenticator(SealKeys(db, s), Options{})
	if _, err := a.Basic(ctx, sealedKeyID, sealedSecret); err != nil {
		t.Fatalf("old secret after sealing: %v", err)
	}
	if _, err := a.Basic(ctx, sealedKeyID, "wrong"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong secret after sealing: %v", err)
	}
	if p, err := a.Basic(ctx, "AWS", tok); err != nil || p.AccessKeyID != sealedKeyID {
		t.Fatalf("token issued before sealing: %+v %v", p, err)
	}
	if err := a.VerifyResource(ctx, "r", exp.Unix(), sig); err != nil {
		t.Fatalf("URL signed before sealing: %v", err)
	}

	logs.Reset()
	if _, err := OpenSecrets(ctx, db, SecretsOptions{DataDir: dir, Logger: log}); err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Fatalf("second start logged:\n%s", logs.String())
	}
}

// The bootstrap admin from the environment compares its secret with the stored one: through
// SealedKeys that comparison sees the plain secret, so a restart keeps the row and a changed
// secret rotates it.
func TestBootstrapThroughSealedKeys(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openStore(t, dir)
	keys := sealedStore(t, db, dir, "")
	if err := Bootstrap(ctx, keys, dir, adminKeyID, adminSecret, discardLog()); err != nil {
		t.Fatal(err)
	}
	stored := rawSecrets(t, db)[adminKeyID]

	// A restart with the same environment changes nothing (sealing again would: the nonce is new).
	keys = sealedStore(t, db, dir, "")
	if err := Bootstrap(ctx, keys, dir, adminKeyID, adminSecret, discardLog()); err != nil {
		t.Fatal(err)
	}
	if got := rawSecrets(t, db)[adminKeyID]; got != stored {
		t.Fatalf("restart rewrote the admin key: %q -> %q", stored, got)
	}
	a := NewAuthenticator(keys, Options{})
	if _, err := a.Basic(ctx, adminKeyID, adminSecret); err != nil {
		t.Fatal(err)
	}

	// The environment is authoritative: a new secret replaces the old one.
	if err := Bootstrap(ctx, keys, dir, adminKeyID, "rotated-"+adminSecret, discardLog()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Basic(ctx, adminKeyID, "rotated-"+adminSecret); err != nil {
		t.Fatalf("rotated secret: %v", err)
	}
	if _, err := a.Basic(ctx, adminKeyID, adminSecret); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("old secret after rotation: %v", err)
	}
}

// The access key id is authenticated data: a ciphertext moved to another row does not decrypt.
func TestSealedSecretBoundToItsKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openStore(t, dir)
	keys := sealedStore(t, db, dir, "")
	for _, id := range []string{sealedKeyID, adminKeyID} {
		if err := keys.CreateAccessKey(ctx, store.AccessKey{ID: id, Secret: "secret-of-" + id}); err != nil {
			t.Fatal(err)
		}
	}
	rw, err := sql.Open("sqlite", filepath.Join(dir, "lading.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	if _, err := rw.Exec("UPDATE access_keys SET secret = (SELECT secret FROM access_keys WHERE id = ?) WHERE id = ?", sealedKeyID, adminKeyID); err != nil {
		t.Fatal(err)
	}
	a := NewAuthenticator(keys, Options{})
	if _, err := a.Basic(ctx, adminKeyID, "secret-of-"+sealedKeyID); !errors.Is(err, ErrWrongSecretKey) {
		t.Fatalf("moved ciphertext: %v, want ErrWrongSecretKey", err)
	}
	if _, err := a.Basic(ctx, sealedKeyID, "secret-of-"+sealedKeyID); err != nil {
		t.Fatalf("the original row: %v", err)
	}
}

func TestSecretKeySources(t *testing.T) {
	good := randomKeyBase64(t)
	for _, tc := range []struct {
		name      string
		file, env string // "" means none
		wantErr   string
		wantFrom  string
	}{
		{name: "none: a file is made", wantFrom: "file"},
		{name: "file", file: good + "\n", wantFrom: "file"},
		{name: "environment", env: good, wantFrom: SecretKeyEnv},
		{name: "both, the same", file: good + "\n", env: good, wantFrom: SecretKeyEnv},
		{name: "both, different", file: good + "\n", env: randomKeyBase64(t), wantErr: "hold different keys"},
		{name: "environment not base64", env: "not a key", wantErr: SecretKeyEnv + ": want the base64 of 32 random bytes"},
		{name: "environment too short", env: base64.StdEncoding.EncodeToString([]byte("short")), wantErr: "want the base64 of 32"},
		{name: "file garbled", file: "garbled\n", wantErr: "secret key file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, SecretKeyFile)
			if tc.file != "" {
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			db := openStore(t, dir)
			s, err := OpenSecrets(context.Background(), db, SecretsOptions{DataDir: dir, Key: tc.env, Logger: discardLog()})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want it to say %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := path
			if tc.wantFrom == SecretKeyEnv {
				want = SecretKeyEnv
			}
			if s.source != want {
				t.Fatalf("key from %s, want %s", s.source, want)
			}
			if tc.file == "" && tc.env == "" {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Fatalf("key file mode %#o", fi.Mode().Perm())
				}
			}
			if tc.file == "" && tc.env != "" {
				if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("a key file was made though the key came from the environment (%v)", err)
				}
			}
		})
	}
}

// After the key is lost, Forget makes a new one and drops what only the old one could read:
// access keys are deleted, signing keys replaced (so their tokens die).
func TestForgetAfterLostKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openStore(t, dir)
	keys := sealedStore(t, db, dir, "")
	if err := keys.CreateAccessKey(ctx, store.AccessKey{ID: sealedKeyID, Secret: sealedSecret}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := NewAuthenticator(keys, Options{}).IssueToken(ctx, Principal{AccessKeyID: sealedKeyID})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, SecretKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSecrets(ctx, db, SecretsOptions{DataDir: dir, Logger: discardLog()}); !errors.Is(err, ErrSecretKeyMissing) {
		t.Fatalf("lost key: %v, want ErrSecretKeyMissing", err)
	}
	s, err := OpenSecrets(ctx, db, SecretsOptions{DataDir: dir, Logger: discardLog(), Forget: true})
	if err != nil {
		t.Fatal(err)
	}
	keys = SealKeys(db, s)
	if _, err := keys.AccessKey(ctx, sealedKeyID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("access key sealed by the lost key: %v, want it deleted", err)
	}
	if _, err := NewAuthenticator(keys, Options{}).Basic(ctx, "AWS", tok); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("token signed with the lost signing key: %v", err)
	}
	// And the next start is an ordinary one.
	if _, err := OpenSecrets(ctx, db, SecretsOptions{DataDir: dir, Logger: discardLog()}); err != nil {
		t.Fatal(err)
	}
}

// SigV4 verification derives its signing key from the secret: it must get the plain one.
func TestSigV4WithSealedKeys(t *testing.T) {
	dir := t.TempDir()
	db := openStore(t, dir)
	keys := sealedStore(t, db, dir, "")
	if err := Bootstrap(context.Background(), keys, dir, testKeyID, testSecret, discardLog()); err != nil {
		t.Fatal(err)
	}
	srv := sigServer(t, NewAuthenticator(keys, Options{}))
	if code, body := send(t, srv, signOpts{body: `{}`}); code != 200 || body != testKeyID+" us-west-2" {
		t.Fatalf("%d %s", code, body)
	}
	if code, body := send(t, srv, signOpts{body: `{}`, secret: "wrongwrongwrongwrongwrongwrongwrongwrong"}); code != 400 || body != CodeInvalidSignature {
		t.Fatalf("wrong secret: %d %s", code, body)
	}
}

// lateReader is a KeyStore whose first read of the key misses it, as a node does whose
// read came just before another node (starting at the same time) created the key.
type lateReader struct {
	KeyStore
	missed bool
}

func (l *lateReader) AccessKey(ctx context.Context, id string) (store.AccessKey, error) {
	if !l.missed {
		l.missed = true
		return store.AccessKey{}, store.ErrNotFound
	}
	return l.KeyStore.AccessKey(ctx, id)
}

// Nodes sharing a store start together with the same bootstrap admin: the one that loses the
// race to create the key starts all the same.
func TestBootstrapRaceWithAnotherNode(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openStore(t, dir)
	if err := Bootstrap(ctx, sealedStore(t, db, dir, ""), dir, adminKeyID, adminSecret, discardLog()); err != nil {
		t.Fatal(err)
	}
	late := &lateReader{KeyStore: sealedStore(t, db, dir, "")}
	if err := Bootstrap(ctx, late, dir, adminKeyID, adminSecret, discardLog()); err != nil {
		t.Fatalf("second node's bootstrap: %v", err)
	}
	if !late.missed {
		t.Fatal("the race was not played")
	}
}
