package scanning

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/scanning/pipeline"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// maxConfigSize bounds an image config read from the blob store.
const maxConfigSize = 8 << 20

// image is a stored image manifest with what scanning needs of its config.
type image struct {
	repo     string
	manifest store.Manifest
	layers   []ocispec.Descriptor
	config   ocispec.Image
	// history maps a layer digest to the created_by of its history entry.
	history map[string]string
}

func (s *Service) loadImage(ctx context.Context, repo string, m store.Manifest) (*image, error) {
	if m.Content == nil {
		full, err := s.store.GetManifest(ctx, repo, m.Digest)
		if err != nil {
			return nil, err
		}
		m = full
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(m.Content, &man); err != nil {
		return nil, badImage(DescBadManifest, fmt.Errorf("manifest: %w", err))
	}
	img := &image{repo: repo, manifest: m, layers: man.Layers, history: map[string]string{}}
	d, err := digest.Parse(man.Config.Digest.String())
	if err != nil {
		return nil, badImage(DescBadConfig, fmt.Errorf("config digest: %w", err))
	}
	rc, err := s.blobs.Open(ctx, d)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, badImage(DescBadConfig, fmt.Errorf("config: %w", err))
	}
	if err != nil {
		return nil, fmt.Errorf("open config: %w", err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if len(raw) > maxConfigSize {
		return nil, badImage(DescBadConfig, fmt.Errorf("config larger than %d bytes", maxConfigSize))
	}
	if err := json.Unmarshal(raw, &img.config); err != nil {
		return nil, badImage(DescBadConfig, fmt.Errorf("config: %w", err))
	}
	// History entries marked empty_layer have no layer; the others pair with layers in order.
	i := 0
	for _, h := range img.config.History {
		if h.EmptyLayer {
			continue
		}
		if i < len(man.Layers) {
			img.history[man.Layers[i].Digest.String()] = h.CreatedBy
		}
		i++
	}
	return img, nil
}

func modeOf(scanType string) inventory.Mode {
	if scanType == policy.ScanTypeEnhanced {
		return inventory.ModeEnhanced
	}
	return inventory.ModeBasic
}

// scanner is the scan pipeline for a scan type, with the store's layer inventories as its
// cache.
func (s *Service) scanner(scanType string, log *slog.Logger) pipeline.Scanner {
	return pipeline.Scanner{Mode: modeOf(scanType), ScratchDir: s.cfg.ScratchDir, Cache: layerCache{s.store, s.layerMemo}, Logger: log, Slots: s.layerSlots,
		GzipProgram: s.cfg.GzipProgram}
}

// pipelineLayers are the image's layers as the pipeline reads them, from the blob store.
func (s *Service) pipelineLayers(img *image) []pipeline.Layer {
	out := make([]pipeline.Layer, len(img.layers))
	for i, l := range img.layers {
		dg := l.Digest.String()
		out[i] = pipeline.Layer{Digest: dg, Size: l.Size, CreatedBy: img.history[dg], Content: blobLayer{blobs: s.blobs, desc: l}}
	}
	return out
}

// blobLayer is a layer read from the blob store.
type blobLayer struct {
	blobs Blobs
	desc  ocispec.Descriptor
}

func (l blobLayer) Open(ctx context.Context) (io.ReadCloser, error) {
	rc, err := l.blobs.Open(ctx, l.desc.Digest)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, &pipeline.AbsentError{Reason: "layer content is not in the registry (non-distributable layer)"}
	}
	if err != nil {
		return nil, err
	}
	// The inventory is cached by digest for every image sharing the layer: never build it from
	// content that no longer matches what was verified.
	if err := blob.CheckSize(rc, l.desc.Size); err != nil {
		_ = rc.Close()
		return nil, badImage(fmt.Sprintf(descDamagedLayer, l.desc.Digest), err)
	}
	return rc, nil
}

// layerCache keeps the pipeline's layer inventories in the store, and the last ones used
// decoded in memory: the base layer shared by the images pushed in a row is decoded once,
// not once per image (which was a quarter of a small image's scan).
type layerCache struct {
	store Store
	memo  *layerMemo
}

func (c layerCache) Get(ctx context.Context, dg string, mode inventory.Mode) (*inventory.LayerInventory, bool, error) {
	key := memoKey{dg, mode, inventory.Fingerprint(mode)}
	if li, ok := c.memo.get(key); ok {
		return li, true, nil
	}
	raw, err := c.store.LayerInventory(ctx, dg, string(mode), key.fingerprint)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var li inventory.LayerInventory
	if err := decodeGzipJSON(raw, &li); err != nil {
		return nil, false, nil // a damaged entry: the layer is read again
	}
	c.memo.put(key, &li)
	return &li, true, nil
}

func (c layerCache) Put(ctx context.Context, dg string, mode inventory.Mode, li *inventory.LayerInventory) error {
	raw, err := encodeGzipJSON(li)
	if err != nil {
		return err
	}
	if err := c.store.PutLayerInventory(ctx, dg, string(mode), inventory.Fingerprint(mode), raw); err != nil {
		return err
	}
	c.memo.put(memoKey{dg, mode, inventory.Fingerprint(mode)}, li)
	return nil
}

type memoKey struct {
	digest      string
	mode        inventory.Mode
	fingerprint string
}

// layerMemo holds the last maxMemoLayers layer inventories used, decoded. They are shared by
// concurrent scans, which only read them (inventory.Merge copies what it keeps).
type layerMemo struct {
	mu    sync.Mutex
	max   int
	m     map[memoKey]*inventory.LayerInventory
	order []memoKey // oldest first
}

// maxMemoLayers bounds the memo by count: a layer inventory holds the layer's package list and
// package-relevant paths, tens to hundreds of kilobytes for a base layer.
const maxMemoLayers = 64

func newLayerMemo(n int) *layerMemo {
	return &layerMemo{max: n, m: map[memoKey]*inventory.LayerInventory{}}
}

func (lm *layerMemo) get(k memoKey) (*inventory.LayerInventory, bool) {
	if lm == nil {
		return nil, false
	}
	lm.mu.Lock()
	defer lm.mu.Unlock()
	li, ok := lm.m[k]
	return li, ok
}

func (lm *layerMemo) put(k memoKey, li *inventory.LayerInventory) {
	if lm == nil {
		return
	}
	lm.mu.Lock()
	defer lm.mu.Unlock()
	if _, ok := lm.m[k]; ok {
		lm.m[k] = li
		return
	}
	if len(lm.order) >= lm.max {
		delete(lm.m, lm.order[0])
		lm.order = lm.order[1:]
	}
	lm.m[k] = li
	lm.order = append(lm.order, k)
}

// storedInventory is what the store keeps of an image inventory.
type storedInventory struct {
	OS       *inventory.OSInfo   `json:"os,omitempty"`
	Packages []inventory.Package `json:"packages"`
	History  map[string]string   `json:"history,omitempty"`
	Skipped  []inventory.Skipped `json:"skipped,omitempty"`
}

func encodeGzipJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeGzipJSON(raw []byte, v any) error {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	defer zr.Close()
	return json.NewDecoder(zr).Decode(v)
}

// PlatformName is Inspector's name for an image's operating system, e.g. DEBIAN_12.
func PlatformName(os *inventory.OSInfo) string {
	if os == nil {
		return ""
	}
	v := os.VersionID
	if os.ID == "alpine" {
		// Inspector names Alpine by major.minor.
		if parts := strings.SplitN(v, ".", 3); len(parts) >= 2 {
			v = parts[0] + "." + parts[1]
		}
	}
	name := strings.ToUpper(os.ID)
	if v != "" {
		name += "_" + strings.ReplaceAll(v, ".", "_")
	}
	return name
}
