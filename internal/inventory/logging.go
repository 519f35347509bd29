package inventory

import (
	"context"
	"fmt"
	"log/slog"

	scalibrlog "github.com/google/osv-scalibr/log"
)

// RouteLibraryLogs sends the log lines of osv-scalibr's extractors (which go to the standard
// logger by default) to l at debug level: what they report about a file is also in
// Skipped. osv-scalibr's logger is process-wide, so main calls this once at start-up.
func RouteLibraryLogs(l *slog.Logger) {
	scalibrlog.SetLogger(slogAdapter{l: l})
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) log(level slog.Level, msg string) {
	a.l.Log(context.Background(), level, msg, "library", "osv-scalibr")
}

func (a slogAdapter) Errorf(format string, args ...any) {
	a.log(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (a slogAdapter) Error(args ...any) { a.log(slog.LevelDebug, fmt.Sprint(args...)) }
func (a slogAdapter) Warnf(format string, args ...any) {
	a.log(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (a slogAdapter) Warn(args ...any) { a.log(slog.LevelDebug, fmt.Sprint(args...)) }
func (a slogAdapter) Infof(format string, args ...any) {
	a.log(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (a slogAdapter) Info(args ...any) { a.log(slog.LevelDebug, fmt.Sprint(args...)) }
func (a slogAdapter) Debugf(format string, args ...any) {
	a.log(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (a slogAdapter) Debug(args ...any) { a.log(slog.LevelDebug, fmt.Sprint(args...)) }
