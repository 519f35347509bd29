package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

func encodeBasic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// curlGet downloads url to /dev/null and returns the bytes received and curl's own average
// speed in bytes per second.
func curlGet(ctx context.Context, curl string, s *server, path string) (int64, float64, error) {
	args := []string{"-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{speed_download}"}
	if s.basic {
		args = append(args, "-u", ladingUser+":"+ladingSecret)
	}
	args = append(args, "http://"+s.Addr+path)
	out, err := output(ctx, "", curl, args...)
	if err != nil {
		return 0, 0, err
	}
	var code int
	var size int64
	var speed float64
	if _, err := fmt.Sscan(out, &code, &size, &speed); err != nil {
		return 0, 0, fmt.Errorf("curl output %q: %w", out, err)
	}
	if code != 200 {
		return 0, 0, fmt.Errorf("GET %s from %s: HTTP %d", path, s.Name, code)
	}
	return size, speed, nil
}

// getSample is getThroughput retried once after a failed transfer; the failure is returned for
// the report, since a registry that drops transfers is a finding, not noise.
func getSample(ctx context.Context, curl string, s *server, path string, want int64, streams int) (float64, error, error) {
	bps, failure := getThroughput(ctx, curl, s, path, want, streams)
	if failure == nil || ctx.Err() != nil {
		return bps, failure, nil
	}
	progress("%s: %v; retrying", s.Name, failure)
	bps, err := getThroughput(ctx, curl, s, path, want, streams)
	return bps, err, failure
}

// getThroughput downloads path with `streams` curls at once and returns bytes per second: curl's
// figure for one stream, the sum of bytes over the wall time for several.
func getThroughput(ctx context.Context, curl string, s *server, path string, want int64, streams int) (float64, error) {
	if streams == 1 {
		size, speed, err := curlGet(ctx, curl, s, path)
		if err == nil && size != want {
			err = fmt.Errorf("GET %s from %s: %d bytes, want %d", path, s.Name, size, want)
		}
		return speed, err
	}
	var total int64
	var mu sync.Mutex
	begin := time.Now()
	err := parallel(ctx, streams, streams, func(int) error {
		size, _, err := curlGet(ctx, curl, s, path)
		if err == nil && size != want {
			err = fmt.Errorf("GET %s from %s: %d bytes, want %d", path, s.Name, size, want)
		}
		mu.Lock()
		total += size
		mu.Unlock()
		return err
	})
	return float64(total) / time.Since(begin).Seconds(), err
}

// crane runs the crane CLI with the run's docker config (Lading's credentials).
type crane struct {
	bin          string
	dockerConfig string
}

func (c crane) run(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"--insecure"}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+c.dockerConfig)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("crane %s: %w: %s", strings.Join(args, " "), err, lastLines(out.String(), 5))
	}
	return nil
}

func (c crane) push(ctx context.Context, layout, ref string) error {
	return c.run(ctx, "push", layout, ref)
}

func (c crane) pull(ctx context.Context, ref, tarball string) error {
	return c.run(ctx, "pull", ref, tarball)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// parallel calls fn(0..n-1) on `workers` goroutines and returns the first error; after an
// error no new calls start.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// timed returns how long fn took.
func timed(fn func() error) (time.Duration, error) {
	begin := time.Now()
	err := fn()
	return time.Since(begin), err
}
