package inventory

import (
	"context"
	"fmt"
)

// Scan reads each layer once with ScanLayer and merges the results. The scan pipeline
// (internal/scanning/pipeline) calls ScanLayer and Merge itself, to reuse the LayerInventory of
// layers already seen.
func Scan(ctx context.Context, layers []Layer, opts Options) (*Image, error) {
	invs := make([]*LayerInventory, 0, len(layers))
	for i, l := range layers {
		inv, err := scanOne(ctx, l, opts)
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i+1, l.Digest, err)
		}
		invs = append(invs, inv)
	}
	return MergeWith(invs, MergeOptions{KeepOSOwned: opts.KeepOSOwned}), nil
}

func scanOne(ctx context.Context, l Layer, opts Options) (*LayerInventory, error) {
	if l.Open == nil {
		return nil, fmt.Errorf("no opener")
	}
	rc, err := l.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	defer rc.Close()
	return ScanLayer(ctx, rc, l.Digest, opts)
}
