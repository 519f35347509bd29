package inventory

import "testing"

// GzipOf is gzipOf for the package's external tests.
func GzipOf(tb testing.TB, b []byte) []byte { return gzipOf(tb, b) }
