package scanning

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-registry/lading/internal/blob"
	"github.com/lading-registry/lading/internal/inventory"
	"github.com/lading-registry/lading/internal/scanning/policy"
	"github.com/lading-registry/lading/internal/store"
)

// maxConfigSize bounds an image config read from the blob store.
const maxConfigSize = 8 << 20

// ErrBadImage wraps every reason an image cannot be scanned at all (as opposed to a store or
// I/O failure worth retrying).
var ErrBadImage = errors.New("image cannot be scanned")

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
		return nil, fmt.Errorf("%w: manifest: %w", ErrBadImage, err)
	}
	img := &image{repo: repo, manifest: m, layers: man.Layers, history: map[string]string{}}
	d, err := digest.Parse(man.Config.Digest.String())
	if err != nil {
		return nil, fmt.Errorf("%w: config digest: %w", ErrBadImage, err)
	}
	rc, err := s.blobs.Open(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("%w: config: %w", ErrBadImage, err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if len(raw) > maxConfigSize {
		return nil, fmt.Errorf("%w: config larger than %d bytes", ErrBadImage, maxConfigSize)
	}
	if err := json.Unmarshal(raw, &img.config); err != nil {
		return nil, fmt.Errorf("%w: config: %w", ErrBadImage, err)
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

// inventory merges the image's layer inventories, reading from the blob store only the layers
// no earlier scan has read.
func (s *Service) inventory(ctx context.Context, img *image, scanType string) (*inventory.Image, error) {
	mode := modeOf(scanType)
	layers := make([]*inventory.LayerInventory, 0, len(img.layers))
	for _, l := range img.layers {
		li, err := s.layerInventory(ctx, l, mode)
		if err != nil {
			return nil, err
		}
		layers = append(layers, li)
	}
	return inventory.Merge(layers), nil
}

func (s *Service) layerInventory(ctx context.Context, l ocispec.Descriptor, mode inventory.Mode) (*inventory.LayerInventory, error) {
	dg := l.Digest.String()
	fingerprint := inventory.Fingerprint(mode)
	if raw, err := s.store.LayerInventory(ctx, dg, string(mode), fingerprint); err == nil {
		var li inventory.LayerInventory
		if err := decodeGzipJSON(raw, &li); err == nil {
			return &li, nil
		}
		// A damaged cache entry is read again from the layer.
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	rc, err := s.blobs.Open(ctx, l.Digest)
	if errors.Is(err, blob.ErrNotFound) {
		// A non-distributable layer the registry never held: nothing to read, say so.
		return &inventory.LayerInventory{Fingerprint: fingerprint, Digest: dg, Mode: mode,
			Skipped: []inventory.Skipped{{Layer: dg, Reason: "layer content is not in the registry (non-distributable layer)"}}}, nil
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// The inventory is cached by digest for every image sharing the layer: never build it from
	// content that no longer matches what was verified.
	if err := blob.CheckSize(rc, l.Size); err != nil {
		return nil, fmt.Errorf("%w: layer %s: %w", ErrBadImage, dg, err)
	}
	li, err := inventory.ScanLayer(ctx, rc, dg, inventory.Options{Mode: mode, ScratchDir: s.cfg.ScratchDir, Logger: s.cfg.Logger})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: layer %s: %w", ErrBadImage, dg, err)
	}
	raw, err := encodeGzipJSON(li)
	if err != nil {
		return nil, err
	}
	if err := s.store.PutLayerInventory(ctx, dg, string(mode), fingerprint, raw); err != nil {
		return nil, err
	}
	return li, nil
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
