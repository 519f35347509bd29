package scanning

import (
	"context"
)

// Layer is one layer of an image as its manifest and config tell it: for the console's image
// page, which shows each layer's Dockerfile step beside the findings its packages brought.
type Layer struct {
	Digest    string
	Size      int64
	MediaType string
	// CreatedBy is the image history's created_by for the layer ("" when not recorded).
	CreatedBy string
}

// ImageLayers returns the layers of a repository image in order, bottom first, with their
// history. An index or artifact (no image config) is ErrNotAnImage; an image whose manifest
// or config does not parse is the error a scan of it fails with.
func (s *Service) ImageLayers(ctx context.Context, repo, dgst string) ([]Layer, error) {
	m, err := s.store.GetManifest(ctx, repo, dgst)
	if err != nil {
		return nil, err
	}
	if !IsImage(m) {
		return nil, ErrNotAnImage
	}
	img, err := s.loadImage(ctx, repo, m)
	if err != nil {
		return nil, err
	}
	out := make([]Layer, len(img.layers))
	for i, l := range img.layers {
		d := l.Digest.String()
		out[i] = Layer{Digest: d, Size: l.Size, MediaType: l.MediaType, CreatedBy: img.history[d]}
	}
	return out, nil
}
