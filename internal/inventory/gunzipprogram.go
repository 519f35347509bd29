package inventory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Gzip decoders a scan can use for gzip layers (--gzip-decoder).
const (
	// GzipDecoderAuto uses igzip when it is on PATH, else Go's.
	GzipDecoderAuto = "auto"
	// GzipDecoderGo is klauspost/compress's inflate, in process.
	GzipDecoderGo = "go"
	// GzipDecoderIgzip is igzip, from Intel's ISA-L (Debian's isal package), in a child
	// process: about three times less CPU than Go's inflate, which is most of a cold scan's.
	GzipDecoderIgzip = "igzip"
)

// GzipDecoders lists the settings GzipProgram accepts.
func GzipDecoders() []string {
	return []string{GzipDecoderAuto, GzipDecoderGo, GzipDecoderIgzip}
}

// GzipProgram turns a --gzip-decoder setting into Options.GzipProgram: the path of igzip, or
// "" for Go's decoder. "auto" falls back to Go's when igzip is not installed; "igzip" insists.
func GzipProgram(setting string) (string, error) {
	switch setting {
	case GzipDecoderGo:
		return "", nil
	case "", GzipDecoderAuto, GzipDecoderIgzip:
		p, err := exec.LookPath("igzip")
		switch {
		case err == nil:
			return p, nil
		case setting == GzipDecoderIgzip:
			return "", fmt.Errorf("gzip decoder igzip: %w (Debian and Ubuntu: apt-get install isal)", err)
		default:
			return "", nil
		}
	default:
		return "", fmt.Errorf("gzip decoder %q: want one of %s", setting, strings.Join(GzipDecoders(), ", "))
	}
}

// MinProgramGzipBytes is the compressed size from which a layer goes to the gzip program:
// starting a process costs about a millisecond, what Go's inflate takes for some 100 KiB,
// so small layers, most of an image's, stay in process.
const MinProgramGzipBytes = 1 << 20

// programReadBuffer is the buffer read from the program's output pipe.
const programReadBuffer = 256 << 10

// programStderrMax bounds what is kept of the program's standard error for the error message.
const programStderrMax = 1 << 10

// programWaitDelay bounds how long closing waits for the copy of the layer into the program
// once the program is gone: a stalled source then ends when the caller closes it.
const programWaitDelay = 2 * time.Second

// gunzipProgram is a gzip decoder in a child process (`PROG -d -c`, as igzip, gzip and pigz
// take it). It reads as Go's decoder would: the content, then io.EOF once the program exited
// well, or an error naming the program and what it said when it did not. The program sees
// only the compressed stream on its standard input, and writes nothing but its output pipe.
type gunzipProgram struct {
	cmd    *exec.Cmd
	out    io.ReadCloser
	stderr *boundedBuffer
	err    error
	waited bool
}

func startGunzipProgram(ctx context.Context, program string, in io.Reader) (*gunzipProgram, error) {
	cmd := exec.CommandContext(ctx, program, "-d", "-c")
	cmd.Stdin = in
	// Nothing of this process's environment (a server's credentials among it) is the
	// decoder's business.
	cmd.Env = []string{}
	stderr := &boundedBuffer{max: programStderrMax}
	cmd.Stderr = stderr
	cmd.WaitDelay = programWaitDelay
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("gzip layer: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("gzip layer: start %s: %w", program, err)
	}
	growPipe(out)
	return &gunzipProgram{cmd: cmd, out: out, stderr: stderr}, nil
}

func (g *gunzipProgram) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.out.Read(p)
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF):
		g.err = io.EOF
		if werr := g.wait(); werr != nil {
			g.err = fmt.Errorf("gzip layer: %s: %w%s", g.cmd.Path, werr, g.said())
		}
	default:
		g.err = fmt.Errorf("gzip layer: read from %s: %w", g.cmd.Path, err)
	}
	return n, g.err
}

// said is the program's standard error, for an error message.
func (g *gunzipProgram) said() string {
	s := strings.TrimSpace(g.stderr.String())
	if s == "" {
		return ""
	}
	return ": " + s
}

func (g *gunzipProgram) wait() error {
	g.waited = true
	err := g.cmd.Wait()
	if errors.Is(err, exec.ErrWaitDelay) {
		// The program exited well; the copy into it stalled on its source after that.
		return nil
	}
	return err
}

// Close stops the program if it still runs: the tar stream ends before the compressed one
// (the archive's padding is never read), so this is the usual way out, and not an error.
func (g *gunzipProgram) Close() {
	if g.waited {
		return
	}
	_ = g.cmd.Process.Kill()
	_ = g.wait()
}

// boundedBuffer keeps the first max bytes written to it.
type boundedBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
