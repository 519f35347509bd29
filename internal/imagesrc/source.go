package imagesrc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
)

// Kind says where a Source is read from.
type Kind int

// Kinds of source.
const (
	KindArchive Kind = iota + 1 // a tar file: docker-archive or OCI layout
	KindLayout                  // an OCI image layout folder
	KindRemote                  // a registry
)

func (k Kind) String() string {
	switch k {
	case KindArchive:
		return "archive"
	case KindLayout:
		return "layout"
	case KindRemote:
		return "registry"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Source is an image source as the user named it, classified but not opened.
type Source struct {
	Kind Kind
	// Path is the archive file or layout folder.
	Path string
	// Name picks one image of a file that holds several (see Open).
	Name string
	// Reference is the registry reference ("host/repo:tag", "alpine", ...).
	Reference string
}

// ParseSource classifies a source argument, reading nothing but file metadata:
//   - "docker-archive:PATH[:NAME]", "oci-archive:PATH[:NAME]" (tar files), "oci:DIR[:NAME]";
//   - "docker://REFERENCE" or "registry:REFERENCE" for a registry;
//   - otherwise an existing file (a tar: OCI layout or docker-archive) or folder (OCI layout),
//     as PATH or PATH:NAME;
//   - otherwise, when it looks like a path (see pathLike), the error of opening a missing file
//     (errors.Is fs.ErrNotExist): it is never sent to a registry;
//   - otherwise a registry reference, when it parses as one ("alpine" is Docker Hub's).
//
// NAME picks an image in a file that holds several: an OCI ref name
// (org.opencontainers.image.ref.name), an image name (io.containerd.image.name) or a
// docker-archive RepoTag.
func ParseSource(source string) (Source, error) { return parseSource(source, os.Stat) }

// statFunc is os.Stat, replaced in tests.
type statFunc func(string) (fs.FileInfo, error)

// parseSource is ParseSource with the file system behind stat.
func parseSource(source string, stat statFunc) (Source, error) {
	for _, prefix := range []string{"docker-archive:", "oci-archive:", "oci:"} {
		rest, ok := strings.CutPrefix(source, prefix)
		if !ok {
			continue
		}
		p, imageName, _, err := splitName(rest, stat)
		if err != nil {
			return Source{}, err
		}
		kind := KindArchive
		if prefix == "oci:" {
			kind = KindLayout
		}
		return Source{Kind: kind, Path: p, Name: imageName}, nil
	}
	for _, prefix := range []string{"docker://", "registry:"} {
		if rest, ok := strings.CutPrefix(source, prefix); ok {
			if _, err := parseReference(rest); err != nil {
				return Source{}, err
			}
			return Source{Kind: KindRemote, Reference: rest}, nil
		}
	}

	p, imageName, fi, fileErr := splitName(source, stat)
	if fileErr == nil {
		kind := KindArchive
		if fi.IsDir() {
			kind = KindLayout
		}
		return Source{Kind: kind, Path: p, Name: imageName}, nil
	}
	if pathLike(source) {
		return Source{}, fileErr
	}
	if _, err := parseReference(source); err != nil {
		return Source{}, fmt.Errorf("%w, and not an image reference: %w", fileErr, err)
	}
	return Source{Kind: KindRemote, Reference: source}, nil
}

// Open opens the image the source names.
func (s Source) Open(ctx context.Context, opts Options) (*Image, error) {
	switch s.Kind {
	case KindArchive:
		return OpenArchive(ctx, s.Path, s.Name, opts)
	case KindLayout:
		return OpenLayout(ctx, s.Path, s.Name, opts)
	case KindRemote:
		return OpenRemote(ctx, s.Reference, opts)
	}
	return nil, fmt.Errorf("image source of kind %v", s.Kind)
}

// splitName splits "path[:name]" at the first colon that ends the path of an existing file, so
// that names may hold colons themselves ("x.tar:corpus/x:1.0"), and returns the file's info.
// When there is no such file, the error is that of opening the path the user most likely
// meant: the part before the first colon when it ends like an archive ("x.tar:name"), else
// the whole.
func splitName(s string, stat statFunc) (p, imageName string, fi fs.FileInfo, err error) {
	fi, wholeErr := stat(s)
	if wholeErr == nil {
		return s, "", fi, nil
	}
	var headErr error
	for i := 0; i < len(s); i++ {
		if s[i] != ':' {
			continue
		}
		fi, err := stat(s[:i])
		if err == nil {
			return s[:i], s[i+1:], fi, nil
		}
		if headErr == nil {
			headErr = err
		}
	}
	if head, _, ok := strings.Cut(s, ":"); ok && hasArchiveSuffix(head) {
		return "", "", nil, openError(head, headErr)
	}
	return "", "", nil, openError(s, wholeErr)
}

// openError is the error os.Open gives for a path that stat failed on ("open PATH: no such file
// or directory"), which is what a user who named a file expects to read.
func openError(p string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &fs.PathError{Op: "open", Path: p, Err: err}
}

// pathLike reports a source that names a file, not a registry reference: it begins as a path
// does ("/", "./", "../", "~", or is "." or ".."), holds a backslash, or ends (before any
// ":NAME") like an archive (.tar, .tar.gz, .tgz). References cannot begin so or hold a
// backslash; one ending in ".tar" is legal but improbable, and "docker://" still reaches it.
// A slash elsewhere proves nothing: "org/image" is a reference.
func pathLike(s string) bool {
	switch {
	case s == "." || s == "..",
		strings.HasPrefix(s, "/"), strings.HasPrefix(s, "./"), strings.HasPrefix(s, "../"),
		strings.HasPrefix(s, "~"), strings.Contains(s, `\`):
		return true
	}
	head, _, _ := strings.Cut(s, ":")
	return hasArchiveSuffix(s) || hasArchiveSuffix(head)
}

func hasArchiveSuffix(s string) bool {
	s = strings.ToLower(s)
	for _, suffix := range []string{".tar", ".tar.gz", ".tgz"} {
		if strings.HasSuffix(s, suffix) {
			return true
		}
	}
	return false
}

// The reference grammar of the distribution spec (distribution/reference): a registry host is
// DNS labels or a bracketed IPv6 address, with an optional port; a repository is lower-case
// components separated by slashes.
// Compiled on first use, not at start: every command (`lading scan` too) pays for package
// initialisation, and these serve only some.
var (
	registryHost = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$`)
	})
	repositoryPath = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	})
)

// parseReference is name.ParseReference held to the reference grammar: go-containerregistry
// takes "./x.tar" for repository x.tar on registry "." and "/x" for repository "/x" on Docker
// Hub, which would send a mistyped path to the network.
func parseReference(s string, opts ...name.Option) (name.Reference, error) {
	ref, err := name.ParseReference(s, opts...)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", s, err)
	}
	repo := ref.Context()
	if !registryHost().MatchString(repo.RegistryStr()) || !repositoryPath().MatchString(repo.RepositoryStr()) {
		return nil, fmt.Errorf("image reference %q: registry %q, repository %q: not a valid name", s, repo.RegistryStr(), repo.RepositoryStr())
	}
	return ref, nil
}
