package imagesrc

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// OpenRemote opens an image in a registry ("host/repo:tag" or "host/repo@sha256:...").
// Credentials come from opts.Keychain (the docker config by default). Layers are fetched
// when opened, streamed, not cached.
func OpenRemote(ctx context.Context, reference string, opts Options) (*Image, error) {
	want, err := platformSpec(opts.Platform)
	if err != nil {
		return nil, err
	}
	var nameOpts []name.Option
	if opts.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	ref, err := parseReference(reference, nameOpts...)
	if err != nil {
		return nil, err
	}
	keychain := opts.Keychain
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	transport := opts.Transport
	if transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		if opts.Insecure {
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with Insecure
		}
		transport = t
	}
	remoteOpts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(keychain),
		remote.WithTransport(transport),
		remote.WithPlatform(want),
	}
	desc, err := remote.Get(ref, remoteOpts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", reference, err)
	}
	img := &Image{Name: reference}
	var image v1.Image
	if desc.MediaType.IsIndex() {
		img.IndexDigest = desc.Digest.String()
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", reference, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %v", reference, ErrInvalid, err)
		}
		chosen, _, err := pickPlatform(ctx, nil, im.Manifests, want, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", reference, err)
		}
		image, err = idx.Image(chosen.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", reference, err)
		}
	} else {
		image, err = desc.Image()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", reference, err)
		}
	}
	if err := fillFromV1(img, image); err != nil {
		return nil, fmt.Errorf("%s: %w", reference, err)
	}
	return img, nil
}

func fillFromV1(img *Image, image v1.Image) error {
	digest, err := image.Digest()
	if err != nil {
		return err
	}
	mt, err := image.MediaType()
	if err != nil {
		return err
	}
	cfgName, err := image.ConfigName()
	if err != nil {
		return err
	}
	cfg, err := image.ConfigFile()
	if err != nil {
		return fmt.Errorf("%w: config: %v", ErrInvalid, err)
	}
	layers, err := image.Layers()
	if err != nil {
		return err
	}
	img.ManifestDigest = digest.String()
	img.ManifestMediaType = string(mt)
	img.ConfigDigest = cfgName.String()
	img.Config = cfg
	img.Platform = platformString(cfg.OS, cfg.Architecture, cfg.Variant)
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		lmt, err := l.MediaType()
		if err != nil {
			return err
		}
		size, err := l.Size()
		if err != nil {
			return err
		}
		layer := l
		img.Layers = append(img.Layers, Layer{
			Digest:    d.String(),
			MediaType: string(lmt),
			Size:      size,
			open: func(context.Context) (io.ReadCloser, error) {
				// remote layers are bound to the context given to OpenRemote.
				return layer.Compressed()
			},
		})
	}
	attachHistory(img)
	return nil
}
