package imagesrc

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	maxIndexBytes    = 4 << 20
	maxManifestBytes = 4 << 20
	maxConfigBytes   = 8 << 20
	maxIndexDepth    = 4
	maxTarLinkHops   = 8
)

// files is read access to the files of an OCI layout or docker archive, by slash path.
type files interface {
	open(name string) (io.ReadCloser, int64, error)
	has(name string) bool
	io.Closer
}

// tarFiles indexes a tar file once and reads its entries through section readers.
type tarFiles struct {
	f       *os.File
	entries map[string]tarEntry
}

type tarEntry struct {
	offset, size int64
	link         string // for link entries, the target
}

// offsetReader tracks the position in the file: after tar.Reader.Next returns, it has read
// exactly the headers, so the position is the start of the entry's data.
// It seeks too, so that tar.Reader skips the entries' data (the layers, most of the file)
// instead of reading it.
type offsetReader struct {
	r io.ReadSeeker
	n int64
}

func (o *offsetReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	o.n += int64(n)
	return n, err
}

func (o *offsetReader) Seek(offset int64, whence int) (int64, error) {
	pos, err := o.r.Seek(offset, whence)
	if err == nil {
		o.n = pos
	}
	return pos, err
}

func openTarFiles(ctx context.Context, p string) (*tarFiles, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	tf := &tarFiles{f: f, entries: map[string]tarEntry{}}
	or := &offsetReader{r: f}
	tr := tar.NewReader(or)
	for {
		if err := ctx.Err(); err != nil {
			_ = f.Close()
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("%w: %s is not a readable tar file: %v", ErrInvalid, p, err)
		}
		name := tarName(hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeReg:
			tf.entries[name] = tarEntry{offset: or.n, size: hdr.Size}
		case tar.TypeSymlink:
			// Older `docker save` links repeated layers to their first copy.
			tf.entries[name] = tarEntry{link: tarName(path.Join(path.Dir(name), hdr.Linkname))}
		case tar.TypeLink:
			tf.entries[name] = tarEntry{link: tarName(hdr.Linkname)}
		}
	}
	return tf, nil
}

// tarName normalises an entry name: relative, clean, never above the archive's root.
func tarName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (t *tarFiles) lookup(name string) (tarEntry, bool) {
	name = tarName(name)
	for range maxTarLinkHops {
		e, ok := t.entries[name]
		if !ok || e.link == "" {
			return e, ok
		}
		name = e.link
	}
	return tarEntry{}, false
}

func (t *tarFiles) has(name string) bool {
	_, ok := t.lookup(name)
	return ok
}

func (t *tarFiles) open(name string) (io.ReadCloser, int64, error) {
	e, ok := t.lookup(name)
	if !ok {
		return nil, 0, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	return io.NopCloser(io.NewSectionReader(t.f, e.offset, e.size)), e.size, nil
}

func (t *tarFiles) Close() error { return t.f.Close() }

// dirFiles reads a layout folder.
type dirFiles struct{ root *os.Root }

func (d dirFiles) open(name string) (io.ReadCloser, int64, error) {
	f, err := d.root.Open(filepath.FromSlash(name))
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

func (d dirFiles) has(name string) bool {
	_, err := d.root.Stat(filepath.FromSlash(name))
	return err == nil
}

func (d dirFiles) Close() error { return d.root.Close() }

func readSmall(fsys files, name string, max int64) ([]byte, error) {
	rc, size, err := fsys.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > max {
		return nil, fmt.Errorf("%w: %s is %d bytes, over the %d-byte limit", ErrInvalid, name, size, max)
	}
	return io.ReadAll(io.LimitReader(rc, max))
}

// OpenArchive opens a tar file holding an OCI image layout or a docker archive (or both, as
// Docker 25+ writes). name picks the image when the file holds several.
func OpenArchive(ctx context.Context, p, name string, opts Options) (*Image, error) {
	tf, err := openTarFiles(ctx, p)
	if err != nil {
		return nil, err
	}
	img, err := openFiles(ctx, tf, name, opts)
	if err != nil {
		_ = tf.Close()
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	img.closer = tf
	return img, nil
}

// OpenLayout opens an OCI image layout folder.
func OpenLayout(ctx context.Context, dir, name string, opts Options) (*Image, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	df := dirFiles{root: root}
	img, err := openFiles(ctx, df, name, opts)
	if err != nil {
		_ = df.Close()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	img.closer = df
	return img, nil
}

func openFiles(ctx context.Context, fsys files, name string, opts Options) (*Image, error) {
	want, err := platformSpec(opts.Platform)
	if err != nil {
		return nil, err
	}
	hasLayout := fsys.has("index.json")
	hasDocker := fsys.has("manifest.json")
	switch {
	case hasLayout:
		img, err := openLayoutIndex(ctx, fsys, name, want)
		if err == nil || !hasDocker || !errors.Is(err, ErrNotFound) {
			return img, err
		}
		// The name may be a docker-archive tag that the OCI index does not carry.
		return openDockerArchive(fsys, name)
	case hasDocker:
		return openDockerArchive(fsys, name)
	}
	return nil, fmt.Errorf("%w: neither an OCI layout (index.json) nor a docker archive (manifest.json)", ErrInvalid)
}

func blobPath(d v1.Hash) (string, error) {
	h, err := v1.NewHash(d.String())
	if err != nil {
		return "", fmt.Errorf("%w: digest %q: %v", ErrInvalid, d.String(), err)
	}
	return "blobs/" + h.Algorithm + "/" + h.Hex, nil
}

func openLayoutIndex(ctx context.Context, fsys files, name string, want v1.Platform) (*Image, error) {
	raw, err := readSmall(fsys, "index.json", maxIndexBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: index.json: %v", ErrInvalid, err)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: index.json: %v", ErrInvalid, err)
	}
	var candidates []v1.Descriptor
	var names []string
	for _, d := range idx.Manifests {
		refName := d.Annotations["org.opencontainers.image.ref.name"]
		imageName := d.Annotations["io.containerd.image.name"]
		names = append(names, firstNonEmpty(refName, imageName, d.Digest.String()))
		if name == "" || name == refName || sameImageName(name, imageName) {
			candidates = append(candidates, d)
		}
	}
	if len(candidates) == 0 {
		return nil, fmt.Errorf("%w: no image named %q (the layout holds %s)", ErrNotFound, name, strings.Join(names, ", "))
	}
	if name == "" {
		distinct := map[string]bool{}
		for _, d := range candidates {
			distinct[firstNonEmpty(d.Annotations["org.opencontainers.image.ref.name"], d.Annotations["io.containerd.image.name"])] = true
		}
		if len(distinct) > 1 {
			return nil, fmt.Errorf("%w: the layout holds %d images (%s); name one", ErrNotFound, len(distinct), strings.Join(names, ", "))
		}
	}
	// Several manifests under one name are the platforms of one image, as an index holds them.
	chosen, indexDigest, err := pickPlatform(ctx, fsys, candidates, want, 0)
	if err != nil {
		return nil, err
	}
	img, err := imageFromManifest(fsys, chosen)
	if err != nil {
		return nil, err
	}
	img.Name = name
	img.IndexDigest = indexDigest
	return img, nil
}

// pickPlatform resolves descriptors (manifests or nested indexes) to the one image manifest
// for the platform asked for.
func pickPlatform(ctx context.Context, fsys files, descs []v1.Descriptor, want v1.Platform, depth int) (v1.Descriptor, string, error) {
	if err := ctx.Err(); err != nil {
		return v1.Descriptor{}, "", err
	}
	if depth > maxIndexDepth {
		return v1.Descriptor{}, "", fmt.Errorf("%w: indexes nested deeper than %d", ErrInvalid, maxIndexDepth)
	}
	if len(descs) == 1 && descs[0].MediaType.IsIndex() {
		if fsys == nil {
			return v1.Descriptor{}, "", fmt.Errorf("%w: index inside an index", ErrInvalid)
		}
		d := descs[0]
		p, err := blobPath(d.Digest)
		if err != nil {
			return v1.Descriptor{}, "", err
		}
		raw, err := readSmall(fsys, p, maxIndexBytes)
		if err != nil {
			return v1.Descriptor{}, "", fmt.Errorf("%w: index %s: %v", ErrInvalid, d.Digest, err)
		}
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return v1.Descriptor{}, "", fmt.Errorf("%w: index %s: %v", ErrInvalid, d.Digest, err)
		}
		chosen, _, err := pickPlatform(ctx, fsys, idx.Manifests, want, depth+1)
		return chosen, d.Digest.String(), err
	}
	var images []v1.Descriptor
	for _, d := range descs {
		if d.MediaType.IsImage() || d.MediaType == "" {
			images = append(images, d)
		}
	}
	if len(images) == 1 && (images[0].Platform == nil || len(descs) == 1) {
		return images[0], "", nil
	}
	var offered []string
	for _, d := range images {
		if d.Platform == nil {
			continue
		}
		offered = append(offered, platformString(d.Platform.OS, d.Platform.Architecture, d.Platform.Variant))
		if platformMatches(*d.Platform, want) {
			return d, "", nil
		}
	}
	return v1.Descriptor{}, "", fmt.Errorf("%w: no image for platform %s (offered: %s)", ErrNotFound,
		platformString(want.OS, want.Architecture, want.Variant), strings.Join(offered, ", "))
}

func imageFromManifest(fsys files, d v1.Descriptor) (*Image, error) {
	p, err := blobPath(d.Digest)
	if err != nil {
		return nil, err
	}
	raw, err := readSmall(fsys, p, maxManifestBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: manifest %s: %v", ErrInvalid, d.Digest, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: manifest %s: %v", ErrInvalid, d.Digest, err)
	}
	cfgPath, err := blobPath(m.Config.Digest)
	if err != nil {
		return nil, err
	}
	cfg, err := readConfig(fsys, cfgPath)
	if err != nil {
		return nil, err
	}
	img := &Image{
		ManifestDigest:    d.Digest.String(),
		ManifestMediaType: string(firstNonEmptyType(m.MediaType, d.MediaType)),
		ConfigDigest:      m.Config.Digest.String(),
		Config:            cfg,
		Platform:          platformString(cfg.OS, cfg.Architecture, cfg.Variant),
	}
	for _, l := range m.Layers {
		lp, err := blobPath(l.Digest)
		if err != nil {
			return nil, err
		}
		img.Layers = append(img.Layers, Layer{
			Digest:    l.Digest.String(),
			MediaType: string(l.MediaType),
			Size:      l.Size,
			open:      fileOpener(fsys, lp),
		})
	}
	attachHistory(img)
	return img, nil
}

func readConfig(fsys files, p string) (*v1.ConfigFile, error) {
	raw, err := readSmall(fsys, p, maxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: config %s: %v", ErrInvalid, p, err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: config %s: %v", ErrInvalid, p, err)
	}
	return cfg, nil
}

func fileOpener(fsys files, p string) func(context.Context) (io.ReadCloser, error) {
	return func(context.Context) (io.ReadCloser, error) {
		rc, _, err := fsys.open(p)
		return rc, err
	}
}

// dockerManifest is one entry of a docker archive's manifest.json.
type dockerManifest struct {
	Config       string                    `json:"Config"`
	RepoTags     []string                  `json:"RepoTags"`
	Layers       []string                  `json:"Layers"`
	LayerSources map[v1.Hash]v1.Descriptor `json:"LayerSources,omitempty"`
}

func openDockerArchive(fsys files, name string) (*Image, error) {
	raw, err := readSmall(fsys, "manifest.json", maxManifestBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: manifest.json: %v", ErrInvalid, err)
	}
	var entries []dockerManifest
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("%w: manifest.json: %v", ErrInvalid, err)
	}
	var chosen *dockerManifest
	var tags []string
	for i, e := range entries {
		tags = append(tags, e.RepoTags...)
		if name == "" && len(entries) == 1 {
			chosen = &entries[i]
		}
		for _, t := range e.RepoTags {
			if name != "" && sameImageName(name, t) {
				chosen = &entries[i]
			}
		}
	}
	if chosen == nil {
		if name == "" {
			return nil, fmt.Errorf("%w: the archive holds %d images (%s); name one", ErrNotFound, len(entries), strings.Join(tags, ", "))
		}
		return nil, fmt.Errorf("%w: no image tagged %q (the archive holds %s)", ErrNotFound, name, strings.Join(tags, ", "))
	}
	cfg, err := readConfig(fsys, chosen.Config)
	if err != nil {
		return nil, err
	}
	img := &Image{
		Name:              name,
		ManifestMediaType: string(types.DockerManifestSchema2),
		ConfigDigest:      digestFromBlobPath(chosen.Config),
		Config:            cfg,
		Platform:          platformString(cfg.OS, cfg.Architecture, cfg.Variant),
	}
	for i, lp := range chosen.Layers {
		l := Layer{Digest: digestFromBlobPath(lp), Size: -1, open: fileOpener(fsys, lp)}
		if i < len(cfg.RootFS.DiffIDs) {
			l.DiffID = cfg.RootFS.DiffIDs[i].String()
			if src, ok := chosen.LayerSources[cfg.RootFS.DiffIDs[i]]; ok {
				l.Digest, l.MediaType, l.Size = src.Digest.String(), string(src.MediaType), src.Size
			}
		}
		if l.Digest == "" {
			// Older archives store layers as "<id>/layer.tar", uncompressed: the blob's
			// digest is then its diff ID.
			l.Digest = l.DiffID
		}
		if l.MediaType == "" {
			l.MediaType = sniffMediaType(fsys, lp)
		}
		if rc, size, err := fsys.open(lp); err == nil {
			l.Size = size
			_ = rc.Close()
		} else {
			return nil, fmt.Errorf("%w: layer %s: %v", ErrInvalid, lp, err)
		}
		img.Layers = append(img.Layers, l)
	}
	attachHistory(img)
	return img, nil
}

// digestFromBlobPath reads the digest out of a "blobs/<alg>/<hex>" path, or "" for other
// paths.
func digestFromBlobPath(p string) string {
	parts := strings.Split(path.Clean(p), "/")
	if len(parts) == 3 && parts[0] == "blobs" {
		if h, err := v1.NewHash(parts[1] + ":" + parts[2]); err == nil {
			return h.String()
		}
	}
	if strings.HasSuffix(p, ".json") {
		if h, err := v1.NewHash("sha256:" + strings.TrimSuffix(path.Base(p), ".json")); err == nil {
			return h.String()
		}
	}
	return ""
}

// sniffMediaType names a docker-archive layer's media type from its first bytes.
func sniffMediaType(fsys files, p string) string {
	rc, _, err := fsys.open(p)
	if err != nil {
		return ""
	}
	defer rc.Close()
	var head [4]byte
	n, _ := io.ReadFull(rc, head[:])
	switch {
	case n >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		return string(types.DockerLayer)
	case n == 4 && bytes.Equal(head[:], []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return string(types.OCILayerZStd)
	}
	return string(types.DockerUncompressedLayer)
}

// sameImageName compares image names, ignoring Docker Hub's implied "docker.io/" and
// "library/" prefixes.
func sameImageName(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	norm := func(s string) string {
		s = strings.TrimPrefix(s, "docker.io/")
		s = strings.TrimPrefix(s, "index.docker.io/")
		return strings.TrimPrefix(s, "library/")
	}
	return norm(a) == norm(b)
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func firstNonEmptyType(values ...types.MediaType) types.MediaType {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
