// Package e2e runs a real `lading serve` process against real clients: the OCI conformance
// suite, crane, oras and skopeo, and crash and shutdown scenarios.
package e2e

import (
	"os"
	"testing"

	"github.com/lading-registry/lading/internal/testserver"
)

// ladingBin is built once for the package, by TestMain.
var ladingBin string

func TestMain(m *testing.M) { os.Exit(testserver.Main(m, &ladingBin)) }
