package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lading-registry/lading/internal/testserver"
)

// roundRobin sends each request to the next node, as a load balancer without affinity does
// (internal/testserver's cluster front does the same as a proxy): an upload's POST, PATCH and
// PUT land on different nodes. The Host header stays the registry's name, so the URLs the
// nodes write (upload Locations, token realms) come back here to be spread again. Doing it in
// the client rather than in a proxy keeps a proxy's own cost out of the comparison.
type roundRobin struct {
	base  http.RoundTripper
	nodes []string // host:port
	next  atomic.Uint64
}

func (r *roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	out.URL.Host = r.nodes[(r.next.Add(1)-1)%uint64(len(r.nodes))]
	out.Host = req.URL.Host
	resp, err := r.base.RoundTrip(out)
	if resp != nil {
		// Relative Locations resolve against the registry's name, not the node's address.
		resp.Request = req
	}
	return resp, err
}

// client pushes and pulls images to one registry (one or several nodes).
type client struct {
	host      string // the registry's name in image references
	transport *http.Transport
	opts      []remote.Option
}

func newClient(nodes []string) *client {
	t := &http.Transport{MaxIdleConnsPerHost: 128, DisableCompression: true, IdleConnTimeout: 30 * time.Second}
	never := func(error) bool { return false }
	return &client{host: nodes[0], transport: t, opts: []remote.Option{
		remote.WithAuth(&authn.Basic{Username: testserver.AccessKeyID, Password: testserver.SecretAccessKey}),
		remote.WithTransport(&roundRobin{base: t, nodes: nodes}),
		// No retries: an error is counted, not hidden.
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}), remote.WithRetryPredicate(never), remote.WithRetryStatusCodes(),
	}}
}

func (c *client) ref(im *image) (name.Reference, error) {
	return name.ParseReference(c.host+"/"+im.repo+":"+im.tag, name.Insecure)
}

func (c *client) push(ctx context.Context, im *image) error {
	ref, err := c.ref(im)
	if err != nil {
		return err
	}
	if err := remote.Write(ref, im.img, append(c.opts, remote.WithContext(ctx))...); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// pull reads the image back (manifest, config, every layer) and checks each byte for byte
// against what was pushed.
func (c *client) pull(ctx context.Context, im *image) error {
	ref, err := c.ref(im)
	if err != nil {
		return err
	}
	got, err := remote.Image(ref, append(c.opts, remote.WithContext(ctx))...)
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	manifest, err := got.RawManifest()
	if err != nil {
		return fmt.Errorf("pull %s: manifest: %w", ref, err)
	}
	if !bytes.Equal(manifest, im.manifest) {
		return fmt.Errorf("pull %s: the manifest differs from the one pushed", ref)
	}
	config, err := got.RawConfigFile()
	if err != nil {
		return fmt.Errorf("pull %s: config: %w", ref, err)
	}
	if !bytes.Equal(config, im.config) {
		return fmt.Errorf("pull %s: the config differs from the one pushed", ref)
	}
	layers, err := got.Layers()
	if err != nil {
		return fmt.Errorf("pull %s: layers: %w", ref, err)
	}
	if len(layers) != len(im.layers) {
		return fmt.Errorf("pull %s: %d layers, pushed %d", ref, len(layers), len(im.layers))
	}
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("pull %s: layer %d: %w", ref, i, err)
		}
		b, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			return fmt.Errorf("pull %s: layer %d: %w", ref, i, err)
		}
		if !bytes.Equal(b, im.layers[i].data) {
			return fmt.Errorf("pull %s: layer %d differs from the one pushed (%d bytes, pushed %d)", ref, i, len(b), len(im.layers[i].data))
		}
	}
	return nil
}

// each runs fn on every image with workers at once and returns the errors, one per failed image.
func each(ctx context.Context, imgs []*image, workers int, fn func(context.Context, *image) error) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		next atomic.Int64
	)
	for range min(workers, len(imgs)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(imgs) || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, imgs[i]); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return errs
}

// firstErrors joins up to n of errs, saying how many there were.
func firstErrors(errs []error, n int) error {
	if len(errs) == 0 {
		return nil
	}
	shown := errs[:min(n, len(errs))]
	return fmt.Errorf("%d errors, the first: %w", len(errs), errors.Join(shown...))
}
