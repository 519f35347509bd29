package main

import (
	"archive/tar"
	"bytes"
	crand "crypto/rand"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// newRand is a fast source of incompressible bytes (ChaCha8, seeded from the system).
func newRand() io.Reader {
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	return rand.NewChaCha8(seed)
}

// layer is a layer and its bytes, kept to check what a pull returns byte for byte.
type layer struct {
	v1.Layer
	data []byte
}

// newLayer is an uncompressed tar holding one file of n random bytes: its content does not
// compress, so gzip would only cost time.
func newLayer(r io.Reader, n int64) (layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "data", Mode: 0o644, Size: n, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		return layer{}, err
	}
	if _, err := io.CopyN(tw, r, n); err != nil {
		return layer{}, err
	}
	if err := tw.Close(); err != nil {
		return layer{}, err
	}
	return layer{Layer: static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer), data: buf.Bytes()}, nil
}

// image is an image to push under repo:tag, with what its pull must give back.
type image struct {
	repo, tag string
	img       v1.Image
	layers    []layer
	manifest  []byte
	config    []byte
	size      int64 // bytes sent by a push: layers, config and manifest
}

func newImage(repo, tag string, layers ...layer) (*image, error) {
	ls := make([]v1.Layer, len(layers))
	for i, l := range layers {
		ls[i] = l
	}
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	manifest, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	im := &image{repo: repo, tag: tag, img: img, layers: layers, manifest: manifest, config: config,
		size: int64(len(manifest) + len(config))}
	for _, l := range layers {
		im.size += int64(len(l.data))
	}
	return im, nil
}

// newImages makes n images of one random layer of size bytes each, spread over repos
// repositories named prefix0, prefix1, ..., tagged with tag and their number.
func newImages(n, repos int, size int64, prefix, tag string) ([]*image, error) {
	r := newRand()
	imgs := make([]*image, n)
	for i := range imgs {
		l, err := newLayer(r, size)
		if err != nil {
			return nil, err
		}
		if imgs[i], err = newImage(fmt.Sprint(prefix, i%repos), fmt.Sprint(tag, i), l); err != nil {
			return nil, err
		}
	}
	return imgs, nil
}

// newSharedImages makes n images on the same base layers (of the sizes given), each with a
// layer of its own of top bytes, spread over repos repositories.
func newSharedImages(n, repos int, base []int64, top int64) ([]*image, error) {
	r := newRand()
	var shared []layer
	for _, size := range base {
		l, err := newLayer(r, size)
		if err != nil {
			return nil, err
		}
		shared = append(shared, l)
	}
	imgs := make([]*image, n)
	for i := range imgs {
		own, err := newLayer(r, top)
		if err != nil {
			return nil, err
		}
		if imgs[i], err = newImage(fmt.Sprint("shared/app", i%repos), fmt.Sprint("v", i), append(append([]layer(nil), shared...), own)...); err != nil {
			return nil, err
		}
	}
	return imgs, nil
}

func totalSize(imgs []*image) int64 {
	var n int64
	for _, im := range imgs {
		n += im.size
	}
	return n
}
