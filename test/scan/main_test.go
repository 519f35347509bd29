// Package scan_test runs the scanner end to end: `lading db` and `lading scan` on real images,
// and the scanning of a live registry driven with the AWS CLI.
package scan_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/lading-registry/lading/internal/testserver"
)

// ladingBin is built once for the package, by TestMain.
var ladingBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lading-scan-")
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
