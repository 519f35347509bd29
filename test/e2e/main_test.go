// Package e2e runs a real `lading serve` process against real clients: the OCI conformance
// suite, crane, oras and skopeo, and crash and shutdown scenarios.
package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/lading-registry/lading/internal/testserver"
)

// ladingBin is built once for the package, by TestMain.
var ladingBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lading-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ladingBin, err = testserver.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
