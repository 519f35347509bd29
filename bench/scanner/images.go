package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// scanImage is one docker-archive both scanners read.
type scanImage struct {
	name string // short name for the table
	path string // single-image docker-archive (osv-scanner's --archive needs one)
	size int64  // bytes of the archive
	note string // where it comes from
}

// corpusImages returns one single-image docker-archive per image of the shared corpus. Files that
// hold one image (as manifest.json says) are used as they are; the others are split with
// go-containerregistry into one docker-archive per image, layers copied byte for byte (still
// gzip), so both scanners read exactly the same file.
func (b *bench) corpusImages(ctx context.Context) ([]scanImage, error) {
	dir := filepath.Join(b.cfg.shared, "images")
	files, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return nil, err
	}
	outDir := filepath.Join(b.work, "images")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	var out []scanImage
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		opener := func() (io.ReadCloser, error) { return os.Open(f) }
		m, err := tarball.LoadManifest(opener)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if len(m) == 1 {
			img, err := fileImage(f, shortName(m[0].RepoTags, f), "as is")
			if err != nil {
				return nil, err
			}
			out = append(out, img)
			continue
		}
		for _, d := range m {
			if len(d.RepoTags) == 0 {
				return nil, fmt.Errorf("%s: an image without a tag in manifest.json", f)
			}
			tag, err := name.NewTag(d.RepoTags[0])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			short := shortName(d.RepoTags, f)
			dst := filepath.Join(outDir, short+".tar")
			progress("extracting %s from %s", d.RepoTags[0], filepath.Base(f))
			img, err := tarball.Image(opener, &tag)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", f, tag, err)
			}
			if err := tarball.WriteToFile(dst, tag, img); err != nil {
				return nil, fmt.Errorf("%s %s: %w", f, tag, err)
			}
			si, err := fileImage(dst, short, "split from "+filepath.Base(f))
			if err != nil {
				return nil, err
			}
			out = append(out, si)
		}
	}
	return out, nil
}

func fileImage(path, short, note string) (scanImage, error) {
	st, err := os.Stat(path)
	if err != nil {
		return scanImage{}, err
	}
	return scanImage{name: short, path: path, size: st.Size(), note: note}, nil
}

// shortName is the repository's last element of the first tag ("corpus/neo4j-like:4.4.0" gives
// "neo4j-like"), or the file name.
func shortName(tags []string, file string) string {
	if len(tags) > 0 {
		t := tags[0]
		if i := strings.LastIndex(t, ":"); i > strings.LastIndex(t, "/") {
			t = t[:i]
		}
		return t[strings.LastIndex(t, "/")+1:]
	}
	return strings.TrimSuffix(filepath.Base(file), ".tar")
}
