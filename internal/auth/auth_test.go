package auth

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lading-registry/lading/internal/store/sqlite"
)

func TestTokens(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := Bootstrap(ctx, db, t.TempDir(), "LAKADMIN", "s3cret", log); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := NewAuthenticator(db, Options{Now: func() time.Time { return now }})
	if _, err := a.Basic(ctx, "LAKADMIN", "s3cret"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Basic(ctx, "LAKADMIN", "wrong"); !errors.Is(err, ErrBadCredentials) {
		t.Fatal(err)
	}
	tok, exp, err := a.IssueToken(ctx, Principal{AccessKeyID: "LAKADMIN"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tok, ":") || exp.Sub(now) != TokenTTL {
		t.Fatalf("token %q expires %v", tok, exp)
	}
	if p, err := a.Basic(ctx, "AWS", tok); err != nil || p.AccessKeyID != "LAKADMIN" {
		t.Fatalf("%+v %v", p, err)
	}
	if _, err := a.Basic(ctx, "AWS", tok[:len(tok)-2]+"xx"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("tampered token: %v", err)
	}
	now = now.Add(TokenTTL)
	if _, err := a.Basic(ctx, "AWS", tok); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("expired token: %v", err)
	}
	// A token dies with its key.
	now = now.Add(-time.Hour)
	if err := db.DeleteAccessKey(ctx, "LAKADMIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Basic(ctx, "AWS", tok); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("token of a deleted key: %v", err)
	}
}

func TestNewAccessKeyShape(t *testing.T) {
	k, err := NewAccessKey("x")
	if err != nil {
		t.Fatal(err)
	}
	if len(k.ID) != 20 || !strings.HasPrefix(k.ID, "LAK") || len(k.Secret) != 40 || strings.ContainsAny(k.Secret, ":+/") {
		t.Fatalf("%+v", k)
	}
}
