package vulndb

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Progress receives progress reports of imports and updates. The CLI draws a bar on a
// terminal (TextProgress) and logs lines otherwise (LogProgress). Calls come from one
// goroutine at a time.
type Progress interface {
	// Begin starts a task counted in unit ("records" or "bytes"); total is 0 when unknown.
	Begin(task, unit string, total int64)
	// Advance reports n more units done.
	Advance(n int64)
	// End finishes the current task.
	End()
}

type nopProgress struct{}

func (nopProgress) Begin(string, string, int64) {}
func (nopProgress) Advance(int64)               {}
func (nopProgress) End()                        {}

// LogProgress logs the start and end of each task, and its progress at most every interval.
func LogProgress(log *slog.Logger, interval time.Duration) Progress {
	return &logProgress{log: log, interval: interval}
}

type logProgress struct {
	log        *slog.Logger
	interval   time.Duration
	task, unit string
	total, n   int64
	start,
	last time.Time
}

func (p *logProgress) Begin(task, unit string, total int64) {
	p.task, p.unit, p.total, p.n = task, unit, total, 0
	p.start, p.last = time.Now(), time.Now()
	p.log.Info("vulndb: "+task, "total", total, "unit", unit)
}

func (p *logProgress) Advance(n int64) {
	p.n += n
	if time.Since(p.last) >= p.interval {
		p.last = time.Now()
		p.log.Info("vulndb: "+p.task, "done", p.n, "total", p.total, "unit", p.unit)
	}
}

func (p *logProgress) End() {
	p.log.Info("vulndb: "+p.task+" done", "done", p.n, "unit", p.unit, "elapsed", time.Since(p.start).Round(time.Millisecond))
}

// TextProgress draws a one-line progress bar on w (a terminal), redrawn in place.
func TextProgress(w io.Writer) Progress { return &textProgress{w: w} }

type textProgress struct {
	mu         sync.Mutex
	w          io.Writer
	task, unit string
	total, n   int64
	last       time.Time
}

func (p *textProgress) Begin(task, unit string, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.task, p.unit, p.total, p.n = task, unit, total, 0
	p.draw(true)
}

func (p *textProgress) Advance(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += n
	p.draw(false)
}

func (p *textProgress) End() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(true)
	fmt.Fprintln(p.w)
}

func (p *textProgress) draw(force bool) {
	if !force && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	const width = 30
	done := func(n int64) string {
		if p.unit == "bytes" {
			return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
		}
		return fmt.Sprintf("%d %s", n, p.unit)
	}
	if p.total > 0 {
		filled := int(min(p.n, p.total) * width / p.total)
		fmt.Fprintf(p.w, "\r%-40.40s [%s%s] %s / %s", p.task, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done(p.n), done(p.total))
		return
	}
	fmt.Fprintf(p.w, "\r%-40.40s %s", p.task, done(p.n))
}
