package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/lading-registry/lading/internal/auth"
	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/blob/pglock"
	"github.com/lading-registry/lading/internal/store/postgres"
	"github.com/lading-registry/lading/internal/store/sqlite"
)

// The data directory holds every secret Lading has (in lading.db, even encrypted, and beside
// it), so it and what it holds are private to the user Lading runs as.
const (
	privateDir  = 0o700
	privateFile = 0o600
)

// MetaFile is the metadata database in the data directory.
const MetaFile = "lading.db"

// Directories Lading keeps in the data directory.
const (
	scratchDir     = "scratch"
	vulnDBCacheDir = "vulndb-cache"
	reportsDirName = "reports"
)

// OpenMeta is how every command opens a data directory: it creates the directory (0700) if
// needed, makes it and the files and directories Lading keeps in it private (see
// secureDataDir), and opens the metadata store: the embedded SQLite database in the directory,
// or, with metadata a postgres:// URL, that PostgreSQL database (several nodes share it; each
// keeps its own data directory for its secret key file and caches).
func OpenMeta(ctx context.Context, dataDir, metadata string, log *slog.Logger) (Meta, error) {
	return openMeta(ctx, dataDir, metadata, log, nil)
}

// ScanCacheKiB is the page cache of each SQLite connection of OpenMetaReader: `lading scan`
// reads each advisory page about once, from a file the kernel caches anyway (the default,
// 2,000 KiB, was 2-3 MiB of a small scan's peak RSS; 256 KiB was 0.45 MiB more of go-app's
// than 64 KiB, with no change in time).
const ScanCacheKiB = 64

// OpenMetaReader is OpenMeta for a command that only reads (`lading scan`): the SQLite store
// is opened with one read-only connection and a small page cache, without the migration
// check's write connection, when its schema is current (else as OpenMeta, which creates or
// migrates it). PostgreSQL is opened as OpenMeta does.
func OpenMetaReader(ctx context.Context, dataDir, metadata string, log *slog.Logger) (Meta, error) {
	return openMeta(ctx, dataDir, metadata, log, &sqlite.ReaderOptions{CacheKiB: ScanCacheKiB})
}

// openMeta opens the store; reader, when set, opens SQLite with sqlite.OpenReader.
func openMeta(ctx context.Context, dataDir, metadata string, log *slog.Logger, reader *sqlite.ReaderOptions) (Meta, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := secureDataDir(dataDir, log); err != nil {
		return nil, err
	}
	pg, err := onPostgres(metadata)
	if err != nil {
		return nil, err
	}
	if !pg {
		// Created empty and private first, so that SQLite, which gives lading.db-wal and
		// lading.db-shm the mode of the database file, makes them 0600 too.
		path := filepath.Join(dataDir, MetaFile)
		f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, privateFile)
		if err != nil {
			return nil, fmt.Errorf("create metadata database: %w", err)
		}
		_ = f.Close()
		var meta *sqlite.DB
		if reader != nil {
			meta, err = sqlite.OpenReader(ctx, path, *reader)
		} else {
			meta, err = sqlite.Open(ctx, path)
		}
		if errors.Is(err, sqlite.ErrNewerSchema) {
			return nil, fmt.Errorf("data dir %s: %w", dataDir, err)
		}
		if err != nil {
			return nil, err
		}
		return meta, nil
	}
	meta, err := postgres.Open(ctx, metadata)
	if err != nil {
		return nil, fmt.Errorf("--metadata: %w", err)
	}
	return meta, nil
}

// onPostgres tells what --metadata names: SQLite in the data directory (""), or PostgreSQL
// (a postgres:// URL); anything else is an error.
func onPostgres(metadata string) (bool, error) {
	switch {
	case metadata == "":
		return false, nil
	case strings.HasPrefix(metadata, "postgres://") || strings.HasPrefix(metadata, "postgresql://"):
		return true, nil
	default:
		return false, fmt.Errorf("--metadata %q: want postgres://user@host:port/database (or nothing, for SQLite in the data directory)", redact(metadata))
	}
}

// blobLockConns bounds the connections the blob store's locks open on PostgreSQL: they hold
// all of a node's locks on one session, and a second covers a session being replaced.
const blobLockConns = 2

// OpenBlobLocks returns the blob store's locks for the metadata store: nil (files under the
// data directory) with SQLite, PostgreSQL's advisory locks with PostgreSQL, so that every node
// sharing the database excludes the others. done closes them.
func OpenBlobLocks(ctx context.Context, metadata string) (locks blob.Locker, done func(), err error) {
	pg, err := onPostgres(metadata)
	if err != nil || !pg {
		return nil, func() {}, err
	}
	l, err := pglock.Open(ctx, metadata, blobLockConns)
	if err != nil {
		return nil, nil, err
	}
	return l, l.Close, nil
}

// redact hides a password in a URL given on the command line before it is printed.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(not a URL)"
}

// OpenKeys returns the access keys of an open data directory, their secrets (and the signing
// keys) encrypted at rest with the secret key (secretKey, base64, or else the key file in
// dataDir, made on first use), after encrypting what an older Lading stored in plain text.
func OpenKeys(ctx context.Context, meta Meta, dataDir, secretKey string, log *slog.Logger) (*auth.SealedKeys, error) {
	return openKeys(ctx, meta, auth.SecretsOptions{DataDir: dataDir, Key: secretKey, Logger: log})
}

// ResetSecretKey is for a lost secret key: it makes a new one and drops what the old one
// protected (see auth.SecretsOptions.Forget).
func ResetSecretKey(ctx context.Context, meta Meta, dataDir, secretKey string, log *slog.Logger) error {
	_, err := openKeys(ctx, meta, auth.SecretsOptions{DataDir: dataDir, Key: secretKey, Logger: log, Forget: true})
	return err
}

func openKeys(ctx context.Context, meta Meta, o auth.SecretsOptions) (*auth.SealedKeys, error) {
	s, err := auth.OpenSecrets(ctx, meta, o)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", o.DataDir, err)
	}
	return auth.SealKeys(meta, s), nil
}

// secureDataDir creates dataDir (0700) if missing. It then tightens what an older Lading made looser: the data
// directory and the directories in it to 0700, the files holding secrets to 0600, with one
// warning each. The files inside blobs/, uploads/, scratch/ and vulndb-cache/ are not walked
// (that would read the whole tree at every start): their 0700 parent keeps other users out.
func secureDataDir(dataDir string, log *slog.Logger) error {
	if err := os.MkdirAll(dataDir, privateDir); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// A data directory that is a mount point may belong to root (a volume); what is in it
	// stays private, so not being able to tighten it is a warning, not a failure.
	if err := tighten(dataDir, privateDir, log); errors.Is(err, fs.ErrPermission) {
		log.Warn("cannot make the data directory private; the files in it are", "path", dataDir, "err", err)
	} else if err != nil {
		return err
	}
	for _, d := range []string{"blobs", "uploads", scratchDir, vulnDBCacheDir} {
		if err := tighten(filepath.Join(dataDir, d), privateDir, log); err != nil {
			return err
		}
	}
	for _, name := range []string{MetaFile, MetaFile + "-wal", MetaFile + "-shm", MetaFile + "-journal", auth.CredentialsFile, auth.SecretKeyFile} {
		if err := tighten(filepath.Join(dataDir, name), privateFile, log); err != nil {
			return err
		}
	}
	return nil
}

// tighten removes from path's mode the permission bits limit lacks (so 0644 becomes 0600 and
// 0400 stays), when it exists.
func tighten(path string, limit fs.FileMode, log *slog.Logger) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tighten permissions: %w", err)
	}
	old := fi.Mode().Perm()
	if old&^limit == 0 {
		return nil
	}
	mode := old&limit | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("tighten permissions: %w", err)
	}
	log.Warn("tightened permissions: other users could read this",
		"path", path, "old_mode", fmt.Sprintf("%#o", old), "new_mode", fmt.Sprintf("%#o", mode.Perm()))
	return nil
}

// The embedded store refreshes its planner statistics when the server asks (optimizeStore).
var _ storeOptimizer = (*sqlite.DB)(nil)
