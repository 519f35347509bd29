// Package sbom makes the SBOM of a scanned image from what the metadata store holds (its stored
// inventory and its findings), for Inspector's SBOM exports, and attaches each image's SBOM in
// the registry as an OCI referrer when its scan completes (referrer.go).
package sbom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lading-registry/lading/internal/report"
	"github.com/lading-registry/lading/internal/scanning"
	"github.com/lading-registry/lading/internal/store"
)

// Store is what making an image's SBOM reads.
type Store interface {
	ImageScan(ctx context.Context, repo, digest, scanType string) (store.ImageScan, error)
	ImageInventory(ctx context.Context, id int64) ([]byte, error)
	InventoryParts(ctx context.Context, hashes [][]byte) ([][]byte, error)
	Findings(ctx context.Context, repo, digest, scanType string) ([]store.Finding, error)
	TagsOf(ctx context.Context, repo, digest string) ([]string, error)
}

// ErrNoInventory means the image has no stored inventory of that scan type (not scanned yet,
// or its scan failed).
var ErrNoInventory = errors.New("the image has no stored inventory")

// Image names the image an SBOM is made of.
type Image struct {
	Repository string
	Digest     string
	ScanType   string
	// Tags name the image in the SBOM (the first one); nil reads them from the store.
	Tags []string
	// WithFindings adds the image's ACTIVE findings as vulnerabilities (CycloneDX) or
	// advisory references (SPDX).
	WithFindings bool
}

// Scan returns the image's scan as the report writers take it.
func Scan(ctx context.Context, st Store, im Image) (*report.Scan, error) {
	sc, err := st.ImageScan(ctx, im.Repository, im.Digest, im.ScanType)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sc.InventoryID == 0) {
		return nil, fmt.Errorf("%s@%s: %w", im.Repository, im.Digest, ErrNoInventory)
	}
	if err != nil {
		return nil, fmt.Errorf("image scan: %w", err)
	}
	raw, err := st.ImageInventory(ctx, sc.InventoryID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%s@%s: %w", im.Repository, im.Digest, ErrNoInventory)
	}
	if err != nil {
		return nil, fmt.Errorf("image inventory: %w", err)
	}
	inv, err := scanning.DecodeStoredInventory(ctx, st, raw)
	if err != nil {
		return nil, fmt.Errorf("image inventory %d: %w", sc.InventoryID, err)
	}
	tags := im.Tags
	if tags == nil {
		if tags, err = st.TagsOf(ctx, im.Repository, im.Digest); err != nil {
			return nil, fmt.Errorf("tags: %w", err)
		}
	}
	name := im.Repository + "@" + im.Digest
	if len(tags) > 0 {
		name = im.Repository + ":" + tags[0]
	}
	var info scanning.ImageInfo
	if len(sc.ImageFacts) > 0 {
		if err := json.Unmarshal(sc.ImageFacts, &info); err != nil {
			return nil, fmt.Errorf("image facts: %w", err)
		}
	}
	out := &report.Scan{Image: report.Image{Name: name, ManifestDigest: im.Digest, Architecture: info.Architecture, Author: info.Author},
		ScanType: im.ScanType, Inventory: inv}
	if !im.WithFindings {
		return out, nil
	}
	fs, err := st.Findings(ctx, im.Repository, im.Digest, im.ScanType)
	if err != nil {
		return nil, fmt.Errorf("findings: %w", err)
	}
	for _, f := range fs {
		if f.Status != scanning.FindingActive || len(f.Detail) == 0 {
			continue
		}
		var d scanning.Detail
		if err := json.Unmarshal(f.Detail, &d); err != nil {
			return nil, fmt.Errorf("finding %s: detail: %w", f.ARN, err)
		}
		out.Findings = append(out.Findings, d.Finding)
	}
	return out, nil
}
