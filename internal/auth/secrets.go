package auth

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/lading-registry/lading/internal/store"
)

// Secrets at rest. SigV4 verification derives its signing key from the secret itself, so an
// access key's secret cannot be hashed: it is encrypted (AES-256-GCM) under a key kept outside
// the metadata database, so that a copy of lading.db alone gives no secret away. The registry
// token and download URL signing keys are stored the same way: either lets its holder forge
// credentials.

// SecretKeyFile is the name, in the data directory, of the key secrets are encrypted with.
const SecretKeyFile = "secret.key"

// SecretKeyEnv names the environment variable that can hold the key instead (base64 of 32
// bytes), for deployments that keep it out of the data directory.
const SecretKeyEnv = "LADING_SECRET_KEY"

// Errors of the secret key.
var (
	// ErrSecretKeyMissing: the database holds encrypted secrets but no key is at hand. A new
	// key would lock them out, so none is made.
	ErrSecretKeyMissing = errors.New("secret key missing")
	// ErrWrongSecretKey: a stored secret does not decrypt with the key at hand.
	ErrWrongSecretKey = errors.New("stored secrets do not decrypt with this secret key")
)

// sealedPrefix marks an encrypted value, so that the plain values an older Lading stored are
// recognised; the version leaves room for another scheme.
const sealedPrefix = "v1:"

const secretKeySize = 32 // AES-256

// Sealer encrypts and decrypts stored secrets.
type Sealer struct {
	aead   cipher.AEAD
	source string // where the key came from, for errors
}

// NewSealer returns a Sealer with a 32-byte key; source names where the key came from.
func NewSealer(key []byte, source string) (*Sealer, error) {
	if len(key) != secretKeySize {
		return nil, fmt.Errorf("secret key from %s: %d bytes, want %d", source, len(key), secretKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead, source: source}, nil
}

// The additional data binds a ciphertext to its row, so that it cannot be moved to another
// access key (or setting) and decrypt there.
func accessKeyAD(id string) []byte { return []byte("lading access key\x00" + id) }
func settingAD(key string) []byte  { return []byte("lading setting\x00" + key) }

func isSealed(v string) bool { return strings.HasPrefix(v, sealedPrefix) }

func (s *Sealer) seal(plain string, ad []byte) (string, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := s.aead.Seal(nonce, nonce, []byte(plain), ad)
	return sealedPrefix + base64.StdEncoding.EncodeToString(out), nil
}

// open decrypts a sealed value.
func (s *Sealer) open(sealed string, ad []byte) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sealed, sealedPrefix))
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return "", errors.New("malformed encrypted value")
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], ad)
	if err != nil {
		return "", fmt.Errorf("%w (key from %s)", ErrWrongSecretKey, s.source)
	}
	return string(plain), nil
}

// reveal returns the plain value of a stored one. A value without the prefix was stored in
// plain text by an older Lading (or one still running beside this one); it is used as is and
// sealed at the next start.
func (s *Sealer) reveal(v string, ad []byte) (string, error) {
	if !isSealed(v) {
		return v, nil
	}
	return s.open(v, ad)
}

// SealedKeys is a KeyStore that encrypts secrets on their way into the store and decrypts them on
// their way out; every setting that passes through it is a secret (the signing keys).
type SealedKeys struct {
	inner  KeyStore
	sealer *Sealer
}

// A method added to KeyStore must be added here too, deciding whether it carries a secret.
var _ KeyStore = (*SealedKeys)(nil)

// SealKeys wraps keys so that the secrets it stores are encrypted by s.
func SealKeys(keys KeyStore, s *Sealer) *SealedKeys { return &SealedKeys{inner: keys, sealer: s} }

// AccessKey returns an access key with its secret decrypted.
func (k *SealedKeys) AccessKey(ctx context.Context, id string) (store.AccessKey, error) {
	ak, err := k.inner.AccessKey(ctx, id)
	if err != nil {
		return ak, err
	}
	if ak.Secret, err = k.sealer.reveal(ak.Secret, accessKeyAD(ak.ID)); err != nil {
		return store.AccessKey{}, fmt.Errorf("access key %s: %w", ak.ID, err)
	}
	return ak, nil
}

// CreateAccessKey stores an access key with its secret encrypted.
func (k *SealedKeys) CreateAccessKey(ctx context.Context, ak store.AccessKey) error {
	var err error
	if ak.Secret, err = k.sealer.seal(ak.Secret, accessKeyAD(ak.ID)); err != nil {
		return err
	}
	return k.inner.CreateAccessKey(ctx, ak)
}

// ListAccessKeys returns every access key with its secret decrypted.
func (k *SealedKeys) ListAccessKeys(ctx context.Context) ([]store.AccessKey, error) {
	keys, err := k.inner.ListAccessKeys(ctx)
	if err != nil {
		return nil, err
	}
	for i := range keys {
		if keys[i].Secret, err = k.sealer.reveal(keys[i].Secret, accessKeyAD(keys[i].ID)); err != nil {
			return nil, fmt.Errorf("access key %s: %w", keys[i].ID, err)
		}
	}
	return keys, nil
}

// DeleteAccessKey removes an access key.
func (k *SealedKeys) DeleteAccessKey(ctx context.Context, id string) error {
	return k.inner.DeleteAccessKey(ctx, id)
}

// UpdateAccessKeyPolicy replaces an access key's policy; it holds no secret.
func (k *SealedKeys) UpdateAccessKeyPolicy(ctx context.Context, id, preset, policy string) error {
	return k.inner.UpdateAccessKeyPolicy(ctx, id, preset, policy)
}

// SettingOrInit is the store's SettingOrInit with the value encrypted.
func (k *SealedKeys) SettingOrInit(ctx context.Context, key string, init func() (string, error)) (string, error) {
	v, err := k.inner.SettingOrInit(ctx, key, func() (string, error) {
		v, err := init()
		if err != nil {
			return "", err
		}
		return k.sealer.seal(v, settingAD(key))
	})
	if err != nil {
		return "", err
	}
	if v, err = k.sealer.reveal(v, settingAD(key)); err != nil {
		return "", fmt.Errorf("setting %s: %w", key, err)
	}
	return v, nil
}

// SecretStore is what sealing the stored secrets needs from the metadata store.
type SecretStore interface {
	ListAccessKeys(ctx context.Context) ([]store.AccessKey, error)
	DeleteAccessKey(ctx context.Context, id string) error
	Setting(ctx context.Context, key string) (string, error)
	// ReplaceSecrets applies each change whose Old is still stored, leaving no copy of the old
	// value in the database files, and returns how many applied.
	ReplaceSecrets(ctx context.Context, changes []store.SecretChange) (int, error)
}

// SecretsOptions say where the secret key is and what to do with secrets it cannot decrypt.
type SecretsOptions struct {
	// DataDir holds SecretKeyFile, created on first start when Key is empty.
	DataDir string
	// Key is the base64 key from the environment (SecretKeyEnv); empty means the file.
	Key    string
	Logger *slog.Logger
	// Forget is for after the key was lost: a new key is made even though secrets sealed by
	// the old one are stored, and those are dropped: the access keys deleted, the signing keys
	// replaced (registry tokens and download URLs issued before stop working).
	Forget bool
}

// OpenSecrets returns the Sealer of a data directory's secrets, after encrypting the secrets
// an older Lading stored in plain text. A stored secret that does not decrypt with the key is
// an error (ErrWrongSecretKey), so that a wrong key stops start-up with a message saying so
// instead of turning every access key into "invalid credentials"; with no key at all while
// encrypted secrets are stored, it is ErrSecretKeyMissing.
func OpenSecrets(ctx context.Context, st SecretStore, o SecretsOptions) (*Sealer, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	path := filepath.Join(o.DataDir, SecretKeyFile)
	key, source, err := loadSecretKey(path, o.Key)
	if err != nil {
		return nil, err
	}
	if key == nil {
		if !o.Forget {
			if sealed, err := anySealed(ctx, st); err != nil {
				return nil, err
			} else if sealed {
				return nil, fmt.Errorf("%w: the metadata database holds secrets encrypted with a key that is neither in %s nor in %s: "+
					"restore the key file from the backup of this data directory, or set %s; if the key is lost, "+
					"`lading admin reset-secret-key` deletes the access keys it protected", ErrSecretKeyMissing, path, SecretKeyEnv, SecretKeyEnv)
			}
		}
		if key, err = createSecretKey(path); err != nil {
			return nil, err
		}
		log.Warn("created the secret key that encrypts stored access keys; back it up with the data directory", "file", path)
	}
	s, err := NewSealer(key, source)
	if err != nil {
		return nil, err
	}
	if err := s.sealStored(ctx, st, o.Forget, log); err != nil {
		return nil, err
	}
	return s, nil
}

// sealStored encrypts what is stored in plain text and checks that what is encrypted decrypts.
func (s *Sealer) sealStored(ctx context.Context, st SecretStore, forget bool, log *slog.Logger) error {
	keys, err := st.ListAccessKeys(ctx)
	if err != nil {
		return err
	}
	var changes []store.SecretChange
	plain := 0
	for _, k := range keys {
		ad := accessKeyAD(k.ID)
		if !isSealed(k.Secret) {
			v, err := s.seal(k.Secret, ad)
			if err != nil {
				return err
			}
			changes = append(changes, store.SecretChange{AccessKeyID: k.ID, Old: k.Secret, New: v})
			plain++
			continue
		}
		if _, err := s.open(k.Secret, ad); err != nil {
			if !forget {
				return fmt.Errorf("access key %s: %w; start with the key it was encrypted with (if that key is lost, see `lading admin reset-secret-key --help`)", k.ID, err)
			}
			if err := st.DeleteAccessKey(ctx, k.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			log.Warn("deleted an access key the secret key cannot decrypt", "access_key_id", k.ID)
		}
	}
	for _, name := range []string{tokenKeySetting, urlKeySetting, consoleKeySetting} {
		ad := settingAD(name)
		v, err := st.Setting(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if !isSealed(v) {
			sealed, err := s.seal(v, ad)
			if err != nil {
				return err
			}
			changes = append(changes, store.SecretChange{Setting: name, Old: v, New: sealed})
			plain++
			continue
		}
		if _, err := s.open(v, ad); err != nil {
			if !forget {
				return fmt.Errorf("setting %s: %w; start with the key it was encrypted with (if that key is lost, see `lading admin reset-secret-key --help`)", name, err)
			}
			fresh, err := randomHexKey()
			if err != nil {
				return err
			}
			sealed, err := s.seal(fresh, ad)
			if err != nil {
				return err
			}
			changes = append(changes, store.SecretChange{Setting: name, Old: v, New: sealed})
			log.Warn("replaced a signing key the secret key cannot decrypt; what it signed is no longer accepted", "setting", name)
		}
	}
	if len(changes) == 0 {
		return nil
	}
	if _, err := st.ReplaceSecrets(ctx, changes); err != nil {
		return fmt.Errorf("encrypt stored secrets: %w", err)
	}
	if plain > 0 {
		// Once: the next start finds nothing in plain text.
		log.Warn("encrypted secrets an older Lading stored in plain text; backups of the data directory taken before hold them readable",
			"count", plain)
	}
	return nil
}

// anySealed reports whether the store holds an encrypted secret.
func anySealed(ctx context.Context, st SecretStore) (bool, error) {
	keys, err := st.ListAccessKeys(ctx)
	if err != nil {
		return false, err
	}
	for _, k := range keys {
		if isSealed(k.Secret) {
			return true, nil
		}
	}
	for _, name := range []string{tokenKeySetting, urlKeySetting, consoleKeySetting} {
		v, err := st.Setting(ctx, name)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
		if isSealed(v) {
			return true, nil
		}
	}
	return false, nil
}

// loadSecretKey returns the key from the environment or the file, or nil when there is none;
// source names where it came from.
func loadSecretKey(path, env string) ([]byte, string, error) {
	var fromFile []byte
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if fromFile, err = decodeSecretKey(string(b)); err != nil {
			return nil, "", fmt.Errorf("secret key file %s: %w", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, "", fmt.Errorf("read secret key: %w", err)
	}
	if env == "" {
		return fromFile, path, nil
	}
	key, err := decodeSecretKey(env)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", SecretKeyEnv, err)
	}
	// Two different keys would leave it to chance which one the secrets were sealed with.
	if fromFile != nil && !bytes.Equal(fromFile, key) {
		return nil, "", fmt.Errorf("%s and %s hold different keys: keep the one the secrets are encrypted with, remove the other", SecretKeyEnv, path)
	}
	return key, SecretKeyEnv, nil
}

func decodeSecretKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(key) != secretKeySize {
		return nil, fmt.Errorf("want the base64 of %d random bytes (as `openssl rand -base64 32` prints)", secretKeySize)
	}
	return key, nil
}

// createSecretKey writes a new random key to path (0600). The file appears whole or not at
// all (written aside, then linked into place), and when another process starting on the same
// data directory made one first, that one is returned.
func createSecretKey(path string) ([]byte, error) {
	key := make([]byte, secretKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+SecretKeyFile+"-*") // 0600
	if err != nil {
		return nil, fmt.Errorf("create secret key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return nil, fmt.Errorf("write secret key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read secret key: %w", err)
		}
		key, err := decodeSecretKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("secret key file %s: %w", path, err)
		}
		return key, nil
	} else if err != nil {
		return nil, fmt.Errorf("create secret key: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return key, nil
}

func randomHexKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
