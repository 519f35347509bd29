package inventory

import (
	"io"
	"log/slog"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// What the libraries log about hostile test files is asserted through Skipped instead.
	RouteLibraryLogs(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}
