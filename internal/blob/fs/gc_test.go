package fs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/lading-registry/lading/internal/blob"
)

func commitBytes(t *testing.T, s *Store, b []byte) digest.Digest {
	t.Helper()
	ctx := context.Background()
	id, err := s.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, id, 0, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(b)
	if _, err := s.Commit(ctx, id, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// digestLockHeld reports whether another holder has digest d's lock, by trying to take it
// without waiting through a handle of its own (flocks of separate opens exclude each other).
func digestLockHeld(t *testing.T, s *Store, d digest.Digest) bool {
	t.Helper()
	p, err := s.blobPath(d)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = flock(f, false)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	return false
}

// TestCommitAndRemovalExcludeEachOther checks the two halves of the race garbage collection
// must not lose: a commit renames its blob into place holding the digest's lock, and a removal
// looks at the blob's use and removes it holding the same lock.
func TestCommitAndRemovalExcludeEachOther(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	content := []byte("a layer garbage collection races with")
	want := digest.FromBytes(content)
	var heldDuringCommit bool
	s.committing = func(d digest.Digest) { heldDuringCommit = d == want && digestLockHeld(t, s, d) }
	commitBytes(t, s, content)
	if !heldDuringCommit {
		t.Fatal("Commit renamed the blob without holding the digest's lock")
	}
	var heldDuringCheck bool
	removed, err := s.RemoveUnused(ctx, want, time.Now().Add(time.Hour), func(context.Context) (bool, error) {
		heldDuringCheck = digestLockHeld(t, s, want)
		return false, nil
	})
	if err != nil || !removed {
		t.Fatalf("removed %v, %v", removed, err)
	}
	if !heldDuringCheck {
		t.Fatal("RemoveUnused asked whether the blob is in use without holding the digest's lock")
	}
	if _, err := s.Stat(ctx, want); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("blob still there: %v", err)
	}
}

func TestRemoveUnusedSparesWhatIsUsedOrYoung(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	tests := []struct {
		name        string
		cutoff      time.Time
		inUse       bool
		wantRemoved bool
	}{
		{"old and unused", now.Add(time.Hour), false, true},
		{"old but in use", now.Add(time.Hour), true, false},
		{"committed within the grace period", now.Add(-time.Hour), false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			d := commitBytes(t, s, []byte(tc.name))
			removed, err := s.RemoveUnused(ctx, d, tc.cutoff, func(context.Context) (bool, error) { return tc.inUse, nil })
			if err != nil || removed != tc.wantRemoved {
				t.Fatalf("removed %v (%v), want %v", removed, err, tc.wantRemoved)
			}
			_, err = s.Stat(ctx, d)
			if gone := errors.Is(err, blob.ErrNotFound); gone != tc.wantRemoved {
				t.Fatalf("blob gone %v, want %v", gone, tc.wantRemoved)
			}
		})
	}
}

// TestCommitStampsTheBlobAsNew: a session whose bytes arrived long ago and are committed now
// makes a blob that garbage collection sees as young.
func TestCommitStampsTheBlobAsNew(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	content := []byte("sent yesterday, committed today")
	id, err := s.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, id, 0, bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(filepath.Join(s.root, "uploads", id, "data"), old, old); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	d := digest.FromBytes(content)
	if _, err := s.Commit(ctx, id, d); err != nil {
		t.Fatal(err)
	}
	var got []blob.File
	if err := s.WalkBlobs(ctx, func(f blob.File) error { got = append(got, f); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Digest != d || got[0].Size != int64(len(content)) || got[0].ModTime.Before(before) {
		t.Fatalf("walk found %+v", got)
	}
}

func TestDropIdleUpload(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	id, err := s.NewUpload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dropped, err := s.DropIdleUpload(ctx, id, time.Now().Add(-time.Hour)); err != nil || dropped {
		t.Fatalf("a fresh session was dropped: %v %v", dropped, err)
	}
	ups, err := s.Uploads(ctx)
	if err != nil || len(ups) != 1 || ups[0].ID != id {
		t.Fatalf("uploads %+v %v", ups, err)
	}
	if dropped, err := s.DropIdleUpload(ctx, id, time.Now().Add(time.Hour)); err != nil || !dropped {
		t.Fatalf("an idle session was kept: %v %v", dropped, err)
	}
	if _, err := s.UploadSize(ctx, id); !errors.Is(err, blob.ErrUploadNotFound) {
		t.Fatalf("session still there: %v", err)
	}
}
