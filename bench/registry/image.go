package main

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"
)

// The OCI media types the generated images use. The layer is an uncompressed tar because its
// content is random: gzip would only cost time and gain nothing.
const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"
)

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// image is a single-image OCI layout on disk, which `crane push DIR REF` reads with every digest
// already known, so a push measures the upload and not the client's hashing.
type image struct {
	Dir       string
	Layer     descriptor
	LayerPath string // the layer blob's file, also what the bare ServeFile server serves
}

// tarOverhead is what a one-file tar adds to the file: a 512-byte header and the 1024-byte
// end-of-archive marker (content sizes used here are multiples of 512, so there is no padding).
const tarOverhead = 512 + 1024

// writeImage writes an OCI layout under dir holding one image whose single layer is a tar of one
// file of contentSize bytes read from rnd.
func writeImage(dir string, contentSize int64, rnd io.Reader) (image, error) {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return image{}, err
	}
	layer, layerPath, err := writeLayer(blobs, contentSize, rnd)
	if err != nil {
		return image{}, fmt.Errorf("write layer: %w", err)
	}
	cfg, err := writeJSONBlob(blobs, mediaTypeConfig, map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{},
		// Uncompressed, so the diff id is the layer's own digest.
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layer.Digest}},
	})
	if err != nil {
		return image{}, err
	}
	man, err := writeJSONBlob(blobs, mediaTypeManifest, map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeManifest,
		"config":        cfg,
		"layers":        []descriptor{layer},
	})
	if err != nil {
		return image{}, err
	}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mediaTypeIndex, "manifests": []descriptor{man}})
	if err != nil {
		return image{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
		return image{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return image{}, err
	}
	return image{Dir: dir, Layer: layer, LayerPath: layerPath}, nil
}

func writeLayer(blobs string, contentSize int64, rnd io.Reader) (descriptor, string, error) {
	f, err := os.CreateTemp(blobs, "layer-*")
	if err != nil {
		return descriptor{}, "", err
	}
	defer func() { _ = os.Remove(f.Name()) }() // a no-op once renamed
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(f, h)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	tw := tar.NewWriter(bw)
	hdr := &tar.Header{Name: "data.bin", Mode: 0o644, Size: contentSize, Typeflag: tar.TypeReg,
		ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}
	if err := tw.WriteHeader(hdr); err != nil {
		_ = f.Close()
		return descriptor{}, "", err
	}
	if _, err := io.CopyN(tw, rnd, contentSize); err != nil {
		_ = f.Close()
		return descriptor{}, "", err
	}
	if err := tw.Close(); err != nil {
		_ = f.Close()
		return descriptor{}, "", err
	}
	if err := bw.Flush(); err != nil {
		_ = f.Close()
		return descriptor{}, "", err
	}
	if err := f.Close(); err != nil {
		return descriptor{}, "", err
	}
	d := descriptor{MediaType: mediaTypeLayer, Digest: digestOf(h), Size: cw.n}
	path := filepath.Join(blobs, d.Digest[len("sha256:"):])
	return d, path, os.Rename(f.Name(), path)
}

func writeJSONBlob(blobs, mediaType string, v any) (descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return descriptor{}, err
	}
	h := sha256.New()
	h.Write(b)
	d := descriptor{MediaType: mediaType, Digest: digestOf(h), Size: int64(len(b))}
	return d, os.WriteFile(filepath.Join(blobs, d.Digest[len("sha256:"):]), b, 0o644)
}

func digestOf(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
