// Package scan_test runs the scanner end to end: `lading db` and `lading scan` on real images,
// and the scanning of a live registry driven with the AWS CLI.
package scan_test

import (
	"os"
	"testing"

	"github.com/lading-registry/lading/internal/testserver"
)

// ladingBin is built once for the package, by TestMain.
var ladingBin string

func TestMain(m *testing.M) { os.Exit(testserver.Main(m, &ladingBin)) }
