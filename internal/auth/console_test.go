package auth

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"
)

func TestConsoleSignIn(t *testing.T) {
	c := newClock()
	a := newTestAuthenticatorWith(t, Options{Now: c.now, Throttle: testThrottle})
	req := httptest.NewRequest("POST", "/console/signin", nil)
	tests := []struct {
		name       string
		id, secret string
		want       error
	}{
		{"right", testKeyID, testSecret, nil},
		{"wrong secret", testKeyID, "nope", ErrBadCredentials},
		{"unknown key", "LAKNOSUCHKEY", testSecret, ErrBadCredentials},
		{"registry token user", "AWS", "token", ErrBadCredentials},
		{"empty", "", "", ErrBadCredentials},
	}
	for _, tt := range tests {
		p, err := a.SignIn(req, tt.id, tt.secret)
		if !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		if err == nil && p.AccessKeyID != testKeyID {
			t.Errorf("%s: principal %+v", tt.name, p)
		}
	}
	// Four failures above: past the three free ones, even the right secret waits.
	if _, err := a.SignIn(req, testKeyID, testSecret); !errors.Is(err, ErrThrottled) {
		t.Errorf("after failures: %v, want throttled", err)
	}
	c.advance(testThrottle.Window)
	if _, err := a.SignIn(req, testKeyID, testSecret); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

func TestConsoleSessionKeyAndPrincipal(t *testing.T) {
	ctx := context.Background()
	a := newTestAuthenticator(t, time.Now)
	k1, err := a.SessionKey(ctx)
	if err != nil || len(k1) != 32 {
		t.Fatalf("session key: %d bytes, %v", len(k1), err)
	}
	if k2, err := a.SessionKey(ctx); err != nil || !bytes.Equal(k1, k2) {
		t.Errorf("the session key changed between calls: %v", err)
	}
	if p, err := a.Principal(ctx, testKeyID); err != nil || p.AccessKeyID != testKeyID {
		t.Errorf("principal: %+v %v", p, err)
	}
	if _, err := a.Principal(ctx, "LAKGONE"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("principal of an unknown key: %v", err)
	}
}
