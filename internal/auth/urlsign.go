package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

const urlKeySetting = "auth.url_key"

// urlKey is the key download URLs are signed with, kept in the metadata store so that every
// node accepts a URL any node issued.
func (a *Authenticator) urlKey(ctx context.Context) ([]byte, error) {
	v, err := a.keys.SettingOrInit(ctx, urlKeySetting, func() (string, error) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		return hex.EncodeToString(b), nil
	})
	if err != nil {
		return nil, fmt.Errorf("url signing key: %w", err)
	}
	return hex.DecodeString(v)
}

func urlMAC(key []byte, resource string, expires int64) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(resource))
	m.Write([]byte{0})
	m.Write([]byte(strconv.FormatInt(expires, 10)))
	return m.Sum(nil)
}

// SignResource returns a signature granting access to resource (an opaque string naming what
// may be fetched) until exp, as a presigned S3 URL does.
func (a *Authenticator) SignResource(ctx context.Context, resource string, exp time.Time) (string, error) {
	key, err := a.urlKey(ctx)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(urlMAC(key, resource, exp.Unix())), nil
}

// VerifyResource checks a signature made by SignResource. It returns ErrTokenExpired once
// expires (Unix seconds) has passed and ErrBadCredentials for a wrong signature.
func (a *Authenticator) VerifyResource(ctx context.Context, resource string, expires int64, signature string) error {
	key, err := a.urlKey(ctx)
	if err != nil {
		return err
	}
	got, err := base64.RawURLEncoding.DecodeString(signature)
	if err != nil || !hmac.Equal(got, urlMAC(key, resource, expires)) {
		return ErrBadCredentials
	}
	if a.now().Unix() >= expires {
		return ErrTokenExpired
	}
	return nil
}
