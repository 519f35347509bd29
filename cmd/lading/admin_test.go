package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-registry/lading/internal/app"
	"github.com/lading-registry/lading/internal/auth"
)

// lading runs a lading command in-process and returns its standard output.
func lading(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// The access-key commands store secrets encrypted, as the server does, in a private data
// directory; without the key they refuse to run; reset-secret-key drops what the lost key held.
func TestAccessKeyCommandsSealSecrets(t *testing.T) {
	t.Setenv(auth.SecretKeyEnv, "")
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	out, err := lading(t, "admin", "access-key", "create", "--data-dir", dir, "--description", "ci", "--preset", "AdministratorAccess")
	if err != nil {
		t.Fatal(err)
	}
	var id, secret string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "AccessKeyId: "); ok {
			id = v
		}
		if v, ok := strings.CutPrefix(line, "SecretAccessKey: "); ok {
			secret = v
		}
	}
	if id == "" || secret == "" {
		t.Fatalf("create printed %q", out)
	}
	for name, want := range map[string]os.FileMode{"": 0o700, app.MetaFile: 0o600, auth.SecretKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%q: mode %#o, want %#o", name, fi.Mode().Perm(), want)
		}
	}

	meta, err := app.OpenMeta(ctx, dir, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := meta.AccessKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Secret == secret || !strings.HasPrefix(raw.Secret, "v1:") {
		t.Fatalf("stored secret %q, want it encrypted", raw.Secret)
	}
	keys, err := app.OpenKeys(ctx, meta, dir, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.NewAuthenticator(keys, auth.Options{}).Basic(ctx, id, secret); err != nil {
		t.Fatalf("the created key does not authenticate: %v", err)
	}
	_ = meta.Close()

	if out, err := lading(t, "admin", "access-key", "list", "--data-dir", dir); err != nil || !strings.Contains(out, id) || strings.Contains(out, secret) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if _, err := lading(t, "admin", "reset-secret-key", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("reset without --yes: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, auth.SecretKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := lading(t, "admin", "access-key", "list", "--data-dir", dir); !errors.Is(err, auth.ErrSecretKeyMissing) {
		t.Fatalf("list without the key: %v, want ErrSecretKeyMissing", err)
	}
	if _, err := lading(t, "admin", "reset-secret-key", "--yes", "--data-dir", dir); err != nil {
		t.Fatal(err)
	}
	if out, err := lading(t, "admin", "access-key", "list", "--data-dir", dir); err != nil || strings.Contains(out, id) {
		t.Fatalf("list after reset: %v\n%s", err, out)
	}
	if _, err := lading(t, "admin", "access-key", "delete", "--data-dir", dir, id); err == nil {
		t.Fatal("deleting a deleted key succeeded")
	}
}
