package imagesrc

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/google/go-containerregistry/pkg/authn"
)

// fakeStat is os.Stat over a map of existing paths (a trailing "/" marks a folder).
func fakeStat(paths ...string) statFunc {
	m := fstest.MapFS{}
	for _, p := range paths {
		if d, ok := strings.CutSuffix(p, "/"); ok {
			m[d] = &fstest.MapFile{Mode: fs.ModeDir}
		} else {
			m[p] = &fstest.MapFile{}
		}
	}
	return func(p string) (fs.FileInfo, error) {
		if f, ok := m[p]; ok {
			return fstest.MapFS{"x": f}.Stat("x")
		}
		return nil, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
	}
}

func TestParseSource(t *testing.T) {
	const sha = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	stat := fakeStat("images/app.tar", "/abs/family.tar", "layout/", "corpus/", "x.tar")
	for _, tc := range []struct {
		source string
		want   Source
		// missing is the path of the fs.ErrNotExist error expected instead of a source.
		missing string
		// errSays is in the message of another error expected.
		errSays string
	}{
		// Existing files and folders, with or without a NAME.
		{source: "images/app.tar", want: Source{Kind: KindArchive, Path: "images/app.tar"}},
		{source: "/abs/family.tar:neo4j-like", want: Source{Kind: KindArchive, Path: "/abs/family.tar", Name: "neo4j-like"}},
		{source: "/abs/family.tar:corpus/x:1.0", want: Source{Kind: KindArchive, Path: "/abs/family.tar", Name: "corpus/x:1.0"}},
		{source: "layout", want: Source{Kind: KindLayout, Path: "layout"}},
		{source: "layout:app", want: Source{Kind: KindLayout, Path: "layout", Name: "app"}},
		// An existing file or folder wins over a reference of the same name.
		{source: "corpus", want: Source{Kind: KindLayout, Path: "corpus"}},
		{source: "corpus:1.0", want: Source{Kind: KindLayout, Path: "corpus", Name: "1.0"}},
		{source: "docker-archive:x.tar:app", want: Source{Kind: KindArchive, Path: "x.tar", Name: "app"}},
		{source: "oci-archive:images/app.tar", want: Source{Kind: KindArchive, Path: "images/app.tar"}},
		{source: "oci:layout:app", want: Source{Kind: KindLayout, Path: "layout", Name: "app"}},

		// Path-like and missing: the error of opening the file, never a reference.
		{source: "./missing.tar", missing: "./missing.tar"},
		{source: "/nonexistent", missing: "/nonexistent"},
		{source: "../elsewhere/image", missing: "../elsewhere/image"},
		{source: "~/images/app.tar", missing: "~/images/app.tar"},
		{source: ".", missing: "."},
		{source: "missing.tar", missing: "missing.tar"},
		{source: "Missing.TGZ", missing: "Missing.TGZ"},
		{source: "app.tar.gz", missing: "app.tar.gz"},
		{source: "missing.tar:app", missing: "missing.tar"},
		{source: "images/missing.tar:corpus/x:1.0", missing: "images/missing.tar"},
		{source: `images\app`, missing: `images\app`},
		{source: "/abs/nope.tar:neo4j-like", missing: "/abs/nope.tar"},
		{source: "docker-archive:./missing.tar", missing: "./missing.tar"},
		{source: "oci-archive:missing.tar:app", missing: "missing.tar"},
		{source: "oci:/missing-dir", missing: "/missing-dir"},
		// Neither a file nor a reference: reported as a missing file, saying both.
		{source: "Not An Image", missing: "Not An Image", errSays: "not an image reference"},

		// References.
		{source: "alpine:3.19", want: Source{Kind: KindRemote, Reference: "alpine:3.19"}},
		{source: "debian", want: Source{Kind: KindRemote, Reference: "debian"}},
		{source: "org/image", want: Source{Kind: KindRemote, Reference: "org/image"}},
		{source: "ghcr.io/org/app@" + sha, want: Source{Kind: KindRemote, Reference: "ghcr.io/org/app@" + sha}},
		{source: "localhost:5000/team/app:1.0", want: Source{Kind: KindRemote, Reference: "localhost:5000/team/app:1.0"}},
		{source: "docker://alpine.tar", want: Source{Kind: KindRemote, Reference: "alpine.tar"}},
		{source: "registry:alpine", want: Source{Kind: KindRemote, Reference: "alpine"}},
		{source: "docker://Not A Ref", errSays: `image reference "Not A Ref"`},
		// Forced, but go-containerregistry's reading of these is no registry: "." and Docker
		// Hub's "/x" repository.
		{source: "docker://./missing.tar", errSays: `image reference "./missing.tar"`},
		{source: "registry:/nonexistent", errSays: `image reference "/nonexistent"`},
		{source: "docker://[::1]:5000/app:1", want: Source{Kind: KindRemote, Reference: "[::1]:5000/app:1"}},
		{source: "docker://Registry.Example.com/team/app_x__y-z.1:v1", want: Source{Kind: KindRemote, Reference: "Registry.Example.com/team/app_x__y-z.1:v1"}},
	} {
		t.Run(tc.source, func(t *testing.T) {
			got, err := parseSource(tc.source, stat)
			switch {
			case tc.missing != "":
				var pe *fs.PathError
				if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Op != "open" || pe.Path != tc.missing {
					t.Fatalf("got %+v, %v; want open %s: not exist", got, err, tc.missing)
				}
			case tc.errSays != "":
				if err == nil || errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("got %+v, %v; want an error saying %q", got, err, tc.errSays)
				}
			case err != nil:
				t.Fatal(err)
			case got != tc.want:
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if tc.errSays != "" && !strings.Contains(err.Error(), tc.errSays) {
				t.Errorf("error %q does not say %q", err, tc.errSays)
			}
		})
	}
}

// countingTransport counts the requests it is asked to send and sends none.
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	c.n.Add(1)
	return nil, errors.New("no network in tests")
}

// TestOpenMissingFileSendsNothing: Open of a path-like missing file fails with fs.ErrNotExist
// before any request, while a reference does reach the transport.
func TestOpenMissingFileSendsNothing(t *testing.T) {
	opts := func(rt http.RoundTripper) Options {
		return Options{Transport: rt, Keychain: authn.NewMultiKeychain(), Platform: "linux/amd64"}
	}
	for _, source := range []string{
		filepath.Join(t.TempDir(), "missing.tar"),
		"./missing-image.tar",
		"/nonexistent",
		"missing-image.tar:app",
	} {
		rt := &countingTransport{}
		_, err := Open(context.Background(), source, opts(rt))
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "open ") {
			t.Errorf("%s: %v, want open ...: not exist", source, err)
		}
		if n := rt.n.Load(); n != 0 {
			t.Errorf("%s: %d requests sent", source, n)
		}
	}
	rt := &countingTransport{}
	if _, err := Open(context.Background(), "alpine", opts(rt)); err == nil || rt.n.Load() == 0 {
		t.Errorf("alpine: %v after %d requests; want the registry asked, and failing", err, rt.n.Load())
	}
}
