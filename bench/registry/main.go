// Command registry benchmarks Lading against CNCF Distribution (filesystem storage) side by
// side, as issue 2 asks: blob GET throughput of a 1 GiB layer with curl (one and several
// streams, with a bare http.ServeFile server on the same file as the physical limit), the push
// of that image with crane, the push then pull of many small images with crane, and Lading's
// peak RSS during the big push. It prints a table of medians, ratios and targets.
//
// Run it from the repository root:
//
//	go run ./bench/registry
package main

import (
	"context"
	crand "crypto/rand"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lading-registry/lading/bench/internal/cli"
	"github.com/lading-registry/lading/bench/internal/machine"
)

// serveFileCommand is the argument that makes this program the bare ServeFile helper.
const serveFileCommand = "serve-file"

type config struct {
	repo        string // repository root, where ./cmd/lading builds
	workRoot    string // parent of the run's temporary directory
	keep        bool
	layerSize   int64
	reps        int // repetitions of (b)
	smallReps   int // repetitions of (c)
	pullReps    int // repetitions of (e)
	pullSize    int64
	getReps     int // repetitions of each GET measurement
	streams     int
	smallImages int
	smallSize   int64
	workers     int // crane processes at once in (c)
	registry    string
	crane       string
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == serveFileCommand {
		if err := serveFile(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "serve-file:", err)
			os.Exit(1)
		}
		return
	}
	var cfg config
	var layerMiB int64
	flag.StringVar(&cfg.repo, "repo", ".", "root of the Lading repository (where ./cmd/lading is)")
	flag.StringVar(&cfg.workRoot, "workdir", os.TempDir(), "where to make the run's temporary directory (needs about 4 GiB free)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (data dirs and server logs) after the run")
	flag.Int64Var(&layerMiB, "layer-mib", 1024, "size of the big layer in MiB")
	flag.IntVar(&cfg.reps, "reps", 5, "repetitions of the big push (b)")
	flag.IntVar(&cfg.smallReps, "small-reps", 3, "repetitions of the small-image round trip (c)")
	var pullMiB int64
	flag.IntVar(&cfg.pullReps, "pull-reps", 5, "repetitions of the image pull (e)")
	flag.Int64Var(&pullMiB, "pull-mib", 256, "size of the pulled image's layer in MiB (e)")
	flag.IntVar(&cfg.getReps, "get-reps", 7, "repetitions of each blob GET measurement (a)")
	flag.IntVar(&cfg.streams, "streams", 8, "parallel curl streams for the multi-stream GET")
	flag.IntVar(&cfg.smallImages, "small-images", 500, "number of small images pushed then pulled")
	flag.Int64Var(&cfg.smallSize, "small-bytes", 4096, "random bytes in each small image's layer (a multiple of 512)")
	flag.IntVar(&cfg.workers, "workers", 4, "crane processes running at once for the small images")
	flag.StringVar(&cfg.registry, "registry-bin", "", "Distribution's registry binary (default: ~/go/bin/registry or PATH, installed at "+distributionVersion+" if missing)")
	flag.StringVar(&cfg.crane, "crane-bin", "", "crane binary (default: ~/go/bin/crane or PATH, installed at "+craneVersion+" if missing)")
	flag.Parse()
	cfg.layerSize = layerMiB << 20
	cfg.pullSize = pullMiB << 20
	if cfg.layerSize <= tarOverhead || cfg.pullSize <= tarOverhead || cfg.pullReps < 1 || cfg.smallSize%512 != 0 || cfg.reps < 1 || cfg.smallReps < 1 || cfg.getReps < 1 ||
		cfg.streams < 1 || cfg.smallImages < 1 || cfg.workers < 1 {
		cli.BadFlags("invalid flags")
	}
	cli.Run(func(ctx context.Context, out io.Writer) error { return run(ctx, cfg, out) })
}

// progress writes a progress line on standard error, stamped with the seconds since start.
var progress = cli.Progress()

// newRand is a fast source of incompressible bytes (ChaCha8, seeded from the system).
func newRand() io.Reader {
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	return rand.NewChaCha8(seed)
}

// bench holds one run's state.
type bench struct {
	cfg   config
	work  string
	tools tools
	crane crane
	res   results
	// loadStart is the load average when the run began.
	loadStart string
	// The registries kept running after the last push, for the GET and small-image phases.
	lading, dist *server
}

func run(ctx context.Context, cfg config, out io.Writer) (err error) {
	repo, err := filepath.Abs(cfg.repo)
	if err != nil {
		return err
	}
	cfg.repo = repo
	work, err := os.MkdirTemp(cfg.workRoot, "lading-bench-")
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, work: work, res: newResults(), loadStart: machine.LoadAverage()}
	defer func() {
		if err != nil && ctx.Err() == nil {
			b.dumpLogs()
		}
		for _, s := range []*server{b.lading, b.dist} {
			if s != nil {
				s.Stop()
			}
		}
		if cfg.keep {
			progress("kept %s", work)
			return
		}
		if rmErr := os.RemoveAll(work); rmErr != nil && err == nil {
			err = rmErr
		}
	}()
	binDir := filepath.Join(work, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	if b.tools, err = findTools(ctx, cfg, binDir); err != nil {
		return err
	}
	b.crane = crane{bin: b.tools.crane, dockerConfig: filepath.Join(work, "docker")}

	progress("writing the %d MiB single-layer image", cfg.layerSize>>20)
	big, err := writeImage(filepath.Join(work, "big-image"), cfg.layerSize-tarOverhead, newRand())
	if err != nil {
		return fmt.Errorf("generate image: %w", err)
	}
	progress("layer %s, %d bytes", big.Layer.Digest, big.Layer.Size)

	if err := b.measurePush(ctx, big); err != nil {
		return fmt.Errorf("(b) push: %w", err)
	}
	if err := b.measureGet(ctx, big); err != nil {
		return fmt.Errorf("(a) blob GET: %w", err)
	}
	if err := b.measureSmall(ctx); err != nil {
		return fmt.Errorf("(c) small images: %w", err)
	}
	if err := b.measurePull(ctx); err != nil {
		return fmt.Errorf("(e) pull: %w", err)
	}
	b.report(ctx, out)
	return nil
}

// dumpLogs prints the end of every server log of the run, to explain a failure.
func (b *bench) dumpLogs() {
	logs, _ := filepath.Glob(filepath.Join(b.work, "*", "*.log"))
	more, _ := filepath.Glob(filepath.Join(b.work, "*.log"))
	for _, l := range append(logs, more...) {
		content, err := os.ReadFile(l)
		if err != nil || len(content) == 0 {
			continue
		}
		fmt.Fprintf(os.Stderr, "--- %s\n%s\n", l, lastLines(string(content), 20))
	}
}

// startRegistry starts a fresh instance of name ("lading" or "distribution") in dir.
func (b *bench) startRegistry(ctx context.Context, name, dir string) (*server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if name == "distribution" {
		return startDistribution(ctx, b.tools.registry, dir)
	}
	s, err := startLading(ctx, b.tools.lading, dir)
	if err != nil {
		return nil, err
	}
	return s, dockerConfig(b.crane.dockerConfig, s.Addr)
}

// order alternates which registry goes first from one repetition to the next, so that neither
// always runs on the heels of the other's disk writeback.
func order(rep int) []string {
	if rep%2 == 0 {
		return []string{"lading", "distribution"}
	}
	return []string{"distribution", "lading"}
}

// measurePush pushes the big image with crane into a fresh instance of each registry per
// repetition, reading each server's VmHWM afterwards. The last repetition's servers stay up.
func (b *bench) measurePush(ctx context.Context, big image) error {
	for rep := range b.cfg.reps {
		last := rep == b.cfg.reps-1
		for _, name := range order(rep) {
			dir := filepath.Join(b.work, fmt.Sprintf("%s-%d", name, rep))
			s, err := b.startRegistry(ctx, name, dir)
			if err != nil {
				return err
			}
			syscall.Sync() // start from clean page cache, whoever wrote before
			var d time.Duration
			cpu, err := s.cpuDuring(func() (err error) {
				d, err = timed(func() error { return b.crane.push(ctx, big.Dir, s.Addr+"/bench/big:latest") })
				return err
			})
			if err != nil {
				s.Stop()
				return err
			}
			rss, err := s.peakRSS()
			if err != nil {
				s.Stop()
				return err
			}
			b.res.push[name] = append(b.res.push[name], d.Seconds())
			b.res.pushCPU[name] = append(b.res.pushCPU[name], cpu)
			b.res.rss[name] = append(b.res.rss[name], rss)
			progress("(b) push %d: %-12s %6.2f s  server CPU %5.2f s  peak RSS %d MiB", rep+1, name, d.Seconds(), cpu, rss>>20)
			if !last {
				s.Stop()
				if err := os.RemoveAll(dir); err != nil {
					return err
				}
				continue
			}
			if name == "lading" {
				b.lading = s
			} else {
				b.dist = s
			}
		}
	}
	syscall.Sync()
	return nil
}

// measureGet downloads the big layer from each registry and from a bare ServeFile server.
func (b *bench) measureGet(ctx context.Context, big image) error {
	sf, err := startServeFile(ctx, b.work, big.LayerPath)
	if err != nil {
		return err
	}
	defer sf.Stop()
	blobPath := "/v2/bench/big/blobs/" + big.Layer.Digest
	targets := []struct {
		s    *server
		path string
	}{{sf, "/"}, {b.lading, blobPath}, {b.dist, blobPath}}
	for _, t := range targets { // warm-up, and a check that every server has the blob
		if _, err := getThroughput(ctx, b.tools.curl, t.s, t.path, big.Layer.Size, 1); err != nil {
			return err
		}
	}
	for _, streams := range []int{1, b.cfg.streams} {
		for rep := range b.cfg.getReps {
			for i := range targets {
				t := targets[(i+rep)%len(targets)]
				var bps float64
				var failure error
				cpu, err := t.s.cpuDuring(func() (err error) {
					bps, err, failure = getSample(ctx, b.tools.curl, t.s, t.path, big.Layer.Size, streams)
					return err
				})
				if failure != nil {
					b.res.failures = append(b.res.failures, fmt.Sprintf("%s, %d stream(s): %v", t.s.Name, streams, failure))
				}
				if err != nil {
					return err
				}
				m, mcpu := b.res.get1, b.res.get1CPU
				if streams > 1 {
					m, mcpu = b.res.getN, b.res.getNCPU
				}
				m[t.s.Name] = append(m[t.s.Name], bps)
				// CPU per GiB served, so one and several streams compare.
				perGiB := cpu / (float64(streams*int(big.Layer.Size)) / (1 << 30))
				mcpu[t.s.Name] = append(mcpu[t.s.Name], perGiB)
				progress("(a) GET %d stream(s) %d: %-12s %5.2f GB/s  server CPU %.2f s/GiB", streams, rep+1, t.s.Name, bps/1e9, perGiB)
			}
		}
	}
	return nil
}

// measureSmall pushes then pulls cfg.smallImages fresh small images with crane, workers at a
// time, on each registry.
func (b *bench) measureSmall(ctx context.Context) error {
	servers := map[string]*server{"lading": b.lading, "distribution": b.dist}
	for rep := range b.cfg.smallReps {
		setDir := filepath.Join(b.work, fmt.Sprintf("small-%d", rep))
		progress("(c) writing %d small images", b.cfg.smallImages)
		rnd := newRand()
		for i := range b.cfg.smallImages {
			if _, err := writeImage(filepath.Join(setDir, fmt.Sprintf("i%04d", i)), b.cfg.smallSize, rnd); err != nil {
				return err
			}
		}
		for _, name := range order(rep) {
			s := servers[name]
			ref := func(i int) string { return fmt.Sprintf("%s/bench/small:r%d-i%04d", s.Addr, rep, i) }
			syscall.Sync()
			cpu0, err := s.cpuSeconds()
			if err != nil {
				return err
			}
			push, err := timed(func() error {
				return parallel(ctx, b.cfg.smallImages, b.cfg.workers, func(i int) error {
					return b.crane.push(ctx, filepath.Join(setDir, fmt.Sprintf("i%04d", i)), ref(i))
				})
			})
			if err != nil {
				return err
			}
			pulled := filepath.Join(b.work, "pulled")
			if err := os.MkdirAll(pulled, 0o755); err != nil {
				return err
			}
			pull, err := timed(func() error {
				return parallel(ctx, b.cfg.smallImages, b.cfg.workers, func(i int) error {
					return b.crane.pull(ctx, ref(i), filepath.Join(pulled, fmt.Sprintf("i%04d.tar", i)))
				})
			})
			if err != nil {
				return err
			}
			cpu1, err := s.cpuSeconds()
			if err != nil {
				return err
			}
			if err := os.RemoveAll(pulled); err != nil {
				return err
			}
			b.res.smallPush[name] = append(b.res.smallPush[name], push.Seconds())
			b.res.smallPull[name] = append(b.res.smallPull[name], pull.Seconds())
			b.res.smallRT[name] = append(b.res.smallRT[name], (push + pull).Seconds())
			b.res.smallCPU[name] = append(b.res.smallCPU[name], cpu1-cpu0)
			progress("(c) small %d: %-12s push %5.2f s  pull %5.2f s  server CPU %5.2f s", rep+1, name, push.Seconds(), pull.Seconds(), cpu1-cpu0)
		}
		if err := os.RemoveAll(setDir); err != nil {
			return err
		}
	}
	return nil
}

// measurePull pushes a fresh image to both registries, then pulls it with crane (written to
// /dev/null, so that the client's disk is not measured) from each, alternating which goes first.
func (b *bench) measurePull(ctx context.Context) error {
	progress("writing the %d MiB image to pull", b.cfg.pullSize>>20)
	img, err := writeImage(filepath.Join(b.work, "pull-image"), b.cfg.pullSize-tarOverhead, newRand())
	if err != nil {
		return fmt.Errorf("generate image: %w", err)
	}
	servers := map[string]*server{"lading": b.lading, "distribution": b.dist}
	for _, s := range servers {
		if err := b.crane.push(ctx, img.Dir, s.Addr+"/bench/pull:latest"); err != nil {
			return err
		}
	}
	syscall.Sync()
	for rep := range b.cfg.pullReps {
		for _, name := range order(rep) {
			s := servers[name]
			var d time.Duration
			cpu, err := s.cpuDuring(func() (err error) {
				d, err = timed(func() error { return b.crane.pull(ctx, s.Addr+"/bench/pull:latest", os.DevNull) })
				return err
			})
			if err != nil {
				return err
			}
			b.res.pull[name] = append(b.res.pull[name], d.Seconds())
			b.res.pullCPU[name] = append(b.res.pullCPU[name], cpu)
			progress("(e) pull %d: %-12s %6.2f s  server CPU %5.2f s", rep+1, name, d.Seconds(), cpu)
		}
	}
	return nil
}
