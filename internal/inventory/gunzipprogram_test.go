package inventory

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// igzip is the real igzip (Debian's isal package), which .ci/install-tools installs.
func igzip(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("igzip")
	if err != nil {
		tb.Fatal("igzip is not installed; run `bash .ci/install-tools` (it installs Debian's isal)")
	}
	return p
}

// deflatable returns n bytes that deflate about three times, as a layer's files do (a string
// repeated deflates a thousand times, as zeros do, which stays with Go's decoder).
func deflatable(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(4))
	}
	return b
}

func gzipOf(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// readAllOf decompresses stream as a layer scan does, with Go's decoder or the program.
func readAllOf(tb testing.TB, stream []byte, program string) ([]byte, error) {
	tb.Helper()
	r, stop, err := decompress(context.Background(), bytes.NewReader(stream),
		Options{GzipProgram: program, LayerSize: MinProgramGzipBytes})
	if err != nil {
		return nil, err
	}
	defer stop()
	return io.ReadAll(r)
}

// TestGunzipProgramAgreesWithGo: igzip gives the bytes Go's decoder gives, and fails where
// it fails, on good streams and on damaged ones.
func TestGunzipProgramAgreesWithGo(t *testing.T) {
	prog := igzip(t)
	rng := rand.New(rand.NewPCG(1, 2))
	content := make([]byte, 3<<20) // beyond the pipe and the read buffer
	for i := range content {
		content[i] = byte(rng.IntN(16)) // compressible, not trivially
	}
	one := gzipOf(t, content)
	damaged := func(at int) []byte {
		b := bytes.Clone(one)
		b[at] ^= 0x55
		return b
	}
	tests := []struct {
		name    string
		stream  []byte
		wantErr bool
		// inProcess: a head that does not inflate much (inflatesMuch) stays with Go's decoder.
		inProcess bool
	}{
		{"one member", one, false, false},
		{"two members", append(gzipOf(t, []byte("first member\n")), one...), false, false},
		{"empty content", gzipOf(t, nil), false, true},
		{"truncated", one[:len(one)/2], true, false},
		{"truncated in the trailer", one[:len(one)-3], true, false},
		{"checksum", damaged(len(one) - 6), true, false},
		{"length", damaged(len(one) - 2), true, false},
		{"deflate data", damaged(len(one) / 3), true, false},
		{"header only", one[:10], true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			goBytes, goErr := readAllOf(t, tt.stream, "")
			progBytes, progErr := readAllOf(t, tt.stream, prog)
			if (goErr != nil) != tt.wantErr || (progErr != nil) != tt.wantErr {
				t.Fatalf("errors: go %v, igzip %v; want an error: %v", goErr, progErr, tt.wantErr)
			}
			if tt.wantErr {
				if named := strings.Contains(progErr.Error(), "igzip"); named == tt.inProcess {
					t.Errorf("error %v: from igzip %v, want %v", progErr, named, !tt.inProcess)
				}
				return
			}
			if !bytes.Equal(goBytes, progBytes) {
				t.Errorf("igzip gave %d bytes, Go %d, or other bytes", len(progBytes), len(goBytes))
			}
		})
	}
}

// TestGunzipProgramCloseEarly: closing before the end stops the program (a layer walk stops
// at the tar's end, before the padding), and reads after the end keep returning io.EOF.
func TestGunzipProgramCloseEarly(t *testing.T) {
	stream := gzipOf(t, bytes.Repeat([]byte("0123456789abcdef"), 1<<20))
	g, err := startGunzipProgram(context.Background(), igzip(t), bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(g, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	g.Close()
	if g.cmd.ProcessState == nil {
		t.Fatal("the program was not waited for")
	}

	g, err = startGunzipProgram(context.Background(), igzip(t), bytes.NewReader(gzipOf(t, []byte("short"))))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(g); err != nil || string(b) != "short" {
		t.Fatalf("read %q, %v", b, err)
	}
	if n, err := g.Read(make([]byte, 10)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("a read after the end: %d, %v", n, err)
	}
	g.Close() // after the end: nothing left to stop
}

// TestGunzipProgramCancelled: cancelling the scan stops the program and the read fails.
func TestGunzipProgramCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stream := gzipOf(t, bytes.Repeat([]byte("0123456789abcdef"), 1<<20))
	g, err := startGunzipProgram(ctx, igzip(t), bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := io.ReadFull(g, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.Copy(io.Discard, g); err == nil {
		t.Error("the read went on to a clean end after the cancel")
	}
}

// TestDecompressWhichLayersInProcess: a layer under MinProgramGzipBytes, or of unknown size,
// or whose head gzip stored rather than deflated (random bytes), or whose head is runs of one
// byte (zeros), is decoded in process even when a program is set; a large deflated layer goes
// to the program.
func TestDecompressWhichLayersInProcess(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	deflated := deflatable(2<<20, 5)
	random := make([]byte, 4<<20)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	zeros := make([]byte, 64<<20)
	// Runs of one byte after a head of text still inflate in the program's favour: only the
	// head decides.
	zerosAfterText := append(bytes.Clone(deflated[:1<<20]), zeros...)
	tests := []struct {
		name    string
		content []byte
		size    int64
		program bool
	}{
		{"deflated, unknown size", deflated, 0, false},
		{"deflated, size -1", deflated, -1, false},
		{"deflated, under the minimum", deflated, MinProgramGzipBytes - 1, false},
		{"deflated, large", deflated, MinProgramGzipBytes, true},
		{"stored, large", random, int64(len(random)), false},
		{"runs of zeros, large", zeros, int64(len(zeros)), false},
		{"text, then zeros", zerosAfterText, int64(len(zerosAfterText)), true},
	}
	for _, tt := range tests {
		// The program does not exist: a layer sent to it is inflated in process after all,
		// with a warning that says so (which tells the two ways apart here).
		var log bytes.Buffer
		opts := Options{GzipProgram: "/nonexistent/igzip", LayerSize: tt.size, Logger: slog.New(slog.NewTextHandler(&log, nil))}
		r, stop, err := decompress(context.Background(), bytes.NewReader(gzipOf(t, tt.content)), opts)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		b, err := io.ReadAll(r)
		stop()
		if err != nil || !bytes.Equal(b, tt.content) {
			t.Errorf("%s: %d bytes, %v", tt.name, len(b), err)
		}
		if tried := strings.Contains(log.String(), "gzip program did not start") && strings.Contains(log.String(), "/nonexistent/igzip"); tried != tt.program {
			t.Errorf("%s: sent to the program %v, want %v (log %q)", tt.name, tried, tt.program, log.String())
		}
	}
}

func TestGzipProgramSetting(t *testing.T) {
	prog := igzip(t)
	tests := []struct {
		setting, want string
		wantErr       bool
	}{
		{"", prog, false},
		{GzipDecoderAuto, prog, false},
		{GzipDecoderIgzip, prog, false},
		{GzipDecoderGo, "", false},
		{"pigz", "", true},
	}
	for _, tt := range tests {
		got, err := GzipProgram(tt.setting)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%q: %q, %v; want %q (error: %v)", tt.setting, got, err, tt.want, tt.wantErr)
		}
	}
	t.Setenv("PATH", t.TempDir())
	if got, err := GzipProgram(GzipDecoderAuto); got != "" || err != nil {
		t.Errorf("auto without igzip: %q, %v; want Go's decoder", got, err)
	}
	if _, err := GzipProgram(GzipDecoderIgzip); err == nil || !strings.Contains(err.Error(), "isal") {
		t.Errorf("igzip without igzip: %v; want an error saying how to install it", err)
	}
}

// TestGunzipProgramEnvironment: the program gets none of this process's environment (a
// server's credentials), and what it says on failure comes back in the error.
func TestGunzipProgramEnvironment(t *testing.T) {
	t.Setenv("LADING_TEST_SECRET", "do-not-pass")
	prog := filepath.Join(t.TempDir(), "fake-gunzip")
	script := "#!/bin/sh\necho \"secret: [$LADING_TEST_SECRET]\" >&2\nexit 1\n"
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := readAllOf(t, gzipOf(t, deflatable(100_000, 6)), prog)
	if err == nil || !strings.Contains(err.Error(), "secret: [") {
		t.Fatalf("err = %v, want what the program said in it", err)
	}
	if !strings.Contains(err.Error(), "secret: []") {
		t.Errorf("the program saw this process's environment: %v", err)
	}
}
