package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// item is one throughput measurement, made on each registry in each repetition.
type item struct {
	name   string
	unit   string // of the values: "images/s" or "MB/s"
	values [][]float64
	cpu    [][]float64 // CPU seconds the registry's processes used, per repetition
}

// measureThroughput pushes then pulls fresh small and large images to each registry, in
// alternating order from one repetition to the next so that drift on a shared machine falls
// on both alike.
func measureThroughput(ctx context.Context, cfg config, regs []*registry) ([]*item, error) {
	const smallRepos = 8
	newItem := func(name, unit string) *item {
		return &item{name: name, unit: unit, values: make([][]float64, len(regs)), cpu: make([][]float64, len(regs))}
	}
	small := fmt.Sprintf("%d small images (%d KiB, %d at once)", cfg.smallImages, cfg.smallSize>>10, cfg.workers)
	large := fmt.Sprintf("%d images of %d MiB (%d at once)", cfg.largeImages, cfg.largeSize>>20, min(cfg.workers, cfg.largeImages))
	pushSmall, pushLarge := newItem("push "+small, "images/s"), newItem("push "+large, "MB/s")
	pullSmall, pullLarge := newItem("pull "+small, "images/s"), newItem("pull "+large, "MB/s")

	// Untimed: the first push to a repository creates it, and connections are opened.
	warm, err := newImages(smallRepos+1, smallRepos+1, 1024, "bench/small", "warm")
	if err != nil {
		return nil, err
	}
	warm[smallRepos].repo = "bench/large0"
	for _, r := range regs {
		if errs := each(ctx, warm, cfg.workers, r.client.push); len(errs) > 0 {
			return nil, fmt.Errorf("%s: warm-up: %w", r.name, firstErrors(errs, 3))
		}
		if errs := each(ctx, warm, cfg.workers, r.client.pull); len(errs) > 0 {
			return nil, fmt.Errorf("%s: warm-up: %w", r.name, firstErrors(errs, 3))
		}
	}

	for rep := range cfg.reps {
		tag := fmt.Sprintf("r%d-", rep)
		smallImgs, err := newImages(cfg.smallImages, smallRepos, cfg.smallSize, "bench/small", tag)
		if err != nil {
			return nil, err
		}
		largeImgs, err := newImages(cfg.largeImages, 1, cfg.largeSize, "bench/large", tag)
		if err != nil {
			return nil, err
		}
		order := make([]int, len(regs))
		for i := range order {
			order[i] = (i + rep) % len(regs)
		}
		for _, ph := range []struct {
			it   *item
			imgs []*image
			pull bool
		}{{pushSmall, smallImgs, false}, {pushLarge, largeImgs, false}, {pullSmall, smallImgs, true}, {pullLarge, largeImgs, true}} {
			for _, i := range order {
				r := regs[i]
				fn := r.client.push
				if ph.pull {
					fn = r.client.pull
				}
				cpu0, t0 := r.cpu(), time.Now()
				errs := each(ctx, ph.imgs, cfg.workers, fn)
				elapsed, cpu1 := time.Since(t0).Seconds(), r.cpu()
				var parts [3]float64
				for k := range parts {
					parts[k] = cpu1[k] - cpu0[k]
				}
				cpu := parts[0] + parts[1] + parts[2]
				if len(errs) > 0 {
					return nil, fmt.Errorf("%s: %s: %w", r.name, ph.it.name, firstErrors(errs, 3))
				}
				v := float64(len(ph.imgs)) / elapsed
				if ph.it.unit == "MB/s" {
					v = float64(totalSize(ph.imgs)) / 1e6 / elapsed
				}
				ph.it.values[i] = append(ph.it.values[i], v)
				ph.it.cpu[i] = append(ph.it.cpu[i], cpu)
				progress("rep %d: %s: %s: %.1f %s in %.2f s, server CPU %.2f s (nodes %.2f, versitygw %.2f, PostgreSQL %.2f)",
					rep+1, r.name, ph.it.name, v, ph.it.unit, elapsed, cpu, parts[0], parts[1], parts[2])
			}
		}
	}
	return []*item{pushSmall, pushLarge, pullSmall, pullLarge}, nil
}

// concurrent is the result of the concurrent push: images sharing base layers, all pushed at
// once across the nodes, then all pulled back and checked byte for byte.
type concurrent struct {
	images, repos int
	base          []int64
	top           int64
	push          time.Duration
	pushErrs      []error
	pullErrs      []error
}

func measureConcurrent(ctx context.Context, cfg config, r *registry) (*concurrent, error) {
	c := &concurrent{images: cfg.concurrent, repos: min(16, cfg.concurrent), base: []int64{4 << 20, 1 << 20, 256 << 10}, top: 64 << 10}
	imgs, err := newSharedImages(c.images, c.repos, c.base, c.top)
	if err != nil {
		return nil, err
	}
	progress("%s: pushing %d images sharing %d base layers at once", r.name, c.images, len(c.base))
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for _, im := range imgs {
		wg.Go(func() {
			<-start
			if err := r.client.push(ctx, im); err != nil {
				mu.Lock()
				c.pushErrs = append(c.pushErrs, err)
				mu.Unlock()
			}
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	c.push = time.Since(t0)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	c.pullErrs = each(ctx, imgs, c.images, r.client.pull)
	progress("%s: concurrent push in %s: %d push errors, %d pull errors", r.name, c.push.Round(time.Millisecond), len(c.pushErrs), len(c.pullErrs))
	return c, nil
}
