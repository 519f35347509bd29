package vulndb

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestTextProgress(t *testing.T) {
	var buf bytes.Buffer
	p := TextProgress(&buf)
	p.Begin("download Debian/all.zip", "bytes", 4<<20)
	p.Advance(2 << 20)
	p.End()
	out := buf.String()
	if !strings.Contains(out, "download Debian/all.zip") || !strings.Contains(out, "2.0 MiB / 4.0 MiB") || !strings.HasSuffix(out, "\n") {
		t.Errorf("bar: %q", out)
	}
	if !strings.Contains(out, "["+strings.Repeat("=", 15)) {
		t.Errorf("bar not half full at the end of the task: %q", out)
	}
}

func TestLogProgress(t *testing.T) {
	var buf bytes.Buffer
	p := LogProgress(slog.New(slog.NewTextHandler(&buf, nil)), time.Nanosecond)
	p.Begin("import npm/all.zip", "records", 3)
	p.Advance(1)
	p.Advance(2)
	p.End()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[2], "done=3") || !strings.Contains(lines[3], "import npm/all.zip done") {
		t.Errorf("log lines: %q", lines)
	}
}
